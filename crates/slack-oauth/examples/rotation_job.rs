//! A proactive rotation job, for a scheduler (cron, a Kubernetes CronJob): refresh every token
//! expiring within two hours, five at a time, under 100 `oauth.v2.access` calls a minute, and
//! exit 1 if any failed. Safe to run on several machines at once (leases in the store).
//!
//! ```text
//! SLACK_CLIENT_ID=111.222 SLACK_CLIENT_SECRET=secret DATABASE_URL=sqlite://installs.db \
//!   cargo run -p slack-oauth --example rotation_job
//! ```

use futures::StreamExt as _;
use slack_oauth::api::ClientCredentials;
use slack_oauth::rotation::{
    rotate_all, BatchOptions, BatchSummary, Rotation, RotationEvent, TokenRotator,
};
use slack_oauth::store::InstallationStore;
use slack_oauth::Client;

/// Runs one pass and returns its summary.
async fn rotate<S: InstallationStore + Clone + 'static>(
    store: S,
    client: Client,
    credentials: ClientCredentials,
    options: BatchOptions,
) -> BatchSummary {
    // 100 calls a minute, shared by every machine running this job on the same database.
    let rotation = Rotation::new(TokenRotator::new(client, credentials), store).max_per_minute(100);
    let mut events = std::pin::pin!(rotate_all(rotation, options));
    let mut summary = BatchSummary::default();
    while let Some(event) = events.next().await {
        match event {
            RotationEvent::Failed { error, .. } => eprintln!("failed: {error}"),
            RotationEvent::Finished { summary: done } => summary = done,
            _ => {}
        }
    }
    summary
}

#[tokio::main]
async fn main() -> Result<std::process::ExitCode, Box<dyn std::error::Error>> {
    let settings = slack_oauth::OAuthSettings::from_env()?;
    let url = std::env::var("DATABASE_URL").unwrap_or("sqlite://installs.db".into());
    let store = slack_oauth::AnyStore::connect(&url, settings.client_id.clone()).await?;
    let credentials = ClientCredentials::new(settings.client_id, settings.client_secret);
    let options = BatchOptions {
        concurrency: 5,
        ..BatchOptions::default()
    };
    let summary = rotate(store, Client::new()?, credentials, options).await;
    println!(
        "{} rotated, {} failed, {} need a reinstall",
        summary.rotated, summary.failed, summary.needs_reinstall
    );
    Ok(if summary.failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use slack_emulator::{Emulator, EmulatorConfig, Grant};
    use slack_oauth::flow::CallbackParams;
    use slack_oauth::store::{InstallationQuery, InstallationStore as _, MemoryStore};

    #[tokio::test]
    async fn rotates_an_installed_token() {
        let emulator = Emulator::spawn(EmulatorConfig {
            rotation: true,
            ..Default::default()
        })
        .await
        .unwrap();
        let client = super::Client::builder()
            .base_url(emulator.api_url())
            .build()
            .unwrap();
        let redirect_uri = "https://app.test/slack/oauth_redirect";
        let settings = slack_oauth::OAuthSettings::new("111.222", "example-secret-S3NT1N3L")
            .redirect_uri(redirect_uri);
        let store = MemoryStore::new();
        let flow = slack_oauth::OAuthFlow::new(settings, store.clone(), client.clone()).unwrap();
        let start = flow.start_install(None).await.unwrap();
        let state = start
            .authorize_url
            .query_pairs()
            .find(|(k, _)| k == "state")
            .unwrap()
            .1
            .into_owned();
        let code = emulator.issue_code(Grant::default(), Some(redirect_uri));
        let params = CallbackParams::from_query(&format!("code={code}&state={state}"));
        let cookie = start
            .set_cookie
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let installed = flow.complete(params, Some(&cookie)).await.unwrap();
        // Tokens live 12 hours: a 24-hour window makes this one due now.
        let options = super::BatchOptions {
            minutes_before_expiration: 24 * 60,
            ..Default::default()
        };
        let credentials = super::ClientCredentials::new("111.222", "example-secret-S3NT1N3L");
        let summary = super::rotate(store.clone(), client, credentials, options).await;
        assert_eq!((summary.rotated, summary.failed), (1, 0));
        let bot = store
            .find_bot(&InstallationQuery::team(installed.team_id.unwrap()))
            .await
            .unwrap()
            .unwrap();
        assert_ne!(Some(bot.bot_token), installed.bot_token);
    }
}
