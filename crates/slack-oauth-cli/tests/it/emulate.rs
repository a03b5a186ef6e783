//! `slack-oauth emulate`: prints `listening on`, answers Slack's methods, stops on SIGTERM.

use crate::support::{command, Spawned};

#[tokio::test]
async fn emulate_listens_answers_and_stops_on_sigterm() {
    let emulator = Spawned::start(command().args([
        "emulate",
        "--client-id",
        "111.222",
        "--client-secret",
        "emulated-secret",
    ]));
    assert!(emulator.url.starts_with("http://127.0.0.1:"));
    let http = reqwest::Client::new();
    let answer: serde_json::Value = http
        .post(format!("{}/api/oauth.v2.access", emulator.url))
        .basic_auth("111.222", Some("emulated-secret"))
        .form(&[("code", "not-a-code")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["ok"], false);
    assert_eq!(answer["error"], "invalid_code");
    let wrong: serde_json::Value = http
        .post(format!("{}/api/oauth.v2.access", emulator.url))
        .basic_auth("111.222", Some("wrong-secret"))
        .form(&[("code", "not-a-code")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(wrong["error"], "bad_client_secret");
    assert_eq!(emulator.terminate().code(), Some(0));
}
