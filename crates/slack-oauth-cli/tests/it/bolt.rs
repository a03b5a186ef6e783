//! A real Bolt for Python app beside `slack-oauth serve` (issue #13): slack_sdk's installation
//! store on the same database, no rotation of its own, answering signed events from several
//! workspaces while `serve` installs them and rotates their tokens (the emulator's tokens live
//! a few seconds). Every event must be handled with a live token.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use slack_emulator::{Emulator, EmulatorConfig, Grant};
use slack_oauth::secret::SigningSecret;

use crate::serve::{install, serve_command, CLIENT_ID, CLIENT_SECRET};
use crate::support::{free_port, Spawned};

const SIGNING_SECRET: &str = "bolt-signing-secret-S3NT1N3L";
const WORKSPACES: usize = 4;
/// How long events are sent: several token lifetimes.
const SENDING_FOR: Duration = Duration::from_secs(12);

/// The interop venv's python with slack_bolt, or `None` after a loud SKIPPED (a failure
/// under `CI=true`).
fn bolt_python() -> Option<String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new("bash")
        .arg(workspace.join("scripts/py-venv.sh"))
        .args([
            "slack_bolt==1.21.3",
            "SQLAlchemy==2.0.36",
            "psycopg2-binary==2.9.10",
        ])
        .output();
    let reason = match output {
        Ok(output) if output.status.success() => {
            return Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
        }
        Ok(output) => format!(
            "scripts/py-venv.sh failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(error) => format!("cannot run scripts/py-venv.sh: {error}"),
    };
    slack_oauth_test::skip(&format!("Bolt for Python beside serve: {reason}"));
    None
}

/// Runs the scenario with `serve` on `serve_database` and Bolt on `bolt_database` (the same
/// database, as each names it).
async fn bolt_beside_serve(serve_database: &str, bolt_database: &str) {
    let Some(python) = bolt_python() else {
        return;
    };
    let emulator = Emulator::spawn(EmulatorConfig {
        client_id: Some(CLIENT_ID.to_owned()),
        client_secret: Some(CLIENT_SECRET.to_owned()),
        rotation: true,
        token_ttl: Duration::from_secs(4),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let server = Spawned::start(
        serve_command(&emulator.url(), free_port(), serve_database)
            // Every token expires within the window: each pass (every second) rotates them all.
            .args(["--rotate-every", "1s", "--minutes-before-expiration", "1"]),
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let teams: Vec<String> = (0..WORKSPACES).map(|n| format!("T0BOLT{n}")).collect();
    for team in &teams {
        emulator.set_default_grant(Grant::for_team(team.as_str()));
        install(&http, &server.url).await;
    }

    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.txt");
    let bolt_port = free_port();
    let _bolt = Spawned::start(
        Command::new(&python)
            .arg("-c")
            .arg(include_str!("bolt_app.py"))
            .env("BOLT_DATABASE", bolt_database)
            .env("BOLT_PORT", bolt_port.to_string())
            .env("RESULTS", &results)
            .env("SLACK_CLIENT_ID", CLIENT_ID)
            .env("SLACK_SIGNING_SECRET", SIGNING_SECRET)
            .env("SLACK_API_URL", emulator.api_url())
            .stderr(std::fs::File::create(dir.path().join("bolt.log")).unwrap()),
    );
    let bolt_log = || std::fs::read_to_string(dir.path().join("bolt.log")).unwrap_or_default();
    let events_url = format!("http://127.0.0.1:{bolt_port}/slack/events");
    let secret = SigningSecret::new(SIGNING_SECRET);
    let refreshes_before = emulator.counters().refreshes_served;
    let started = Instant::now();
    let mut sent = 0;
    while started.elapsed() < SENDING_FOR {
        for team in &teams {
            let body = serde_json::json!({
                "type": "event_callback",
                "team_id": team,
                "api_app_id": "A0EMULATOR",
                "event": {"type": "app_mention", "user": "U0EMULATOR", "text": "hi",
                          "channel": "C1", "ts": "1.0"},
                "event_id": format!("Ev{sent}"),
                "event_time": 1,
            })
            .to_string();
            let timestamp = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
            let signature = slack_oauth::signature::sign(&secret, &timestamp, body.as_bytes());
            // The app binds its port just after printing it: retry a refused connection.
            let deadline = Instant::now() + Duration::from_secs(10);
            let answer = loop {
                let sent_request = http
                    .post(&events_url)
                    .header("content-type", "application/json")
                    .header("x-slack-request-timestamp", &timestamp)
                    .header("x-slack-signature", &signature)
                    .body(body.clone())
                    .send()
                    .await;
                match sent_request {
                    Ok(answer) => break answer,
                    Err(error) if error.is_connect() && Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(error) => panic!("the Bolt app did not answer: {error}"),
                }
            };
            assert_eq!(
                answer.status(),
                200,
                "event {sent} for {team}; the app's log:\n{}",
                bolt_log()
            );
            sent += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rotated = emulator.counters().refreshes_served - refreshes_before;
    assert!(
        rotated >= (WORKSPACES * 5) as u64,
        "serve rotated only {rotated} tokens while the events ran"
    );
    let lines = std::fs::read_to_string(&results).unwrap();
    let failures: Vec<&str> = lines
        .lines()
        .filter(|line| !line.ends_with(" ok"))
        .collect();
    assert!(
        failures.is_empty(),
        "events handled with a dead token: {failures:?}"
    );
    assert_eq!(
        lines.lines().count(),
        sent,
        "every event reached the listener"
    );
    println!(
        "Bolt beside serve: {sent} events from {WORKSPACES} workspaces handled with live tokens, \
         {rotated} tokens rotated meanwhile, 0 failures"
    );
    assert_eq!(server.terminate().code(), Some(0));
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bolt_for_python_beside_serve_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    bolt_beside_serve(
        &format!("sqlite://{}", path.display()),
        path.to_str().unwrap(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bolt_for_python_beside_serve_on_postgres() {
    let Some(database) = crate::serve::FreshDatabase::create().await else {
        return;
    };
    let python_url = database.url.replacen("postgres://", "postgresql://", 1);
    bolt_beside_serve(&database.url, &python_url).await;
}
