//! `slack-oauth demo`: the emulator and the install flow on loopback, ready to click through.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use rand::Rng as _;
use slack_emulator::{Emulator, EmulatorConfig};
use slack_oauth::api::Client;
use slack_oauth::flow::OAuthFlow;
use slack_oauth::settings::OAuthSettings;
use tokio::net::TcpListener;

use crate::config;

/// The demo's store when `DATABASE_URL` is not set: a SQLite file in the current folder.
pub(crate) const DEMO_DATABASE_URL: &str = "sqlite://slack-oauth-demo.db";

/// Flags of `slack-oauth demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// The port of the app's server on 127.0.0.1 (default: a free one)
    #[arg(long)]
    port: Option<u16>,
}

/// Runs the demo until Ctrl-C.
pub(crate) async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let mut rng = rand::thread_rng();
    let client_id = format!(
        "{}.{}",
        rng.gen_range(100_000_000_000_u64..1_000_000_000_000),
        rng.gen_range(100_000_000_000_u64..1_000_000_000_000)
    );
    let client_secret: String = (0..32)
        .map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap_or('0'))
        .collect();
    let emulator = Emulator::spawn(EmulatorConfig {
        client_id: Some(client_id.clone()),
        client_secret: Some(client_secret.clone()),
        auto_approve: false,
        ..EmulatorConfig::default()
    })
    .await
    .context("cannot start the Slack emulator")?;

    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port.unwrap_or(0)));
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let base = format!("http://{local}");

    let database_url =
        config::env_nonempty("DATABASE_URL").unwrap_or_else(|| DEMO_DATABASE_URL.to_owned());
    let settings = OAuthSettings::new(client_id.as_str(), client_secret)
        .scopes(["chat:write", "commands"])
        .redirect_uri(format!("{base}/slack/oauth_redirect"))
        .authorize_url(emulator.authorize_url());
    let client = Client::builder()
        .base_url(emulator.api_url())
        .build()
        .context("cannot build the Web API client")?;
    let store = config::connect_store(&database_url, &client_id).await?;
    let flow = OAuthFlow::new(settings, store, client)?;

    crate::announce(&banner(&base, &emulator.url(), &database_url, &client_id));
    crate::announce(&format!("listening on {base}"));
    let limits = crate::serve::Limits::default();
    let served = crate::serve::serve(
        listener,
        flow,
        limits,
        crate::shutdown::signal(),
        Vec::new(),
    )
    .await;
    emulator.shutdown().await;
    served?;
    Ok(ExitCode::SUCCESS)
}

fn banner(base: &str, emulator: &str, database_url: &str, client_id: &str) -> String {
    format!(
        "\n\
         slack-oauth demo: your app and an emulated Slack, both on this machine\n\
         \n\
         \x20 Open  {base}/slack/install\n\
         \n\
         What happens next:\n\
         \x20 1. The install page shows \"Add to Slack\"; click it.\n\
         \x20 2. The emulated Slack ({emulator}) asks you to Allow or Cancel.\n\
         \x20 3. Allow: the app exchanges the code, checks the token and stores the\n\
         \x20    installation, then shows \"Thank you!\". Cancel: a failure page.\n\
         \x20 4. See what was stored (in another terminal):\n\
         \n\
         \x20    DATABASE_URL={database_url} slack-oauth installations list\n\
         \n\
         \x20    (this run's app is client id {client_id}; add SLACK_CLIENT_ID={client_id} to\n\
         \x20    see only its installations when the file holds earlier runs too)\n\
         \n\
         Press Ctrl-C to stop.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_names_the_install_url_and_the_listing_command() {
        let text = banner(
            "http://127.0.0.1:5",
            "http://127.0.0.1:6/",
            "sqlite://d.db",
            "1.2",
        );
        assert!(text.contains("Open  http://127.0.0.1:5/slack/install"));
        assert!(text.contains("DATABASE_URL=sqlite://d.db slack-oauth installations list"));
        assert!(text.contains("SLACK_CLIENT_ID=1.2"));
    }
}
