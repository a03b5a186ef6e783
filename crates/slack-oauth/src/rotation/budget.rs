//! `Budget`: a token bucket limiting `oauth.v2.access` calls per minute (Slack allows 600).

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// A token bucket: `per_minute` calls a minute, with bursts of up to one second's worth (at
/// least one call). Waiters are served in the order they ask (tokio's mutex is fair).
#[derive(Debug)]
pub(crate) struct Budget {
    bucket: Option<Mutex<Bucket>>,
}

impl Budget {
    /// A budget of `per_minute` calls a minute; 0 means unlimited.
    pub(crate) fn per_minute(per_minute: u32) -> Self {
        let bucket = (per_minute > 0).then(|| Mutex::new(Bucket::new(per_minute, Instant::now())));
        Self { bucket }
    }

    /// Waits until `cost` calls may be made, and spends them.
    pub(crate) async fn spend(&self, cost: u32) {
        let Some(bucket) = &self.bucket else {
            return;
        };
        if cost == 0 {
            return;
        }
        // Holding the lock while sleeping keeps the order fair: later callers wait behind.
        let mut bucket = bucket.lock().await;
        if let Some(wait) = bucket.take(cost, Instant::now()) {
            tokio::time::sleep(wait).await;
        }
    }
}

/// The bucket's arithmetic, on explicit instants so that it is tested without sleeping.
#[derive(Debug)]
pub(crate) struct Bucket {
    /// Calls a second.
    rate: f64,
    /// The largest burst.
    capacity: f64,
    /// Calls available at `at` (negative: owed).
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub(crate) fn new(per_minute: u32, now: Instant) -> Self {
        let rate = f64::from(per_minute.max(1)) / 60.0;
        let capacity = rate.max(1.0);
        Self {
            rate,
            capacity,
            tokens: capacity,
            at: now,
        }
    }

    /// Spends `cost` calls at `now`; returns how long to wait before making them, if at all.
    pub(crate) fn take(&mut self, cost: u32, now: Instant) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.at = now;
        self.tokens -= f64::from(cost);
        if self.tokens >= 0.0 {
            None
        } else {
            Some(Duration::from_secs_f64(-self.tokens / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_one_second_then_paces_at_the_rate() {
        let start = Instant::now();
        // 600 a minute: 10 a second, bursts of 10.
        let mut bucket = Bucket::new(600, start);
        for _ in 0..10 {
            assert_eq!(bucket.take(1, start), None);
        }
        let wait = bucket.take(1, start).unwrap();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        // After waiting, the next call owes one more interval.
        let wait = bucket.take(2, start + wait).unwrap();
        assert!((wait.as_secs_f64() - 0.2).abs() < 1e-9, "{wait:?}");
        // A long pause refills up to the burst size only.
        let later = start + Duration::from_secs(60);
        for _ in 0..10 {
            assert_eq!(bucket.take(1, later), None);
        }
        assert!(bucket.take(1, later).is_some());
    }

    #[test]
    fn slow_rates_allow_one_call_at_a_time() {
        let start = Instant::now();
        let mut bucket = Bucket::new(30, start);
        assert_eq!(bucket.take(1, start), None);
        let wait = bucket.take(1, start).unwrap();
        assert!((wait.as_secs_f64() - 2.0).abs() < 1e-9, "{wait:?}");
        assert_eq!(
            bucket.take(1, start + Duration::from_secs(6)),
            None,
            "refilled"
        );
    }

    /// On a paused clock any wait would advance virtual time: none passed, so nothing waited
    /// (and the test fails rather than hangs if something did).
    #[tokio::test(start_paused = true)]
    async fn unlimited_never_waits() {
        let budget = Budget::per_minute(0);
        let start = tokio::time::Instant::now();
        for _ in 0..10_000 {
            budget.spend(2).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
