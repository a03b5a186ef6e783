//! `Current`: the stored value of one token being rotated, and small helpers of the coordinator.

use std::time::Duration;

use rand::Rng as _;

use super::rotator::Refreshed;
use crate::installation::{Bot, ReinstallFlag};
use crate::secret::{BotToken, RefreshToken, UserToken};

/// The current value of one token.
#[derive(Clone, Debug)]
pub(super) enum Current {
    Bot(Box<Bot>),
    User {
        token: UserToken,
        refresh_token: RefreshToken,
        expires_at: Option<time::OffsetDateTime>,
        needs_reinstall: Option<ReinstallFlag>,
    },
}

impl Current {
    pub(super) fn expires_at(&self) -> Option<time::OffsetDateTime> {
        match self {
            Self::Bot(bot) => bot.bot_token_expires_at,
            Self::User { expires_at, .. } => *expires_at,
        }
    }

    pub(super) fn reinstall_flag(&self) -> Option<&ReinstallFlag> {
        match self {
            Self::Bot(bot) => bot.needs_reinstall.as_ref(),
            Self::User {
                needs_reinstall, ..
            } => needs_reinstall.as_ref(),
        }
    }

    pub(super) fn refresh_token(&self) -> Option<&RefreshToken> {
        match self {
            Self::Bot(bot) => bot.bot_refresh_token.as_ref(),
            Self::User { refresh_token, .. } => Some(refresh_token),
        }
    }

    pub(super) fn from_refresh(stored: Self, refreshed: Refreshed) -> Self {
        match stored {
            Self::Bot(mut bot) => {
                bot.bot_token = BotToken::new(refreshed.access_token);
                bot.bot_refresh_token = Some(refreshed.refresh_token);
                bot.bot_token_expires_at = refreshed.expires_at;
                Self::Bot(bot)
            }
            Self::User { .. } => Self::User {
                token: UserToken::new(refreshed.access_token),
                refresh_token: refreshed.refresh_token,
                expires_at: refreshed.expires_at,
                needs_reinstall: None,
            },
        }
    }
}

/// `base` plus up to 50% random extra, so that waiters do not retry in lockstep.
pub(super) fn jitter(base: Duration) -> Duration {
    let extra = rand::thread_rng().gen_range(0..=base.as_millis() as u64 / 2);
    base + Duration::from_millis(extra)
}

/// Doubling waits with [`jitter`], up to a cap: the rhythm of every retry in rotation.
pub(super) struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    /// Waiting for a lease: from 20 ms, capped low so that a lease freed by its holder (or
    /// expired) is taken within about 0.4 s.
    pub(super) fn lease() -> Self {
        Self {
            next: Duration::from_millis(20),
            cap: Duration::from_millis(250),
        }
    }

    /// Retrying a store write: from 50 ms up to 2 s.
    pub(super) fn save() -> Self {
        Self {
            next: Duration::from_millis(50),
            cap: Duration::from_secs(2),
        }
    }

    /// Sleeps the next wait.
    pub(super) async fn wait(&mut self) {
        tokio::time::sleep(jitter(self.next)).await;
        self.next = (self.next * 2).min(self.cap);
    }
}

/// Sleeps until a full budget window has room again; the jitter spreads the waiters of one
/// window.
pub(super) async fn wait_for_budget_room(retry_after: Duration) {
    tokio::time::sleep(retry_after + jitter(Duration::from_millis(20))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_adds_up_to_half_at_random() {
        let base = Duration::from_millis(100);
        let waits: Vec<Duration> = (0..500).map(|_| jitter(base)).collect();
        assert!(
            waits
                .iter()
                .all(|wait| (base..=base * 3 / 2).contains(wait)),
            "{waits:?}"
        );
        let spread = waits
            .iter()
            .max()
            .unwrap()
            .saturating_sub(*waits.iter().min().unwrap());
        assert!(spread >= Duration::from_millis(25), "spread {spread:?}");
    }
}
