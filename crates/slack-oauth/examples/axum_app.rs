//! A Slack app on axum: "Add to Slack" routes, and `/slack/events` behind signature verification
//! and authorize, storing installations in SQLite (`app.db`) behind the authorize cache.
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
use slack_oauth::authorize::{AuthorizeLayer, Authorized, Authorizer, CachedStore, Incoming};
use slack_oauth::secret::{AccessToken, SigningSecret};
use slack_oauth::signature::VerifySignatureLayer;
use slack_oauth::{api::Client, flow::OAuthFlow, settings::OAuthSettings, store::SqliteStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = OAuthSettings::from_env()?;
    let api_url = std::env::var("SLACK_API_URL").unwrap_or("https://slack.com/api/".into());
    let client = Client::builder().base_url(api_url).build()?;
    let sqlite = SqliteStore::connect("sqlite://app.db", settings.client_id.clone()).await?;
    let store = CachedStore::new(sqlite); // one handle: the flow's saves invalidate the cache
    let flow = OAuthFlow::new(settings, store.clone(), client.clone())?;
    let signing_secret = SigningSecret::new(std::env::var("SLACK_SIGNING_SECRET")?);
    let events = Router::new()
        .route("/slack/events", post(events))
        .layer(AuthorizeLayer::new(Authorizer::new(store)))
        .layer(VerifySignatureLayer::new(signing_secret))
        .with_state(client);
    let app = slack_oauth::axum::routes(&flow)
        .with_state(flow)
        .merge(events);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
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
    let token = AccessToken::new(result.token().unwrap_or_default());
    match client.auth_test(&token).await {
        Ok(who) => println!("event for team {:?} as {:?}", who.team_id, who.user_id),
        Err(error) => eprintln!("auth.test failed: {error}"),
    }
    String::new()
}
