//! The store's own pool of sqlx connections: no round trip of its own on acquire or release.
//!
//! sqlx's `PgPool` pings a connection before handing it out (`test_before_acquire`, on by
//! default) and, unconditionally in sqlx 0.8, again when it comes back (`return_to_pool`, in a
//! spawned task). A lookup is one round trip, so those two pings tripled its work; measured on a
//! 2-core host, a lookup through `PgPool` cost 200-260 µs (140-170 µs with `test_before_acquire`
//! off), through a bare `PgConnection` 40-80 µs. This pool hands out bare connections:
//!
//! - A connection goes back to the idle stack only when its last step ended in a state where
//!   the protocol is in sync: success, or an error the server reported. After an I/O or protocol
//!   error, or when the caller's future was dropped mid-statement, it is closed instead, so a
//!   connection that died is found on use and replaced by the next acquire.
//! - Idle connections are a stack (last in, first out): under light load the same few stay warm
//!   and the others age out after [`IDLE_TIMEOUT`], freeing their server slots.
//! - Each connection lives at most [`MAX_LIFETIME`], so that sessions get renewed (server-side
//!   memory, a failover behind a proxy).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgDatabaseError, PgPool, PgSeverity};
use sqlx::{ConnectOptions, Connection, PgConnection, Postgres};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a connection may sit idle before it is closed (sqlx's default too).
pub(super) const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// How long a connection is used at most (sqlx's default too).
pub(super) const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// Run on every connection the store opens: the schema's change triggers skip the store's own
/// sessions, which notify their writes themselves after each commit (`installation.rs`,
/// `NOTIFY_CHANGE`). A statement rather than a startup parameter, which a connection pooler
/// such as PgBouncer may refuse.
const SESSION_SETUP: &str = "SET slack_oauth.notifies_itself = on";

/// Opens one connection of the store's own: connects with `options`, then [`SESSION_SETUP`].
///
/// # Errors
/// The error of connecting or of the setup statement.
pub(super) async fn open(options: &PgConnectOptions) -> Result<PgConnection, sqlx::Error> {
    let mut conn = options.connect().await?;
    if let Err(error) = sqlx::query(SESSION_SETUP).execute(&mut conn).await {
        close_in_background(conn);
        return Err(error);
    }
    Ok(conn)
}

/// Bare sqlx connections to one database, at most `max` at a time.
#[derive(Clone, Debug)]
pub(super) struct Connections {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    options: PgConnectOptions,
    max: u32,
    acquire_timeout: Duration,
    /// One permit per connection that may exist (idle or in use).
    permits: Arc<Semaphore>,
    /// Idle connections, the most recently used last. Never held across an `.await`.
    idle: Mutex<Vec<Idle>>,
    closed: AtomicBool,
}

#[derive(Debug)]
struct Idle {
    conn: PgConnection,
    opened: Instant,
    since: Instant,
}

impl Connections {
    /// A pool that opens connections with `options` when needed (none up front).
    pub(super) fn new(options: PgConnectOptions, max: u32, acquire_timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                options,
                max,
                acquire_timeout,
                permits: Arc::new(Semaphore::new(max as usize)),
                idle: Mutex::new(Vec::with_capacity(max as usize)),
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// Makes `conn`, just opened with the same options by [`open`], the first idle connection
    /// (when there is room for it; otherwise it is closed).
    pub(super) fn adopt(&self, conn: PgConnection) {
        let now = Instant::now();
        let mut idle = self.inner.lock_idle();
        if idle.len() < self.inner.max as usize {
            idle.push(Idle {
                conn,
                opened: now,
                since: now,
            });
        } else {
            drop(idle);
            close_in_background(conn);
        }
    }

    /// An idle connection, or a new one while fewer than `max` exist; waits up to the acquire
    /// timeout otherwise.
    ///
    /// # Errors
    /// `PoolTimedOut` when no connection could be had in time, `PoolClosed` after
    /// [`close`](Self::close), or the error of opening a connection.
    pub(super) async fn acquire(&self) -> Result<OwnConn, sqlx::Error> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(sqlx::Error::PoolClosed);
        }
        let started = Instant::now();
        let permit = tokio::time::timeout(
            inner.acquire_timeout,
            Arc::clone(&inner.permits).acquire_owned(),
        )
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)?
        .map_err(|_| sqlx::Error::PoolClosed)?;
        if let Some(idle) = self.take_idle() {
            return Ok(OwnConn {
                conn: Some(idle.conn),
                opened: idle.opened,
                reusable: true,
                pool: Arc::clone(inner),
                _permit: permit,
            });
        }
        let remaining = inner.acquire_timeout.saturating_sub(started.elapsed());
        let conn = tokio::time::timeout(remaining, open(&inner.options))
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
        Ok(OwnConn {
            conn: Some(conn),
            opened: Instant::now(),
            reusable: true,
            pool: Arc::clone(inner),
            _permit: permit,
        })
    }

    /// The most recently used idle connection; closes those idle or open for too long.
    fn take_idle(&self) -> Option<Idle> {
        let now = Instant::now();
        let mut stale = Vec::new();
        let found = {
            let mut idle = self.inner.lock_idle();
            // The stack is ordered by last use, so idle-too-long ones are at the bottom.
            let expired = idle
                .iter()
                .take_while(|i| now.duration_since(i.since) > IDLE_TIMEOUT)
                .count();
            stale.extend(idle.drain(..expired));
            loop {
                match idle.pop() {
                    Some(i) if now.duration_since(i.opened) > MAX_LIFETIME => stale.push(i),
                    other => break other,
                }
            }
        };
        for idle in stale {
            close_in_background(idle.conn);
        }
        found
    }

    /// Refuses new acquires, waits for connections in use to come back, and closes them all.
    pub(super) async fn close(&self) {
        let inner = &self.inner;
        inner.closed.store(true, Ordering::Release);
        // Every permit back means no connection is in use any more.
        if let Ok(all) = inner.permits.acquire_many(inner.max).await {
            all.forget();
        }
        inner.permits.close();
        let idle = std::mem::take(&mut *inner.lock_idle());
        for idle in idle {
            let _ = idle.conn.close().await;
        }
    }
}

impl Inner {
    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        // The lock guards plain pushes and pops: a panic elsewhere cannot leave it half-done.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Closes a connection politely (a `Terminate` message) when a runtime is at hand, else drops it.
fn close_in_background(conn: PgConnection) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let _ = conn.close().await;
        });
    }
}

/// A connection of [`Connections`], returned to it on drop when it is still usable.
#[derive(Debug)]
pub(super) struct OwnConn {
    conn: Option<PgConnection>,
    opened: Instant,
    /// Whether the last step left the protocol in sync (see [`Conn::settle`]).
    reusable: bool,
    pool: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for OwnConn {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let pool = &self.pool;
        if !self.reusable {
            // Out of sync or broken: a plain drop closes the socket.
            drop(conn);
        } else if pool.closed.load(Ordering::Acquire) || self.opened.elapsed() > MAX_LIFETIME {
            close_in_background(conn);
        } else {
            pool.lock_idle().push(Idle {
                conn,
                opened: self.opened,
                since: Instant::now(),
            });
        }
        // The permit is released after this, so a waiter finds the connection idle.
    }
}

/// A connection for one store operation: one of the store's own, or one of a pool the app
/// handed to [`from_pool`](super::PostgresStore::from_pool).
#[derive(Debug)]
pub(super) enum Conn {
    /// From [`Connections`].
    Own(OwnConn),
    /// From the app's `PgPool` (which tests it on release itself).
    Pooled(PoolConnection<Postgres>),
}

impl Conn {
    /// Acquires from `own` when the store has its own connections, else from `pool`.
    pub(super) async fn acquire(
        own: Option<&Connections>,
        pool: &PgPool,
    ) -> Result<Self, sqlx::Error> {
        match own {
            Some(own) => own.acquire().await.map(Self::Own),
            None => pool.acquire().await.map(Self::Pooled),
        }
    }

    /// The connection, for one step (a statement, or a transaction run to its end): until
    /// [`settle`](Self::settle) sees how that step ended, the connection counts as out of sync,
    /// so that if the step's future is dropped halfway the connection is closed, not reused.
    pub(super) fn busy(&mut self) -> &mut PgConnection {
        match self {
            Self::Own(own) => {
                own.reusable = false;
                own.conn
                    .as_mut()
                    .expect("an OwnConn holds its connection until dropped")
            }
            Self::Pooled(pooled) => pooled,
        }
    }

    /// Records how the last step ended, and passes its result through.
    pub(super) fn settle<T>(&mut self, result: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        if let Self::Own(own) = self {
            own.reusable = match &result {
                Ok(_) | Err(sqlx::Error::RowNotFound) => true,
                Err(sqlx::Error::Database(error)) => session_survives(error.as_ref()),
                // I/O, TLS, protocol, a decode failure mid-stream: maybe out of sync.
                Err(_) => false,
            };
        }
        result
    }
}

/// Whether the session goes on after an error the server reported: an `ERROR` leaves the
/// protocol in sync (the server goes on to `ReadyForQuery`, which sqlx waits for before the next
/// statement), but a `FATAL` or `PANIC` ends the session (a terminated backend, a server shutting
/// down), and so do connection exceptions (class 08) and operator intervention (57P).
fn session_survives(error: &dyn sqlx::error::DatabaseError) -> bool {
    let fatal = error
        .try_downcast_ref::<PgDatabaseError>()
        .is_some_and(|pg| matches!(pg.severity(), PgSeverity::Fatal | PgSeverity::Panic));
    let code = error.code();
    let ends_session = code
        .as_deref()
        .is_some_and(|code| code.starts_with("08") || code.starts_with("57P"));
    !fatal && !ends_session
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn idle_count(connections: &Connections) -> usize {
        connections.inner.lock_idle().len()
    }

    async fn pid(conn: &mut Conn) -> Result<i32, sqlx::Error> {
        let result = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(conn.busy())
            .await;
        conn.settle(result)
    }

    #[tokio::test]
    async fn broken_or_interrupted_connections_are_not_reused() {
        let Some(url) = super::super::test_database_url() else {
            return;
        };
        let options = PgConnectOptions::from_str(&url).unwrap();
        let connections = Connections::new(options.clone(), 2, Duration::from_secs(5));
        let pool = PgPool::connect_lazy_with(options);

        // A statement the server rejects leaves the connection usable: it is reused.
        let mut conn = Conn::acquire(Some(&connections), &pool).await.unwrap();
        let first = pid(&mut conn).await.unwrap();
        let failed = sqlx::query("SELECT 1 / 0").execute(conn.busy()).await;
        assert!(matches!(conn.settle(failed), Err(sqlx::Error::Database(_))));
        drop(conn);
        assert_eq!(idle_count(&connections), 1);
        let mut conn = Conn::acquire(Some(&connections), &pool).await.unwrap();
        assert_eq!(pid(&mut conn).await.unwrap(), first);

        // A statement abandoned halfway (its future dropped) closes the connection.
        let sleep = sqlx::query("SELECT pg_sleep(5)").execute(conn.busy());
        assert!(tokio::time::timeout(Duration::from_millis(100), sleep)
            .await
            .is_err());
        drop(conn);
        assert_eq!(idle_count(&connections), 0);

        // A connection that died while idle fails its next statement, is closed, and the
        // next acquire opens a working one.
        let mut conn = Conn::acquire(Some(&connections), &pool).await.unwrap();
        let doomed = pid(&mut conn).await.unwrap();
        drop(conn);
        let mut admin = PgConnection::connect(&url).await.unwrap();
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(doomed)
            .execute(&mut admin)
            .await
            .unwrap();
        // The backend is gone once it no longer shows in pg_stat_activity.
        for _ in 0..50 {
            let alive: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)")
                    .bind(doomed)
                    .fetch_one(&mut admin)
                    .await
                    .unwrap();
            if !alive {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut conn = Conn::acquire(Some(&connections), &pool).await.unwrap();
        assert!(pid(&mut conn).await.is_err());
        drop(conn);
        assert_eq!(idle_count(&connections), 0);
        let mut conn = Conn::acquire(Some(&connections), &pool).await.unwrap();
        assert_ne!(pid(&mut conn).await.unwrap(), doomed);
        drop(conn);

        // After close, acquiring fails and nothing stays open.
        connections.close().await;
        assert!(matches!(
            connections.acquire().await,
            Err(sqlx::Error::PoolClosed)
        ));
        assert_eq!(idle_count(&connections), 0);
        admin.close().await.unwrap();
    }
}
