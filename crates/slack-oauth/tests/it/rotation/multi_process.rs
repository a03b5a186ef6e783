//! Several processes rotate one stored installation at once (SQLite file, PostgreSQL): each
//! token is refreshed exactly once.
//!
//! The workers are this test binary itself, run as
//! `it --exact rotation::multi_process::worker --nocapture --include-ignored` with the
//! `ROTATION_WORKER_*` variables set; without them the (ignored) worker test does nothing. Each
//! worker prints one `ROTATION_RESULT <bot key> <user key>` line, the emulator's key (a hash) of
//! the refresh tokens it ended up with.

use std::process::Stdio;
use std::time::Duration;

use slack_emulator::refresh_token_key;
use slack_oauth::api::{Client, ClientCredentials};
use slack_oauth::installation::Installation;
use slack_oauth::rotation::{Rotation, TokenRotator};
use slack_oauth::store::{AnyStore, InstallationQuery, InstallationStore};

use super::{assert_refresh_tokens_live, long_ago, rotating_emulator, rotating_installation};
use crate::support;

const WORKER_TEST: &str = "rotation::multi_process::worker";

/// Runs `processes` worker processes of `callers` concurrent rotations each on the store at
/// `store_url` (an `AnyStore` URL; for PostgreSQL, `schema` too) and checks the outcome: one
/// redemption per token, every caller with the stored token, both refresh tokens live.
pub(super) async fn processes_rotate_once(
    store: AnyStore,
    store_url: &str,
    schema: Option<&str>,
    processes: usize,
    callers: usize,
) {
    let emulator = rotating_emulator().await;
    let installation = rotating_installation(&emulator, "T1", "U1", long_ago());
    store.save(&installation).await.unwrap();
    let mut workers = Vec::new();
    for _ in 0..processes {
        let mut command = tokio::process::Command::new(std::env::current_exe().unwrap());
        command
            .args(["--exact", WORKER_TEST, "--nocapture", "--include-ignored"])
            .env("ROTATION_WORKER_STORE", store_url)
            .env("ROTATION_WORKER_SCHEMA", schema.unwrap_or(""))
            .env("ROTATION_WORKER_API", emulator.api_url())
            .env(
                "ROTATION_WORKER_INSTALLATION",
                serde_json::to_string(&installation).unwrap(),
            )
            .env("ROTATION_WORKER_CALLERS", callers.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        workers.push(Worker::spawn(command).await);
    }
    // Every worker is connected and waiting: start them together.
    for worker in &mut workers {
        worker.go().await;
    }
    let mut results = Vec::new();
    for worker in workers {
        results.push(worker.result().await);
    }
    let counters = emulator.counters();
    assert_eq!(counters.refreshes_served, 2, "one refresh per token");
    assert_eq!(counters.spent_refresh_token_reuse, 0);
    assert!(counters.refresh_redemptions.values().all(|n| *n == 1));
    assert!(results.iter().all(|r| *r == results[0]), "{results:?}");
    let stored = store
        .find_installation(&InstallationQuery::for_installation(&installation))
        .await
        .unwrap()
        .unwrap();
    let keys = |i: &Installation| {
        format!(
            "{} {}",
            refresh_token_key(i.bot_refresh_token.as_ref().unwrap().secret()),
            refresh_token_key(i.user_refresh_token.as_ref().unwrap().secret())
        )
    };
    assert_eq!(
        results[0],
        keys(&stored),
        "every worker got the stored tokens"
    );
    assert_ne!(keys(&stored), keys(&installation));
    assert_refresh_tokens_live(&emulator, &stored).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_rotate_once_sqlite() {
    let path = slack_oauth_test::sqlite::temporary_path("rotation-processes");
    let url = format!("sqlite://{}", path.display());
    let store = AnyStore::connect(&url, support::CLIENT_ID).await.unwrap();
    processes_rotate_once(store, &url, None, 4, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_rotate_once_postgres() {
    let Some(schema) = super::postgres::Schema::new().await else {
        return;
    };
    let store = AnyStore::Postgres(schema.store.clone());
    processes_rotate_once(store, &schema.url, Some(&schema.name), 4, 4).await;
    schema.drop().await;
}

const WORKER_READY: &str = "ROTATION_WORKER_READY";

/// A running worker process: its stdin (for the start signal), its stdout lines, its stderr.
struct Worker {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    stderr: tokio::task::JoinHandle<String>,
    stdout: String,
}

impl Worker {
    /// Spawns `command` and waits (at most a minute) until the worker says it is ready.
    async fn spawn(mut command: tokio::process::Command) -> Self {
        use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _};
        let mut child = command.spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut stderr_pipe = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr_pipe.read_to_string(&mut text).await;
            text
        });
        let mut stdout = String::new();
        let ready = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if line == WORKER_READY {
                    return true;
                }
                stdout.push_str(&line);
                stdout.push('\n');
            }
            false
        })
        .await;
        assert_eq!(ready, Ok(true), "a worker never got ready:\n{stdout}");
        Self {
            child,
            stdin,
            lines,
            stderr,
            stdout,
        }
    }

    async fn go(&mut self) {
        use tokio::io::AsyncWriteExt as _;
        self.stdin.write_all(b"go\n").await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// Waits for the worker to finish; its `ROTATION_RESULT` line.
    async fn result(mut self) -> String {
        let mut result = None;
        while let Some(line) = self.lines.next_line().await.unwrap() {
            if let Some(keys) = line.strip_prefix("ROTATION_RESULT ") {
                result = Some(keys.to_owned());
            }
            self.stdout.push_str(&line);
            self.stdout.push('\n');
        }
        let status = self.child.wait().await.unwrap();
        let stderr = self.stderr.await.unwrap();
        assert!(
            status.success(),
            "a worker failed:\n{}\n{stderr}",
            self.stdout
        );
        result.unwrap_or_else(|| panic!("no result line in:\n{}", self.stdout))
    }
}

/// The worker: acts only when run by [`processes_rotate_once`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a worker process of four_processes_rotate_once_*; does nothing on its own"]
async fn worker() {
    let Ok(store_url) = std::env::var("ROTATION_WORKER_STORE") else {
        return;
    };
    let schema = std::env::var("ROTATION_WORKER_SCHEMA").unwrap();
    let api = std::env::var("ROTATION_WORKER_API").unwrap();
    let installation: Installation =
        serde_json::from_str(&std::env::var("ROTATION_WORKER_INSTALLATION").unwrap()).unwrap();
    let store = if schema.is_empty() {
        AnyStore::connect(&store_url, support::CLIENT_ID)
            .await
            .unwrap()
    } else {
        AnyStore::Postgres(
            slack_oauth::store::PostgresStore::connect_in_schema(
                &store_url,
                support::CLIENT_ID,
                &schema,
            )
            .await
            .unwrap(),
        )
    };
    let client: Client = support::client_builder(&api).build().unwrap();
    let rotator = TokenRotator::new(
        client,
        ClientCredentials::new(support::CLIENT_ID, support::CLIENT_SECRET),
    );
    let rotation = Rotation::new(rotator, store);
    // Connected: say so, then start when the test says go (all workers at once).
    println!("{WORKER_READY}");
    let mut go = String::new();
    tokio::io::AsyncBufReadExt::read_line(
        &mut tokio::io::BufReader::new(tokio::io::stdin()),
        &mut go,
    )
    .await
    .unwrap();
    let callers: usize = std::env::var("ROTATION_WORKER_CALLERS")
        .unwrap()
        .parse()
        .unwrap();
    let calls = (0..callers).map(|_| {
        let rotation = rotation.clone();
        let installation = installation.clone();
        tokio::spawn(async move { rotation.rotate_installation(&installation).await.unwrap() })
    });
    let results: Vec<Installation> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(
        results.iter().all(|r| r.bot_token == results[0].bot_token),
        "every caller of this process got the same token"
    );
    let fresh = &results[0];
    println!(
        "ROTATION_RESULT {} {}",
        refresh_token_key(fresh.bot_refresh_token.as_ref().unwrap().secret()),
        refresh_token_key(fresh.user_refresh_token.as_ref().unwrap().secret())
    );
}
