//! `slack-oauth rotate`: refresh every stored token that expires soon, soonest first.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use slack_oauth::api::ClientCredentials;
use slack_oauth::rotation::{
    rotate_all, BatchOptions, BatchSummary, InstallationIds, Rotation, RotationEvent, TokenRotator,
};

use crate::config::{connect_store, env_nonempty, SlackApiArgs, StoreArgs};
use crate::UsageError;

/// Options of `slack-oauth rotate`.
#[derive(Debug, Args)]
pub(crate) struct RotateArgs {
    /// Rotate tokens expiring within this many minutes.
    #[arg(long, default_value_t = 120)]
    minutes_before_expiration: u32,
    /// Installations rotated at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// oauth.v2.access calls per minute (Slack allows 600 per app), shared by every `rotate`
    /// and `serve` on the same database; 0 for no limit.
    #[arg(long, default_value_t = 500)]
    max_per_minute: u32,
    /// List what would be rotated; refresh nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Keep running, one pass every DURATION (`30s`, `5m`, `1h`), for deployments without cron.
    #[arg(long, value_name = "DURATION", value_parser = parse_every)]
    every: Option<Duration>,
    #[command(flatten)]
    slack: SlackApiArgs,
    #[command(flatten)]
    insecure: crate::config::InsecureSlackUrlArg,
    #[command(flatten)]
    store: StoreArgs,
}

/// Runs one pass, or one pass every `--every` until Ctrl-C / SIGTERM.
pub(crate) async fn run(args: RotateArgs) -> anyhow::Result<ExitCode> {
    let (client_id, client_secret) = credentials()?;
    let client = args.slack.client(&args.insecure)?;
    let store = connect_store(args.store.url(), &client_id).await?;
    let rotator = TokenRotator::new(client, ClientCredentials::new(client_id, client_secret));
    let rotation = Rotation::new(rotator, store)
        .minutes_before_expiration(args.minutes_before_expiration)
        .max_per_minute(args.max_per_minute)
        .slack_timeout(args.slack.slack_timeout);
    let Some(every) = args.every else {
        return one_pass(&rotation, &args).await;
    };
    let shutdown = crate::shutdown::signal();
    tokio::pin!(shutdown);
    loop {
        let code = one_pass(&rotation, &args).await?;
        if code != ExitCode::SUCCESS {
            tracing::warn!("some rotations failed; retrying on the next pass");
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = &mut shutdown => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// The app's credentials, from the environment only (`rotate` and `exchange` have no flag
/// for them).
pub(crate) fn credentials() -> anyhow::Result<(String, String)> {
    let id = env_nonempty("SLACK_CLIENT_ID");
    let secret = env_nonempty("SLACK_CLIENT_SECRET");
    match (id, secret) {
        (Some(id), Some(secret)) => Ok((id, secret)),
        (id, secret) => {
            let missing: Vec<&str> = [
                ("SLACK_CLIENT_ID", id.is_none()),
                ("SLACK_CLIENT_SECRET", secret.is_none()),
            ]
            .into_iter()
            .filter_map(|(name, absent)| absent.then_some(name))
            .collect();
            Err(UsageError(format!(
                "{} not set; copy it from your app's Basic Information page",
                missing.join(" and ")
            ))
            .into())
        }
    }
}

async fn one_pass<S>(rotation: &Rotation<S>, args: &RotateArgs) -> anyhow::Result<ExitCode>
where
    S: slack_oauth::store::InstallationStore + Clone + 'static,
{
    let options = BatchOptions {
        minutes_before_expiration: args.minutes_before_expiration,
        concurrency: args.concurrency,
        dry_run: args.dry_run,
    };
    // indicatif draws nothing when stderr is not a terminal.
    let progress = ProgressBar::new(0);
    progress.set_style(
        ProgressStyle::with_template("{spinner} rotating [{bar:30}] {pos}/{len} {msg}")
            .context("progress bar template")?
            .progress_chars("=> "),
    );
    let mut failures = Vec::new();
    let mut would_rotate = Vec::new();
    let mut needs_reinstall = Vec::new();
    let mut summary = BatchSummary::default();
    let mut events = Box::pin(rotate_all(rotation.clone(), options));
    while let Some(event) = events.next().await {
        match event {
            RotationEvent::Planned { total } => progress.set_length(total as u64),
            RotationEvent::Rotated { .. } | RotationEvent::NotNeeded { .. } => progress.inc(1),
            RotationEvent::WouldRotate { ids, bot, user } => {
                progress.inc(1);
                would_rotate.push(json!({"ids": ids_json(Some(&ids)), "bot": bot, "user": user}));
            }
            RotationEvent::NeedsReinstall { ids, token, reason } => {
                progress.inc(1);
                needs_reinstall.push(json!({
                    "ids": ids_json(Some(&ids)),
                    "token": token.as_str(),
                    "reason": reason,
                }));
            }
            RotationEvent::Failed { ids, error } => {
                progress.inc(1);
                progress.set_message(format!("{} failed", failures.len() + 1));
                failures.push(json!({"ids": ids_json(ids.as_ref()), "error": error}));
            }
            RotationEvent::Finished { summary: done } => summary = done,
            _ => {}
        }
    }
    progress.finish_and_clear();
    if args.json {
        let out = json!({
            "planned": summary.planned,
            "rotated": summary.rotated,
            "bot_tokens": summary.bot_tokens,
            "user_tokens": summary.user_tokens,
            "not_needed": summary.not_needed,
            "would_rotate": would_rotate,
            "failed": failures,
            "needs_reinstall": needs_reinstall.len(),
            "needs_reinstall_installations": needs_reinstall,
        });
        crate::announce(&serde_json::to_string_pretty(&out)?);
    } else {
        for item in &would_rotate {
            crate::announce(&format!("would rotate {}", describe(item)));
        }
        for failure in &failures {
            crate::announce(&format!("failed {}", describe(failure)));
        }
        for item in &needs_reinstall {
            crate::announce(&format!("needs reinstall {}", describe(item)));
        }
        crate::announce(&format!(
            "{} due: {} rotated ({} bot, {} user tokens), {} not needed, {} would rotate, {} failed, \
             {} need reinstall",
            summary.planned,
            summary.rotated,
            summary.bot_tokens,
            summary.user_tokens,
            summary.not_needed,
            summary.would_rotate,
            summary.failed,
            needs_reinstall.len(),
        ));
    }
    // A token that needs a reinstall is an operator's problem: exit 1 until it is reinstalled.
    Ok(
        if summary.failed > 0 || !failures.is_empty() || !needs_reinstall.is_empty() {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        },
    )
}

pub(crate) fn ids_json(ids: Option<&InstallationIds>) -> serde_json::Value {
    ids.map_or(serde_json::Value::Null, |ids| {
        json!({
            "enterprise_id": ids.enterprise_id.as_ref().map(ToString::to_string),
            "team_id": ids.team_id.as_ref().map(ToString::to_string),
            "user_id": ids.user_id.to_string(),
        })
    })
}

pub(crate) fn describe(item: &serde_json::Value) -> String {
    let ids = &item["ids"];
    let field = |name: &str| ids[name].as_str().unwrap_or("-").to_owned();
    let mut text = format!(
        "enterprise {} team {} user {}",
        field("enterprise_id"),
        field("team_id"),
        field("user_id")
    );
    if let Some(error) = item["error"].as_str() {
        text.push_str(&format!(": {error}"));
    }
    if let (Some(token), Some(reason)) = (item["token"].as_str(), item["reason"].as_str()) {
        text.push_str(&format!(": {token} token, {reason}"));
    }
    text
}

/// `30s`, `5m`, `2h`, or plain seconds.
fn parse_every(value: &str) -> Result<Duration, String> {
    match parse_duration(value)? {
        Duration::ZERO => Err("--every must be at least 1s".to_owned()),
        every => Ok(every),
    }
}

/// `serve --rotate-every`: a duration as for `--every`, or `0` (off: [`Duration::ZERO`]).
pub(crate) fn parse_every_or_off(value: &str) -> Result<Duration, String> {
    parse_duration(value)
}

/// `30s`, `5m`, `1h` or a bare number of seconds.
fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let (number, unit) = value
        .find(|c: char| !c.is_ascii_digit())
        .map_or((value, "s"), |at| value.split_at(at));
    let amount: u64 = number
        .parse()
        .map_err(|_| format!("{value:?} is not a duration: use 30s, 5m or 1h"))?;
    let seconds = match unit {
        "s" => amount,
        "m" => amount.saturating_mul(60),
        "h" => amount.saturating_mul(3600),
        _ => return Err(format!("{value:?} is not a duration: use 30s, 5m or 1h")),
    };
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_accepts_seconds_minutes_hours() {
        assert_eq!(parse_every("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_every("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_every("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_every("45"), Ok(Duration::from_secs(45)));
        assert!(parse_every("0s").is_err());
        assert!(parse_every("5 minutes").is_err());
        assert!(parse_every("m").is_err());
    }
}
