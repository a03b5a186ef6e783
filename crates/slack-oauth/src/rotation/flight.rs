//! The in-process single-flight of token rotation: per key, one caller works at a time, and the
//! callers queued behind a successful one take its result instead of working again.
//!
//! Built on two primitives (a map lock and an async lock per key) that the `shuttle` model
//! checker can replace: `RUSTFLAGS="--cfg shuttle" cargo test -p slack-oauth --lib flight` runs
//! the tests at the bottom over thousands of random, PCT and exhaustive schedules, with
//! cancelled and panicking leaders and abandoned followers (reliability.md R13).

use std::collections::HashMap;
use std::future::Future;
use std::sync::PoisonError;

use self::sync::{Arc, Mutex, Slot};

/// Per-key single-flight.
pub(super) struct Flights<V> {
    map: Mutex<HashMap<String, Entry<V>>>,
}

/// One key in flight: its lock, and how many callers hold it (counted under the map lock, so
/// that the last one out removes the key: a later caller never sees an old value).
struct Entry<V> {
    slot: Arc<Slot<V>>,
    users: usize,
}

impl<V> Default for Flights<V> {
    fn default() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
        }
    }
}

/// A caller's hold on a key; dropping it (returning, being cancelled, panicking) lets go.
struct Registration<'a, V> {
    flights: &'a Flights<V>,
    key: &'a str,
    slot: Arc<Slot<V>>,
}

impl<V> Drop for Registration<'_, V> {
    fn drop(&mut self) {
        let mut map = self
            .flights
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = map.get_mut(self.key) {
            if Arc::ptr_eq(&entry.slot, &self.slot) {
                entry.users -= 1;
                if entry.users == 0 {
                    map.remove(self.key);
                }
            }
        }
    }
}

impl<V: Clone> Flights<V> {
    /// Runs `work` for `key` unless a caller ahead of this one (queued on the same key) already
    /// succeeded, in which case its value is returned. `work` gets `true` when this caller had
    /// to wait (its leader failed, was cancelled or panicked: it should re-read what the leader
    /// may have changed before acting).
    ///
    /// Dropping the returned future (a cancelled caller) or a panic inside `work` releases the
    /// key: the next queued caller goes on. Once the last caller of a burst is done the key is
    /// forgotten, value included.
    pub(super) async fn run<E, F, Fut>(&self, key: &str, work: F) -> Result<V, E>
    where
        F: FnOnce(bool) -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let registration = {
            let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
            let entry = map.entry(key.to_owned()).or_insert_with(|| Entry {
                slot: Arc::new(Slot::new()),
                users: 0,
            });
            entry.users += 1;
            Registration {
                flights: self,
                key,
                slot: Arc::clone(&entry.slot),
            }
        };
        let slot = &registration.slot;
        let (mut guard, followed) = match slot.try_lock() {
            Some(guard) => (guard, false),
            None => (slot.lock().await, true),
        };
        match guard.get() {
            Some(value) => Ok(value),
            None => {
                let result = work(followed).await;
                if let Ok(value) = &result {
                    guard.set(value.clone());
                }
                result
            }
        }
    }

    /// Keys in flight (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(not(shuttle))]
mod sync {
    pub(super) use std::sync::{Arc, Mutex};

    /// An async lock around the value of the last success.
    pub(super) struct Slot<V>(tokio::sync::Mutex<Option<V>>);

    pub(super) struct SlotGuard<'a, V>(tokio::sync::MutexGuard<'a, Option<V>>);

    impl<V: Clone> Slot<V> {
        pub(super) fn new() -> Self {
            Self(tokio::sync::Mutex::new(None))
        }

        pub(super) fn try_lock(&self) -> Option<SlotGuard<'_, V>> {
            self.0.try_lock().ok().map(SlotGuard)
        }

        pub(super) async fn lock(&self) -> SlotGuard<'_, V> {
            SlotGuard(self.0.lock().await)
        }
    }

    impl<V: Clone> SlotGuard<'_, V> {
        pub(super) fn get(&self) -> Option<V> {
            self.0.clone()
        }

        pub(super) fn set(&mut self, value: V) {
            *self.0 = Some(value);
        }
    }
}

#[cfg(shuttle)]
#[path = "flight/shuttle_sync.rs"]
mod sync;

#[cfg(all(test, not(shuttle)))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn queued_callers_share_the_first_success_and_the_key_is_released() {
        let flights = std::sync::Arc::new(Flights::<u32>::default());
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let flights = std::sync::Arc::clone(&flights);
                let calls = std::sync::Arc::clone(&calls);
                tokio::spawn(async move {
                    flights
                        .run("k", |_| async move {
                            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            tokio::task::yield_now().await;
                            Ok::<_, ()>(7)
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), Ok(7));
        }
        assert_eq!(flights.len(), 0, "no key left behind");
        // Calls that did not overlap each worked (each one was the first of its flight).
        assert!(calls.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    }

    /// Eight callers all hold the key before the first finishes: the seven behind it take
    /// its value, and `work` runs once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_queued_behind_a_success_take_its_value_without_working() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let flights = Arc::new(Flights::<u32>::default());
        let calls = Arc::new(AtomicU32::new(0));
        let gate = Arc::new(tokio::sync::Notify::new());
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (flights, calls, gate) = (flights.clone(), calls.clone(), gate.clone());
                tokio::spawn(async move {
                    flights
                        .run("k", |_| async move {
                            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                                gate.notified().await;
                            }
                            Ok::<_, ()>(7)
                        })
                        .await
                })
            })
            .collect();
        let holders = || {
            let map = flights.map.lock().unwrap_or_else(PoisonError::into_inner);
            map.get("k").map_or(0, |entry| entry.users)
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while holders() < 8 {
            assert!(
                std::time::Instant::now() < deadline,
                "{} holders",
                holders()
            );
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        gate.notify_one();
        for task in tasks {
            assert_eq!(task.await.unwrap(), Ok(7));
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "the queued callers worked too"
        );
        assert_eq!(flights.len(), 0, "no key left behind");
    }

    #[tokio::test]
    async fn a_panicking_leader_lets_the_next_caller_work() {
        use futures::FutureExt as _;
        let flights = std::sync::Arc::new(Flights::<u32>::default());
        let panicked = std::panic::AssertUnwindSafe(flights.run("k", |_| async {
            tokio::task::yield_now().await;
            panic!("the leader panics");
            #[allow(unreachable_code)]
            Ok::<u32, ()>(0)
        }))
        .catch_unwind()
        .await;
        assert!(panicked.is_err());
        assert_eq!(flights.len(), 0, "the key was released");
        let next = flights.run("k", |followed| async move {
            assert!(!followed, "nobody is ahead any more");
            Ok::<_, ()>(1)
        });
        assert_eq!(next.await, Ok(1));
    }

    #[tokio::test]
    async fn a_failure_is_not_shared() {
        let flights = Flights::<u32>::default();
        let failed: Result<u32, &str> = flights.run("k", |_| async { Err("no") }).await;
        assert_eq!(failed, Err("no"));
        let next = flights.run("k", |_| async { Ok::<_, &str>(1) }).await;
        assert_eq!(next, Ok(1), "the next caller works again");
    }
}

#[cfg(all(test, shuttle))]
#[path = "flight/shuttle_tests.rs"]
mod shuttle_tests;
