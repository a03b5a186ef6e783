//! `PostgresStore` against a real server: schema, interop with slack_sdk's rows, time zones,
//! concurrency, tokens encrypted at rest. The behaviour shared by every backend is in the
//! conformance suite (run plain and encrypted).
//!
//! Needs `TEST_DATABASE_URL` (for example `postgres://root@127.0.0.1:5432/test`). Each test works
//! in a fresh schema `slack_oauth_test_<random>`, dropped when the test passes and kept (its name
//! printed) when it fails. Without the variable the tests print `SKIPPED` and pass, except under
//! `CI=true`, where they fail.

mod concurrency;
mod conformance;
mod encryption;
mod interop;
mod schema;
mod support;

use slack_oauth::secret::{BotToken, RefreshToken, UserToken};
use slack_oauth::store::{
    InstallationQuery, InstallationStore, PostgresStore, RotatedToken, TokenUpdate,
};
use time::OffsetDateTime;

use support::{at, workspace_installation, TestSchema};

slack_oauth_test::store_conformance!(suite, optional: conformance::fresh());

// Tokens encrypted at rest: every case holds with the envelopes in the columns.
slack_oauth_test::store_conformance!(encrypted, optional: conformance::fresh_encrypted());

#[tokio::test]
async fn rotation_updates_every_row_holding_the_old_refresh_token() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.store().await;
    let mut first = workspace_installation("T1", "U1", at(0));
    first.bot_refresh_token = Some(RefreshToken::new("xoxe-1-old"));
    first.user_token = Some(UserToken::new("xoxp-old"));
    first.user_refresh_token = Some(RefreshToken::new("xoxe-1-user-old"));
    store.save(&first).await.unwrap();
    let mut second = first.clone();
    second.user_id = "U2".into();
    second.user_token = None;
    second.user_refresh_token = None;
    second.installed_at = at(1);
    store.save(&second).await.unwrap();

    let bot_update = TokenUpdate {
        enterprise_id: None,
        team_id: Some("T1".into()),
        previous_refresh_token: RefreshToken::new("xoxe-1-old"),
        token: RotatedToken::Bot {
            token: BotToken::new("xoxb-new"),
        },
        refresh_token: RefreshToken::new("xoxe-1-new"),
        expires_at: Some(at(43_200)),
    };
    assert!(store.update_rotated_token(&bot_update).await.unwrap());
    // The loser of a race finds nothing left to update.
    assert!(!store.update_rotated_token(&bot_update).await.unwrap());
    let old_left: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM slack_bots WHERE bot_refresh_token = $1) \
         + (SELECT count(*) FROM slack_installations WHERE bot_refresh_token = $1)",
    )
    .bind("xoxe-1-old") // fake
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(old_left, 0);
    for user in ["U1", "U2"] {
        let found = store
            .find_installation(&InstallationQuery::team("T1").user(user))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.bot_token.unwrap().secret(), "xoxb-new", "{user}");
        assert_eq!(found.bot_token_expires_at, Some(to_micros(at(43_200))));
    }

    let user_update = TokenUpdate {
        previous_refresh_token: RefreshToken::new("xoxe-1-user-old"),
        token: RotatedToken::User {
            user_id: "U1".into(),
            token: UserToken::new("xoxp-new"),
        },
        refresh_token: RefreshToken::new("xoxe-1-user-new"),
        ..bot_update.clone()
    };
    let wrong_user = TokenUpdate {
        token: RotatedToken::User {
            user_id: "U2".into(),
            token: UserToken::new("xoxp-new"),
        },
        ..user_update.clone()
    };
    assert!(!store.update_rotated_token(&wrong_user).await.unwrap());
    assert!(store.update_rotated_token(&user_update).await.unwrap());
    let u1 = store
        .find_installation(&InstallationQuery::team("T1").user("U1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u1.user_token.unwrap().secret(), "xoxp-new");
    assert_eq!(u1.user_refresh_token.unwrap().secret(), "xoxe-1-user-new");
    // History is kept: two installation rows, two bot rows.
    let counts: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM slack_installations), (SELECT count(*) FROM slack_bots)",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(counts, (2, 2));
    store.close().await;
}

fn to_micros(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(at.nanosecond() / 1_000 * 1_000)
        .unwrap()
}

#[tokio::test]
async fn leases_are_per_app_and_expire_by_the_database_clock() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.store().await;
    let long = std::time::Duration::from_secs(30);
    let held = |lease: slack_oauth::store::LeaseAcquisition| lease.is_held();
    assert!(held(
        store.try_acquire_lease("T1", "a", long).await.unwrap()
    ));
    assert!(!held(
        store.try_acquire_lease("T1", "b", long).await.unwrap()
    ));
    // The holder may extend; another app's lease of the same name is separate.
    assert!(held(
        store.try_acquire_lease("T1", "a", long).await.unwrap()
    ));
    let other_app = PostgresStore::from_pool(store.pool().clone(), "333.444")
        .await
        .unwrap();
    assert!(held(
        other_app.try_acquire_lease("T1", "b", long).await.unwrap()
    ));
    // The expiry is PostgreSQL's clock plus the TTL, whatever this process's clock says.
    let left: f64 = sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM expires_at - (clock_timestamp() AT TIME ZONE 'UTC'))::float8 \
         FROM slack_oauth_leases WHERE name LIKE '%/T1' AND holder = 'a'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(
        (25.0..=30.0).contains(&left),
        "{left} s left of a 30 s lease"
    );
    // Expired: taken over; the late holder's release does not free the new holder's lease.
    let short = std::time::Duration::from_millis(200);
    assert!(held(
        store.try_acquire_lease("T2", "a", short).await.unwrap()
    ));
    tokio::time::sleep(short + std::time::Duration::from_millis(100)).await;
    assert!(held(
        store.try_acquire_lease("T2", "b", long).await.unwrap()
    ));
    store.release_lease("T2", "a").await.unwrap();
    assert!(!held(
        store.try_acquire_lease("T2", "c", long).await.unwrap()
    ));
    store.release_lease("T2", "b").await.unwrap();
    assert!(held(
        store.try_acquire_lease("T2", "c", long).await.unwrap()
    ));
    store.close().await;
}

/// Every write of the store is notified once on `slack_oauth_changes`, by the store itself
/// after the commit (its sessions tell the triggers not to: a NOTIFY inside the write would
/// serialize concurrent commits); a write by any other session (a Python app, psql, a store on
/// the app's own pool) is notified once by the triggers. Other tests share the channel, so
/// only this test's workspaces (a random tag) are counted.
#[tokio::test]
async fn every_write_is_notified_once_by_the_store_or_else_by_the_triggers() {
    use futures::StreamExt as _;
    use slack_oauth::installation::ReinstallFlag;
    use slack_oauth::store::{LostGrant, StoreChange};
    use std::time::Duration;

    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.store().await;
    let tag = support::random_suffix();
    let team = |n: u32| format!("T{n}x{tag}");
    let changes = store.changes().await.unwrap();
    let mut ours = Box::pin(changes.filter_map(|change| {
        let team = match change {
            StoreChange::Workspace(query) => query
                .team_id
                .map(|team| team.as_str().to_owned())
                .filter(|team| team.ends_with(&tag)),
            other => Some(format!("{other:?}")),
        };
        std::future::ready(team)
    }));

    let mut first = workspace_installation(&team(1), "U1", at(0));
    first.bot_refresh_token = Some(RefreshToken::new("xoxe-1-old"));
    store.save(&first).await.unwrap();
    let second = workspace_installation(&team(2), "U1", at(0));
    store.save_bot(&second.to_bot().unwrap()).await.unwrap();
    let update = TokenUpdate {
        enterprise_id: None,
        team_id: Some(team(1).into()),
        previous_refresh_token: RefreshToken::new("xoxe-1-old"),
        token: RotatedToken::Bot {
            token: BotToken::new("xoxb-new"),
        },
        refresh_token: RefreshToken::new("xoxe-1-new"),
        expires_at: Some(at(43_200)),
    };
    assert!(store.update_rotated_token(&update).await.unwrap());
    // A rotation that changes nothing notifies nothing.
    assert!(!store.update_rotated_token(&update).await.unwrap());
    let grant = LostGrant {
        enterprise_id: None,
        team_id: Some(team(1).into()),
        user_id: None,
        refresh_token: RefreshToken::new("xoxe-1-new"),
        flag: ReinstallFlag::new("invalid_refresh_token", at(1)),
    };
    assert!(store.flag_reinstall(&grant).await.unwrap());
    store
        .delete_bot(&InstallationQuery::team(team(2)))
        .await
        .unwrap();
    store
        .delete_installation(&InstallationQuery::team(team(1)))
        .await
        .unwrap();
    // Another session: the triggers notify, once per row.
    let mut other = schema.connection().await;
    sqlx::query("DELETE FROM slack_bots WHERE team_id = $1")
        .bind(team(1))
        .execute(&mut other)
        .await
        .unwrap();
    // A store on the app's pool: its sessions are the app's, so the triggers notify.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(schema.options(&[]))
        .await
        .unwrap();
    let on_pool = PostgresStore::from_pool(pool, support::CLIENT_ID)
        .await
        .unwrap();
    on_pool
        .save(&workspace_installation(&team(3), "U1", at(0)))
        .await
        .unwrap();

    // save, save_bot, rotation, reinstall mark, the two deletes, the other session's delete,
    // and the pool store's save (installation and bot rows: one payload, folded by PostgreSQL).
    let expected = [1, 2, 1, 1, 2, 1, 1, 3].map(team);
    let mut heard = Vec::new();
    while heard.len() < expected.len() {
        let next = tokio::time::timeout(Duration::from_secs(10), ours.next()).await;
        let Ok(Some(team)) = next else {
            panic!("heard only {heard:?} of {expected:?}");
        };
        heard.push(team);
    }
    assert_eq!(heard, expected);
    let extra = tokio::time::timeout(Duration::from_millis(500), ours.next()).await;
    assert!(extra.is_err(), "a write notified twice: {extra:?}");
    // The listener holds a connection of the store's pool, which `close` waits for.
    drop(ours);
    store.close().await;
    on_pool.close().await;
}
