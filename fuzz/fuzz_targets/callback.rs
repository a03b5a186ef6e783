//! The OAuth callback, end to end on a memory store: any query string and Cookie header, with
//! or without a state the flow really issued. Every outcome answers (never a 500 on a store
//! that cannot fail), clears the state cookie, and redirects nowhere.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use slack_oauth::api::Client;
use slack_oauth::flow::{CallbackParams, OAuthFlow};
use slack_oauth::settings::OAuthSettings;
use slack_oauth::store::MemoryStore;

struct Harness {
    runtime: tokio::runtime::Runtime,
    client: Client,
    settings: OAuthSettings,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        // Nothing listens on the discard port: a code that gets that far is refused at once.
        let client = runtime.block_on(async {
            Client::builder()
                .base_url("http://127.0.0.1:9/api/")
                .connect_timeout(Duration::from_millis(200))
                .max_retries(0)
                .build()
                .expect("a client")
        });
        let settings = OAuthSettings::new("111.222", "fuzz-client-secret") // fake
            .redirect_uri("https://app.example.com/slack/oauth_redirect")
            .scopes(["chat:write"]);
        Harness {
            runtime,
            client,
            settings,
        }
    })
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    query: &'a str,
    cookie: Option<&'a str>,
    issued_state_in_query: bool,
    issued_cookie: bool,
}

fuzz_target!(|input: Input<'_>| {
    let harness = harness();
    // A fresh store each time, so that states left unconsumed do not pile up over a long run.
    let flow = OAuthFlow::new(
        harness.settings.clone(),
        MemoryStore::new(),
        harness.client.clone(),
    )
    .expect("valid settings");
    harness.runtime.block_on(async {
        let mut query = input.query.to_owned();
        let mut cookie = input.cookie.map(str::to_owned);
        if input.issued_state_in_query || input.issued_cookie {
            let start = flow.start_install(None).await.expect("a state");
            let state = start
                .authorize_url
                .query_pairs()
                .find(|(name, _)| name == "state")
                .map(|(_, value)| value.into_owned())
                .expect("a state in the authorize URL");
            if input.issued_state_in_query {
                query = format!("state={state}&{query}");
            }
            if input.issued_cookie {
                let set_cookie = start.set_cookie.expect("a state cookie");
                let pair = set_cookie.split(';').next().unwrap_or_default().to_owned();
                cookie = Some(match cookie {
                    Some(other) => format!("{other}; {pair}"),
                    None => pair,
                });
            }
        }
        // axum's `Query` extractor and the raw parser must both read any query.
        let _ = serde_urlencoded::from_str::<CallbackParams>(&query);
        let params = CallbackParams::from_query(&query);
        let response = flow.handle_callback(params, cookie.as_deref()).await;
        assert_ne!(
            response.status(),
            500,
            "a callback failed on a store that cannot fail"
        );
        let cleared = format!("{}=deleted;", flow.state_cookie().name());
        assert!(
            response
                .headers()
                .get_all("set-cookie")
                .iter()
                .any(|value| value
                    .to_str()
                    .is_ok_and(|value| value.starts_with(&cleared))),
            "the state cookie was not cleared"
        );
        assert!(
            response.headers().get("location").is_none(),
            "a failed callback redirected"
        );
    });
});
