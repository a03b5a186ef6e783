//! A store of your own, checked by the conformance suite. Here the OAuth states live in a map
//! guarded by a mutex; in practice, in the cache or key-value service your app already runs
//! (one key per state with the expiry as its TTL; `consume` a delete that reports whether it
//! deleted). An installation store is written the same way against
//! [`InstallationStore`](slack_oauth::store::InstallationStore) and checked with
//! `slack_oauth_test::store_conformance!`, which runs every case of both traits.
//!
//! ```text
//! cargo test -p slack-oauth --example custom_state_store   # the suite's state cases
//! cargo run -p slack-oauth --example custom_state_store    # one state issued and consumed
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use slack_oauth::secret::StateValue;
use slack_oauth::store::{new_state_value, StateStore, StoreError};
use time::OffsetDateTime;

/// Issued states and when each expires. Clones share the map, as the suite requires.
#[derive(Clone, Default)]
struct MapStates {
    states: Arc<Mutex<HashMap<String, OffsetDateTime>>>,
}

impl MapStates {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, OffsetDateTime>> {
        // Every operation leaves the map whole, so a poisoned lock is still consistent.
        self.states.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl StateStore for MapStates {
    async fn issue(&self, expires_at: OffsetDateTime) -> Result<StateValue, StoreError> {
        let state = new_state_value(); // 128 random bits: never guessable, never reused
        self.map().insert(state.secret().to_owned(), expires_at);
        Ok(state)
    }

    async fn consume(&self, state: &StateValue, now: OffsetDateTime) -> Result<bool, StoreError> {
        // Removed whether or not it expired: a state is single use either way.
        Ok(self
            .map()
            .remove(state.secret())
            .is_some_and(|expires_at| expires_at > now))
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let mut map = self.map();
        let before = map.len();
        map.retain(|_, expires_at| *expires_at > now);
        Ok((before - map.len()) as u64)
    }

    async fn count_live(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(self.map().values().filter(|at| **at > now).count() as u64)
    }
}

#[tokio::main]
async fn main() -> Result<(), StoreError> {
    let store = MapStates::default();
    let now = OffsetDateTime::now_utc();
    let state = store.issue(now + time::Duration::minutes(10)).await?;
    assert!(store.consume(&state, now).await?, "the first use passes");
    assert!(!store.consume(&state, now).await?, "a replay fails");
    println!("issued, consumed once, replay refused");
    Ok(())
}

#[cfg(test)]
mod conformance {
    use slack_oauth_test::cases;

    use super::MapStates;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_suites_state_cases_pass() {
        let fresh = MapStates::default;
        cases::state_is_single_use(&fresh()).await;
        cases::expired_state_is_rejected(&fresh()).await;
        cases::purge_removes_only_expired_states(&fresh()).await;
        cases::live_states_are_counted(&fresh()).await;
        cases::unknown_state_is_rejected(&fresh()).await;
        cases::issued_states_are_unique(&fresh()).await;
        cases::concurrent_consumes_have_one_winner(&fresh()).await;
    }
}
