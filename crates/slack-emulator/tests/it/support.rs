//! Helpers: a configured emulator, a redirect-less HTTP client, and Web API call shortcuts.

use std::collections::HashMap;

use reqwest::redirect::Policy;
use serde_json::Value;
use slack_emulator::{Emulator, EmulatorConfig};

/// The client id every test emulator is configured with.
pub const CLIENT_ID: &str = "111.222";
/// The client secret every test emulator is configured with.
pub const CLIENT_SECRET: &str = "emulator-test-secret";
/// A redirect URI with a query string of its own.
pub const REDIRECT_URI: &str = "https://app.test/slack/oauth_redirect?tenant=a%20b";

/// A config with the test credentials.
pub fn config() -> EmulatorConfig {
    EmulatorConfig {
        client_id: Some(CLIENT_ID.to_owned()),
        client_secret: Some(CLIENT_SECRET.to_owned()),
        ..EmulatorConfig::default()
    }
}

/// A config with the test credentials and token rotation on.
pub fn rotating() -> EmulatorConfig {
    EmulatorConfig {
        rotation: true,
        ..config()
    }
}

pub async fn spawn(config: EmulatorConfig) -> Emulator {
    Emulator::spawn(config).await.unwrap()
}

/// A client that does not follow redirects (as an OAuth client must not).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// POSTs `form` to `method` with the test credentials as HTTP Basic auth.
pub async fn call(emulator: &Emulator, method: &str, form: &[(&str, &str)]) -> Value {
    http()
        .post(format!("{}{method}", emulator.api_url()))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// POSTs `form` to `method` with no credentials.
pub async fn call_plain(
    emulator: &Emulator,
    method: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    http()
        .post(format!("{}{method}", emulator.api_url()))
        .form(form)
        .send()
        .await
        .unwrap()
}

pub async fn redeem(emulator: &Emulator, code: &str, redirect_uri: Option<&str>) -> Value {
    let mut form = vec![("code", code)];
    if let Some(uri) = redirect_uri {
        form.push(("redirect_uri", uri));
    }
    call(emulator, "oauth.v2.access", &form).await
}

pub async fn refresh(emulator: &Emulator, refresh_token: &str) -> Value {
    call(
        emulator,
        "oauth.v2.access",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// `auth.test` with a Bearer token.
pub async fn auth_test(emulator: &Emulator, token: &str) -> Value {
    http()
        .post(format!("{}auth.test", emulator.api_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The `error` of an `ok:false` answer, failing the test on `ok:true`.
#[track_caller]
pub fn error(response: &Value) -> &str {
    assert_eq!(response["ok"], false, "expected ok:false, got {response}");
    response["error"].as_str().unwrap()
}

/// Asserts `ok:true`.
#[track_caller]
pub fn assert_ok(response: &Value) {
    assert_eq!(response["ok"], true, "expected ok:true, got {response}");
}

/// A string field.
#[track_caller]
pub fn s<'a>(response: &'a Value, pointer: &str) -> &'a str {
    response
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {response}"))
}

/// The query parameters of a URL, decoded.
pub fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}
