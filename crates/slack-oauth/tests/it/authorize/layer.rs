//! `AuthorizeLayer` behind `VerifySignatureLayer`, end to end with signed requests.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use axum::Router;
use http_body_util::BodyExt;
use slack_oauth::authorize::{AuthorizeLayer, Authorized, Authorizer, REINSTALL_MESSAGE};
use slack_oauth::clock::ManualClock;
use slack_oauth::secret::SigningSecret;
use slack_oauth::signature::{sign, VerifySignatureLayer, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use slack_oauth::store::{InstallationQuery, InstallationStore, MemoryStore};
use slack_oauth_test::fixtures;
use tower::ServiceExt;

const SECRET: &str = "layer-test-signing-secret-S3NT1N3L";
const NOW: i64 = 1_767_225_600;

async fn handler(auth: Option<Authorized>) -> String {
    match auth {
        Some(Authorized(result)) => format!(
            "bot={} user={}",
            result
                .bot_token
                .map_or("-".into(), |t| t.secret().to_owned()),
            result
                .user_token
                .map_or("-".into(), |t| t.secret().to_owned())
        ),
        None => "none".to_owned(),
    }
}

async fn strict(Authorized(result): Authorized) -> String {
    result
        .token()
        .map_or("-".to_owned(), |token| token.secret().to_owned())
}

fn app(store: MemoryStore) -> Router {
    Router::new()
        .route("/slack/events", post(handler))
        .route("/strict", post(strict))
        .layer(AuthorizeLayer::new(Authorizer::new(store)))
        .layer(
            VerifySignatureLayer::new(SigningSecret::new(SECRET)).clock(ManualClock::at_unix(NOW)),
        )
}

fn signed(path: &str, body: &str) -> Request<Body> {
    let timestamp = NOW.to_string();
    let signature = sign(&SigningSecret::new(SECRET), &timestamp, body.as_bytes());
    Request::post(path)
        .header(TIMESTAMP_HEADER, timestamp)
        .header(SIGNATURE_HEADER, signature)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

async fn seeded() -> MemoryStore {
    let store = MemoryStore::new();
    store
        .save(&fixtures::workspace("T1", "U1").build())
        .await
        .unwrap();
    store
}

const EVENT_U1: &str = r#"{"type":"event_callback","team_id":"T1","event":{"type":"message","user":"U1"},"authorizations":[{"team_id":"T1","is_enterprise_install":false}]}"#;

#[tokio::test]
async fn signed_event_reaches_the_handler_authorized() {
    let app = app(seeded().await);
    let (status, body) = send(&app, signed("/slack/events", EVENT_U1)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "bot=xoxb-T1-U1-0 user=xoxp-T1-U1-0");
    let command = "command=%2Fx&team_id=T1&user_id=U9&is_enterprise_install=false";
    let (status, body) = send(&app, signed("/strict", command)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "xoxb-T1-U1-0"));
}

#[tokio::test]
async fn tampered_request_is_rejected_before_authorize() {
    let app = app(seeded().await);
    let mut request = signed("/slack/events", EVENT_U1);
    *request.body_mut() = Body::from(EVENT_U1.replace("U1", "U2"));
    let (status, _) = send(&app, request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn url_verification_passes_without_authorize() {
    let app = app(MemoryStore::new());
    let body = r#"{"type":"url_verification","challenge":"abc"}"#;
    let (status, body) = send(&app, signed("/slack/events", body)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "none"));
    let (status, body) = send(&app, signed("/slack/events", "ssl_check=1&token=x")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "none"));
}

#[tokio::test]
async fn not_installed_answers_200_without_the_handler() {
    let app = app(MemoryStore::new());
    let (status, body) = send(&app, signed("/slack/events", EVENT_U1)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, ""));
    let command = "command=%2Fx&team_id=T1&user_id=U1";
    let (status, body) = send(&app, signed("/slack/events", command)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, REINSTALL_MESSAGE));
}

/// A workspace whose grant was lost is answered as "reinstall needed" (Bolt's message for a
/// command) and its token is not handed to the handler, with or without a refresher.
#[tokio::test]
async fn a_token_marked_needs_reinstall_is_never_used() {
    let installation = fixtures::workspace("T1", "U1")
        .with_rotation(fixtures::at(1_000_000_000_000))
        .build();
    let store = MemoryStore::new();
    store.save(&installation).await.unwrap();
    for user in [None, Some("U1")] {
        let grant = slack_oauth::store::LostGrant {
            enterprise_id: None,
            team_id: Some("T1".into()),
            user_id: user.map(Into::into),
            refresh_token: if user.is_some() {
                installation.user_refresh_token.clone().unwrap()
            } else {
                installation.bot_refresh_token.clone().unwrap()
            },
            flag: slack_oauth::installation::ReinstallFlag::new(
                "invalid_refresh_token",
                fixtures::at(0),
            ),
        };
        assert!(store.flag_reinstall(&grant).await.unwrap());
    }
    let app = app(store.clone());
    let (status, body) = send(&app, signed("/slack/events", EVENT_U1)).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, ""),
        "events: empty 200"
    );
    let command = "command=%2Fx&team_id=T1&user_id=U1";
    let (status, body) = send(&app, signed("/slack/events", command)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, REINSTALL_MESSAGE));
    let direct = Authorizer::new(store.clone())
        .authorize(&slack_oauth::authorize::AuthorizeRequest::team("T1"))
        .await
        .unwrap();
    assert!(
        direct.is_none(),
        "authorize answers reinstall-needed: {direct:?}"
    );

    // A new install clears the mark.
    store
        .save(
            &fixtures::workspace("T1", "U1")
                .generation(1)
                .installed_at(fixtures::at(5))
                .build(),
        )
        .await
        .unwrap();
    let (status, body) = send(&app, signed("/slack/events", EVENT_U1)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with("bot=xoxb-"), "{body}");
}

#[tokio::test]
async fn malformed_body_is_400() {
    let app = app(MemoryStore::new());
    let (status, _) = send(&app, signed("/slack/events", "{oops")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn app_uninstalled_deletes_and_passes_through() {
    let store = seeded().await;
    let app = app(store.clone());
    let body = r#"{"type":"event_callback","team_id":"T1","event":{"type":"app_uninstalled"}}"#;
    let (status, body) = send(&app, signed("/slack/events", body)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "none"));
    let found = store
        .find_installation(&InstallationQuery::team("T1"))
        .await
        .unwrap();
    assert!(found.is_none());
}

#[tokio::test]
async fn strict_extractor_without_a_result_is_500() {
    let app = app(MemoryStore::new());
    let body = r#"{"type":"url_verification","challenge":"abc"}"#;
    let (status, body) = send(&app, signed("/strict", body)).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    );
}

/// The layers in the wrong order (the signature is checked after authorize) or no signature
/// layer at all: the authorize layer refuses everything with 401 and touches nothing.
#[tokio::test]
async fn without_a_verified_signature_the_layer_fails_closed() {
    let store = seeded().await;
    let uninstall =
        r#"{"type":"event_callback","team_id":"T1","event":{"type":"app_uninstalled"}}"#;
    let wrong_order = Router::new()
        .route("/slack/events", post(handler))
        .layer(
            VerifySignatureLayer::new(SigningSecret::new(SECRET)).clock(ManualClock::at_unix(NOW)),
        )
        .layer(AuthorizeLayer::new(Authorizer::new(store.clone())));
    let no_signature_layer = Router::new()
        .route("/slack/events", post(handler))
        .layer(AuthorizeLayer::new(Authorizer::new(store.clone())));
    for app in [&wrong_order, &no_signature_layer] {
        for request in [
            signed("/slack/events", uninstall),
            Request::post("/slack/events")
                .body(Body::from(uninstall))
                .unwrap(),
            signed("/slack/events", EVENT_U1),
        ] {
            let (status, body) = send(app, request).await;
            assert_eq!(
                (status, body.as_str()),
                (StatusCode::UNAUTHORIZED, "unauthorized")
            );
        }
    }
    assert!(
        store
            .find_installation(&InstallationQuery::team("T1"))
            .await
            .unwrap()
            .is_some(),
        "nothing deleted"
    );

    // Opted out by name: the layer reads the body itself.
    let trusting = Router::new().route("/slack/events", post(handler)).layer(
        AuthorizeLayer::new(Authorizer::new(store.clone())).accept_unverified_requests_insecurely(),
    );
    let unsigned = Request::post("/slack/events")
        .body(Body::from(EVENT_U1))
        .unwrap();
    let (status, body) = send(&trusting, unsigned).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with("bot=xoxb-"), "{body}");
}
