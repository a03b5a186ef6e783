//! Sharing tables with slack_sdk: rows its SQLAlchemy store writes, and naive UTC timestamps
//! read and written the same whatever the session time zone (W12).

use slack_oauth::installation::Scopes;
use slack_oauth::secret::UserToken;
use slack_oauth::store::{InstallationQuery, InstallationStore, PostgresStore, StateStore};
use sqlx::postgres::PgPoolOptions;
use time::OffsetDateTime;

use super::support::{at, workspace_installation, TestSchema, CLIENT_ID};

#[tokio::test]
async fn rows_written_by_sqlalchemy_are_read() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.store().await;
    // As slack_sdk's SQLAlchemy store writes them: no org is NULL, timestamps are naive UTC with
    // microseconds, scopes comma-joined, and a user-only save adds a bot row with a NULL token.
    // The tokens are bound, as SQLAlchemy binds them: statement text is logged (sqlx, at DEBUG)
    // and the secret scan (S7) reads every log line.
    let (bot_token, refresh_token) = ("xoxe.xoxb-1", "xoxe-1-r"); // fake
    let (user_token, other_app_token) = ("xoxp-2", "xoxb-other-app"); // fake
    sqlx::query(
        "INSERT INTO slack_installations (client_id, app_id, enterprise_id, team_id, team_name, \
           bot_token, bot_id, bot_user_id, bot_scopes, bot_refresh_token, bot_token_expires_at, \
           user_id, user_token, user_scopes, is_enterprise_install, token_type, installed_at) \
         VALUES ('111.222', 'A111', NULL, 'T1', 'one', $1, 'B1', 'UB1', \
           'chat:write,commands', $2, '2023-11-15 10:13:20', 'U1', NULL, NULL, false, \
           'bot', '2023-11-14 22:13:20.123456'), \
           ('111.222', 'A111', NULL, 'T1', 'one', NULL, NULL, NULL, 'openid', NULL, NULL, \
           'U2', $3, 'openid', false, NULL, '2023-11-14 22:13:21.5')",
    )
    .bind(bot_token)
    .bind(refresh_token)
    .bind(user_token)
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO slack_bots (client_id, app_id, enterprise_id, team_id, bot_token, bot_id, \
           bot_user_id, bot_scopes, bot_refresh_token, bot_token_expires_at, \
           is_enterprise_install, installed_at) \
         VALUES ('111.222', 'A111', NULL, 'T1', $1, 'B1', 'UB1', \
           'chat:write,commands', $2, '2023-11-15 10:13:20', false, \
           '2023-11-14 22:13:20.123456'), \
           ('111.222', 'A111', NULL, 'T1', NULL, NULL, NULL, 'openid', NULL, NULL, false, \
           '2023-11-14 22:13:21.5'), \
           ('999.999', 'A999', NULL, 'T1', $3, 'B9', 'UB9', NULL, NULL, NULL, \
           false, '2030-01-01 00:00:00')",
    )
    .bind(bot_token)
    .bind(refresh_token)
    .bind(other_app_token)
    .execute(store.pool())
    .await
    .unwrap();

    let bot = store
        .find_bot(&InstallationQuery::team("T1"))
        .await
        .unwrap()
        .expect("the bot row with a token, of this app");
    assert_eq!(bot.bot_token.secret(), "xoxe.xoxb-1");
    assert_eq!(bot.bot_scopes, Scopes::parse("chat:write,commands"));
    assert_eq!(bot.enterprise_id, None);
    assert_eq!(
        bot.bot_token_expires_at,
        Some(OffsetDateTime::from_unix_timestamp(1_700_043_200).unwrap())
    );
    assert_eq!(bot.installed_at, at(0));

    // The latest installation is U2's user-only one, with the workspace's bot merged in.
    let latest = store
        .find_installation(&InstallationQuery::team("T1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.user_id.as_str(), "U2");
    assert_eq!(latest.user_token.as_ref().unwrap().secret(), "xoxp-2");
    assert_eq!(latest.bot_token.as_ref().unwrap().secret(), "xoxe.xoxb-1");
    assert_eq!(latest.bot_refresh_token.unwrap().secret(), "xoxe-1-r");
    assert_eq!(
        latest.installed_at,
        OffsetDateTime::from_unix_timestamp_nanos(1_700_000_001_500_000_000).unwrap()
    );
    let u1 = store
        .find_installation(&InstallationQuery::team("T1").user("U1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u1.installed_at, at(0));
    assert_eq!(u1.app_id.unwrap().as_str(), "A111");
    assert!(store
        .find_installation(&InstallationQuery::team("T1").enterprise("E1"))
        .await
        .unwrap()
        .is_none());
    store.close().await;
}

#[tokio::test]
async fn timestamps_round_trip_whatever_the_session_time_zone() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    // Create the schema, then talk to it only through sessions set to Tokyo (UTC+9): slack_sdk
    // would shift every value by 9 hours on a host in that zone (W12); we must not. (sqlx asks
    // for UTC at connect time, so the zone is set afterwards, as an app's own hook might.)
    schema.store().await.close().await;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::query("SET TIME ZONE 'Asia/Tokyo'")
                    .execute(conn)
                    .await
                    .map(drop)
            })
        })
        .connect_with(schema.options(&[]))
        .await
        .unwrap();
    let zone: String = sqlx::query_scalar("SHOW TIME ZONE")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(zone, "Asia/Tokyo");
    let store = PostgresStore::from_pool(pool, CLIENT_ID).await.unwrap();

    let mut installation = workspace_installation("T1", "U1", at(0));
    installation.bot_token_expires_at =
        Some(OffsetDateTime::from_unix_timestamp(1_700_043_200).unwrap());
    installation.user_token = Some(UserToken::new("xoxp-1"));
    installation.user_token_expires_at =
        Some(OffsetDateTime::from_unix_timestamp(1_700_003_600).unwrap());
    store.save(&installation).await.unwrap();

    let stored: (String, String, String) = sqlx::query_as(
        "SELECT installed_at::text, bot_token_expires_at::text, user_token_expires_at::text \
         FROM slack_installations",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        stored,
        (
            "2023-11-14 22:13:20.123456".to_owned(),
            "2023-11-15 10:13:20".to_owned(),
            "2023-11-14 23:13:20".to_owned()
        )
    );
    let found = store
        .find_installation(&InstallationQuery::team("T1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, installation);
    let bot = store
        .find_bot(&InstallationQuery::team("T1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bot.installed_at, at(0));
    assert_eq!(bot.bot_token_expires_at, installation.bot_token_expires_at);

    // Expiry comparisons happen in UTC too.
    let expiring = store
        .list_expiring(OffsetDateTime::from_unix_timestamp(1_700_003_600).unwrap())
        .await
        .unwrap();
    assert_eq!(expiring.len(), 1);
    let not_yet = store
        .list_expiring(OffsetDateTime::from_unix_timestamp(1_700_003_599).unwrap())
        .await
        .unwrap();
    assert!(not_yet.is_empty());
    let state = store.issue(at(60)).await.unwrap();
    let expire_at: String = sqlx::query_scalar("SELECT expire_at::text FROM slack_oauth_states")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(expire_at, "2023-11-14 22:14:20.123456");
    assert!(!store.consume(&state, at(60)).await.unwrap());
    assert!(store.consume(&state, at(59)).await.unwrap());
    store.close().await;
}
