//! `serve`'s background rotation: a pass over every token expiring within the window, every
//! `--rotate-every`, soonest first, until shutdown.

use std::time::Duration;

use futures::future::{BoxFuture, Shared};
use futures::StreamExt as _;
use slack_oauth::rotation::{rotate_all_until, BatchOptions, Rotation, RotationEvent};
use slack_oauth::store::{AnyStore, InstallationStore as _};
use slack_oauth::Installation;
use time::OffsetDateTime;

use crate::metrics::{NEEDS_REINSTALL, TOKENS_EXPIRING};

/// What the background rotation does.
#[derive(Clone, Debug)]
pub(crate) struct RotationLoop {
    /// Time between the start of one pass and the next.
    pub(crate) every: Duration,
    /// The window and concurrency of each pass (the budget is the rotation's).
    pub(crate) options: BatchOptions,
}

/// The shutdown signal, shared by the HTTP server and the rotation.
pub(crate) type Stop = Shared<BoxFuture<'static, ()>>;

impl RotationLoop {
    /// Runs passes until `stop` resolves; the pass under way then finishes the installations it
    /// started (their new tokens are saved) and starts no more.
    pub(crate) async fn run(self, rotation: Rotation<AnyStore>, stop: Stop) {
        tracing::info!(
            every = ?self.every,
            minutes_before_expiration = self.options.minutes_before_expiration,
            max_per_minute = rotation.budget_per_minute(),
            "background token rotation started"
        );
        let mut ticks = tokio::time::interval(self.every);
        // A pass longer than `every` delays the next one; passes never pile up.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = stop.clone() => break,
            }
            self.record_gauges(&rotation).await;
            self.pass(&rotation, stop.clone()).await;
        }
        tracing::info!("background token rotation stopped");
    }

    /// One pass; logs what failed and what needs a reinstall (ids and reasons only).
    async fn pass(&self, rotation: &Rotation<AnyStore>, stop: Stop) {
        let mut events = Box::pin(rotate_all_until(
            rotation.clone(),
            self.options.clone(),
            stop,
        ));
        while let Some(event) = events.next().await {
            match event {
                RotationEvent::Failed { ids, error } => tracing::warn!(
                    team_id = ids.as_ref().and_then(|ids| ids.team_id.as_ref()).map(|id| id.as_str()),
                    enterprise_id = ids.as_ref().and_then(|ids| ids.enterprise_id.as_ref()).map(|id| id.as_str()),
                    user_id = ids.as_ref().map(|ids| ids.user_id.as_str()),
                    %error,
                    "token rotation failed; retried on the next pass"
                ),
                RotationEvent::NeedsReinstall { ids, token, reason } => tracing::warn!(
                    team_id = ids.team_id.as_ref().map(|id| id.as_str()),
                    enterprise_id = ids.enterprise_id.as_ref().map(|id| id.as_str()),
                    user_id = ids.user_id.as_str(),
                    %token,
                    %reason,
                    "a token needs the app to be reinstalled"
                ),
                RotationEvent::Finished { summary } if summary.planned > 0 => tracing::info!(
                    planned = summary.planned,
                    rotated = summary.rotated,
                    bot_tokens = summary.bot_tokens,
                    user_tokens = summary.user_tokens,
                    not_needed = summary.not_needed,
                    failed = summary.failed,
                    needs_reinstall = summary.needs_reinstall,
                    "rotation pass finished"
                ),
                _ => {}
            }
        }
    }

    /// Sets the expiry gauges from the store: tokens expiring within 10 minutes and within
    /// the window, and tokens marked as needing a reinstall.
    async fn record_gauges(&self, rotation: &Rotation<AnyStore>) {
        let now = rotation.rotator().now();
        let minutes = self.options.minutes_before_expiration;
        let deadline = now + time::Duration::minutes(i64::from(minutes));
        let listed = match rotation.store().list_expiring(deadline).await {
            Ok(listed) => listed,
            Err(error) => {
                tracing::warn!(%error, "cannot list expiring tokens for the metrics");
                return;
            }
        };
        let counts = ExpiryCounts::of(&listed, now, minutes);
        metrics::gauge!(TOKENS_EXPIRING, "within" => "10m").set(counts.within_ten_minutes as f64);
        metrics::gauge!(TOKENS_EXPIRING, "within" => format!("{minutes}m"))
            .set(counts.within_window as f64);
        metrics::gauge!(NEEDS_REINSTALL).set(counts.needs_reinstall as f64);
    }
}

/// Token counts of one listing.
#[derive(Debug, Default, PartialEq, Eq)]
struct ExpiryCounts {
    within_ten_minutes: usize,
    within_window: usize,
    needs_reinstall: usize,
}

impl ExpiryCounts {
    /// Counts each bot once per workspace or org (installations of one workspace share it)
    /// and each user token once.
    fn of(listed: &[Installation], now: OffsetDateTime, window_minutes: u32) -> Self {
        let mut counts = Self::default();
        let mut bots = std::collections::HashSet::new();
        let ten = now + time::Duration::minutes(10);
        let window = now + time::Duration::minutes(i64::from(window_minutes));
        let mut count = |expires_at: Option<OffsetDateTime>, flagged: bool| {
            if flagged {
                counts.needs_reinstall += 1;
                return;
            }
            if let Some(at) = expires_at {
                counts.within_ten_minutes += usize::from(at <= ten);
                counts.within_window += usize::from(at <= window);
            }
        };
        for installation in listed {
            let scope = (
                installation.enterprise_id.clone(),
                installation
                    .team_id
                    .clone()
                    .filter(|_| !installation.is_enterprise_install),
            );
            if installation.bot_token.is_some() && bots.insert(scope) {
                count(
                    installation.bot_token_expires_at,
                    installation.bot_needs_reinstall.is_some(),
                );
            }
            if installation.user_token.is_some() {
                count(
                    installation.user_token_expires_at,
                    installation.user_needs_reinstall.is_some(),
                );
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slack_oauth::installation::ReinstallFlag;
    use slack_oauth::secret::{BotToken, UserToken};

    #[test]
    fn counts_a_shared_bot_once_and_flagged_tokens_apart() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let minutes = |m| Some(now + time::Duration::minutes(m));
        let installed = |user: &str, team: &str| {
            let mut installation = Installation::new(user, now);
            installation.team_id = Some(team.into());
            installation.bot_token = Some(BotToken::new("xoxb-1")); // fake
            installation.bot_token_expires_at = minutes(5);
            installation
        };
        let first = installed("U1", "T1");
        let mut second = installed("U2", "T1"); // the same bot
        second.user_token = Some(UserToken::new("xoxp-1")); // fake
        second.user_token_expires_at = minutes(60);
        let mut flagged = installed("U3", "T2");
        flagged.bot_needs_reinstall = Some(ReinstallFlag::new("invalid_refresh_token", now));
        let counts = ExpiryCounts::of(&[first, second, flagged], now, 120);
        assert_eq!(
            counts,
            ExpiryCounts {
                within_ten_minutes: 1,
                within_window: 2,
                needs_reinstall: 1,
            }
        );
    }
}
