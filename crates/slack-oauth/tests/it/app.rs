//! `SlackApp`, the wired common case, end to end against the emulator: an install through its
//! routes, then signed events through `authorized` reach the handler with the installed tokens,
//! and unsigned ones never do.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::{routing::post, Router};
use slack_emulator::{Emulator, EmulatorConfig, Grant};
use slack_oauth::secret::SigningSecret;
use slack_oauth::signature::{sign, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use slack_oauth::store::InstallationStore as _;
use slack_oauth::{Authorized, SlackApp};

use super::flow::fixtures::{
    callback, cookie_for, get, install, send, settings, CLIENT_ID, CLIENT_SECRET,
};

const REDIRECT_URI: &str = "https://app.test/slack/oauth_redirect";
const SIGNING_SECRET: &str = "app-signing-secret-S3NT1N3L";

async fn events(auth: Option<Authorized>) -> String {
    match auth {
        Some(Authorized(result)) => format!(
            "team={} bot_token={}",
            result
                .team_id
                .map_or("-".into(), |team| team.as_str().to_owned()),
            result.bot_token.is_some()
        ),
        None => "not authorized".to_owned(),
    }
}

fn signed(body: &str, secret: &str) -> Request<Body> {
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
    let signature = sign(&SigningSecret::new(secret), &timestamp, body.as_bytes());
    Request::post("/slack/events")
        .header(TIMESTAMP_HEADER, timestamp)
        .header(SIGNATURE_HEADER, signature)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn installs_then_authorizes_signed_events_only() {
    let emulator = Emulator::spawn(EmulatorConfig {
        client_id: Some(CLIENT_ID.to_owned()),
        client_secret: Some(CLIENT_SECRET.to_owned()),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let settings = settings()
        .redirect_uri(REDIRECT_URI)
        .authorize_url(emulator.authorize_url());
    let slack = SlackApp::builder(settings, SigningSecret::new(SIGNING_SECRET))
        .database_url("memory://")
        .api_url(emulator.api_url())
        .build()
        .await
        .unwrap();
    let app = slack
        .install_routes()
        .merge(slack.authorized(Router::new().route("/slack/events", post(events))));

    let (_, state) = install(&app).await;
    let code = emulator.issue_code(Grant::default(), Some(REDIRECT_URI));
    let answer = send(
        &app,
        get(
            &callback(&format!("code={code}&state={state}")),
            &[&cookie_for(&state)],
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let installed = slack.store().list_installations().await.unwrap();
    assert_eq!(installed.len(), 1);
    let team = installed[0].team_id.clone().expect("a workspace install");

    let event = format!(
        r#"{{"type":"event_callback","team_id":"{team}","event":{{"type":"app_mention"}},"authorizations":[{{"team_id":"{team}","is_enterprise_install":false}}]}}"#,
        team = team.as_str()
    );
    let answer = send(&app, signed(&event, SIGNING_SECRET)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.body,
        format!("team={} bot_token=true", team.as_str())
    );

    // The layers are in the safe order: a request signed with another secret is refused before
    // authorize reads anything.
    let answer = send(&app, signed(&event, "another-secret")).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    let unsigned = Request::post("/slack/events")
        .body(Body::from(event))
        .unwrap();
    assert_eq!(send(&app, unsigned).await.status, StatusCode::UNAUTHORIZED);
}
