//! Reader connections, and how a read leaves tokio's worker threads.

use std::sync::{Condvar, Mutex, PoisonError};

use rusqlite::Connection;

use super::open::{open, Role, Target};
use crate::store::StoreError;

/// At most this many reader connections. Reads run on threads that may block (see
/// [`blocking`]); more concurrent readers than this wait for a connection.
const MAX_READERS: usize = 8;

/// A small set of read connections (`query_only`, memory-mapped, with cached prepared
/// statements), opened on first use.
pub(super) struct Readers {
    target: Target,
    pool: Mutex<Pool>,
    returned: Condvar,
}

#[derive(Default)]
struct Pool {
    idle: Vec<Connection>,
    opened: usize,
    /// Readers waiting for a connection: returning one wakes a waiter only when there is one
    /// (a condition variable's notify is a system call even with nobody waiting).
    waiting: usize,
}

impl Readers {
    pub(super) fn new(target: Target) -> Self {
        Self {
            target,
            pool: Mutex::default(),
            returned: Condvar::new(),
        }
    }

    /// How many connections are open.
    pub(super) fn opened(&self) -> usize {
        self.lock().opened
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `read` on an idle connection, opening one if none is idle and fewer than
    /// [`MAX_READERS`] are open, waiting for one otherwise. Blocks: call it through
    /// [`blocking`].
    pub(super) fn with<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let connection = {
            let mut pool = self.lock();
            loop {
                if let Some(connection) = pool.idle.pop() {
                    break Some(connection);
                }
                if pool.opened < MAX_READERS {
                    pool.opened += 1;
                    break None;
                }
                pool.waiting += 1;
                pool = self
                    .returned
                    .wait(pool)
                    .unwrap_or_else(PoisonError::into_inner);
                pool.waiting -= 1;
            }
        };
        let connection = match connection {
            Some(connection) => connection,
            None => match open(&self.target, Role::Reader) {
                Ok(connection) => connection,
                Err(error) => {
                    self.lock().opened -= 1;
                    self.returned.notify_one();
                    return Err(error);
                }
            },
        };
        let result = read(&connection);
        let wake = {
            let mut pool = self.lock();
            pool.idle.push(connection);
            pool.waiting > 0
        };
        if wake {
            self.returned.notify_one();
        }
        result
    }
}

/// Runs blocking SQLite work off tokio's worker threads, at the cost of no thread hand-off
/// where the runtime allows it.
///
/// - On a multi-thread runtime, [`tokio::task::block_in_place`]: the current worker hands its
///   queue of tasks to another thread, then runs `work` right here. A lookup thus costs what
///   SQLite spends on it; a round trip to a dedicated thread costs 20-45 µs more on a 2-core VM
///   (a sleeping CPU's wake-up on the way there and back), which would double it.
/// - On a current-thread runtime (where `block_in_place` is not available),
///   [`tokio::task::spawn_blocking`], so the runtime's one thread keeps serving other tasks.
/// - Outside any tokio runtime (another executor), on the calling thread.
pub(super) async fn blocking<T, F>(work: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        Ok(handle) => match handle.spawn_blocking(work).await {
            Ok(value) => value,
            // `work` panicked: the bug surfaces where it happened, as it would inline.
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            // Cancelled: the runtime is shutting down, and with it whoever awaits this.
            Err(_) => std::future::pending().await,
        },
        Err(_) => work(),
    }
}
