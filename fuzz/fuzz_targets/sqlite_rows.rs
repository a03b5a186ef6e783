//! The SQLite row decoders: rows of any values and types (what Python's slack_sdk, an older
//! version or a hand edit may leave) in every column of both tables, read through an encrypted
//! store. Every read returns the installation or a typed error, never a panic.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rusqlite::types::Value;
use slack_oauth::encryption::EncryptionKeys;
use slack_oauth::store::{InstallationQuery, InstallationStore as _, SqliteStore};

const KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; // fake

const INSTALLATION_COLUMNS: &[&str] = &[
    "app_id",
    "enterprise_name",
    "enterprise_url",
    "team_name",
    "bot_token",
    "bot_id",
    "bot_user_id",
    "bot_scopes",
    "bot_refresh_token",
    "bot_token_expires_at",
    "user_id",
    "user_token",
    "user_scopes",
    "user_refresh_token",
    "user_token_expires_at",
    "incoming_webhook_url",
    "incoming_webhook_channel",
    "incoming_webhook_channel_id",
    "incoming_webhook_configuration_url",
    "is_enterprise_install",
    "token_type",
    "installed_at",
    "user_needs_reinstall_reason",
    "user_needs_reinstall_at",
    "bot_needs_reinstall_reason",
    "bot_needs_reinstall_at",
];

const BOT_COLUMNS: &[&str] = &[
    "app_id",
    "enterprise_name",
    "team_name",
    "bot_token",
    "bot_id",
    "bot_user_id",
    "bot_scopes",
    "bot_refresh_token",
    "bot_token_expires_at",
    "is_enterprise_install",
    "installed_at",
    "needs_reinstall_reason",
    "needs_reinstall_at",
];

struct Harness {
    runtime: tokio::runtime::Runtime,
    store: SqliteStore,
    raw: std::sync::Mutex<rusqlite::Connection>,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let dir =
            std::env::temp_dir().join(format!("slack-oauth-fuzz-rows-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let path = dir.join("rows.db");
        let _ = std::fs::remove_file(&path);
        let keys = EncryptionKeys::parse(KEYS).expect("valid keys");
        let url = format!("sqlite://{}", path.display());
        let store = runtime
            .block_on(SqliteStore::connect_encrypted(&url, "111.222", Some(keys)))
            .expect("a store");
        let raw = rusqlite::Connection::open(&path).expect("a second connection");
        raw.busy_timeout(std::time::Duration::from_secs(5))
            .expect("a busy timeout");
        Harness {
            runtime,
            store,
            raw: std::sync::Mutex::new(raw),
        }
    })
}

#[derive(Arbitrary, Debug)]
enum Cell {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
    /// An envelope-looking text, to reach the decryption path.
    Envelope(String),
}

impl Cell {
    fn value(&self) -> Value {
        match self {
            Self::Null => Value::Null,
            Self::Integer(value) => Value::Integer(*value),
            Self::Real(value) => Value::Real(*value),
            Self::Text(value) => Value::Text(value.clone()),
            Self::Blob(value) => Value::Blob(value.clone()),
            Self::Envelope(value) => Value::Text(format!("enc:v1:k1:{value}")),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    installation: Vec<(u8, Cell)>,
    bot: Vec<(u8, Cell)>,
    org_wide: bool,
    of_user: bool,
}

/// One row: the key columns fixed (so the lookups find it), every other column as given.
fn insert(
    raw: &rusqlite::Connection,
    table: &str,
    columns: &[&str],
    cells: &[(u8, Cell)],
    org_wide: bool,
) -> rusqlite::Result<()> {
    let mut values: Vec<(&str, Value)> = vec![
        ("client_id", Value::Text("111.222".into())),
        (
            "enterprise_id",
            Value::Text(if org_wide { "E1" } else { "" }.into()),
        ),
        (
            "team_id",
            Value::Text(if org_wide { "" } else { "T1" }.into()),
        ),
    ];
    for (index, cell) in cells {
        let column = columns[usize::from(*index) % columns.len()];
        match values.iter_mut().find(|(name, _)| *name == column) {
            Some(slot) => slot.1 = cell.value(),
            None => values.push((column, cell.value())),
        }
    }
    let names: Vec<&str> = values.iter().map(|(name, _)| *name).collect();
    let marks = vec!["?"; values.len()].join(", ");
    let sql = format!(
        "INSERT INTO {table} ({}) VALUES ({marks})",
        names.join(", ")
    );
    raw.execute(
        &sql,
        rusqlite::params_from_iter(values.into_iter().map(|(_, value)| value)),
    )?;
    Ok(())
}

fuzz_target!(|input: Input| {
    let harness = harness();
    {
        let raw = harness.raw.lock().expect("the connection");
        raw.execute_batch("DELETE FROM slack_installations; DELETE FROM slack_bots;")
            .expect("tables emptied");
        // A NOT NULL or CHECK constraint may refuse the row: then there is nothing to read.
        let _ = insert(
            &raw,
            "slack_installations",
            INSTALLATION_COLUMNS,
            &input.installation,
            input.org_wide,
        );
        let _ = insert(&raw, "slack_bots", BOT_COLUMNS, &input.bot, input.org_wide);
    }
    let mut query = if input.org_wide {
        InstallationQuery::org("E1")
    } else {
        InstallationQuery::team("T1")
    };
    if input.of_user {
        query = query.user("U1");
    }
    harness.runtime.block_on(async {
        if let Ok(Some(installation)) = harness.store.find_installation(&query).await {
            let _ = format!("{installation:?}");
        }
        if let Ok(Some(bot)) = harness.store.find_bot(&query).await {
            let _ = format!("{bot:?}");
        }
        if let Err(error) = harness.store.list_installations().await {
            let _ = error.to_string();
        }
    });
});
