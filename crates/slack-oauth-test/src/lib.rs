//! # slack-oauth-test
//!
//! The conformance suite every [`slack_oauth`] store runs, written once, plus fixtures to build
//! realistic installations and helpers that make throwaway databases.
//!
//! - [`cases`]: one `pub async fn` per behaviour of
//!   [`InstallationStore`](slack_oauth::store::InstallationStore) and
//!   [`StateStore`](slack_oauth::store::StateStore) (history, org-wide installs, the bot merge,
//!   scoped deletes, listing, the rotation compare-and-swap, leases, single-use states, races).
//! - [`store_conformance!`]: turns every case into a named `#[test]` for one backend.
//! - [`fixtures`]: builders for workspace, org-wide, user-only and rotating installations.
//! - [`assert`](mod@assert): field-by-field comparisons that never print a token.
//! - [`hygiene`]: captures every log line and panic of a test run for the secret scan (S7).
//! - [`sqlite`]: a fresh SQLite store in a file under `target/` (feature `sqlite`, default).
//!
//! ## Running the suite on your own store
//!
//! A third-party store (Redis, DynamoDB, ...) adds this crate as a dev-dependency and writes, in
//! one of its integration tests:
//!
//! ```
//! use slack_oauth::store::MemoryStore;
//!
//! // The second argument is a future that yields a fresh, empty store for each case.
//! slack_oauth_test::store_conformance!(memory, async { MemoryStore::new() });
//! # fn main() {}
//! ```
//!
//! which expands to `mod memory { #[test] fn state_is_single_use() { … } … }`, one test per case.
//! If the store needs an outside service, give a future that yields an `Option` and use the
//! `optional:` form; when it yields `None` each case prints a `SKIPPED` line to stderr (set
//! `CI=true` to make that a failure instead):
//!
//! ```
//! use slack_oauth::store::MemoryStore;
//!
//! slack_oauth_test::store_conformance!(maybe, optional: async {
//!     std::env::var("NO_SUCH_DATABASE_URL").ok().map(|_| MemoryStore::new())
//! });
//! # fn main() {}
//! ```
//!
//! The store must be `Clone + Send + Sync + 'static` with clones sharing their data (a handle),
//! because the race cases spawn tasks.
//!
//! ## What this crate is not
//!
//! It is not a mock of Slack (see `slack-emulator`) and holds no tests of the OAuth flow,
//! rotation or authorize. It is unpublished: its API changes with the store traits.
#![forbid(unsafe_code)]

pub mod assert;
#[cfg(feature = "sqlite")]
pub mod bench;
pub mod cases;
pub mod fixtures;
pub mod hygiene;
#[cfg(feature = "sqlite")]
pub mod sqlite;

/// Implementation details of [`store_conformance!`]; not part of the API.
#[doc(hidden)]
pub mod __private {
    use std::future::Future;

    /// Runs one case on a multi-threaded runtime (the race cases need real parallelism).
    pub fn run<F: Future<Output = ()>>(case: F) {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("cannot build a tokio runtime for a conformance case")
            .block_on(case);
    }

    /// Reports a case skipped because its store is unavailable; fails under `CI=true`.
    pub fn skipped(backend: &str, case: &str) {
        crate::skip(&format!("{backend}::{case}: store unavailable"));
    }
}

/// Environment variable naming a file every [`skip`] appends its line to, so that a runner
/// (`scripts/test.sh`) can list the skipped tests at the end: a test harness hides the output
/// of passing tests.
pub const SKIPPED_LOG_ENV: &str = "SLACK_OAUTH_SKIPPED_LOG";

/// Reports a test skipped because something it needs is missing (a database, Chromium, the
/// Python venv): a loud `SKIPPED: {reason}` on stderr and in [`SKIPPED_LOG_ENV`]'s file, or,
/// under `CI=true`, a failure (CI must run everything).
///
/// ```no_run
/// if std::env::var_os("TEST_DATABASE_URL").is_none() {
///     slack_oauth_test::skip("postgres tests: TEST_DATABASE_URL is not set");
/// }
/// ```
///
/// # Panics
/// Under `CI=true`, always.
pub fn skip(reason: &str) {
    let line = format!("SKIPPED: {reason}");
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{line} (CI=true: nothing may be skipped in CI)"
    );
    eprintln!("{line}");
    if let Some(path) = std::env::var_os(SKIPPED_LOG_ENV) {
        use std::io::Write as _;
        if let Ok(mut file) = std::fs::File::options()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(file, "{line}");
        }
    }
}

/// Expands to a module named `$backend` with one `#[test]` per conformance case.
///
/// `$store` is a future that yields a fresh, empty store (evaluated once per case); with
/// `optional:` it yields an `Option` of one, and `None` skips the case loudly. See the
/// [crate docs](crate) for examples.
#[macro_export]
macro_rules! store_conformance {
    ($backend:ident, optional: $store:expr) => {
        $crate::__store_conformance_cases!($backend, [optional] $store);
    };
    ($backend:ident, $store:expr) => {
        $crate::__store_conformance_cases!($backend, [required] $store);
    };
}

/// Lists the cases for [`store_conformance!`]; not part of the API.
#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_cases {
    ($backend:ident, [$mode:ident] $store:expr) => {
        $crate::__store_conformance_cases!(@cases $backend, [$mode] $store;
            save_and_find,
            org_installation,
            round_trip_keeps_every_field,
            user_only_install,
            issue_1441_mixing_user_and_bot_installations,
            workspace_inside_org,
            custom_values_are_optional,
            token_rotation_history,
            latest_is_the_newest_installed_at,
            same_second_ties_go_to_the_newest_row,
            bot_merge_carries_the_newest_bot,
            save_bot_alone,
            deletes_are_scoped,
            delete_installation_of_one_user_keeps_the_others,
            org_wide_delete_all_deletes_everything,
            list_installations_latest_per_user,
            list_expiring_is_soonest_first_within_deadline,
            rotated_bot_token_is_compare_and_swap,
            rotated_user_token_touches_only_that_user,
            rotated_token_stays_in_its_workspace,
            rotated_token_save_releases_the_lease,
            rotated_token_without_expiry_is_kept,
            lease_is_exclusive_until_it_expires,
            lease_is_reentrant_for_its_holder,
            lease_is_released_only_by_its_holder,
            leases_are_independent_by_name,
            refresh_intent_needs_the_lease_and_renews_it,
            expired_holder_cannot_record_an_intent,
            abandoned_lease_keeps_its_intent,
            lost_bot_grant_is_marked_once,
            mark_needs_the_lost_refresh_token,
            lost_user_grant_marks_that_user,
            reinstall_clears_the_mark,
            state_is_single_use,
            expired_state_is_rejected,
            purge_removes_only_expired_states,
            live_states_are_counted,
            unknown_state_is_rejected,
            issued_states_are_unique,
            concurrent_consumes_have_one_winner,
            concurrent_saves_and_finds_all_succeed,
            concurrent_rotations_have_one_winner,
            concurrent_leases_have_one_holder,
            refresh_budget_admits_the_limit_then_waits,
            concurrent_budget_spends_never_exceed_the_limit,
        );
    };
    (@cases $backend:ident, [$mode:ident] $store:expr; $($case:ident),* $(,)?) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $case() {
                    $crate::__private::run(async {
                        $crate::__store_conformance_cases!(@store [$mode] store = $store,
                            stringify!($backend), stringify!($case));
                        $crate::cases::$case(&store).await;
                    });
                }
            )*
        }
    };
    (@store [required] $name:ident = $store:expr, $backend:expr, $case:expr) => {
        let $name = $store.await;
    };
    (@store [optional] $name:ident = $store:expr, $backend:expr, $case:expr) => {
        let Some($name) = $store.await else {
            $crate::__private::skipped($backend, $case);
            return;
        };
    };
}
