//! Injected faults and latency: each kind's answer, ordering, counting, and state left alone.

use std::time::{Duration, Instant};

use slack_emulator::{EmulatorConfig, Fault, Grant, ANY_METHOD};

use crate::support::*;

#[tokio::test]
async fn rate_limited_answers_429_with_retry_after_then_recovers() {
    let emulator = spawn(config()).await;
    let code = emulator.issue_code(Grant::default(), None);
    emulator.inject(
        "oauth.v2.access",
        Fault::RateLimited {
            retry_after_secs: 7,
        },
        2,
    );
    for _ in 0..2 {
        let response = http()
            .post(format!("{}oauth.v2.access", emulator.api_url()))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[("code", code.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "7");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error(&body), "ratelimited");
    }
    // The faulted calls did not spend the code.
    assert_ok(&redeem(&emulator, &code, None).await);
    assert_eq!(emulator.counters().calls["oauth.v2.access"], 3);
}

#[tokio::test]
async fn server_error_malformed_json_and_slack_error() {
    let emulator = spawn(config()).await;
    let token = emulator.seed_token(&Grant::default(), false);
    emulator.inject("auth.test", Fault::ServerError { status: 503 }, 1);
    emulator.inject("auth.test", Fault::MalformedJson, 1);
    emulator.inject(
        "auth.test",
        Fault::SlackError("internal_error".to_owned()),
        1,
    );
    let send = || {
        http()
            .post(format!("{}auth.test", emulator.api_url()))
            .bearer_auth(&token)
            .send()
    };

    let response = send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert!(!response.text().await.unwrap().is_empty());

    let response = send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(&text).is_err(),
        "{text}"
    );

    let body: serde_json::Value = send().await.unwrap().json().await.unwrap();
    assert_eq!(error(&body), "internal_error");

    assert_ok(&send().await.unwrap().json().await.unwrap());
    assert_eq!(emulator.counters().calls["auth.test"], 4);
}

#[tokio::test]
async fn wildcard_fault_hits_any_method_after_specific_ones() {
    let emulator = spawn(config()).await;
    emulator.inject(ANY_METHOD, Fault::SlackError("fatal_error".to_owned()), 1);
    emulator.inject("auth.revoke", Fault::SlackError("specific".to_owned()), 1);
    assert_eq!(
        error(&call(&emulator, "auth.revoke", &[]).await),
        "specific"
    );
    assert_eq!(
        error(&call(&emulator, "auth.test", &[]).await),
        "fatal_error"
    );
    assert_eq!(
        error(&call(&emulator, "auth.test", &[]).await),
        "not_authed"
    );
}

#[tokio::test]
async fn slow_fault_delays_the_answer_past_a_client_timeout() {
    let emulator = spawn(config()).await;
    let token = emulator.seed_token(&Grant::default(), false);
    emulator.inject("auth.test", Fault::Slow(Duration::from_secs(3)), 1);
    let result = http()
        .post(format!("{}auth.test", emulator.api_url()))
        .bearer_auth(&token)
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(result.unwrap_err().is_timeout());
    assert_ok(&auth_test(&emulator, &token).await);
}

#[tokio::test]
async fn slow_response_applies_the_call_before_the_client_gives_up() {
    let emulator = spawn(rotating()).await;
    let (_, refresh_token) = emulator.seed_refresh_token(&Grant::default(), false);
    emulator.inject(
        "oauth.v2.access",
        Fault::SlowResponse(Duration::from_secs(3)),
        1,
    );
    let result = http()
        .post(format!("{}oauth.v2.access", emulator.api_url()))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
        ])
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(result.unwrap_err().is_timeout());
    // The refresh happened server-side even though its answer was lost.
    for _ in 0..100 {
        if emulator.counters().refreshes_served == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(emulator.counters().refreshes_served, 1);
    assert_eq!(
        error(&refresh(&emulator, &refresh_token).await),
        "invalid_refresh_token"
    );
}

#[tokio::test]
async fn latency_is_added_to_every_api_call() {
    let latency = Duration::from_millis(150);
    let emulator = spawn(EmulatorConfig {
        latency,
        ..config()
    })
    .await;
    let started = Instant::now();
    call(&emulator, "auth.test", &[]).await;
    assert!(started.elapsed() >= latency);

    emulator.set_latency(Duration::ZERO);
    emulator.set_latency(latency);
    let started = Instant::now();
    call(&emulator, "oauth.v2.access", &[]).await;
    assert!(started.elapsed() >= latency);
}
