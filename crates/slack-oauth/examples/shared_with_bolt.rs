//! A store shared with a Bolt for Python app: open the SQLite file slack_sdk's
//! `SQLite3InstallationStore` writes (its default is `./data/slack.db`) and read what Python
//! installed, as is; what this app saves, Python reads too. Tokens must stay unencrypted for
//! that (no `SLACK_TOKEN_ENCRYPTION_KEYS`): Python cannot read sealed values.
//!
//! ```text
//! SLACK_CLIENT_ID=111.222 cargo run -p slack-oauth --example shared_with_bolt -- ./data/slack.db
//! ```

use slack_oauth::store::{InstallationQuery, InstallationStore as _};
use slack_oauth::SqliteStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or("./data/slack.db".into());
    let client_id = std::env::var("SLACK_CLIENT_ID")?;
    // The same tables, columns and encodings as slack_sdk; our extra columns Python ignores.
    let store = SqliteStore::connect(&format!("sqlite://{path}"), client_id).await?;
    for installation in store.list_installations().await? {
        let workspace = installation.team_id.clone().map(|team| team.to_string());
        println!(
            "{} installed by {}",
            workspace.as_deref().unwrap_or("(org-wide)"),
            installation.user_id
        );
        if let Some(team) = installation.team_id {
            // What Bolt's authorize would find for an event from this workspace.
            let bot = store.find_bot(&InstallationQuery::team(team)).await?;
            println!("  bot user {:?}", bot.and_then(|bot| bot.bot_user_id));
        }
    }
    Ok(())
}
