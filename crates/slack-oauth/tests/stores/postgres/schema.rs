//! The schema: slack_sdk's exact DDL (but for the token columns, widened to `TEXT` for
//! encrypted tokens), idempotent migrations, adopting tables slack_sdk created,
//! and concurrent first use.

use std::collections::BTreeMap;
use std::str::FromStr;

use slack_oauth::secret::StateValue;
use slack_oauth::store::{
    AnyStore, InstallationQuery, InstallationStore, PostgresStore, StateStore,
};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, Row};

use super::support::{
    at, database_url, random_suffix, workspace_installation, TestSchema, CLIENT_ID,
};

#[tokio::test]
async fn schema_is_slack_sdk_sqlalchemy_ddl() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.store().await;
    let rows = sqlx::query(
        "SELECT table_name::text, column_name::text, data_type::text, \
         character_maximum_length, is_nullable::text \
         FROM information_schema.columns WHERE table_schema = $1 \
         AND table_name IN ('slack_installations', 'slack_bots', 'slack_oauth_states') \
         ORDER BY table_name, ordinal_position",
    )
    .bind(&schema.name)
    .fetch_all(store.pool())
    .await
    .unwrap();
    let mut actual: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in rows {
        let table: String = row.get(0);
        let length: Option<i32> = row.get(3);
        let nullable: String = row.get(4);
        let column = format!(
            "{} {}{}{}",
            row.get::<String, _>(1),
            row.get::<String, _>(2),
            length.map(|n| format!("({n})")).unwrap_or_default(),
            if nullable == "NO" { " NOT NULL" } else { "" }
        );
        actual.entry(table).or_default().push(column);
    }
    let ts = "timestamp without time zone";
    let expected_installations = [
        "id integer NOT NULL".to_owned(),
        "client_id character varying(32) NOT NULL".to_owned(),
        "app_id character varying(32) NOT NULL".to_owned(),
        "enterprise_id character varying(32)".to_owned(),
        "enterprise_name character varying(200)".to_owned(),
        "enterprise_url character varying(200)".to_owned(),
        "team_id character varying(32)".to_owned(),
        "team_name character varying(200)".to_owned(),
        // Widened: an encrypted token is longer than the token.
        "bot_token text".to_owned(),
        "bot_id character varying(32)".to_owned(),
        "bot_user_id character varying(32)".to_owned(),
        "bot_scopes character varying(1000)".to_owned(),
        // Widened: an encrypted token is longer than the token.
        "bot_refresh_token text".to_owned(),
        format!("bot_token_expires_at {ts}"),
        "user_id character varying(32) NOT NULL".to_owned(),
        // Widened: an encrypted token is longer than the token.
        "user_token text".to_owned(),
        "user_scopes character varying(1000)".to_owned(),
        // Widened: an encrypted token is longer than the token.
        "user_refresh_token text".to_owned(),
        format!("user_token_expires_at {ts}"),
        // Widened: an encrypted token is longer than the token.
        "incoming_webhook_url text".to_owned(),
        "incoming_webhook_channel character varying(200)".to_owned(),
        "incoming_webhook_channel_id character varying(200)".to_owned(),
        "incoming_webhook_configuration_url character varying(200)".to_owned(),
        "is_enterprise_install boolean NOT NULL".to_owned(),
        "token_type character varying(32)".to_owned(),
        format!("installed_at {ts} NOT NULL"),
        // slack-oauth's nullable additions, after slack_sdk's columns (which it names).
        "bot_needs_reinstall_reason text".to_owned(),
        format!("bot_needs_reinstall_at {ts}"),
        "user_needs_reinstall_reason text".to_owned(),
        format!("user_needs_reinstall_at {ts}"),
    ];
    let expected_bots = [
        "id integer NOT NULL".to_owned(),
        "client_id character varying(32) NOT NULL".to_owned(),
        "app_id character varying(32) NOT NULL".to_owned(),
        "enterprise_id character varying(32)".to_owned(),
        "enterprise_name character varying(200)".to_owned(),
        "team_id character varying(32)".to_owned(),
        "team_name character varying(200)".to_owned(),
        // Widened: an encrypted token is longer than the token.
        "bot_token text".to_owned(),
        "bot_id character varying(32)".to_owned(),
        "bot_user_id character varying(32)".to_owned(),
        "bot_scopes character varying(1000)".to_owned(),
        // Widened: an encrypted token is longer than the token.
        "bot_refresh_token text".to_owned(),
        format!("bot_token_expires_at {ts}"),
        "is_enterprise_install boolean NOT NULL".to_owned(),
        format!("installed_at {ts} NOT NULL"),
        "needs_reinstall_reason text".to_owned(),
        format!("needs_reinstall_at {ts}"),
    ];
    let expected_states = [
        "id integer NOT NULL".to_owned(),
        "state character varying(200) NOT NULL".to_owned(),
        format!("expire_at {ts} NOT NULL"),
    ];
    assert_eq!(actual["slack_installations"], expected_installations);
    assert_eq!(actual["slack_bots"], expected_bots);
    assert_eq!(actual["slack_oauth_states"], expected_states);

    // slack_sdk's indexes, with its names and columns; `id` is a SERIAL primary key.
    let indexes: BTreeMap<String, String> =
        sqlx::query_as("SELECT indexname::text, indexdef FROM pg_indexes WHERE schemaname = $1")
            .bind(&schema.name)
            .fetch_all(store.pool())
            .await
            .unwrap()
            .into_iter()
            .collect();
    let definition = |name: &str| {
        indexes[name]
            .replace(&format!("{}.", schema.name), "")
            .replace("USING btree ", "")
    };
    assert_eq!(
        definition("slack_installations_idx"),
        "CREATE INDEX slack_installations_idx ON slack_installations \
         (client_id, enterprise_id, team_id, user_id, installed_at)"
    );
    assert_eq!(
        definition("slack_bots_idx"),
        "CREATE INDEX slack_bots_idx ON slack_bots \
         (client_id, enterprise_id, team_id, installed_at)"
    );
    for table in ["slack_installations", "slack_bots", "slack_oauth_states"] {
        let default: String = sqlx::query_scalar(
            "SELECT column_default FROM information_schema.columns \
             WHERE table_schema = $1 AND table_name = $2 AND column_name = 'id'",
        )
        .bind(&schema.name)
        .bind(table)
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert!(default.starts_with("nextval("), "{table}: {default}");
        assert!(indexes.contains_key(&format!("{table}_pkey")), "{table}");
    }
    assert!(indexes.contains_key("slack_oauth_states_state_key"));
    assert!(indexes.contains_key("slack_oauth_leases_pkey"));
    store.close().await;
}

#[tokio::test]
async fn migrations_are_idempotent_and_keep_existing_rows() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let first = schema.store().await;
    first
        .save(&workspace_installation("T1", "U1", at(0)))
        .await
        .unwrap();
    // A second instance (and a restart) finds the schema in place.
    let second = schema.store().await;
    let found = second
        .find_installation(&InstallationQuery::team("T1"))
        .await
        .unwrap();
    assert_eq!(found.unwrap().user_id.as_str(), "U1");
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY 1")
        .fetch_all(second.pool())
        .await
        .unwrap();
    assert_eq!(
        versions,
        [
            20_250_101_000_001,
            20_250_101_000_002,
            20_250_101_000_003,
            20_250_101_000_004,
            20_250_101_000_005,
            20_250_101_000_006,
            20_250_101_000_007
        ]
    );
    // Ready: every migration of this build recorded as applied.
    second.check().await.unwrap();
    // A migration missing (a database restored from before it, say): not ready, and the
    // message names it.
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 20250101000004")
        .execute(second.pool())
        .await
        .unwrap();
    let error = second.check().await.unwrap_err();
    assert_eq!(error.kind(), slack_oauth::store::StoreErrorKind::Config);
    assert!(error.to_string().contains("20250101000004"), "{error}");
    first.close().await;
    second.close().await;
}

#[tokio::test]
async fn tables_created_by_slack_sdk_are_adopted() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    // What SQLAlchemy's `metadata.create_all` leaves behind, including a duplicate state that
    // would stop the unique index from being created.
    let mut conn = schema.connection().await;
    sqlx::query(&format!("CREATE SCHEMA \"{}\"", schema.name))
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::raw_sql(include_str!(
        "../../../migrations/postgres/20250101000001_slack_sdk_tables.sql"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO slack_oauth_states (state, expire_at) VALUES \
         ('dup', '2099-01-01 00:00:00'), ('dup', '2099-01-01 00:00:00')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let store = schema.store().await;
    assert!(store.consume(&StateValue::new("dup"), at(0)).await.unwrap());
    assert!(!store.consume(&StateValue::new("dup"), at(0)).await.unwrap());
    store.close().await;
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_connects_to_an_empty_database_succeed() {
    let Some(url) = database_url() else {
        return;
    };
    let name = format!("slack_oauth_test_{}", random_suffix());
    println!("postgres test database: {name} (kept if the test fails)");
    let mut admin = PgConnection::connect(&url).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .unwrap();
    let options = PgConnectOptions::from_str(&url).unwrap().database(&name);
    let connects: Vec<_> = (0..4)
        .map(|_| tokio::spawn(PostgresStore::connect_with(options.clone(), CLIENT_ID)))
        .collect();
    let mut stores = Vec::new();
    for connect in connects {
        stores.push(connect.await.unwrap().unwrap());
    }
    stores[0]
        .save(&workspace_installation("T1", "U1", at(0)))
        .await
        .unwrap();
    assert!(stores[3]
        .find_bot(&InstallationQuery::team("T1"))
        .await
        .unwrap()
        .is_some());
    // Likewise for a schema created on first use.
    let mut database_url = url::Url::parse(&url).unwrap();
    database_url.set_path(&name);
    let schema = format!("s_{}", random_suffix());
    let in_schema: Vec<_> = (0..4)
        .map(|_| {
            let url = database_url.to_string();
            let schema = schema.clone();
            tokio::spawn(
                async move { PostgresStore::connect_in_schema(&url, CLIENT_ID, &schema).await },
            )
        })
        .collect();
    for connect in in_schema {
        stores.push(connect.await.unwrap().unwrap());
    }
    for store in stores {
        store.close().await;
    }
    sqlx::query(&format!("DROP DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .unwrap();
}

#[tokio::test]
async fn any_store_picks_postgres_for_postgres_urls() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.store().await;
    store
        .save(&workspace_installation("T1", "U1", at(0)))
        .await
        .unwrap();
    let mut url = url::Url::parse(schema.url()).unwrap();
    url.query_pairs_mut()
        .append_pair("options[search_path]", &schema.name);
    for scheme in ["postgres", "postgresql"] {
        url.set_scheme(scheme).unwrap();
        let any = AnyStore::connect(url.as_str(), CLIENT_ID).await.unwrap();
        assert_eq!(any.backend(), "postgres");
        let bot = any.find_bot(&InstallationQuery::team("T1")).await.unwrap();
        assert_eq!(bot.unwrap().bot_token.secret(), "xoxb-T1-U1");
    }
}
