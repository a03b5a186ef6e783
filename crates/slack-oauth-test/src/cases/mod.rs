//! The conformance cases: one `pub async fn` per behaviour every store must have.
//!
//! Each case takes a fresh, empty store and panics with a message naming the broken behaviour.
//! [`store_conformance!`](crate::store_conformance) turns every case into a named test; a store
//! can also call cases one by one. Cases that spawn tasks need a `Clone + 'static` store whose
//! clones share data (every built-in store is such a handle).

mod budget;
mod concurrency;
mod deletes;
mod history;
mod installations;
mod leases;
mod listing;
mod reinstall;
mod rotation;
mod states;

pub use budget::{
    concurrent_budget_spends_never_exceed_the_limit, refresh_budget_admits_the_limit_then_waits,
};
pub use concurrency::{
    concurrent_consumes_have_one_winner, concurrent_leases_have_one_holder,
    concurrent_rotations_have_one_winner, concurrent_saves_and_finds_all_succeed,
};
pub use deletes::{
    delete_installation_of_one_user_keeps_the_others, deletes_are_scoped,
    org_wide_delete_all_deletes_everything,
};
pub use history::{
    bot_merge_carries_the_newest_bot, latest_is_the_newest_installed_at,
    same_second_ties_go_to_the_newest_row, save_bot_alone, token_rotation_history,
};
pub use installations::{
    custom_values_are_optional, issue_1441_mixing_user_and_bot_installations, org_installation,
    round_trip_keeps_every_field, save_and_find, user_only_install, workspace_inside_org,
};
pub use leases::{
    abandoned_lease_keeps_its_intent, expired_holder_cannot_record_an_intent,
    lease_is_exclusive_until_it_expires, lease_is_reentrant_for_its_holder,
    lease_is_released_only_by_its_holder, leases_are_independent_by_name,
    refresh_intent_needs_the_lease_and_renews_it,
};
pub use listing::{
    list_expiring_is_soonest_first_within_deadline, list_installations_latest_per_user,
};
pub use reinstall::{
    lost_bot_grant_is_marked_once, lost_user_grant_marks_that_user,
    mark_needs_the_lost_refresh_token, reinstall_clears_the_mark,
};
pub use rotation::{
    rotated_bot_token_is_compare_and_swap, rotated_token_save_releases_the_lease,
    rotated_token_stays_in_its_workspace, rotated_token_without_expiry_is_kept,
    rotated_user_token_touches_only_that_user,
};
pub use states::{
    expired_state_is_rejected, issued_states_are_unique, live_states_are_counted,
    purge_removes_only_expired_states, state_is_single_use, unknown_state_is_rejected,
};

use slack_oauth::installation::{Bot, Installation};
use slack_oauth::store::{InstallationQuery, InstallationStore, StoreError};

/// Unwraps a store result, naming the operation on failure.
#[track_caller]
fn ok<T>(result: Result<T, StoreError>, operation: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{operation} failed: {error} ({error:?})"),
    }
}

/// `find_installation` that must find something.
async fn found<S: InstallationStore>(
    store: &S,
    query: &InstallationQuery,
    what: &str,
) -> Installation {
    match store.find_installation(query).await {
        Ok(Some(installation)) => installation,
        Ok(None) => panic!("find_installation({query:?}) found nothing: expected {what}"),
        Err(error) => panic!("find_installation({query:?}) failed: {error} ({error:?})"),
    }
}

/// `find_installation` that must find nothing.
async fn absent<S: InstallationStore>(store: &S, query: &InstallationQuery, why: &str) {
    match store.find_installation(query).await {
        Ok(None) => {}
        Ok(Some(installation)) => {
            panic!("find_installation({query:?}) found {installation}: expected nothing ({why})")
        }
        Err(error) => panic!("find_installation({query:?}) failed: {error} ({error:?})"),
    }
}

/// `find_bot` that must find something.
async fn found_bot<S: InstallationStore>(store: &S, query: &InstallationQuery, what: &str) -> Bot {
    match store.find_bot(query).await {
        Ok(Some(bot)) => bot,
        Ok(None) => panic!("find_bot({query:?}) found nothing: expected {what}"),
        Err(error) => panic!("find_bot({query:?}) failed: {error} ({error:?})"),
    }
}

/// `find_bot` that must find nothing.
async fn absent_bot<S: InstallationStore>(store: &S, query: &InstallationQuery, why: &str) {
    match store.find_bot(query).await {
        Ok(None) => {}
        Ok(Some(bot)) => panic!("find_bot({query:?}) found {bot}: expected nothing ({why})"),
        Err(error) => panic!("find_bot({query:?}) failed: {error} ({error:?})"),
    }
}

/// Saves, failing the case on error.
async fn save<S: InstallationStore>(store: &S, installation: &Installation) {
    ok(
        store.save(installation).await,
        &format!("save({installation})"),
    );
}
