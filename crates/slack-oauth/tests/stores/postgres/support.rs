//! Helpers for the postgres tests: the server URL (or a loud skip), fresh schemas that clean up
//! after passing tests, fixtures.

use std::str::FromStr;

use slack_oauth::installation::{Installation, Scopes};
use slack_oauth::secret::BotToken;
use slack_oauth::store::PostgresStore;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use time::OffsetDateTime;

pub(super) const CLIENT_ID: &str = "111.222";

/// 2023-11-14 22:13:20.123456 UTC.
pub(super) fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(1_700_000_000 + seconds) * 1_000_000_000 + 123_456_000,
    )
    .unwrap()
}

/// The server URL, or `None` (after a loud `SKIPPED`) when it is not configured.
pub(super) fn database_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "TEST_DATABASE_URL is not set: CI must run the postgres tests"
            );
            slack_oauth_test::skip("postgres tests: TEST_DATABASE_URL is not set");
            None
        }
    }
}

pub(super) fn random_suffix() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A fresh schema for one test, dropped with this value when the test passes and kept (its name
/// printed) when the test fails (the value is then dropped while the thread panics).
pub(super) struct TestSchema {
    url: String,
    /// `slack_oauth_test_<random>`.
    pub(super) name: String,
}

impl TestSchema {
    pub(super) fn new() -> Option<Self> {
        let url = database_url()?;
        let name = format!("slack_oauth_test_{}", random_suffix());
        Some(Self { url, name })
    }

    /// The server URL (the schema is not in it).
    pub(super) fn url(&self) -> &str {
        &self.url
    }

    pub(super) async fn store(&self) -> PostgresStore {
        PostgresStore::connect_in_schema(&self.url, CLIENT_ID, &self.name)
            .await
            .unwrap()
    }

    /// A store in the schema (created if missing) with tokens encrypted under `keys`, opened
    /// through a URL that names the schema, as an app (or the CLI) would.
    pub(super) async fn encrypted_store(
        &self,
        keys: Option<slack_oauth::encryption::EncryptionKeys>,
    ) -> Result<PostgresStore, slack_oauth::store::StoreError> {
        let mut conn = PgConnection::connect(&self.url).await.unwrap();
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{}\"", self.name))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        PostgresStore::connect_encrypted(&self.url_in_schema(), CLIENT_ID, keys).await
    }

    /// The server URL with the schema as the connections' search path.
    pub(super) fn url_in_schema(&self) -> String {
        let mut url = url::Url::parse(&self.url).unwrap();
        url.query_pairs_mut()
            .append_pair("options[search_path]", &self.name);
        url.into()
    }

    /// Options for raw connections into the schema, with extra session settings.
    pub(super) fn options(&self, settings: &[(&str, &str)]) -> PgConnectOptions {
        let mut options = PgConnectOptions::from_str(&self.url)
            .unwrap()
            .options([("search_path", self.name.as_str())]);
        for (name, value) in settings {
            options = options.options([(*name, *value)]);
        }
        options
    }

    pub(super) async fn connection(&self) -> PgConnection {
        PgConnection::connect_with(&self.options(&[]))
            .await
            .unwrap()
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept postgres test schema {} for inspection", self.name);
            return;
        }
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread with a
        // runtime of its own.
        let (url, name) = (self.url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&url).await?;
                // Idle pooled connections hold no locks; never wait long on a busy one.
                sqlx::raw_sql(&format!(
                    "SET lock_timeout = '10s'; DROP SCHEMA \"{name}\" CASCADE"
                ))
                .execute(&mut conn)
                .await?;
                conn.close().await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!(
                "could not drop postgres test schema {}: {dropped:?}",
                self.name
            );
        }
    }
}

pub(super) fn workspace_installation(
    team: &str,
    user: &str,
    installed_at: OffsetDateTime,
) -> Installation {
    let mut installation = Installation::new(user, installed_at);
    installation.app_id = Some("A111".into());
    installation.team_id = Some(team.into());
    installation.team_name = Some(format!("team {team}"));
    installation.bot_token = Some(BotToken::new(format!("xoxb-{team}-{user}")));
    installation.bot_id = Some("B111".into());
    installation.bot_user_id = Some("UB111".into());
    installation.bot_scopes = Scopes::parse("chat:write,commands");
    installation.token_type = Some("bot".to_owned());
    installation
}
