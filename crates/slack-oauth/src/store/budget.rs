//! The `oauth.v2.access` budget a store keeps for every instance that uses it
//! ([`InstallationStore::spend_refresh_budget`](super::InstallationStore::spend_refresh_budget)).

use std::collections::VecDeque;
use std::time::Duration;

use time::OffsetDateTime;

/// The window the budget counts calls in: Slack's limit on `oauth.v2.access` is per minute.
pub const BUDGET_WINDOW: Duration = Duration::from_secs(60);

/// The answer to [`InstallationStore::spend_refresh_budget`](super::InstallationStore::spend_refresh_budget).
///
/// ```
/// use std::time::Duration;
/// use slack_oauth::store::BudgetSpend;
/// let spent = BudgetSpend::Spent { used: 3 };
/// assert_eq!(spent.used(), 3);
/// let full = BudgetSpend::Exhausted { used: 500, retry_after: Duration::from_millis(120) };
/// assert_eq!(full.used(), 500);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BudgetSpend {
    /// One call was recorded: make it now.
    Spent {
        /// Calls recorded in the last 60 s, this one included.
        used: u32,
    },
    /// The limit is reached: nothing was recorded.
    Exhausted {
        /// Calls recorded in the last 60 s.
        used: u32,
        /// When one more call would fit (by the store's clock, as of the answer).
        retry_after: Duration,
    },
}

impl BudgetSpend {
    /// Calls recorded in the last 60 s.
    pub fn used(self) -> u32 {
        match self {
            Self::Spent { used } | Self::Exhausted { used, .. } => used,
        }
    }
}

/// The calls of one app in the last [`BUDGET_WINDOW`], oldest first: the memory store's
/// ledger, and the arithmetic the SQLite store applies to its rows.
///
/// A call recorded at `t` counts until `t + 60 s` (exclusive), and one is admitted only while
/// fewer than `limit` count: so no 60-second window ever holds more than `limit` calls.
#[derive(Debug, Default)]
pub(crate) struct SlidingWindow {
    spent_at: VecDeque<OffsetDateTime>,
}

impl SlidingWindow {
    /// Forgets the calls that no longer count at `now`, then records one if it fits.
    pub(crate) fn spend(&mut self, now: OffsetDateTime, limit: u32) -> BudgetSpend {
        let horizon = now - BUDGET_WINDOW;
        while self.spent_at.front().is_some_and(|at| *at <= horizon) {
            self.spent_at.pop_front();
        }
        let used = u32::try_from(self.spent_at.len()).unwrap_or(u32::MAX);
        if used < limit {
            self.spent_at.push_back(now);
            return BudgetSpend::Spent { used: used + 1 };
        }
        BudgetSpend::Exhausted {
            used,
            retry_after: retry_after(self.spent_at.iter().copied(), used, limit, now),
        }
    }
}

/// How long until fewer than `limit` of the `used` calls (`spent_at`, oldest first, all within
/// the window) count: until the `(used - limit + 1)`-th oldest leaves the window. At least
/// 1 ms, so that callers never spin.
pub(crate) fn retry_after(
    spent_at: impl Iterator<Item = OffsetDateTime>,
    used: u32,
    limit: u32,
    now: OffsetDateTime,
) -> Duration {
    let leaving = used.saturating_sub(limit) as usize;
    let minimum = Duration::from_millis(1);
    spent_at
        .into_iter()
        .nth(leaving)
        .map_or(BUDGET_WINDOW, |at| {
            Duration::try_from(at + BUDGET_WINDOW - now).unwrap_or(minimum)
        })
        .max(minimum)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::milliseconds(millis)
    }

    #[test]
    fn admits_the_limit_then_waits_for_the_oldest_to_leave() {
        let mut window = SlidingWindow::default();
        assert_eq!(window.spend(at(0), 3), BudgetSpend::Spent { used: 1 });
        assert_eq!(window.spend(at(10_000), 3), BudgetSpend::Spent { used: 2 });
        assert_eq!(window.spend(at(20_000), 3), BudgetSpend::Spent { used: 3 });
        assert_eq!(
            window.spend(at(30_000), 3),
            BudgetSpend::Exhausted {
                used: 3,
                retry_after: Duration::from_secs(30)
            },
            "the call at 0 s leaves at 60 s"
        );
        // Just before 60 s the first call still counts; at 60 s it does not.
        assert!(matches!(
            window.spend(at(59_999), 3),
            BudgetSpend::Exhausted { retry_after, .. } if retry_after == Duration::from_millis(1)
        ));
        assert_eq!(window.spend(at(60_000), 3), BudgetSpend::Spent { used: 3 });
    }

    #[test]
    fn no_sixty_second_window_ever_holds_more_than_the_limit() {
        let mut window = SlidingWindow::default();
        let mut admitted = Vec::new();
        // A caller every 37 ms for 5 minutes, against a limit of 100 a minute.
        for step in 0..8_000 {
            let now = at(step * 37);
            if let BudgetSpend::Spent { .. } = window.spend(now, 100) {
                admitted.push(now);
            }
        }
        for (index, start) in admitted.iter().enumerate() {
            let inside = admitted[index..]
                .iter()
                .take_while(|at| **at < *start + BUDGET_WINDOW)
                .count();
            assert!(inside <= 100, "{inside} calls in the minute from {start}");
        }
        // And the budget is used: 100 a minute for 5 minutes (within one window's worth).
        assert!(admitted.len() >= 500, "{}", admitted.len());
    }

    #[test]
    fn a_zero_limit_admits_nothing() {
        let mut window = SlidingWindow::default();
        assert!(matches!(
            window.spend(at(0), 0),
            BudgetSpend::Exhausted { used: 0, retry_after } if retry_after == BUDGET_WINDOW
        ));
    }
}
