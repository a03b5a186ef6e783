//! `SqliteStore`: the conformance suite, plus what only SQLite has (encodings Python reads, rows
//! Python wrote, Python's DDL, one file under concurrent load, URLs).

use slack_oauth::installation::Scopes;
use slack_oauth::store::{
    AnyStore, InstallationQuery, InstallationStore, SqliteStore, StateStore, StoreErrorKind,
};
use slack_oauth_test::fixtures::{self, at, now, CLIENT_ID};
use slack_oauth_test::sqlite::{
    earlier_release_database, python_created_database, temporary, temporary_path,
};
use time::{Duration, OffsetDateTime};

mod configurations;

slack_oauth_test::store_conformance!(any_sqlite, async {
    let url = format!("sqlite://{}", temporary_path("any").display());
    AnyStore::connect(&url, CLIENT_ID).await.unwrap()
});

/// A connection of the test's own to the store's file, as another process would open it.
fn connection(store: &SqliteStore) -> rusqlite::Connection {
    rusqlite::Connection::open(store.path().expect("a file store")).unwrap()
}

/// Reads `(typeof(column), column as text)` of every row of `table`, in id order.
async fn raw(store: &SqliteStore, table: &str, column: &str) -> Vec<(String, Option<String>)> {
    let sql = format!("SELECT typeof({column}), CAST({column} AS TEXT) FROM {table} ORDER BY id");
    let connection = connection(store);
    let mut statement = connection.prepare(&sql).unwrap();
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn count(store: &SqliteStore, table: &str) -> i64 {
    connection(store)
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
            row.get(0)
        })
        .unwrap()
}

fn is_installed_at_text(value: &str) -> bool {
    // YYYY-MM-DD HH:MM:SS.ffffff
    let bytes = value.as_bytes();
    bytes.len() == 26
        && value.char_indices().all(|(i, c)| match i {
            4 | 7 => c == '-',
            10 => c == ' ',
            13 | 16 => c == ':',
            19 => c == '.',
            _ => c.is_ascii_digit(),
        })
}

#[tokio::test]
async fn columns_are_written_the_way_python_writes_them() {
    let store = temporary().await;
    let workspace = fixtures::workspace("T1", "U1")
        .with_rotation(at(43_200))
        .installed_at(OffsetDateTime::from_unix_timestamp_nanos(1_795_394_529_250_000_000).unwrap())
        .build();
    let org = fixtures::org_wide("E1", "U2").without_user_token().build();
    let user_only = fixtures::user_only("T3", "U3").build();
    for installation in [&workspace, &org, &user_only] {
        store.save(installation).await.unwrap();
    }

    let expiries = raw(&store, "slack_installations", "bot_token_expires_at").await;
    assert_eq!(
        expiries[0],
        (
            "integer".into(),
            Some(at(43_200).unix_timestamp().to_string())
        )
    );
    assert_eq!(expiries[1], ("null".into(), None));
    let user_expiries = raw(&store, "slack_installations", "user_token_expires_at").await;
    assert_eq!(user_expiries[0].0, "integer");
    let installed = raw(&store, "slack_installations", "installed_at").await;
    assert_eq!(
        installed[0],
        ("text".into(), Some("2026-11-23 00:42:09.250000".into()))
    );
    for (kind, value) in &installed {
        assert_eq!(kind, "text");
        assert!(is_installed_at_text(value.as_deref().unwrap()), "{value:?}");
    }
    let teams = raw(&store, "slack_installations", "team_id").await;
    assert_eq!(
        teams[1],
        ("text".into(), Some(String::new())),
        "org-wide: '' team"
    );
    let orgs = raw(&store, "slack_installations", "enterprise_id").await;
    assert_eq!(orgs[0], ("text".into(), Some(String::new())), "no org: ''");
    let flags = raw(&store, "slack_installations", "is_enterprise_install").await;
    let flags: Vec<_> = flags.into_iter().map(|(k, v)| (k, v.unwrap())).collect();
    assert_eq!(
        flags,
        [
            ("integer".into(), "0".into()),
            ("integer".into(), "1".into()),
            ("integer".into(), "0".into())
        ]
    );
    let bot_scopes = raw(&store, "slack_installations", "bot_scopes").await;
    assert_eq!(bot_scopes[0].1.as_deref(), Some("chat:write,commands"));
    assert_eq!(
        bot_scopes[2],
        ("text".into(), Some(String::new())),
        "no bot scopes: ''"
    );
    let user_scopes = raw(&store, "slack_installations", "user_scopes").await;
    assert_eq!(
        user_scopes[1],
        ("null".into(), None),
        "no user scopes: NULL"
    );

    let bots = raw(&store, "slack_bots", "team_id").await;
    assert_eq!(
        bots.len(),
        2,
        "one bot row per bot token; none for the user-only install"
    );
    assert_eq!(bots[1].1.as_deref(), Some(""), "org-wide bot: '' team");
    let bot_expiries = raw(&store, "slack_bots", "bot_token_expires_at").await;
    assert_eq!(bot_expiries[0].0, "integer");
    let bot_installed = raw(&store, "slack_bots", "installed_at").await;
    assert_eq!(
        bot_installed[0].1, installed[0].1,
        "bot row has its installation's time"
    );

    store
        .issue(now() + Duration::milliseconds(600_250))
        .await
        .unwrap();
    let states = raw(&store, "oauth_states", "expire_at").await;
    assert_eq!(
        states[0].0, "real",
        "state expiries are REAL seconds, as Python writes them"
    );
}

#[tokio::test]
async fn reads_rows_written_by_python() {
    let url = python_created_database(true).await;
    let store = SqliteStore::connect(&url, CLIENT_ID).await.unwrap();

    let t1 = store
        .find_installation(&InstallationQuery::team("T1").user("U1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t1.bot_token.as_ref().unwrap().secret(), "xoxe.xoxb-T1");
    assert_eq!(
        t1.bot_token_expires_at.unwrap().unix_timestamp(),
        1_795_437_129
    );
    assert_eq!(
        t1.user_token_expires_at.unwrap().unix_timestamp(),
        1_795_437_130
    );
    assert_eq!(
        t1.installed_at,
        OffsetDateTime::from_unix_timestamp(1_795_393_929).unwrap()
    );
    assert_eq!(t1.enterprise_id, None, "'' is no org");
    assert_eq!(t1.bot_scopes, Scopes::parse("chat:write,commands"));
    assert_eq!(t1.incoming_webhook_channel.as_deref(), Some("#general"));
    assert_eq!(t1.token_type.as_deref(), Some("bot"));

    let t2 = store
        .find_installation(&InstallationQuery::team("T2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        t2.bot_token_expires_at.unwrap().unix_timestamp(),
        1_800_000_000,
        "REAL expiry"
    );
    assert_eq!(
        t2.user_token_expires_at,
        OffsetDateTime::from_unix_timestamp(1_798_761_600).ok(),
        "TEXT datetime expiry, read as UTC"
    );
    assert_eq!(
        t2.installed_at.unix_timestamp_nanos(),
        1_795_393_929_500_000_000
    );
    assert_eq!(
        t2.bot_scopes.to_string(),
        "chat:write,commands",
        "W4-damaged scopes repaired"
    );
    assert!(t2.user_scopes.is_empty(), "NULL scopes are none");

    let org = store
        .find_installation(&InstallationQuery::org("E1"))
        .await
        .unwrap()
        .unwrap();
    assert!(org.is_enterprise_install, "'true' text flag");
    assert_eq!(org.team_id, None);
    assert_eq!(org.installed_at.unix_timestamp(), 1_795_393_929);

    let t3 = store
        .find_installation(&InstallationQuery::team("T3"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        t3.user_id.as_str(),
        "U4",
        "another app's newer row is invisible"
    );
    assert!(t3.bot_token.is_none() && t3.bot_scopes.is_empty());
    assert!(store
        .find_bot(&InstallationQuery::team("T3"))
        .await
        .unwrap()
        .is_none());
    let bot = store
        .find_bot(&InstallationQuery::team("T1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bot.bot_refresh_token.unwrap().secret(), "xoxe-1-bot-T1");
    assert_eq!(
        store.list_installations().await.unwrap().len(),
        4,
        "client 111.222 only"
    );

    let python_state = slack_oauth::secret::StateValue::new("3e4f9265-dd4b-4343-b2b8-3c735847f124");
    assert!(
        store.consume(&python_state, now()).await.unwrap(),
        "a state Python issued"
    );

    // Our rows sort after Python's whole-second rows of the same second.
    let ours = fixtures::workspace("T1", "U1")
        .generation(7)
        .installed_at(OffsetDateTime::from_unix_timestamp(1_795_393_929).unwrap())
        .build();
    store.save(&ours).await.unwrap();
    let latest = store
        .find_bot(&InstallationQuery::team("T1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.bot_token.secret(), "xoxb-T1-U1-7");
}

#[tokio::test]
async fn unreadable_row_is_an_error_not_absent() {
    let store = temporary().await;
    connection(&store)
        .execute(
            "INSERT INTO slack_installations (client_id, app_id, team_id, user_id, installed_at) \
             VALUES (?, 'A1', 'T1', 'U1', 'yesterday-ish')",
            [CLIENT_ID],
        )
        .unwrap();
    let error = store
        .find_installation(&InstallationQuery::team("T1"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Corrupt);
    let message = error.to_string();
    assert!(
        message.contains("slack_installations") && message.contains("installed_at"),
        "{message}"
    );

    connection(&store)
        .execute(
            "INSERT INTO slack_installations (client_id, app_id, team_id, user_id, \
             is_enterprise_install, bot_token_expires_at) \
             VALUES (?, 'A1', 'T2', 'U1', 'maybe', 5)",
            [CLIENT_ID],
        )
        .unwrap();
    let error = store
        .find_installation(&InstallationQuery::team("T2"))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("is_enterprise_install"),
        "{error}"
    );
}

/// `(name, sql)` of our tables and indexes and slack_sdk's.
fn schema(store: &SqliteStore) -> Vec<(String, Option<String>)> {
    let connection = connection(store);
    let mut statement = connection
        .prepare(
            "SELECT name, sql FROM sqlite_master \
             WHERE name LIKE 'slack_%' OR name LIKE 'oauth_%' ORDER BY name",
        )
        .unwrap();
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn user_version(store: &SqliteStore) -> i64 {
    connection(store)
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap()
}

fn has_table(store: &SqliteStore, name: &str) -> bool {
    connection(store)
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
            [name],
            |row| row.get::<_, i64>(0),
        )
        .unwrap()
        == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_a_database_created_by_python_and_keeps_its_schema() {
    let url = python_created_database(false).await;
    let store = SqliteStore::connect(&url, CLIENT_ID).await.unwrap();
    let tables = schema(&store);
    let ddl = |name: &str| {
        tables
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, sql)| sql.clone())
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    assert!(
        ddl("slack_installations").contains("bot_refresh_token text,  -- since v3.8"),
        "Python's table definition is kept as Python wrote it"
    );
    assert!(ddl("slack_bots_idx").contains("slack_bots_idx"));
    assert!(ddl("slack_installations_latest_idx").contains("installed_at"));
    assert!(ddl("slack_oauth_leases").contains("holder"));
    assert!(
        ddl("slack_bots").contains("needs_reinstall_reason"),
        "migration 2 added its columns at the end"
    );
    assert_eq!(user_version(&store), 3, "schema version 3 recorded");
    assert!(
        !has_table(&store, "_sqlx_migrations"),
        "no sqlx table any more"
    );
    store.check().await.unwrap();

    let installation = fixtures::workspace("T1", "U1")
        .with_rotation(at(100))
        .build();
    store.save(&installation).await.unwrap();
    store.close().await.unwrap();
    drop(store);
    // Reopening finds the schema current and leaves the data alone.
    let store = SqliteStore::connect(&url, CLIENT_ID).await.unwrap();
    let found = store
        .find_installation(&InstallationQuery::team("T1"))
        .await
        .unwrap()
        .unwrap();
    slack_oauth_test::assert::same_installation(&found, &installation, "after reopening");
    let journal: String = connection(&store)
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
}

/// A file an earlier release migrated through sqlx (`_sqlx_migrations`, `user_version` 0)
/// opens unchanged: its rows are read, new rows are written, and the sqlx table is left as it
/// was so that the earlier release still opens the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_a_database_an_earlier_release_migrated() {
    let url = earlier_release_database(true).await;
    let store = SqliteStore::connect(&url, CLIENT_ID).await.unwrap();
    let before: Vec<(String, Option<String>)> = schema(&store);
    assert_eq!(user_version(&store), 3);
    let sqlx_rows: (i64, i64) = connection(&store)
        .query_row("SELECT version, success FROM _sqlx_migrations", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .unwrap();
    assert_eq!(
        sqlx_rows,
        (20_250_101_000_001, 1),
        "sqlx's record untouched"
    );
    let t1 = store
        .find_installation(&InstallationQuery::team("T1").user("U1"))
        .await
        .unwrap()
        .expect("a row of the earlier file");
    assert_eq!(t1.bot_token.unwrap().secret(), "xoxe.xoxb-T1");
    let installation = fixtures::workspace("T9", "U9").with_rotation(at(5)).build();
    store.save(&installation).await.unwrap();
    store.close().await.unwrap();
    drop(store);
    let store = SqliteStore::connect(&url, CLIENT_ID).await.unwrap();
    assert_eq!(
        schema(&store),
        before,
        "reopening changes no table or index"
    );
    let found = store
        .find_installation(&InstallationQuery::team("T9"))
        .await
        .unwrap()
        .unwrap();
    slack_oauth_test::assert::same_installation(&found, &installation, "after reopening");
}

/// A database file this store creates is readable and writable by its owner only, and so are
/// its WAL and shared-memory files.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_database_file_is_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let store = temporary().await;
    store
        .save(&fixtures::workspace("T1", "U1").build())
        .await
        .unwrap();
    let path = store.path().unwrap().to_owned();
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", path.display());
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file} has mode {mode:o}");
    }
}

/// Two stores on one file (two pools, as two processes would have) and 200 concurrent
/// save+find tasks: no "database is locked", every row found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_one_file_never_fail() {
    let path = temporary_path("concurrent");
    let url = format!("sqlite://{}", path.display());
    let first = SqliteStore::connect(&url, CLIENT_ID).await.unwrap();
    let second = SqliteStore::connect(&url, CLIENT_ID).await.unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|n| {
            let store = if n % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            tokio::spawn(async move {
                let team = format!("T{}", n % 7);
                let user = format!("U{n}");
                let installation = fixtures::workspace(&team, &user)
                    .with_rotation(at(n))
                    .build();
                store.save(&installation).await?;
                let state = store.issue(now() + Duration::minutes(10)).await?;
                let query = InstallationQuery::team(team.as_str()).user(user.as_str());
                let found = store.find_installation(&query).await?;
                let consumed = store.consume(&state, now()).await?;
                Ok::<_, slack_oauth::store::StoreError>(found.is_some() && consumed)
            })
        })
        .collect();
    let mut errors = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(true) => {}
            Ok(false) => errors.push("a saved row or issued state was not found".to_owned()),
            Err(error) => errors.push(error.to_string()),
        }
    }
    assert!(errors.is_empty(), "{} failures: {errors:?}", errors.len());
    assert_eq!(first.list_installations().await.unwrap().len(), 200);
}

#[tokio::test]
async fn connect_accepts_sqlite_urls_and_rejects_others() {
    let path = temporary_path("url");
    for url in [
        format!("sqlite://{}", path.display()),
        format!("sqlite:{}", path.display()),
        "sqlite::memory:".to_owned(),
    ] {
        let store = SqliteStore::connect(&url, CLIENT_ID).await.unwrap();
        store
            .save(&fixtures::workspace("T1", "U1").build())
            .await
            .unwrap();
        assert!(
            store
                .find_bot(&InstallationQuery::team("T1"))
                .await
                .unwrap()
                .is_some(),
            "{url}"
        );
    }
    assert!(path.exists(), "the file is created when missing");
    let error = SqliteStore::connect("postgres://localhost/db", CLIENT_ID)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Config);
    assert!(error.to_string().contains("sqlite://"), "{error}");

    let error = AnyStore::connect("redis://localhost", CLIENT_ID)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Config);
    let message = error.to_string();
    assert!(
        message.contains("\"redis\"") && message.contains("sqlite://"),
        "{message}"
    );
    let any = AnyStore::connect("sqlite::memory:", CLIENT_ID)
        .await
        .unwrap();
    assert_eq!(any.backend(), "sqlite");
}

#[tokio::test]
async fn other_apps_rows_are_invisible() {
    let path = temporary_path("apps");
    let url = format!("sqlite://{}", path.display());
    let ours = SqliteStore::connect(&url, CLIENT_ID).await.unwrap();
    let theirs = SqliteStore::connect(&url, "999.999").await.unwrap();
    theirs
        .save(&fixtures::workspace("T1", "U1").build())
        .await
        .unwrap();
    assert!(ours
        .find_installation(&InstallationQuery::team("T1"))
        .await
        .unwrap()
        .is_none());
    assert!(ours
        .find_bot(&InstallationQuery::team("T1"))
        .await
        .unwrap()
        .is_none());
    ours.delete_all(&InstallationQuery::team("T1"))
        .await
        .unwrap();
    assert!(theirs
        .find_bot(&InstallationQuery::team("T1"))
        .await
        .unwrap()
        .is_some());
}

/// Every 64th `issue` purges the states that expired by the store's clock, so abandoned
/// installs cannot grow `oauth_states` without bound.
#[tokio::test]
async fn issue_purges_expired_states_now_and_then() {
    let t = now();
    let clock = slack_oauth::clock::ManualClock::at_unix(t.unix_timestamp());
    let store = temporary().await.with_clock(clock.clone());
    for _ in 0..63 {
        store.issue(t + Duration::minutes(10)).await.unwrap();
    }
    assert_eq!(
        count(&store, "oauth_states"),
        63,
        "no purge before the 64th issue"
    );
    clock.advance(std::time::Duration::from_secs(3600));
    let fresh = store.issue(t + Duration::hours(2)).await.unwrap();
    assert_eq!(
        count(&store, "oauth_states"),
        1,
        "the 64th issue purged the 63 expired states"
    );
    assert!(store.consume(&fresh, t + Duration::hours(1)).await.unwrap());
}

/// The writer thread checkpoints between writes, so the WAL does not grow with every write
/// (without checkpoints, 3,000 saves leave a WAL of ~90 MB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_stays_bounded_under_many_writes() {
    let path = temporary_path("wal");
    let url = format!("sqlite://{}", path.display());
    let store = SqliteStore::connect(&url, CLIENT_ID).await.unwrap();
    for n in 0..3_000 {
        let installation = fixtures::workspace(&format!("T{n}"), "U1")
            .with_rotation(at(100))
            .installed_at(at(n))
            .build();
        store.save(&installation).await.unwrap();
    }
    let wal = std::fs::metadata(format!("{}-wal", path.display()))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(
        wal < 48 * 1024 * 1024,
        "the WAL grew to {wal} bytes: checkpoints did not run"
    );
    assert_eq!(store.list_installations().await.unwrap().len(), 3_000);
}

/// Another process holding the database's write lock (here a plain connection inside `BEGIN
/// IMMEDIATE`, as Python's store would): the writer waits, up to the busy timeout, until the
/// lock is released and then commits; lookups are not blocked meanwhile (WAL readers never wait
/// for writers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_waits_for_another_process_holding_the_write_lock() {
    let path = temporary_path("locked");
    let url = format!("sqlite://{}", path.display());
    let store = SqliteStore::connect(&url, CLIENT_ID).await.unwrap();
    let first = fixtures::workspace("T1", "U1").installed_at(at(0)).build();
    store.save(&first).await.unwrap();

    let other = connection(&store);
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut saving = {
        let store = store.clone();
        tokio::spawn(async move {
            let second = fixtures::workspace("T2", "U2").installed_at(at(1)).build();
            store.save(&second).await
        })
    };
    // SQLite shows no waiter from outside: that the save is still pending after 300 ms is the
    // evidence it waits (rather than failing with SQLITE_BUSY, which would finish it at once).
    let pending = tokio::time::timeout(std::time::Duration::from_millis(300), &mut saving).await;
    assert!(pending.is_err(), "the save waits for the lock");
    let found = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        store.find_installation(&InstallationQuery::team("T1")),
    )
    .await
    .expect("a lookup is not blocked by the writer")
    .unwrap();
    assert!(found.is_some());
    other.execute_batch("COMMIT").unwrap();
    saving.await.unwrap().unwrap();
    assert!(store
        .find_installation(&InstallationQuery::team("T2"))
        .await
        .unwrap()
        .is_some());
}

/// Tokens encrypted at rest (`connect_encrypted`): what reaches the file, who can read it back.
mod encryption {
    use slack_oauth::encryption::EncryptionKeys;
    use slack_oauth::store::{
        InstallationQuery, InstallationStore, RotatedToken, SqliteStore, StoreError,
        StoreErrorKind, TokenUpdate,
    };
    use slack_oauth_test::fixtures::{self, now, CLIENT_ID};

    const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; // fake
    const K2: &str = "k2:Hx4dHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA="; // fake

    fn keys(value: &str) -> Option<EncryptionKeys> {
        Some(EncryptionKeys::parse(value).unwrap())
    }

    async fn open(url: &str, keys: Option<EncryptionKeys>) -> Result<SqliteStore, StoreError> {
        SqliteStore::connect_encrypted(url, CLIENT_ID, keys).await
    }

    /// Every byte of the database and its WAL, as text.
    fn file_text(path: &std::path::Path) -> String {
        let mut bytes = std::fs::read(path).unwrap();
        if let Ok(wal) = std::fs::read(path.with_extension("db-wal")) {
            bytes.extend(wal);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_file_holds_no_token_and_only_the_right_keys_read_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("encrypted.db");
        let url = format!("sqlite://{}", path.display());
        let installation = fixtures::workspace("T1", "U1")
            .with_rotation(now() + time::Duration::hours(12))
            .with_webhook()
            .build();
        let store = open(&url, keys(K1)).await.unwrap();
        store.save(&installation).await.unwrap();
        store.close().await.unwrap();

        let text = file_text(&path);
        for secret in ["xoxb-", "xoxp-", "xoxe", "hooks.slack.com", "secret0"] {
            assert!(!text.contains(secret), "{secret} is in the file");
        }
        assert!(text.contains("enc:v1:k1:"));

        // The right key reads every token back.
        let store = open(&url, keys(K1)).await.unwrap();
        let found = store
            .find_installation(&InstallationQuery::team("T1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.bot_token, installation.bot_token);
        assert_eq!(found.bot_refresh_token, installation.bot_refresh_token);
        assert_eq!(found.user_token, installation.user_token);
        assert_eq!(found.user_refresh_token, installation.user_refresh_token);
        assert_eq!(
            found.incoming_webhook_url,
            installation.incoming_webhook_url
        );
        store.close().await.unwrap();

        // No key, or the wrong one: the store refuses to open, naming the key it needs.
        for wrong in [None, keys(K2)] {
            let error = open(&url, wrong).await.unwrap_err();
            assert_eq!(error.kind(), StoreErrorKind::Config);
            let message = error.to_string();
            assert!(message.contains("\"k1\""), "{message}");
            assert!(!message.contains("AAEC"), "{message}");
        }

        // A new key first, the old one after: old rows read, new writes use the new key.
        let store = open(&url, keys(&format!("{K2},{K1}"))).await.unwrap();
        assert!(store
            .find_bot(&InstallationQuery::team("T1"))
            .await
            .unwrap()
            .is_some());
        store
            .save(&fixtures::workspace("T2", "U2").build())
            .await
            .unwrap();
        store.close().await.unwrap();
        assert!(file_text(&path).contains("enc:v1:k2:"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn plaintext_rows_stay_readable_and_rotate_once_keys_are_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upgraded.db");
        let url = format!("sqlite://{}", path.display());
        let installation = fixtures::workspace("T1", "U1")
            .with_rotation(now() + time::Duration::hours(1))
            .build();
        let plain = open(&url, None).await.unwrap();
        plain.save(&installation).await.unwrap();
        plain.close().await.unwrap();

        let store = open(&url, keys(K1)).await.unwrap();
        let bot = store
            .find_bot(&InstallationQuery::team("T1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bot.bot_token, installation.bot_token.clone().unwrap());
        // The compare-and-swap finds the plaintext refresh token and writes envelopes.
        let update = TokenUpdate {
            enterprise_id: None,
            team_id: Some("T1".into()),
            previous_refresh_token: bot.bot_refresh_token.clone().unwrap(),
            token: RotatedToken::Bot {
                token: "xoxe.xoxb-rotated".into(), // fake
            },
            refresh_token: "xoxe-1-rotated".into(), // fake
            expires_at: Some(now() + time::Duration::hours(12)),
        };
        assert!(store.update_rotated_token(&update).await.unwrap());
        let rotated = store
            .find_installation(&InstallationQuery::team("T1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rotated.bot_token.unwrap().secret(), "xoxe.xoxb-rotated"); // fake
                                                                              // A second swap from the same (now spent) refresh token changes nothing.
        assert!(!store.update_rotated_token(&update).await.unwrap());
        store.close().await.unwrap();
        assert!(!file_text(&path).contains("xoxe.xoxb-rotated"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_envelope_moved_to_another_workspace_does_not_decrypt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("moved.db");
        let url = format!("sqlite://{}", path.display());
        let store = open(&url, keys(K1)).await.unwrap();
        for team in ["T1", "T2"] {
            store
                .save(&fixtures::workspace(team, "U1").build())
                .await
                .unwrap();
        }
        store.close().await.unwrap();
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute(
                "UPDATE slack_bots SET bot_token = \
                 (SELECT bot_token FROM slack_bots WHERE team_id = 'T1') WHERE team_id = 'T2'",
                [],
            )
            .unwrap();
        drop(connection);
        let store = open(&url, keys(K1)).await.unwrap();
        let error = store
            .find_bot(&InstallationQuery::team("T2"))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), StoreErrorKind::Corrupt, "{error}");
        assert!(store
            .find_bot(&InstallationQuery::team("T1"))
            .await
            .unwrap()
            .is_some());
        store.close().await.unwrap();
    }

    /// S6: re-encrypting under a new key while saves and lookups go on: every row ends on the
    /// new key, no save or lookup fails, the old key can go. 300 installations in CI; 100,000
    /// with `SLACK_OAUTH_RELIABILITY` set (the line `RELIABILITY S6 ...` reports the run).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reencrypting_moves_every_row_to_the_new_key_while_saves_go_on() {
        use futures::StreamExt as _;
        use slack_oauth::store::{ReencryptCursor, ReencryptProgress};
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::Arc;
        let rows: usize = if std::env::var_os("SLACK_OAUTH_RELIABILITY").is_some() {
            100_000
        } else {
            300
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rotate.db");
        let url = format!("sqlite://{}", path.display());
        let store = open(&url, keys(K1)).await.unwrap();
        futures::stream::iter(0..rows)
            .map(|n| {
                let store = store.clone();
                async move {
                    let installation = fixtures::workspace(&format!("T{n}"), "U1")
                        .with_rotation(now() + time::Duration::hours(12))
                        .with_webhook()
                        .build();
                    store.save(&installation).await.unwrap();
                }
            })
            .buffer_unordered(64)
            .collect::<Vec<()>>()
            .await;
        store.close().await.unwrap();

        let store = open(&url, keys(&format!("{K2},{K1}"))).await.unwrap();
        // Saves and lookups keep coming while the rows are re-encrypted.
        let done = Arc::new(AtomicBool::new(false));
        let (operations, failures) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let load = tokio::spawn({
            let (store, done) = (store.clone(), Arc::clone(&done));
            let (operations, failures) = (Arc::clone(&operations), Arc::clone(&failures));
            async move {
                let mut n = 0_usize;
                while !done.load(Ordering::Relaxed) {
                    let installation = fixtures::workspace(&format!("N{n}"), "U1").build();
                    let saved = store.save(&installation).await.is_ok();
                    let query = InstallationQuery::team(format!("T{}", (n * 7919) % rows));
                    let found = matches!(store.find_installation(&query).await, Ok(Some(_)));
                    operations.fetch_add(2, Ordering::Relaxed);
                    failures.fetch_add(u64::from(!saved) + u64::from(!found), Ordering::Relaxed);
                    n += 1;
                }
                n
            }
        });
        let started = std::time::Instant::now();
        let mut cursor = Some(ReencryptCursor::start());
        let mut total = ReencryptProgress::default();
        while let Some(from) = cursor {
            let (next, batch) = store.reencrypt_batch(from, 500).await.unwrap();
            total += batch;
            cursor = next;
        }
        let took = started.elapsed();
        done.store(true, Ordering::Relaxed);
        let saved = load.await.unwrap();
        eprintln!(
            "RELIABILITY S6 [sqlite] key rotation over {rows} installations (and their bots) in \
             {took:.1?} while saves and lookups went on: {} values re-encrypted, {} operations \
             alongside, {} failed; every value on the new key, the old key removed afterwards",
            total.rewritten,
            operations.load(Ordering::Relaxed),
            failures.load(Ordering::Relaxed),
        );
        assert_eq!(
            failures.load(Ordering::Relaxed),
            0,
            "saves or lookups failed"
        );
        assert!(total.rewritten >= rows as u64 * 5, "{total:?}");

        // Nothing is left under k1 or in plaintext.
        let connection = rusqlite::Connection::open(&path).unwrap();
        for (table, column) in [
            ("slack_installations", "bot_token"),
            ("slack_installations", "bot_refresh_token"),
            ("slack_installations", "user_token"),
            ("slack_installations", "user_refresh_token"),
            ("slack_installations", "incoming_webhook_url"),
            ("slack_bots", "bot_token"),
            ("slack_bots", "bot_refresh_token"),
        ] {
            let stale: i64 = connection
                .query_row(
                    &format!(
                        "SELECT count(*) FROM {table} WHERE {column} <> '' \
                         AND {column} NOT LIKE 'enc:v1:k2:%'"
                    ),
                    [],
                    |row| row.get(0),
                )
                .unwrap();
            assert_eq!(stale, 0, "{table}.{column}");
        }
        drop(connection);
        // A second run has nothing to do.
        let mut cursor = Some(ReencryptCursor::start());
        let mut again = ReencryptProgress::default();
        while let Some(from) = cursor {
            let (next, done) = store.reencrypt_batch(from, 10_000).await.unwrap();
            again += done;
            cursor = next;
        }
        assert_eq!(again.rewritten, 0);
        assert_eq!(
            again.rows,
            (rows + saved) as u64 * 2,
            "every installation and bot row visited"
        );
        store.close().await.unwrap();

        // The old key can go.
        let store = open(&url, keys(K2)).await.unwrap();
        let found = store
            .find_installation(&InstallationQuery::team("T7"))
            .await
            .unwrap()
            .unwrap();
        assert!(found.user_token.is_some() && found.incoming_webhook_url.is_some());
        store.close().await.unwrap();
    }
}
