//! `slack-oauth emulate`: the local Slack emulator as a process.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use slack_emulator::{Emulator, EmulatorConfig};

use crate::config::parse_addr;
use crate::UsageError;

/// Flags of `slack-oauth emulate`.
#[derive(Debug, Args)]
pub(crate) struct EmulateArgs {
    /// Where to listen; port 0 picks a free port
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: String,
    /// The only client id accepted (default: any)
    #[arg(long, requires = "client_secret")]
    client_id: Option<String>,
    /// The only client secret accepted (default: any)
    #[arg(long, requires = "client_id")]
    client_secret: Option<String>,
    /// Approve every authorize request at once instead of showing the approve page
    #[arg(long)]
    auto_approve: bool,
    /// Issue expiring tokens with refresh tokens (token rotation)
    #[arg(long)]
    rotation: bool,
    /// Lifetime of rotating access tokens, in seconds
    #[arg(long, default_value_t = 43_200, value_name = "SECONDS")]
    token_ttl: u64,
}

impl EmulateArgs {
    fn config(&self) -> EmulatorConfig {
        EmulatorConfig {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            auto_approve: self.auto_approve,
            rotation: self.rotation,
            token_ttl: Duration::from_secs(self.token_ttl),
            ..EmulatorConfig::default()
        }
    }
}

/// Runs the emulator until SIGINT or SIGTERM.
pub(crate) async fn run(args: EmulateArgs) -> anyhow::Result<ExitCode> {
    let addr = parse_addr(&args.addr, "--addr")?;
    if args.token_ttl == 0 {
        return Err(UsageError("--token-ttl must be at least 1 second".to_owned()).into());
    }
    let emulator = Emulator::bind(addr, args.config())
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(
        api_url = %emulator.api_url(),
        authorize_url = %emulator.authorize_url(),
        "slack emulator ready"
    );
    crate::announce(&format!("listening on http://{}", emulator.addr()));
    crate::announce(&format!(
        "  SLACK_API_URL={} SLACK_AUTHORIZE_URL={}",
        emulator.api_url(),
        emulator.authorize_url()
    ));
    crate::shutdown::signal().await;
    emulator.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
