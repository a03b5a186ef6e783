//! Cases on deletes: scoped by enterprise, team and user; org-wide deletes really delete.

use slack_oauth::store::{InstallationQuery, InstallationStore};

use super::{absent, absent_bot, found, found_bot, ok, save};
use crate::assert::user_token;
use crate::fixtures::{self, at};

/// Deletes touch only the org, workspace and user they name.
pub async fn deletes_are_scoped<S: InstallationStore>(store: &S) {
    let t1_u1 = fixtures::workspace("T1", "U1").installed_at(at(0)).build();
    let t1_u2 = fixtures::workspace("T1", "U2").installed_at(at(1)).build();
    let t2_u1 = fixtures::workspace("T2", "U1").build();
    let e1_t1_u1 = fixtures::workspace("T1", "U1").enterprise("E1").build();
    let org_u1 = fixtures::org_wide("E1", "U1").build();
    for installation in [&t1_u1, &t1_u2, &t2_u1, &e1_t1_u1, &org_u1] {
        save(store, installation).await;
    }
    let t1 = InstallationQuery::team("T1");
    let t2 = InstallationQuery::team("T2");
    let e1_t1 = InstallationQuery::team("T1").enterprise("E1");
    let org = InstallationQuery::org("E1");

    ok(
        store.delete_installation(&t1.clone().user("U1")).await,
        "delete_installation(T1, U1)",
    );
    absent(
        store,
        &t1.clone().user("U1"),
        "U1's rows in T1 were deleted",
    )
    .await;
    let rest = found(store, &t1, "U2's installation is left in T1").await;
    assert_eq!(
        user_token(&rest),
        Some("xoxp-T1-U2-0"),
        "T1's latest is now U2's"
    );
    found(
        store,
        &t1.clone().user("U2"),
        "U2's rows in T1 are untouched",
    )
    .await;
    found(
        store,
        &t2.clone().user("U1"),
        "U1's rows in T2 are untouched",
    )
    .await;
    found(
        store,
        &e1_t1.clone().user("U1"),
        "U1's rows in E1/T1 are untouched",
    )
    .await;
    found(
        store,
        &org.clone().user("U1"),
        "U1's org-wide rows are untouched",
    )
    .await;
    found_bot(store, &t1, "delete_installation leaves bots").await;

    ok(store.delete_bot(&t1).await, "delete_bot(T1)");
    absent_bot(store, &t1, "T1's bots were deleted").await;
    found_bot(store, &t2, "T2's bot is untouched").await;
    found_bot(store, &e1_t1, "E1/T1's bot is untouched").await;
    found_bot(store, &org, "the org's bot is untouched").await;

    ok(store.delete_all(&e1_t1).await, "delete_all(E1, T1)");
    absent(store, &e1_t1, "E1/T1 was deleted").await;
    absent_bot(store, &e1_t1, "E1/T1's bot was deleted").await;
    found(
        store,
        &org,
        "deleting a workspace of the org leaves the org-wide install",
    )
    .await;
    found(store, &t1, "deleting E1/T1 leaves T1 without an org").await;

    ok(
        store.delete_installation(&t2).await,
        "delete_installation(T2)",
    );
    absent(store, &t2, "every user's rows in T2 were deleted").await;
    absent(
        store,
        &t2.clone().user("U1"),
        "every user's rows in T2 were deleted",
    )
    .await;
}

/// `delete_installation` with a user deletes every version of that user's installation only.
pub async fn delete_installation_of_one_user_keeps_the_others<S: InstallationStore>(store: &S) {
    for generation in 0..3 {
        for user in ["U1", "U2"] {
            let version = fixtures::workspace("T1", user)
                .generation(generation)
                .installed_at(at(i64::from(generation)))
                .build();
            save(store, &version).await;
        }
    }
    let t1 = InstallationQuery::team("T1");
    ok(
        store.delete_installation(&t1.clone().user("U2")).await,
        "delete_installation(U2)",
    );
    absent(
        store,
        &t1.clone().user("U2"),
        "every version of U2's installation is gone",
    )
    .await;
    let left = found(store, &t1.clone().user("U1"), "U1's installation").await;
    assert_eq!(
        user_token(&left),
        Some("xoxp-T1-U1-2"),
        "U1's latest version is left"
    );
    let workspace = found(store, &t1, "the workspace").await;
    assert_eq!(
        workspace.user_id.as_str(),
        "U1",
        "the workspace's latest is now U1's"
    );
}

/// `delete_all` of an org-wide install deletes its installations too (slack_sdk's SQLite store
/// leaves them, tokens included, W8), whatever team the query carries.
pub async fn org_wide_delete_all_deletes_everything<S: InstallationStore>(store: &S) {
    let first = fixtures::org_wide("E1", "U1").build();
    let second = fixtures::org_wide("E1", "U2").installed_at(at(1)).build();
    save(store, &first).await;
    save(store, &second).await;
    let workspace_in_org = fixtures::workspace("T1", "U1").enterprise("E1").build();
    save(store, &workspace_in_org).await;

    let org = InstallationQuery::org("E1");
    ok(store.delete_all(&org).await, "delete_all(org E1)");
    absent(store, &org, "org-wide installations are deleted").await;
    absent(
        store,
        &org.clone().user("U1"),
        "U1's org-wide installation is deleted",
    )
    .await;
    absent(
        store,
        &org.clone().user("U2"),
        "U2's org-wide installation is deleted",
    )
    .await;
    absent_bot(store, &org, "the org's bot is deleted").await;
    found(
        store,
        &InstallationQuery::team("T1").enterprise("E1"),
        "a workspace of the org stays",
    )
    .await;

    save(store, &second).await;
    let org_with_team = InstallationQuery {
        is_enterprise_install: true,
        ..InstallationQuery::team("T5").enterprise("E1")
    };
    ok(
        store.delete_all(&org_with_team).await,
        "delete_all(E1, T5, org-wide)",
    );
    absent(
        store,
        &org,
        "an org-wide query ignores its team when deleting",
    )
    .await;
    absent_bot(
        store,
        &org,
        "an org-wide query ignores its team when deleting bots",
    )
    .await;
}
