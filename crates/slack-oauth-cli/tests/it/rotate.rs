//! `slack-oauth rotate` against a spawned emulator, on a SQLite file.

use slack_emulator::{Emulator, EmulatorConfig, Grant};
use slack_oauth::installation::Installation;
use slack_oauth::secret::{BotToken, RefreshToken, UserToken};
use slack_oauth::store::{InstallationQuery, InstallationStore, SqliteStore};
use time::OffsetDateTime;

use super::support::{command, run, stderr, stdout};

const CLIENT_ID: &str = "111.222";
const CLIENT_SECRET: &str = "rotate-secret-S3NT1N3L";

struct Setup {
    emulator: Emulator,
    database_url: String,
    _dir: tempfile::TempDir,
}

async fn setup(bot_refresh: Option<&str>) -> (Setup, SqliteStore) {
    let emulator = Emulator::spawn(EmulatorConfig {
        client_id: Some(CLIENT_ID.to_owned()),
        client_secret: Some(CLIENT_SECRET.to_owned()),
        rotation: true,
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let grant = Grant::default();
    let (bot_token, live_bot_refresh) = emulator.seed_refresh_token(&grant, false);
    let (user_token, user_refresh) = emulator.seed_refresh_token(&grant, true);
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("rotate.db").display());
    let store = SqliteStore::connect(&database_url, CLIENT_ID)
        .await
        .unwrap();
    let now = OffsetDateTime::now_utc();
    let soon = now + time::Duration::minutes(10);
    let mut installation = Installation::new(grant.user_id.as_str(), now);
    installation.team_id = Some(grant.team_id.as_str().into());
    installation.app_id = Some(grant.app_id.as_str().into());
    installation.bot_token = Some(BotToken::new(bot_token));
    installation.bot_refresh_token = Some(RefreshToken::new(
        bot_refresh.map_or(live_bot_refresh, str::to_owned),
    ));
    installation.bot_token_expires_at = Some(soon);
    installation.user_token = Some(UserToken::new(user_token));
    installation.user_refresh_token = Some(RefreshToken::new(user_refresh));
    installation.user_token_expires_at = Some(soon);
    store.save(&installation).await.unwrap();
    let setup = Setup {
        emulator,
        database_url,
        _dir: dir,
    };
    (setup, store)
}

fn rotate(setup: &Setup, args: &[&str]) -> std::process::Output {
    run(command()
        .arg("rotate")
        .args(args)
        .env("SLACK_CLIENT_ID", CLIENT_ID)
        .env("SLACK_CLIENT_SECRET", CLIENT_SECRET)
        .env("SLACK_API_URL", setup.emulator.api_url())
        .env("DATABASE_URL", &setup.database_url))
}

async fn stored_bot_token(store: &SqliteStore) -> String {
    let query = InstallationQuery::team(Grant::default().team_id.as_str());
    let found = store.find_installation(&query).await.unwrap().unwrap();
    found.bot_token.unwrap().secret().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_then_rotate_then_nothing_left() {
    let (setup, store) = setup(None).await;
    let before = stored_bot_token(&store).await;

    let dry = rotate(&setup, &["--dry-run", "--json"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    let report: serde_json::Value = serde_json::from_str(&stdout(&dry)).unwrap();
    assert_eq!(
        report["would_rotate"].as_array().unwrap().len(),
        1,
        "{report}"
    );
    assert_eq!(setup.emulator.counters().refreshes_served, 0);
    assert_eq!(stored_bot_token(&store).await, before);

    let done = rotate(&setup, &["--json"]);
    assert!(done.status.success(), "{}", stderr(&done));
    let report: serde_json::Value = serde_json::from_str(&stdout(&done)).unwrap();
    assert_eq!(report["rotated"], 1, "{report}");
    assert_eq!(report["bot_tokens"], 1, "{report}");
    assert_eq!(report["user_tokens"], 1, "{report}");
    assert_eq!(setup.emulator.counters().refreshes_served, 2);
    let after = stored_bot_token(&store).await;
    assert_ne!(after, before);
    assert!(!stdout(&done).contains(&after), "tokens are never printed");

    let again = rotate(&setup, &[]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stdout(&again).starts_with("0 due"), "{}", stdout(&again));
    assert_eq!(setup.emulator.counters().refreshes_served, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_refresh_token_is_marked_reported_and_never_sent_again() {
    let (setup, _store) = setup(Some("xoxe-1-not-a-live-token")).await;
    let output = rotate(&setup, &["--json"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["needs_reinstall"], 1, "{report}");
    assert_eq!(
        report["needs_reinstall_installations"][0]["reason"], "invalid_refresh_token",
        "{report}"
    );
    assert_eq!(report["needs_reinstall_installations"][0]["token"], "bot");
    let calls = setup
        .emulator
        .counters()
        .calls
        .get("oauth.v2.access")
        .copied();

    // Listed as needing a reinstall, with the reason; every row says whether it does.
    let listed = run(command()
        .args(["installations", "list", "--json", "--needs-reinstall"])
        .env("DATABASE_URL", &setup.database_url));
    assert!(listed.status.success(), "{}", stderr(&listed));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&listed)).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["needs_reinstall"], true);
    assert_eq!(rows[0]["needs_reinstall_reason"], "invalid_refresh_token");

    // The next run reports it again (exit 1) without sending the dead token; the text form
    // names it.
    let again = rotate(&setup, &[]);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("needs reinstall")
            && stdout(&again).contains("invalid_refresh_token"),
        "{}",
        stdout(&again)
    );
    assert_eq!(
        setup
            .emulator
            .counters()
            .calls
            .get("oauth.v2.access")
            .copied(),
        calls,
        "a marked token is never sent again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_json_row_carries_needs_reinstall() {
    let (setup, _store) = setup(None).await;
    let listed = run(command()
        .args(["installations", "list", "--json"])
        .env("DATABASE_URL", &setup.database_url));
    assert!(listed.status.success(), "{}", stderr(&listed));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&listed)).unwrap();
    assert_eq!(rows[0]["needs_reinstall"], false, "{rows}");
    let none = run(command()
        .args(["installations", "list", "--json", "--needs-reinstall"])
        .env("DATABASE_URL", &setup.database_url));
    assert_eq!(stdout(&none).trim(), "[]");
}

#[test]
fn slack_timeout_must_be_a_sane_number_of_seconds() {
    for bad in ["0", "abc", "601"] {
        let output = run(command().args(["rotate", "--slack-timeout", bad]));
        assert_eq!(output.status.code(), Some(2), "{bad}: {}", stderr(&output));
        assert!(
            stderr(&output).contains("--slack-timeout"),
            "{}",
            stderr(&output)
        );
    }
}

#[test]
fn missing_credentials_are_a_usage_error() {
    let output = run(command().arg("rotate").env("SLACK_CLIENT_ID", CLIENT_ID));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("SLACK_CLIENT_SECRET"),
        "{}",
        stderr(&output)
    );
}
