//! A Slack app on axum, wired by `SlackApp`: "Add to Slack" routes, and `/slack/events` behind
//! signature verification and authorize (expiring tokens refreshed on the way), storing
//! installations where `DATABASE_URL` says (default: `slack-oauth.db`, SQLite).
//!
//! Against the local emulator (no Slack workspace needed), in two terminals:
//!
//! ```text
//! cargo run -p slack-oauth-cli -- emulate --addr 127.0.0.1:3100 --auto-approve
//! SLACK_CLIENT_ID=111.222 SLACK_CLIENT_SECRET=secret SLACK_SIGNING_SECRET=signing \
//!   SLACK_SCOPES=commands,chat:write SLACK_API_URL=http://127.0.0.1:3100/api/ \
//!   SLACK_AUTHORIZE_URL=<the URL the emulator printed> \
//!   cargo run -p slack-oauth --example axum_app --features axum,sqlite
//! ```
//!
//! Then open <http://127.0.0.1:3000/slack/install>, and send signed events to
//! `http://127.0.0.1:3000/slack/events` (`slack_oauth::signature::sign` makes the signature).

use axum::{body::Bytes, extract::State, routing::post, Router};
use slack_oauth::authorize::Incoming;
use slack_oauth::{Authorized, Client, SlackApp};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let slack = SlackApp::from_env().await?;
    let events = Router::new()
        .route("/slack/events", post(events))
        .with_state(slack.client().clone());
    let app = slack.install_routes().merge(slack.authorized(events));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://127.0.0.1:3000/slack/install");
    axum::serve(listener, app).await?;
    Ok(())
}

/// Answers Slack's URL check; for authorized requests, calls `auth.test` with the bot token.
async fn events(State(client): State<Client>, auth: Option<Authorized>, body: Bytes) -> String {
    if let Ok(Incoming::UrlVerification { challenge }) = Incoming::parse(&body) {
        return challenge;
    }
    let Some(Authorized(result)) = auth else {
        return String::new(); // lifecycle events (already applied) and other no-authorize bodies
    };
    let Some(token) = result.bot_token else {
        return String::new();
    };
    match client.auth_test(&token.into()).await {
        Ok(who) => println!("event for team {:?} as {:?}", who.team_id, who.user_id),
        Err(error) => eprintln!("auth.test failed: {error}"),
    }
    String::new()
}
