//! Concurrency, hostile input, counters and the server's lifecycle.

use std::collections::BTreeSet;
use std::time::Duration;

use slack_emulator::{Emulator, EmulatorConfig, Grant};

use crate::support::*;

#[tokio::test]
async fn fifty_concurrent_refreshes_of_distinct_tokens_all_succeed() {
    let emulator = spawn(rotating()).await;
    let tokens: Vec<String> = (0..50)
        .map(|i| {
            emulator
                .seed_refresh_token(&Grant::for_team(format!("T{i}")), i % 2 == 0)
                .1
        })
        .collect();
    let tasks: Vec<_> = tokens
        .iter()
        .map(|token| {
            let (emulator, token) = (emulator.clone(), token.clone());
            tokio::spawn(async move { refresh(&emulator, &token).await })
        })
        .collect();
    let mut new_tokens = BTreeSet::new();
    for task in tasks {
        let response = task.await.unwrap();
        assert_ok(&response);
        new_tokens.insert(s(&response, "/access_token").to_owned());
    }
    assert_eq!(new_tokens.len(), 50);
    let counters = emulator.counters();
    assert_eq!(counters.refreshes_served, 50);
    assert_eq!(counters.refresh_redemptions.len(), 50);
    assert_eq!(counters.calls["oauth.v2.access"], 50);
}

#[tokio::test]
async fn concurrent_redemptions_of_one_refresh_token_succeed_once() {
    let emulator = spawn(rotating()).await;
    let (_, token) = emulator.seed_refresh_token(&Grant::default(), false);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (emulator, token) = (emulator.clone(), token.clone());
            tokio::spawn(async move { refresh(&emulator, &token).await })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        let response = task.await.unwrap();
        if response["ok"] == true {
            ok += 1;
        } else {
            assert_eq!(error(&response), "invalid_refresh_token");
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(emulator.counters().spent_refresh_token_reuse, 19);
}

#[tokio::test]
async fn hostile_input_gets_answers_not_crashes() {
    let emulator = spawn(config()).await;
    let bodies: [&[u8]; 5] = [
        b"\xff\xfe\x00code=%ff%",
        b"&&&===",
        b"code",
        b"",
        &[b'a'; 70_000],
    ];
    for body in bodies {
        for method in [
            "oauth.v2.access",
            "auth.test",
            "auth.revoke",
            "oauth.v2.exchange",
            "x",
        ] {
            for auth in ["Basic !!!", "Basic MTEx", "Bearer", "Bearer  ", "nonsense"] {
                let response = http()
                    .post(format!(
                        "{}{method}?%zz=%ff&grant_type=%00",
                        emulator.api_url()
                    ))
                    .header("authorization", auth)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body.to_vec())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                let json: serde_json::Value = response.json().await.unwrap();
                assert_eq!(json["ok"], false);
            }
        }
    }
    for query in [
        "",
        "?%ff%fe",
        "?client_id=%00&redirect_uri=::::&scope=a",
        "?redirect_uri=x#y",
    ] {
        let response = http()
            .get(format!("{}{query}", emulator.authorize_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
    }
    let response = http()
        .post(format!("{}oauth/v2/authorize/approve", emulator.url()))
        .body(&b"\xff\xff=\xfe"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(emulator.counters().codes_issued, 0);
}

#[tokio::test]
async fn reset_counters_zeroes_them_but_keeps_tokens() {
    let emulator = spawn(config()).await;
    let token = emulator.seed_token(&Grant::default(), false);
    assert_ok(&auth_test(&emulator, &token).await);
    emulator.reset_counters();
    assert_eq!(emulator.counters(), slack_emulator::Counters::default());
    assert_ok(&auth_test(&emulator, &token).await);
    assert_eq!(emulator.counters().calls["auth.test"], 1);
}

async fn is_serving(url: &str) -> bool {
    http()
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_ok()
}

#[tokio::test]
async fn shutdown_and_dropping_the_last_handle_stop_the_server() {
    let emulator = spawn(config()).await;
    let url = emulator.url();
    let clone = emulator.clone();
    drop(clone);
    assert!(
        is_serving(&url).await,
        "a remaining handle keeps it running"
    );
    emulator.shutdown().await;
    assert!(!is_serving(&url).await);

    let emulator = Emulator::spawn(EmulatorConfig::default()).await.unwrap();
    let url = emulator.url();
    drop(emulator);
    let mut stopped = false;
    for _ in 0..100 {
        if !is_serving(&url).await {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(stopped, "dropping the last handle stops the server");
}

#[test]
fn spawn_outside_a_runtime_is_an_error_not_a_panic() {
    let future = Emulator::spawn(EmulatorConfig::default());
    // Poll it on a bare executor: no tokio reactor is running.
    let result = futures_lite_block_on(future);
    assert!(result.is_err());
}

/// Polls a future to completion on the current thread without tokio.
fn futures_lite_block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::pin::pin;
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = Waker::from(Arc::new(Noop));
    let mut context = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}
