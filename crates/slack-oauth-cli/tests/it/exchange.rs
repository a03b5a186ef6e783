//! `slack-oauth exchange` against an emulator with token rotation on, on a SQLite file.

use slack_emulator::{Emulator, EmulatorConfig, Grant};
use slack_oauth::installation::Installation;
use slack_oauth::secret::{BotToken, UserToken};
use slack_oauth::store::{InstallationQuery, InstallationStore, SqliteStore};
use time::OffsetDateTime;

use super::support::{command, run, stderr, stdout};

const CLIENT_ID: &str = "111.222";
const CLIENT_SECRET: &str = "exchange-secret-S3NT1N3L";

fn exchange(emulator: &Emulator, database_url: &str, args: &[&str]) -> std::process::Output {
    run(command()
        .arg("exchange")
        .args(args)
        .env("SLACK_CLIENT_ID", CLIENT_ID)
        .env("SLACK_CLIENT_SECRET", CLIENT_SECRET)
        .env("SLACK_API_URL", emulator.api_url())
        .env("DATABASE_URL", database_url))
}

/// T1: U1 (bot and user token) and U2 (user token) share a long-lived bot; T2: a bot whose
/// long-lived token Slack does not know; T3: already rotating. A dry run lists T1's three
/// tokens and T2's; the exchange turns T1's into rotating ones (new versions, the old ones kept
/// in the history and still valid), fails T2 (exit 1) and leaves T3 alone; a second run finds
/// only T2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_lived_tokens_become_rotating_and_the_old_ones_stay_in_the_history() {
    let emulator = Emulator::spawn(EmulatorConfig {
        client_id: Some(CLIENT_ID.to_owned()),
        client_secret: Some(CLIENT_SECRET.to_owned()),
        rotation: true,
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("exchange.db").display());
    let store = SqliteStore::connect(&database_url, CLIENT_ID)
        .await
        .unwrap();
    let now = OffsetDateTime::now_utc() - time::Duration::minutes(1);
    let grant = |user: &str| {
        let mut grant = Grant::for_team("T1");
        grant.user_id = user.to_owned();
        grant
    };
    let bot_token = emulator.seed_token(&grant("U1"), false);
    for (user, at) in [("U1", now), ("U2", now + time::Duration::seconds(1))] {
        let mut installation = Installation::new(user, at);
        installation.team_id = Some("T1".into());
        installation.bot_token = Some(BotToken::new(bot_token.clone()));
        installation.user_token = Some(UserToken::new(emulator.seed_token(&grant(user), true)));
        store.save(&installation).await.unwrap();
    }
    let mut unknown = Installation::new("U3", now);
    unknown.team_id = Some("T2".into());
    unknown.bot_token = Some(BotToken::new("xoxb-unknown-to-slack")); // fake
    store.save(&unknown).await.unwrap();
    let mut rotating = Installation::new("U4", now);
    rotating.team_id = Some("T3".into());
    rotating.bot_token = Some(BotToken::new("xoxe.xoxb-rotating")); // fake
    rotating.bot_refresh_token = Some(slack_oauth::secret::RefreshToken::new("xoxe-1-r")); // fake
    rotating.bot_token_expires_at = Some(now + time::Duration::hours(12));
    store.save(&rotating).await.unwrap();

    let dry = exchange(&emulator, &database_url, &["--dry-run", "--json"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    let report: serde_json::Value = serde_json::from_str(&stdout(&dry)).unwrap();
    assert_eq!(report["planned"], 3, "{report}");
    assert_eq!(
        report["would_exchange"].as_array().unwrap().len(),
        3,
        "{report}"
    );
    let bot = |store: &SqliteStore, team: &'static str| {
        let store = store.clone();
        async move {
            store
                .find_bot(&InstallationQuery::team(team))
                .await
                .unwrap()
                .unwrap()
        }
    };
    assert_eq!(
        bot(&store, "T1").await.bot_token.secret(),
        bot_token,
        "dry run"
    );

    let done = exchange(&emulator, &database_url, &["--json"]);
    assert_eq!(done.status.code(), Some(1), "T2 failed: {}", stderr(&done));
    let report: serde_json::Value = serde_json::from_str(&stdout(&done)).unwrap();
    assert_eq!(report["exchanged"], 2, "{report}");
    assert_eq!(report["bot_tokens"], 1, "{report}");
    assert_eq!(report["user_tokens"], 2, "{report}");
    let failed = report["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{report}");
    assert_eq!(failed[0]["ids"]["team_id"], "T2");
    assert_eq!(failed[0]["error"], "invalid_token");

    let fresh = bot(&store, "T1").await;
    assert!(fresh.bot_token.secret().starts_with("xoxe.xoxb-"));
    assert!(fresh.bot_refresh_token.is_some() && fresh.bot_token_expires_at.is_some());
    for user in ["U1", "U2"] {
        let installation = store
            .find_installation(&InstallationQuery::team("T1").user(user))
            .await
            .unwrap()
            .unwrap();
        assert!(installation.user_refresh_token.is_some(), "{user}");
        assert!(installation.user_token_expires_at.is_some(), "{user}");
        assert_eq!(installation.bot_token.as_ref(), Some(&fresh.bot_token));
    }
    // The long-lived bot token is still in the history, and still valid until the new pair's
    // first refresh.
    let db = rusqlite::Connection::open(dir.path().join("exchange.db")).unwrap();
    let kept: i64 = db
        .query_row(
            "SELECT count(*) FROM slack_bots WHERE team_id = 'T1' AND bot_token = ?",
            [&bot_token],
            |row| row.get(0),
        )
        .unwrap();
    assert!(kept >= 1, "the old version is kept");
    let client = slack_oauth::Client::builder()
        .base_url(emulator.api_url())
        .build()
        .unwrap();
    client
        .auth_test(&slack_oauth::secret::AccessToken::new(bot_token.clone()))
        .await
        .unwrap();
    let rotated = bot(&store, "T3").await;
    assert_eq!(
        rotated.bot_token.secret(),
        "xoxe.xoxb-rotating",
        "left alone"
    );
    assert!(!stdout(&done).contains("xoxe."), "tokens are never printed");

    let again = exchange(&emulator, &database_url, &["--json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&again)).unwrap();
    assert_eq!(report["planned"], 1, "only T2 is left: {report}");
    emulator.shutdown().await;
}
