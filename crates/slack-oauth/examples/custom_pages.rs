//! Your own success and failure pages: a welcome page naming the workspace, and a failure page
//! that keeps the flow's status and reason (the state cookie is still cleared for you).
//!
//! ```text
//! SLACK_CLIENT_ID=111.222 SLACK_CLIENT_SECRET=secret SLACK_SCOPES=chat:write \
//!   SLACK_API_URL=http://127.0.0.1:3100/api/ SLACK_AUTHORIZE_URL=<the emulator's> \
//!   cargo run -p slack-oauth --example custom_pages
//! ```

use http::{Response, StatusCode};
use slack_oauth::store::MemoryStore;
use slack_oauth::{Client, OAuthFlow, OAuthSettings};

fn flow(
    settings: OAuthSettings,
    client: Client,
) -> Result<OAuthFlow<MemoryStore>, Box<dyn std::error::Error>> {
    Ok(OAuthFlow::new(settings, MemoryStore::new(), client)?
        .with_success_handler(|installation, _defaults| async move {
            let team = installation
                .team_name
                .unwrap_or_else(|| "your workspace".into());
            Response::new(format!(
                "<h1>Installed in {team}</h1><p>Say hi to the bot!</p>"
            ))
        })
        .with_failure_handler(|error, _defaults| async move {
            let mut page =
                Response::new(format!("<h1>Not installed</h1><p>{}</p>", error.reason()));
            *page.status_mut() = if error.status() == StatusCode::OK {
                StatusCode::OK
            } else {
                error.status()
            };
            page
        }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let api_url = std::env::var("SLACK_API_URL").unwrap_or("https://slack.com/api/".into());
    let flow = flow(
        OAuthSettings::from_env()?,
        Client::builder().base_url(api_url).build()?,
    )?;
    let app = slack_oauth::axum::routes(&flow).with_state(flow);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use slack_emulator::{Emulator, EmulatorConfig, Grant};
    use slack_oauth::flow::CallbackParams;

    #[tokio::test]
    async fn both_pages_are_ours() {
        let emulator = Emulator::spawn(EmulatorConfig::default()).await.unwrap();
        let redirect_uri = "https://app.test/slack/oauth_redirect";
        let settings = super::OAuthSettings::new("111.222", "example-secret-S3NT1N3L")
            .redirect_uri(redirect_uri)
            .authorize_url(emulator.authorize_url());
        let client = super::Client::builder()
            .base_url(emulator.api_url())
            .build()
            .unwrap();
        let flow = super::flow(settings, client).unwrap();
        for (outcome, expected) in [
            ("approve", "<h1>Installed in "),
            ("cancel", "<h1>Not installed</h1><p>access_denied</p>"),
        ] {
            let start = flow.start_install(None).await.unwrap();
            let state = start
                .authorize_url
                .query_pairs()
                .find(|(k, _)| k == "state")
                .unwrap()
                .1
                .into_owned();
            let cookie = start
                .set_cookie
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned();
            let query = match outcome {
                "approve" => format!(
                    "code={}&state={state}",
                    emulator.issue_code(Grant::default(), Some(redirect_uri))
                ),
                _ => format!("error=access_denied&state={state}"),
            };
            let page = flow
                .handle_callback(CallbackParams::from_query(&query), Some(&cookie))
                .await;
            assert_eq!(page.status(), 200);
            assert!(page.body().starts_with(expected), "{}", page.body());
            assert!(page.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .contains("=deleted;"));
        }
    }
}
