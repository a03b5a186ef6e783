//! The install flow alone: "Add to Slack" at `/slack/install`, the OAuth callback at
//! `/slack/oauth_redirect`, installations saved to SQLite. No events, no authorize.
//!
//! ```text
//! cargo run -p slack-oauth-cli -- emulate --addr 127.0.0.1:3100 --auto-approve
//! SLACK_CLIENT_ID=111.222 SLACK_CLIENT_SECRET=secret SLACK_SCOPES=chat:write \
//!   SLACK_API_URL=http://127.0.0.1:3100/api/ SLACK_AUTHORIZE_URL=<the URL it printed> \
//!   cargo run -p slack-oauth --example install_flow
//! ```

use slack_oauth::{Client, OAuthFlow, OAuthSettings, SqliteStore};

/// The app: the flow's two routes.
fn app(flow: OAuthFlow<SqliteStore>) -> axum::Router {
    slack_oauth::axum::routes(&flow).with_state(flow)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = OAuthSettings::from_env()?;
    let api_url = std::env::var("SLACK_API_URL").unwrap_or("https://slack.com/api/".into());
    let client = Client::builder().base_url(api_url).build()?;
    let store = SqliteStore::connect("sqlite://installs.db", settings.client_id.clone()).await?;
    let flow = OAuthFlow::new(settings, store, client)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("open http://127.0.0.1:3000/slack/install");
    axum::serve(listener, app(flow)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use slack_emulator::{Emulator, EmulatorConfig};
    use slack_oauth::store::InstallationStore as _;

    /// A browser-like walk against the emulator: install page, Slack's consent, callback.
    #[tokio::test]
    async fn installs_against_the_emulator() {
        let emulator = Emulator::spawn(EmulatorConfig {
            auto_approve: true,
            ..Default::default()
        })
        .await
        .unwrap();
        let settings = super::OAuthSettings::new("111.222", "example-secret-S3NT1N3L")
            .scopes(["chat:write"])
            .redirect_uri("http://127.0.0.1:3000/slack/oauth_redirect")
            .authorize_url(emulator.authorize_url());
        let client = super::Client::builder()
            .base_url(emulator.api_url())
            .build()
            .unwrap();
        let store = super::SqliteStore::connect("sqlite::memory:", "111.222")
            .await
            .unwrap();
        let flow = super::OAuthFlow::new(settings, store.clone(), client).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, super::app(flow)).await });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let page = http
            .get(format!("{base}/slack/install"))
            .send()
            .await
            .unwrap();
        let cookie = page.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let body = page.text().await.unwrap();
        let href = body
            .split("class=\"add-to-slack\" href=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        // The emulator approves at once and redirects to the configured redirect URI (port
        // 3000): send that callback to this test's port instead.
        let approved = http.get(href.replace("&amp;", "&")).send().await.unwrap();
        let location = approved.headers()["location"].to_str().unwrap();
        let callback = location.replace("http://127.0.0.1:3000", &base);
        let done = http
            .get(callback)
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), 200);
        assert_eq!(store.list_installations().await.unwrap().len(), 1);
    }
}
