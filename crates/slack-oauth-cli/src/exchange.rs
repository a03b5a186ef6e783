//! `slack-oauth exchange`: long-lived tokens made rotating with `oauth.v2.exchange`.

use std::collections::HashSet;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use slack_oauth::api::ClientCredentials;
use slack_oauth::rotation::{
    long_lived_bot, long_lived_user, InstallationIds, Rotation, TokenRotator,
};
use slack_oauth::store::{InstallationQuery, InstallationStore as _};

use crate::config::{connect_store, SlackApiArgs, StoreArgs};
use crate::rotate::{credentials, describe, ids_json};

/// Options of `slack-oauth exchange`.
#[derive(Debug, Args)]
pub(crate) struct ExchangeArgs {
    /// oauth.v2.exchange calls per minute, counted in the budget every `serve` and `rotate` on
    /// the same database shares; 0 for no limit
    #[arg(long, default_value_t = 500)]
    max_per_minute: u32,
    /// List the tokens that would be exchanged; exchange nothing
    #[arg(long)]
    dry_run: bool,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    slack: SlackApiArgs,
    #[command(flatten)]
    insecure: crate::config::InsecureSlackUrlArg,
    #[command(flatten)]
    store: StoreArgs,
}

/// Exchanges every stored long-lived token, one installation at a time (the exchange is a
/// one-off migration; Slack limits `oauth.v2.exchange` to Tier 3, about 50 a minute, and the
/// client waits out its 429s). Exit code 1 when any exchange failed.
pub(crate) async fn run(args: ExchangeArgs) -> anyhow::Result<ExitCode> {
    let (client_id, client_secret) = credentials()?;
    let client = args.slack.client(&args.insecure)?;
    let store = connect_store(args.store.url(), &client_id).await?;
    let rotator = TokenRotator::new(client, ClientCredentials::new(client_id, client_secret));
    let rotation = Rotation::new(rotator, store.clone())
        .max_per_minute(args.max_per_minute)
        .slack_timeout(args.slack.slack_timeout);

    // One bot per workspace or org (its installations share it), every long-lived user token.
    let mut bots = HashSet::new();
    let planned: Vec<_> = store
        .list_installations()
        .await
        .context("cannot list the stored installations")?
        .into_iter()
        .filter_map(|installation| {
            let bot = long_lived_bot(&installation)
                && bots.insert(InstallationQuery::for_installation(&installation).without_user());
            let user = long_lived_user(&installation);
            (bot || user).then_some((installation, bot, user))
        })
        .collect();

    let progress = ProgressBar::new(planned.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{spinner} exchanging [{bar:30}] {pos}/{len} {msg}")
            .context("progress bar template")?
            .progress_chars("=> "),
    );
    let (mut exchanged, mut bot_tokens, mut user_tokens) = (0, 0, 0);
    let (mut would_exchange, mut failures) = (Vec::new(), Vec::new());
    for (mut installation, bot, user) in planned.iter().cloned() {
        let ids = ids_json(Some(&InstallationIds {
            enterprise_id: installation.enterprise_id.clone(),
            team_id: installation.team_id.clone(),
            user_id: installation.user_id.clone(),
        }));
        if args.dry_run {
            would_exchange.push(json!({"ids": ids, "bot": bot, "user": user}));
            progress.inc(1);
            continue;
        }
        if !bot {
            // Another installation of the workspace carries its bot.
            installation.bot_token = None;
        }
        match rotation.exchange_installation(&installation).await {
            Ok(done) => {
                exchanged += usize::from(done.bot || done.user);
                bot_tokens += usize::from(done.bot);
                user_tokens += usize::from(done.user);
            }
            Err(error) => {
                let error = error
                    .slack_error()
                    .map_or_else(|| error.to_string(), str::to_owned);
                failures.push(json!({"ids": ids, "error": error}));
                progress.set_message(format!("{} failed", failures.len()));
            }
        }
        progress.inc(1);
    }
    progress.finish_and_clear();

    if args.json {
        let out = json!({
            "planned": planned.len(),
            "exchanged": exchanged,
            "bot_tokens": bot_tokens,
            "user_tokens": user_tokens,
            "would_exchange": would_exchange,
            "failed": failures,
        });
        crate::announce(&serde_json::to_string_pretty(&out)?);
    } else {
        for item in &would_exchange {
            crate::announce(&format!("would exchange {}", describe(item)));
        }
        for failure in &failures {
            crate::announce(&format!("failed {}", describe(failure)));
        }
        crate::announce(&format!(
            "{} with long-lived tokens: {} exchanged ({} bot, {} user tokens), {} would exchange, \
             {} failed",
            planned.len(),
            exchanged,
            bot_tokens,
            user_tokens,
            would_exchange.len(),
            failures.len(),
        ));
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
