//! Cases on saving and finding: workspaces, orgs, users, user-only installs, every field.

use slack_oauth::installation::Scopes;
use slack_oauth::store::{InstallationQuery, InstallationStore};

use super::{absent, absent_bot, found, found_bot, ok, save};
use crate::assert::{bot_token, same_bot, same_installation, user_token};
use crate::fixtures::{self, at};

/// slack_sdk's `test_save_and_find`: lookups match enterprise and team exactly, users narrow
/// them, and deletes remove what they name.
pub async fn save_and_find<S: InstallationStore>(store: &S) {
    let installation = fixtures::workspace("T111", "U111")
        .enterprise("E111")
        .build();
    save(store, &installation).await;

    let here = InstallationQuery::team("T111").enterprise("E111");
    let other_team = InstallationQuery::team("T222").enterprise("E111");
    let no_org = InstallationQuery::team("T111");
    found_bot(store, &here, "the saved bot").await;
    absent_bot(store, &other_team, "another team").await;
    absent_bot(store, &no_org, "the bot is in org E111").await;

    let found_installation = found(store, &here, "the saved installation").await;
    same_installation(
        &found_installation,
        &installation,
        "find_installation(E111, T111)",
    );
    absent(store, &other_team, "another team").await;
    absent(store, &no_org, "the installation is in org E111").await;
    found(store, &here.clone().user("U111"), "U111's installation").await;
    absent(store, &here.clone().user("U222"), "U222 never installed").await;
    absent(
        store,
        &other_team.clone().user("U111"),
        "U111 installed in T111 only",
    )
    .await;

    ok(
        store.delete_bot(&other_team).await,
        "delete_bot(E111, T222)",
    );
    found_bot(store, &here, "deleting another team's bot leaves this one").await;

    ok(
        store.delete_installation(&here.clone().user("U111")).await,
        "delete_installation(U111)",
    );
    absent(
        store,
        &here.clone().user("U111"),
        "U111's rows were deleted",
    )
    .await;
    absent(store, &here, "the only installer's rows were deleted").await;

    save(store, &installation).await;
    ok(store.delete_all(&here).await, "delete_all(E111, T111)");
    absent_bot(store, &here, "delete_all removes bots").await;
    absent(store, &here, "delete_all removes installations").await;
}

/// slack_sdk's `test_org_installation`: an org-wide install is found by enterprise whatever team a
/// lookup names, as long as the lookup says it is org-wide (or names no team).
pub async fn org_installation<S: InstallationStore>(store: &S) {
    let installation = fixtures::org_wide("EO111", "UO111").build();
    save(store, &installation).await;

    let org = InstallationQuery::org("EO111");
    let org_via_team = InstallationQuery::team("TO222").enterprise("EO111");
    let org_wide_via_team = InstallationQuery {
        is_enterprise_install: true,
        ..org_via_team.clone()
    };
    let org_no_team = InstallationQuery {
        enterprise_id: Some("EO111".into()),
        ..InstallationQuery::default()
    };
    found_bot(store, &org, "the org's bot").await;
    found_bot(store, &org_no_team, "the org's bot (no team given)").await;
    found_bot(store, &org_wide_via_team, "the org's bot (team ignored)").await;
    absent_bot(store, &org_via_team, "a workspace lookup is not org-wide").await;
    absent_bot(store, &InstallationQuery::team("TO111"), "no org given").await;

    ok(
        store.delete_bot(&org_via_team).await,
        "delete_bot(EO111, TO222)",
    );
    found_bot(store, &org, "deleting a workspace's bot leaves the org's").await;

    let found_installation = found(store, &org, "the org-wide installation").await;
    same_installation(
        &found_installation,
        &installation,
        "find_installation(org EO111)",
    );
    found(
        store,
        &org_no_team,
        "the org-wide installation (no team given)",
    )
    .await;
    let via_team = InstallationQuery {
        is_enterprise_install: true,
        ..InstallationQuery::team("T111").enterprise("EO111")
    };
    found(store, &via_team, "the org-wide installation (team ignored)").await;
    absent(
        store,
        &InstallationQuery::team("T222").enterprise("EO111"),
        "workspace lookup",
    )
    .await;
    found(
        store,
        &org.clone().user("UO111"),
        "the installer's org-wide installation",
    )
    .await;

    ok(store.delete_bot(&org).await, "delete_bot(org EO111)");
    absent_bot(store, &org, "the org's bot was deleted").await;
}

/// Every field saved comes back from `find_installation` and `find_bot` unchanged: workspace in
/// an org with rotation and a webhook, org-wide, user-only.
pub async fn round_trip_keeps_every_field<S: InstallationStore>(store: &S) {
    let installations = [
        fixtures::workspace("T1", "U1")
            .enterprise("E1")
            .with_rotation(at(43_200))
            .with_webhook()
            .installed_at(at(10))
            .build(),
        fixtures::org_wide("E2", "U2")
            .with_rotation(at(40_000))
            .installed_at(at(20))
            .build(),
        fixtures::user_only("T3", "U3").installed_at(at(30)).build(),
        fixtures::workspace("T4", "U4").without_user_token().build(),
    ];
    for installation in &installations {
        save(store, installation).await;
    }
    for installation in &installations {
        let query = InstallationQuery::for_installation(installation);
        let context = format!("round trip of {installation}");
        let by_user = found(store, &query, &context).await;
        same_installation(&by_user, installation, &context);
        let by_workspace = found(store, &query.without_user(), &context).await;
        same_installation(&by_workspace, installation, &context);
        match installation.to_bot() {
            Some(bot) => {
                let found = found_bot(store, &query, &context).await;
                same_bot(&found, &bot, &context);
            }
            None => absent_bot(store, &query, "user-only installs have no bot").await,
        }
    }
}

/// A user-only install (no bot token, no bot scopes) saves without error (unlike slack_sdk, W5),
/// stores no bot, and is found with and without its user (unlike slack_sdk 3.43.0, W7).
pub async fn user_only_install<S: InstallationStore>(store: &S) {
    let installation = fixtures::user_only("T1", "U1").build();
    save(store, &installation).await;
    let workspace = InstallationQuery::team("T1");
    absent_bot(store, &workspace, "a user-only install has no bot").await;
    for query in [workspace.clone(), workspace.clone().user("U1")] {
        let found = found(store, &query, "the user-only installation").await;
        assert_eq!(
            bot_token(&found),
            None,
            "a user-only install has no bot token"
        );
        assert!(
            found.bot_scopes.is_empty(),
            "a user-only install has no bot scopes"
        );
        assert_eq!(
            user_token(&found),
            Some("xoxp-T1-U1-0"),
            "user token of {query:?}"
        );
        assert_eq!(found.user_scopes, Scopes::parse(fixtures::USER_SCOPES));
    }
}

/// python-slack-sdk#1441: a bot install then a user-only install by the same user; the bot stays
/// findable and the workspace lookup still carries the bot token (the bot merge).
pub async fn issue_1441_mixing_user_and_bot_installations<S: InstallationStore>(store: &S) {
    let bot_install = fixtures::workspace("T111", "U111")
        .without_user_token()
        .installed_at(at(0))
        .build();
    save(store, &bot_install).await;
    let mut user_install = fixtures::user_only("T111", "U111")
        .installed_at(at(1))
        .build();
    user_install.bot_scopes = Scopes::parse("openid");
    save(store, &user_install).await;

    let workspace = InstallationQuery::team("T111");
    let bot = found_bot(store, &workspace, "the bot of the first install").await;
    assert_eq!(bot.bot_token.secret(), "xoxb-T111-U111-0", "find_bot token");
    for query in [workspace.clone(), workspace.clone().user("U111")] {
        let found = found(store, &query, "the user-only installation").await;
        assert_eq!(
            bot_token(&found),
            Some("xoxb-T111-U111-0"),
            "{query:?} must carry the workspace's bot token (bot merge)"
        );
        assert_eq!(
            found.bot_scopes,
            Scopes::parse(fixtures::BOT_SCOPES),
            "merged bot scopes"
        );
        assert_eq!(
            user_token(&found),
            Some("xoxp-T111-U111-0"),
            "user token kept"
        );
    }
}

/// A workspace inside an org and the org-wide install of that org are different installations.
pub async fn workspace_inside_org<S: InstallationStore>(store: &S) {
    let in_org = fixtures::workspace("T1", "U1").enterprise("E1").build();
    let org = fixtures::org_wide("E1", "U2").build();
    save(store, &in_org).await;
    save(store, &org).await;

    let workspace = InstallationQuery::team("T1").enterprise("E1");
    let org_wide = InstallationQuery {
        is_enterprise_install: true,
        ..workspace.clone()
    };
    let found_workspace = found(store, &workspace, "the workspace in the org").await;
    same_installation(&found_workspace, &in_org, "workspace lookup in org E1");
    let found_org = found(store, &org_wide, "the org-wide install").await;
    same_installation(&found_org, &org, "org-wide lookup with a team");
    let bot = found_bot(store, &workspace, "the workspace's bot").await;
    assert_eq!(
        bot.bot_token.secret(),
        "xoxb-T1-U1-0",
        "workspace bot, not the org's"
    );
    let bot = found_bot(store, &org_wide, "the org's bot").await;
    assert_eq!(
        bot.bot_token.secret(),
        "xoxb-E1-U2-0",
        "org bot, not the workspace's"
    );
    absent(store, &InstallationQuery::team("T1"), "T1 is in org E1").await;
    absent(
        store,
        &workspace.clone().user("U2"),
        "U2 installed org-wide only",
    )
    .await;
}

/// Custom values need not be persisted (the SQL stores drop them), but saving them must work,
/// and a store that keeps them must keep them unchanged.
pub async fn custom_values_are_optional<S: InstallationStore>(store: &S) {
    let installation = fixtures::workspace("T1", "U1")
        .custom_value("service_user_id", serde_json::json!("XYZ123"))
        .build();
    save(store, &installation).await;
    let found = found(store, &InstallationQuery::team("T1"), "the installation").await;
    same_installation(&found, &installation, "installation with custom values");
    if let Some(value) = found.custom_value("service_user_id") {
        assert_eq!(value, "XYZ123", "a kept custom value must be unchanged");
    }
}
