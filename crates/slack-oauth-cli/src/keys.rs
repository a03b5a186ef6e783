//! `slack-oauth keys`: the keys that encrypt tokens at rest (`SLACK_TOKEN_ENCRYPTION_KEYS`).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use slack_oauth::encryption::{generate_key_entry, EncryptionKeys, ENCRYPTION_KEYS_ENV};
use slack_oauth::store::{ReencryptCursor, ReencryptProgress};

use crate::config::{self, StoreArgs};
use crate::UsageError;

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Print a new key entry, KEY_ID:BASE64_32_BYTES, from the OS's random source.
    ///
    /// Put it first in SLACK_TOKEN_ENCRYPTION_KEYS (comma-separated; the first encrypts, all
    /// decrypt). Keep it as secret as the tokens: whoever holds it and the database holds them.
    Generate {
        /// The key's id, stored in every value it encrypts: letters, digits, - and _ (at most
        /// 32) [default: k + today's date, e.g. k20261204]
        #[arg(long)]
        key_id: Option<String>,
    },
    /// Re-encrypt every stored token under the first key of SLACK_TOKEN_ENCRYPTION_KEYS.
    ///
    /// Online: `serve` and `rotate` may keep running (each value is rewritten with a
    /// compare-and-swap, so a concurrent save is never overwritten). In batches, with a progress
    /// bar; run it again after a kill and it finishes the rest. Afterwards the other keys can be
    /// removed from SLACK_TOKEN_ENCRYPTION_KEYS. SQLite and PostgreSQL stores.
    Rotate {
        /// Rows per batch (each batch is one transaction).
        #[arg(long, default_value = "500", value_parser = clap::value_parser!(u32).range(1..=100_000))]
        batch_size: u32,
        /// Print the summary as JSON: {"key_id", "apps", "rows", "rewritten", "already_current"}.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub(crate) async fn run(command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Rotate {
            batch_size,
            json,
            store,
        } => rotate(store.url(), batch_size, json).await,
        KeysCommand::Generate { key_id } => {
            let key_id = key_id.unwrap_or_else(|| {
                let today = time::OffsetDateTime::now_utc().date();
                format!(
                    "k{:04}{:02}{:02}",
                    today.year(),
                    u8::from(today.month()),
                    today.day()
                )
            });
            let entry = generate_key_entry(&key_id);
            // Checked with the parser the store uses, so a bad id is refused here, not later.
            EncryptionKeys::parse(&entry).map_err(|error| UsageError(error.to_string()))?;
            println!("{entry}");
            eprintln!(
                "put it first in {ENCRYPTION_KEYS_ENV} (KEY_ID:BASE64, comma-separated; the first \
                 encrypts, all decrypt)"
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `keys rotate`: every app's rows, batch after batch, under the first key.
async fn rotate(url: &str, batch_size: u32, json: bool) -> anyhow::Result<ExitCode> {
    let Some(keys) = config::encryption_keys()? else {
        return Err(UsageError(format!(
            "{ENCRYPTION_KEYS_ENV} is not set: put the new key first and the old ones after it"
        ))
        .into());
    };
    let apps = crate::apps::client_ids(url).await?;
    // indicatif draws nothing when stderr is not a terminal.
    let progress = ProgressBar::new(0);
    progress.set_style(
        ProgressStyle::with_template("{spinner} re-encrypting [{bar:30}] {pos}/{len} rows {msg}")
            .context("progress bar template")?
            .progress_chars("=> "),
    );
    let mut total = ReencryptProgress::default();
    for client_id in &apps {
        let store = config::connect_store(url, client_id).await?;
        progress.inc_length(
            store
                .token_rows()
                .await
                .context("cannot count the stored rows")?,
        );
        let mut cursor = Some(ReencryptCursor::start());
        while let Some(from) = cursor {
            let (next, done) = store
                .reencrypt_batch(from, batch_size)
                .await
                .with_context(|| format!("cannot re-encrypt the tokens of app {client_id}"))?;
            progress.inc(done.rows);
            total += done;
            cursor = next;
        }
        store.close().await.context("cannot close the store")?;
    }
    progress.finish_and_clear();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "key_id": keys.primary_id(),
                "apps": apps.len(),
                "rows": total.rows,
                "rewritten": total.rewritten,
                "already_current": total.current,
            })
        );
    } else {
        println!(
            "{} rows of {} app(s): {} values re-encrypted under key {}, {} already were; the \
             other keys can now be removed from {ENCRYPTION_KEYS_ENV}",
            total.rows,
            apps.len(),
            total.rewritten,
            keys.primary_id(),
            total.current,
        );
    }
    Ok(ExitCode::SUCCESS)
}
