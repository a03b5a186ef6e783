//! The metrics the library records, through the [`metrics`] facade.
//!
//! Nothing is recorded until the application installs a recorder (for Prometheus,
//! `metrics-exporter-prometheus`, as `slack-oauth serve` does); without one each call costs a
//! few nanoseconds. The names and labels below are a contract that dashboards and alerts use:
//! they do not change. No label ever holds a token, a code, a state or a user, team or org id;
//! every label value is one of the few listed.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | [`INSTALLS_TOTAL`] | counter | `outcome`: `success`, `access_denied`, `slack_error` (Slack's other `error` values), `invalid_browser`, `invalid_state`, `missing_code`, `invalid_code`, `storage_error`; `panic` when the callback or a custom page panicked (an install whose success page panicked counts as `success` and `panic`) |
//! | [`TOKEN_REFRESHES_TOTAL`] | counter | `kind`: `bot`, `user`; `outcome`: `rotated`, `needs_reinstall`, `failed` |
//! | [`AUTHORIZE_TOTAL`] | counter | `outcome`: `authorized`, `not_installed`, `error`; `cached`: `true` when every lookup was answered by the [`CachedStore`](crate::CachedStore), else `false` |
//! | [`STORE_OPERATION_DURATION_SECONDS`] | histogram | `operation`: the store method (`find_bot`, `save`, ...); recorded by [`AnyStore`](crate::AnyStore) |
//! | [`STORE_ERRORS_TOTAL`] | counter | `operation`, as above |
//! | [`ROTATION_BUDGET_REMAINING`] | gauge | none: the `oauth.v2.access` calls left in the last 60 s of the budget every instance on the store shares, as of this instance's last refresh |
//!
//! ```
//! assert_eq!(slack_oauth::telemetry::INSTALLS_TOTAL, "slack_oauth_installs_total");
//! ```

use std::time::Instant;

/// Completed callbacks of the install flow, by outcome.
pub const INSTALLS_TOTAL: &str = "slack_oauth_installs_total";
/// `oauth.v2.access` refreshes sent under a rotation lease, by token kind and outcome.
pub const TOKEN_REFRESHES_TOTAL: &str = "slack_oauth_token_refreshes_total";
/// Authorize calls, by outcome and whether the cache answered them.
pub const AUTHORIZE_TOTAL: &str = "slack_oauth_authorize_total";
/// The time of each store operation made through [`AnyStore`](crate::AnyStore), in seconds.
pub const STORE_OPERATION_DURATION_SECONDS: &str = "slack_oauth_store_operation_duration_seconds";
/// Store operations that failed, by operation.
pub const STORE_ERRORS_TOTAL: &str = "slack_oauth_store_errors_total";
/// `oauth.v2.access` calls left in the shared budget's current 60 s window, as of the last
/// refresh.
pub const ROTATION_BUDGET_REMAINING: &str = "slack_oauth_rotation_budget_remaining";

/// Counts one completed callback.
pub(crate) fn install(outcome: &'static str) {
    metrics::counter!(INSTALLS_TOTAL, "outcome" => outcome).increment(1);
}

/// Counts one refresh sent to Slack.
pub(crate) fn token_refresh(kind: &'static str, outcome: &'static str) {
    metrics::counter!(TOKEN_REFRESHES_TOTAL, "kind" => kind, "outcome" => outcome).increment(1);
}

/// Sets what is left of the refresh budget.
pub(crate) fn budget_remaining(calls: u32) {
    metrics::gauge!(ROTATION_BUDGET_REMAINING).set(f64::from(calls));
}

/// Counts one authorize call.
pub(crate) fn authorize(outcome: &'static str, cached: bool) {
    let cached = if cached { "true" } else { "false" };
    metrics::counter!(AUTHORIZE_TOTAL, "outcome" => outcome, "cached" => cached).increment(1);
}

/// Records one store operation that started at `started`.
pub(crate) fn store_operation(operation: &'static str, started: Instant, ok: bool) {
    metrics::histogram!(STORE_OPERATION_DURATION_SECONDS, "operation" => operation)
        .record(started.elapsed().as_secs_f64());
    if !ok {
        metrics::counter!(STORE_ERRORS_TOTAL, "operation" => operation).increment(1);
    }
}

/// Cache hits and misses of the lookups one authorize call made.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Lookups {
    hits: u32,
    misses: u32,
}

impl Lookups {
    /// Whether the cache answered every lookup (and there was at least one).
    pub(crate) fn all_cached(self) -> bool {
        self.hits > 0 && self.misses == 0
    }
}

tokio::task_local! {
    /// The lookups of the authorize call running in this task, if any.
    static LOOKUPS: std::cell::Cell<Lookups>;
}

/// Runs `future` (an authorize call) counting the cache hits and misses it makes in this task.
pub(crate) async fn count_lookups<F: std::future::Future>(future: F) -> (F::Output, Lookups) {
    LOOKUPS
        .scope(std::cell::Cell::new(Lookups::default()), async move {
            let output = future.await;
            (output, LOOKUPS.with(std::cell::Cell::get))
        })
        .await
}

/// Notes a lookup the cache answered (outside an authorize call: nothing).
pub(crate) fn cache_hit() {
    let _ = LOOKUPS.try_with(|lookups| {
        let mut now = lookups.get();
        now.hits = now.hits.saturating_add(1);
        lookups.set(now);
    });
}

/// Notes a lookup that went to the store behind the cache.
pub(crate) fn cache_miss() {
    let _ = LOOKUPS.try_with(|lookups| {
        let mut now = lookups.get();
        now.misses = now.misses.saturating_add(1);
        lookups.set(now);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_authorize_is_cached_only_when_every_lookup_hit() {
        let ((), lookups) = count_lookups(async {
            cache_hit();
            cache_hit();
        })
        .await;
        assert!(lookups.all_cached());
        let ((), lookups) = count_lookups(async {
            cache_hit();
            cache_miss();
        })
        .await;
        assert!(!lookups.all_cached());
        let ((), lookups) = count_lookups(async {}).await;
        assert!(!lookups.all_cached(), "no lookup through a cache");
        // Outside a counted call, nothing happens (and nothing panics).
        cache_hit();
        cache_miss();
    }
}
