//! The source of "now": injected so that expiry, TTL and signature-age logic can be tested.

use std::fmt::Debug;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use time::OffsetDateTime;

/// Tells the current time. The library never reads the wall clock except through a `Clock`.
///
/// ```
/// use slack_oauth::clock::{Clock, SystemClock};
/// let now = SystemClock.now();
/// assert!(now.unix_timestamp() > 1_700_000_000);
/// ```
pub trait Clock: Send + Sync + Debug + 'static {
    /// The current time in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The real clock.
///
/// ```
/// use slack_oauth::clock::{Clock, SystemClock};
/// assert!(SystemClock.now() <= SystemClock.now());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that reads the wall clock
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that tests move by hand. Clones share the same time.
///
/// ```
/// use slack_oauth::clock::{Clock, ManualClock};
/// let clock = ManualClock::at_unix(1_700_000_000);
/// clock.advance(std::time::Duration::from_secs(600));
/// assert_eq!(clock.now().unix_timestamp(), 1_700_000_600);
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    unix_nanos: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock stopped at the given Unix time in seconds.
    pub fn at_unix(seconds: i64) -> Self {
        Self {
            unix_nanos: Arc::new(AtomicI64::new(seconds.saturating_mul(1_000_000_000))),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: std::time::Duration) {
        let nanos = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
        self.unix_nanos.fetch_add(nanos, Ordering::SeqCst);
    }

    /// Sets the clock to the given Unix time in seconds.
    pub fn set_unix(&self, seconds: i64) {
        self.unix_nanos
            .store(seconds.saturating_mul(1_000_000_000), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        let nanos = self.unix_nanos.load(Ordering::SeqCst);
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}
