//! What the client puts on the wire (docs/reference-sections.md §8.4, §9.1, §12.5 case 14),
//! recorded by a canned server: method, path, auth header, form body order, user agent.

use base64::Engine as _;
use slack_oauth::api::{AccessGrant, ClientCredentials};
use slack_oauth::secret::{AccessToken, RefreshToken};

use super::{pkce_grant, PKCE_VERIFIER};
use crate::support::{
    client_builder, code_grant, credentials, CannedServer, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI,
};

const EMPTY_OK: &str = r#"{"ok":true}"#;

#[tokio::test]
async fn code_exchange_sends_basic_auth_and_a_form_without_credentials() {
    let server = CannedServer::json(200, EMPTY_OK).await;
    let client = client_builder(server.api_url()).build().unwrap();
    let grant = code_grant("123.456.abc", Some(REDIRECT_URI));
    client
        .oauth_v2_access(&credentials(), &grant)
        .await
        .unwrap();

    let [request] = server.requests().try_into().unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/api/oauth.v2.access");
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    assert_eq!(
        request.header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        request.body,
        "redirect_uri=https%3A%2F%2Fapp.test%2Fslack%2Foauth_redirect&code=123.456.abc"
    );
    assert!(!request.body.contains("client_"));
    let agent = request.header("user-agent").unwrap();
    assert!(
        agent.starts_with("slack-oauth/") && agent.ends_with(" (rust)"),
        "{agent}"
    );
}

#[tokio::test]
async fn basic_auth_matches_python_for_the_spec_example() {
    let server = CannedServer::json(200, EMPTY_OK).await;
    let client = client_builder(server.api_url()).build().unwrap();
    let credentials = ClientCredentials::new("111.222", "sec");
    client
        .oauth_v2_access(&credentials, &code_grant("c", None))
        .await
        .unwrap();
    let [request] = server.requests().try_into().unwrap();
    assert_eq!(
        request.header("authorization"),
        Some("Basic MTExLjIyMjpzZWM=")
    );
    assert_eq!(request.body, "code=c");
}

#[tokio::test]
async fn pkce_verifier_follows_the_code() {
    let server = CannedServer::json(200, EMPTY_OK).await;
    let client = client_builder(server.api_url()).build().unwrap();
    client
        .oauth_v2_access(&credentials(), &pkce_grant("c", Some(PKCE_VERIFIER)))
        .await
        .unwrap();
    let [request] = server.requests().try_into().unwrap();
    assert_eq!(
        request.body,
        format!(
            "redirect_uri=https%3A%2F%2Fapp.test%2Fslack%2Foauth_redirect&code=c&code_verifier={PKCE_VERIFIER}"
        )
    );
}

#[tokio::test]
async fn refresh_sends_grant_type_and_refresh_token() {
    let server = CannedServer::json(200, EMPTY_OK).await;
    let client = client_builder(server.api_url()).build().unwrap();
    let grant = AccessGrant::RefreshToken(RefreshToken::new("xoxe-1-abc"));
    client
        .oauth_v2_access(&credentials(), &grant)
        .await
        .unwrap();
    let [request] = server.requests().try_into().unwrap();
    assert_eq!(
        request.body,
        "grant_type=refresh_token&refresh_token=xoxe-1-abc"
    );
    assert!(request
        .header("authorization")
        .unwrap()
        .starts_with("Basic "));
}

#[tokio::test]
async fn token_methods_send_bearer_auth() {
    let server = CannedServer::json(200, EMPTY_OK).await;
    let client = client_builder(server.api_url()).build().unwrap();
    let token = AccessToken::new("xoxb-1-2-abc");
    client.auth_test(&token).await.unwrap();
    client.auth_revoke(&token, true).await.unwrap();
    client.auth_revoke(&token, false).await.unwrap();
    client
        .oauth_v2_exchange(&credentials(), &token)
        .await
        .unwrap();

    let requests = server.requests();
    let shapes: Vec<(&str, Option<&str>, &str)> = requests
        .iter()
        .map(|r| (r.path.as_str(), r.header("authorization"), r.body.as_str()))
        .collect();
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let basic = format!("Basic {basic}");
    // Each request runs on its own connection (the server closes them), in call order.
    assert_eq!(
        shapes,
        [
            ("/api/auth.test", Some("Bearer xoxb-1-2-abc"), ""),
            ("/api/auth.revoke", Some("Bearer xoxb-1-2-abc"), "test=true"),
            (
                "/api/auth.revoke",
                Some("Bearer xoxb-1-2-abc"),
                "test=false"
            ),
            (
                "/api/oauth.v2.exchange",
                Some(basic.as_str()),
                "token=xoxb-1-2-abc"
            ),
        ]
    );
}
