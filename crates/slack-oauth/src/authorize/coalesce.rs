//! Concurrent identical lookups share one store read: a burst of requests for one workspace (a
//! busy channel right after its token expired, a broadcast event) reads the store once, not
//! once per request.
//!
//! Only reads in flight are shared. A lookup that starts after the shared read finished reads
//! afresh, so no answer is older than the request that gets it (unlike a cache). The read runs
//! on the thread of whichever waiting request polls it (no hand-off to another task); if every
//! request waiting on it is cancelled, the read is dropped with them (releasing its connection)
//! and the next lookup starts a new one.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use futures::future::{BoxFuture, FutureExt as _, WeakShared};

use super::AuthorizeError;
use crate::store::{InstallationQuery, StoreError};

type Outcome<T> = Result<Option<T>, Arc<StoreError>>;

/// One read in flight: an id (so that only it removes itself) and a weak handle on its shared
/// result (the waiting requests hold the strong ones).
type InFlight<T> = (u64, WeakShared<BoxFuture<'static, Outcome<T>>>);

/// Past this many entries, entries whose every waiter was cancelled are swept on insert.
const SWEEP_ABOVE: usize = 256;

/// The reads of one kind (installations, bots) in flight, by query.
pub(super) struct Coalesced<T> {
    in_flight: Mutex<HashMap<InstallationQuery, InFlight<T>>>,
    next_id: AtomicU64,
}

impl<T> Default for Coalesced<T> {
    fn default() -> Self {
        Self {
            in_flight: Mutex::default(),
            next_id: AtomicU64::new(0),
        }
    }
}

impl<T: Clone + Send + Sync + 'static> Coalesced<T> {
    /// The result of `read` for `query`, or of the identical read already in flight.
    pub(super) async fn read<Fut>(
        self: &Arc<Self>,
        query: &InstallationQuery,
        read: impl FnOnce() -> Fut,
    ) -> Result<Option<T>, AuthorizeError>
    where
        Fut: Future<Output = Result<Option<T>, StoreError>> + Send + 'static,
    {
        let shared = {
            let mut in_flight = self
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match in_flight.get(query).and_then(|(_, weak)| weak.upgrade()) {
                Some(shared) => shared,
                None => {
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let this = Arc::clone(self);
                    let key = query.clone();
                    let lookup = read();
                    let shared = async move {
                        let outcome = lookup.await.map_err(Arc::new);
                        // Done: the next lookup of this query reads afresh.
                        let mut in_flight = this
                            .in_flight
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner);
                        if in_flight.get(&key).is_some_and(|(entry, _)| *entry == id) {
                            in_flight.remove(&key);
                        }
                        outcome
                    }
                    .boxed()
                    .shared();
                    if in_flight.len() >= SWEEP_ABOVE {
                        in_flight.retain(|_, (_, weak)| weak.upgrade().is_some());
                    }
                    if let Some(weak) = shared.downgrade() {
                        in_flight.insert(query.clone(), (id, weak));
                    }
                    shared
                }
            }
        };
        shared.await.map_err(|error| {
            Arc::try_unwrap(error).map_or_else(AuthorizeError::SharedStore, AuthorizeError::Store)
        })
    }

    /// Reads in flight (for tests).
    #[cfg(test)]
    pub(super) fn in_flight(&self) -> usize {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_lookups_share_one_read_and_later_ones_read_again() {
        let reads = Arc::new(AtomicUsize::new(0));
        let coalesced = Arc::new(Coalesced::<u32>::default());
        let query = InstallationQuery::team("T1");
        let (release, released) = tokio::sync::watch::channel(false);
        let lookups = (0..100).map(|_| {
            let (coalesced, reads, query) =
                (Arc::clone(&coalesced), Arc::clone(&reads), query.clone());
            let mut released = released.clone();
            tokio::spawn(async move {
                coalesced
                    .read(&query, move || async move {
                        reads.fetch_add(1, Ordering::SeqCst);
                        let _ = released.wait_for(|go| *go).await;
                        Ok(Some(7))
                    })
                    .await
            })
        });
        let lookups: Vec<_> = lookups.collect();
        // Every lookup has joined the one read before it is let go.
        while coalesced.in_flight() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        release.send(true).unwrap();
        for lookup in lookups {
            assert_eq!(lookup.await.unwrap().unwrap(), Some(7));
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1, "one read for the burst");
        assert_eq!(coalesced.in_flight(), 0, "forgotten once done");
        let again = coalesced
            .read(&query, || async { Ok(Some(8)) })
            .await
            .unwrap();
        assert_eq!(again, Some(8), "a later lookup reads afresh");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn errors_reach_every_waiter_and_a_cancelled_read_is_dropped() {
        let coalesced = Arc::new(Coalesced::<u32>::default());
        let query = InstallationQuery::team("T1");
        let failed = coalesced
            .read(&query, || async {
                Err(StoreError::Config("down".to_owned()))
            })
            .await;
        assert!(matches!(
            failed,
            Err(AuthorizeError::Store(StoreError::Config(_)))
        ));

        // The only caller gives up: its read is dropped with it (what it held is released)
        // and the next lookup reads again.
        let (held, released) = tokio::sync::oneshot::channel::<()>();
        let waiting = coalesced.read(&query, move || async move {
            let _held = held;
            std::future::pending::<()>().await;
            Ok(Some(1))
        });
        let _ = tokio::time::timeout(Duration::from_millis(10), waiting).await;
        assert!(released.await.is_err(), "the abandoned read was dropped");
        let again = coalesced
            .read(&query, || async { Ok(Some(2)) })
            .await
            .unwrap();
        assert_eq!(again, Some(2));
        assert_eq!(coalesced.in_flight(), 0);
    }
}
