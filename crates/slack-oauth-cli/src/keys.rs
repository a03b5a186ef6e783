//! `slack-oauth keys`: the keys that encrypt tokens at rest (`SLACK_TOKEN_ENCRYPTION_KEYS`).

use std::process::ExitCode;

use clap::Subcommand;
use slack_oauth::encryption::{generate_key_entry, EncryptionKeys, ENCRYPTION_KEYS_ENV};

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
}

pub(crate) fn run(command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
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
