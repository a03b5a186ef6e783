//! The cap on live OAuth states: past it the install path issues no new state and answers 503,
//! so a bot hammering the install page cannot grow the state table without bound.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::error::InstallError;
use crate::store::StateStore;

/// How often the live states are counted in the store. Between counts, the states this process
/// issued are added to the last count: one `count_live` query a second however hard the page is
/// hit, and an overshoot of at most a second's worth of the other instances' installs.
const RECOUNT_EVERY: Duration = Duration::from_secs(1);

/// How often a refusal is logged: once a minute, not once per refused request.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The estimate of the live states and when it was last counted.
pub(crate) struct LiveStates {
    cap: Option<u64>,
    tally: Mutex<Tally>,
    /// Held by the one caller recounting; the others use the estimate meanwhile.
    recount: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Tally {
    counted: u64,
    counted_at: Option<Instant>,
    issued_since: u64,
    last_warned: Option<Instant>,
}

impl LiveStates {
    /// At most `cap` live states; `None` for no cap.
    pub(crate) fn new(cap: Option<u64>) -> Self {
        Self {
            cap,
            tally: Mutex::default(),
            recount: tokio::sync::Mutex::new(()),
        }
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits one new state, or refuses with [`InstallError::TooManyStates`] when the estimate
    /// of live states has reached the cap.
    pub(crate) async fn admit<S: StateStore>(
        &self,
        store: &S,
        now: OffsetDateTime,
    ) -> Result<(), InstallError> {
        let Some(cap) = self.cap else {
            return Ok(());
        };
        let due = self
            .tally()
            .counted_at
            .is_none_or(|at| at.elapsed() >= RECOUNT_EVERY);
        if due {
            // A cancelled caller drops the guard, so a recount is never stuck "in progress".
            if let Ok(_recounting) = self.recount.try_lock() {
                let counted = store.count_live(now).await.map_err(InstallError::Store)?;
                let mut tally = self.tally();
                tally.counted = counted;
                tally.counted_at = Some(Instant::now());
                tally.issued_since = 0;
            }
        }
        let mut tally = self.tally();
        let live = tally.counted.saturating_add(tally.issued_since);
        if live >= cap {
            if tally
                .last_warned
                .is_none_or(|at| at.elapsed() >= WARN_EVERY)
            {
                tally.last_warned = Some(Instant::now());
                tracing::warn!(
                    target: "slack_oauth::flow",
                    live,
                    cap,
                    "the install page is refusing new installs (503): too many OAuth states are \
                     outstanding, which usually means something is hitting the install page; \
                     raise max_live_states if the traffic is real (logged once a minute)",
                );
            }
            return Err(InstallError::TooManyStates { cap });
        }
        tally.issued_since += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn refuses_at_the_cap_and_admits_again_once_states_are_used() {
        let store = MemoryStore::new();
        let live = LiveStates::new(Some(3));
        let now = OffsetDateTime::now_utc();
        let later = now + time::Duration::minutes(10);
        let mut issued = Vec::new();
        for _ in 0..3 {
            live.admit(&store, now).await.unwrap();
            issued.push(store.issue(later).await.unwrap());
        }
        assert!(matches!(
            live.admit(&store, now).await,
            Err(InstallError::TooManyStates { cap: 3 })
        ));
        // Two installs complete: after the next count there is room again.
        for state in &issued[..2] {
            assert!(store.consume(state, now).await.unwrap());
        }
        live.tally().counted_at = None;
        live.admit(&store, now).await.unwrap();
    }

    #[tokio::test]
    async fn no_cap_never_counts() {
        let live = LiveStates::new(None);
        live.admit(&MemoryStore::new(), OffsetDateTime::now_utc())
            .await
            .unwrap();
        assert!(live.tally().counted_at.is_none());
    }
}
