//! Model checks with shuttle (`RUSTFLAGS="--cfg shuttle"`): the store is a version number, a
//! refresh bumps it, and `work` re-reads it first when it had to wait, like `Rotation`.

use shuttle::future::{block_on, spawn, yield_now};
use shuttle::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// The shared state of one model run.
#[derive(Clone)]
struct World {
    flights: Arc<Flights<u32>>,
    version: Arc<Mutex<u32>>,
    refreshes: Arc<AtomicUsize>,
    active: Arc<AtomicUsize>,
}

impl World {
    fn new() -> Self {
        Self {
            flights: Arc::new(Flights::default()),
            version: Arc::new(Mutex::new(0)),
            refreshes: Arc::new(AtomicUsize::new(0)),
            active: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A rotation as `Rotation` does it: read the store (under the lease); refresh only a
    /// token still at version 0 (the call to Slack yields), then save. Two of these running
    /// at once for one key would be two refreshes: `active` catches it.
    async fn rotate(&self) -> Result<u32, ()> {
        let world = self.clone();
        self.flights
            .run("rotation:T1:bot", |_followed| async move {
                let _working = Working::enter(&world.active);
                let stored = *world.version.lock().unwrap();
                let result = if stored > 0 {
                    stored
                } else {
                    yield_now().await;
                    world.refreshes.fetch_add(1, Ordering::SeqCst);
                    let mut stored = world.version.lock().unwrap();
                    *stored += 1;
                    *stored
                };
                Ok(result)
            })
            .await
    }
}

/// One caller inside `work`; counts down when dropped (returned or abandoned).
struct Working(Arc<AtomicUsize>);

impl Working {
    fn enter(active: &Arc<AtomicUsize>) -> Self {
        let before = active.fetch_add(1, Ordering::SeqCst);
        assert_eq!(before, 0, "two callers work on one key at once");
        Self(Arc::clone(active))
    }
}

impl Drop for Working {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Three callers at once: one refresh, everyone gets version 1, no key left behind.
fn three_callers() {
    let world = World::new();
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let world = world.clone();
            spawn(async move { world.rotate().await })
        })
        .collect();
    for task in tasks {
        assert_eq!(block_on(task).expect("the task finished"), Ok(1));
    }
    assert_eq!(world.refreshes.load(Ordering::SeqCst), 1, "one refresh");
    assert_eq!(world.flights.len(), 0, "no key left behind");
}

/// One caller is dropped after its first poll: a leader cancelled (or unwinding from a
/// panic, which drops the same guards; shuttle fails a run on any panic, so the drop stands
/// for both) in the middle of its refresh, or a follower that gave up waiting. The others
/// finish with the one version, never refresh twice, never deadlock, and leave no key.
fn abandoned_caller() {
    let world = World::new();
    let abandoned = {
        let world = world.clone();
        spawn(async move {
            let mut call = Box::pin(world.rotate());
            let _ = futures::poll!(call.as_mut());
        })
    };
    let others: Vec<_> = (0..2)
        .map(|_| {
            let world = world.clone();
            spawn(async move { world.rotate().await })
        })
        .collect();
    block_on(abandoned).expect("the task finished");
    for task in others {
        let version = block_on(task).expect("the task finished");
        assert_eq!(version, Ok(world.refreshes.load(Ordering::SeqCst) as u32));
    }
    // A leader dropped mid-refresh never saved (a refresh is saved by the same step here),
    // so the next caller refreshes: still one version in the store.
    assert_eq!(*world.version.lock().unwrap(), 1, "one version");
    assert_eq!(world.refreshes.load(Ordering::SeqCst), 1, "one refresh");
    assert_eq!(world.flights.len(), 0, "no key left behind");
}

#[test]
fn random_schedules() {
    shuttle::check_random(three_callers, 10_000);
    shuttle::check_random(abandoned_caller, 10_000);
}

#[test]
fn pct_schedules() {
    shuttle::check_pct(three_callers, 10_000, 3);
    shuttle::check_pct(abandoned_caller, 10_000, 3);
}

#[test]
fn every_schedule_of_three_tasks() {
    shuttle::check_dfs(three_callers, Some(100_000));
    shuttle::check_dfs(abandoned_caller, Some(100_000));
}
