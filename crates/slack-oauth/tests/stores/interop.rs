//! Real Python `slack_sdk==3.43.0` and `SqliteStore` sharing one SQLite file, both ways.
//!
//! The venv comes from `scripts/py-venv.sh` (under `target/py-venv`). When it cannot be set up
//! (no pip, no PyPI), the tests print `SKIPPED: python interop: <reason>` and pass, except under
//! `CI=true`, where they fail. The Python side is `interop.py` next to this file.
//!
//! Expected values come from `MemoryStore` given the same installations: it is the reference
//! implementation of the store semantics (it passes the conformance suite).

use std::path::{Path, PathBuf};
use std::process::Command;

use slack_oauth::installation::{Bot, Installation};
use slack_oauth::secret::StateValue;
use slack_oauth::store::{
    InstallationQuery, InstallationStore, MemoryStore, SqliteStore, StateStore,
};
use slack_oauth_test::assert::{same_bot, same_installation};
use slack_oauth_test::fixtures::{self, at, now, CLIENT_ID};
use slack_oauth_test::sqlite::temporary_path;
use time::{Duration, OffsetDateTime};

const SCRIPT: &str = include_str!("interop.py");

/// The venv's python, or `None` after a loud `SKIPPED` (a failure under `CI=true`).
fn python() -> Option<Python> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new("bash")
        .arg(workspace.join("scripts/py-venv.sh"))
        .output();
    let reason = match output {
        Ok(output) if output.status.success() => {
            let python = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            return Some(Python {
                python: PathBuf::from(python),
            });
        }
        Ok(output) => format!(
            "scripts/py-venv.sh failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(error) => format!("cannot run scripts/py-venv.sh: {error}"),
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "python interop cannot run under CI=true: {reason}"
    );
    slack_oauth_test::skip(&format!("python interop: {reason}"));
    None
}

struct Python {
    python: PathBuf,
}

impl Python {
    /// Runs `interop.py` with `args`; returns its stdout.
    fn run(&self, args: &[&str]) -> String {
        let output = Command::new(&self.python)
            .arg("-c")
            .arg(SCRIPT)
            .args(args)
            .output()
            .expect("cannot run the venv's python");
        assert!(
            output.status.success(),
            "interop.py {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn run_with_json(&self, command: &str, database: &Path, json: &serde_json::Value) -> String {
        let input = temporary_path("interop-input").with_extension("json");
        std::fs::write(&input, json.to_string()).unwrap();
        let output = self.run(&[command, path_str(database), path_str(&input)]);
        let _ = std::fs::remove_file(input);
        output
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// Workspace installs by several users over several generations (rotation, webhooks), a
/// user-only install, an org-wide install, a workspace inside an org, a bot-only install.
fn installations() -> Vec<Installation> {
    vec![
        fixtures::workspace("T1", "U1")
            .with_rotation(at(43_200))
            .with_webhook()
            .installed_at(at(0))
            .build(),
        fixtures::workspace("T1", "U1")
            .generation(1)
            .with_rotation(at(86_400))
            .with_webhook()
            .installed_at(at(1))
            .build(),
        fixtures::workspace("T1", "U2")
            .generation(2)
            .with_rotation(at(90_000))
            .installed_at(at(2))
            .build(),
        fixtures::user_only("T1", "U3")
            .with_rotation(at(70_000))
            .installed_at(at(3))
            .build(),
        fixtures::org_wide("E1", "U4")
            .with_rotation(at(50_000))
            .installed_at(at(4))
            .build(),
        fixtures::workspace("T5", "U5")
            .enterprise("E2")
            .with_webhook()
            .installed_at(at(5))
            .build(),
        fixtures::workspace("T6", "U6")
            .without_user_token()
            .installed_at(at(6))
            .build(),
    ]
}

#[derive(Clone)]
enum Lookup {
    Installation(InstallationQuery),
    Bot(InstallationQuery),
}

fn lookups() -> Vec<Lookup> {
    use Lookup::{Bot, Installation as Inst};
    let t1 = InstallationQuery::team("T1");
    let e1 = InstallationQuery::org("E1");
    let e1_via_team = InstallationQuery {
        is_enterprise_install: true,
        ..InstallationQuery::team("TX").enterprise("E1")
    };
    let t5 = InstallationQuery::team("T5").enterprise("E2");
    let t6 = InstallationQuery::team("T6");
    vec![
        Inst(t1.clone().user("U1")),
        Inst(t1.clone().user("U2")),
        Inst(t1.clone().user("U3")),
        Inst(t1.clone()),
        Bot(t1),
        Inst(e1.clone()),
        Inst(e1.clone().user("U4")),
        Inst(e1_via_team.clone()),
        Bot(e1),
        Bot(e1_via_team),
        Inst(t5.clone()),
        Inst(t5.clone().user("U5")),
        Bot(t5),
        Inst(t6.clone().user("U6")),
        Bot(t6),
    ]
}

fn lookups_json(lookups: &[Lookup]) -> serde_json::Value {
    lookups
        .iter()
        .map(|lookup| {
            let (kind, q) = match lookup {
                Lookup::Installation(q) => ("installation", q),
                Lookup::Bot(q) => ("bot", q),
            };
            serde_json::json!({
                "kind": kind,
                "enterprise_id": q.enterprise_id.as_ref().map(|e| e.as_str()),
                "team_id": q.team_id.as_ref().map(|t| t.as_str()),
                "user_id": q.user_id.as_ref().map(|u| u.as_str()),
                "is_enterprise_install": q.is_enterprise_install,
            })
        })
        .collect()
}

#[allow(clippy::large_enum_variant)] // a handful of test values
enum Found {
    Installation(Option<Installation>),
    Bot(Option<Bot>),
}

async fn find_all<S: InstallationStore>(store: &S, lookups: &[Lookup]) -> Vec<Found> {
    let mut found = Vec::new();
    for lookup in lookups {
        found.push(match lookup {
            Lookup::Installation(q) => {
                Found::Installation(store.find_installation(q).await.unwrap())
            }
            Lookup::Bot(q) => Found::Bot(store.find_bot(q).await.unwrap()),
        });
    }
    found
}

async fn reference() -> MemoryStore {
    let store = MemoryStore::new();
    for installation in installations() {
        store.save(&installation).await.unwrap();
    }
    store
}

/// Compares what was found with what was expected, lookup by lookup. `installed_at` is
/// checked against `window` when given (Python stamps rows with the database's clock), exactly
/// otherwise.
fn compare(
    lookups: &[Lookup],
    actual: Vec<Found>,
    expected: Vec<Found>,
    who: &str,
    window: Option<(OffsetDateTime, OffsetDateTime)>,
) {
    for ((lookup, actual), expected) in lookups.iter().zip(actual).zip(expected) {
        let query = match lookup {
            Lookup::Installation(q) | Lookup::Bot(q) => q,
        };
        let context = format!("{who}: {query:?}");
        match (actual, expected) {
            (Found::Installation(Some(actual)), Found::Installation(Some(mut expected))) => {
                if let Some((from, to)) = window {
                    assert!(
                        from <= actual.installed_at && actual.installed_at <= to,
                        "{context}: installed_at {} outside the save window",
                        actual.installed_at
                    );
                    expected.installed_at = actual.installed_at;
                }
                same_installation(&actual, &expected, &context);
            }
            (Found::Bot(Some(actual)), Found::Bot(Some(mut expected))) => {
                if let Some((from, to)) = window {
                    assert!(
                        from <= actual.installed_at && actual.installed_at <= to,
                        "{context}: bot installed_at outside the save window"
                    );
                    expected.installed_at = actual.installed_at;
                }
                same_bot(&actual, &expected, &context);
            }
            (Found::Installation(a), Found::Installation(e)) => panic!(
                "{context}: found {} installation, expected {}",
                a.is_some(),
                e.is_some()
            ),
            (Found::Bot(a), Found::Bot(e)) => panic!(
                "{context}: found {} bot, expected {}",
                a.is_some(),
                e.is_some()
            ),
            _ => unreachable!("lookups and results line up"),
        }
    }
}

/// A database file as slack-oauth 0.1 left it (sqlx's `_sqlx_migrations`, no `user_version`).
async fn earlier_release_file() -> PathBuf {
    let url = slack_oauth_test::sqlite::earlier_release_database(false).await;
    PathBuf::from(url.trim_start_matches("sqlite://"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_reads_what_python_saved() {
    rust_reads_what_python_saved_in(temporary_path("python-saved")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_reads_what_python_saved_in_an_earlier_release_database() {
    rust_reads_what_python_saved_in(earlier_release_file().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_reads_what_rust_saved() {
    python_reads_what_rust_saved_in(temporary_path("rust-saved")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_reads_what_rust_saved_in_an_earlier_release_database() {
    python_reads_what_rust_saved_in(earlier_release_file().await).await;
}

async fn rust_reads_what_python_saved_in(database: PathBuf) {
    let Some(python) = python() else { return };
    let json = serde_json::to_value(installations()).unwrap();
    let start = now() - Duration::seconds(1);
    python.run_with_json("save", &database, &json);
    let end = now() + Duration::seconds(2);

    let store = SqliteStore::connect(&format!("sqlite://{}", database.display()), CLIENT_ID)
        .await
        .unwrap();
    let lookups = lookups();
    let actual = find_all(&store, &lookups).await;
    let expected = find_all(&reference().await, &lookups).await;
    compare(
        &lookups,
        actual,
        expected,
        "SqliteStore on Python's rows",
        Some((start, end)),
    );

    // Python issues a state into the same file; we accept it once.
    let state = python.run(&["issue", path_str(&database)]);
    let state = StateValue::new(state.trim());
    assert!(
        store.consume(&state, now()).await.unwrap(),
        "a state Python issued"
    );
    assert!(
        !store.consume(&state, now()).await.unwrap(),
        "and only once"
    );
}

async fn python_reads_what_rust_saved_in(database: PathBuf) {
    let Some(python) = python() else { return };
    let store = SqliteStore::connect(&format!("sqlite://{}", database.display()), CLIENT_ID)
        .await
        .unwrap();
    for installation in installations() {
        store.save(&installation).await.unwrap();
    }
    let lookups = lookups();
    let output = python.run_with_json("find", &database, &lookups_json(&lookups));
    let results: Vec<serde_json::Value> = serde_json::from_str(&output).unwrap();
    let actual = lookups
        .iter()
        .zip(results)
        .map(|(lookup, value)| match lookup {
            Lookup::Installation(_) => Found::Installation(serde_json::from_value(value).unwrap()),
            Lookup::Bot(_) => Found::Bot(serde_json::from_value(value).unwrap()),
        })
        .collect();
    // slack_sdk 3.43.0 merges the bot only into user lookups; a workspace lookup returns the
    // latest row as saved (here T1's user-only install, without a bot token).
    let mut expected = find_all(&reference().await, &lookups).await;
    let raw = installations();
    for (lookup, expected) in lookups.iter().zip(expected.iter_mut()) {
        if let (Lookup::Installation(q), Found::Installation(Some(found))) =
            (lookup, &mut *expected)
        {
            if q.user_id.is_none() {
                *found = raw
                    .iter()
                    .rev()
                    .find(|i| {
                        i.user_id == found.user_id
                            && i.team_id == found.team_id
                            && i.enterprise_id == found.enterprise_id
                    })
                    .cloned()
                    .unwrap();
            }
        }
    }
    compare(
        &lookups,
        actual,
        expected,
        "slack_sdk on SqliteStore's rows",
        None,
    );

    // We issue a state; Python accepts it once. Python issues one; we accept it.
    let ours = store.issue(now() + Duration::minutes(10)).await.unwrap();
    assert_eq!(
        python
            .run(&["consume", path_str(&database), ours.secret()])
            .trim(),
        "true"
    );
    assert_eq!(
        python
            .run(&["consume", path_str(&database), ours.secret()])
            .trim(),
        "false"
    );
    let theirs = StateValue::new(python.run(&["issue", path_str(&database)]).trim());
    assert!(
        store.consume(&theirs, now()).await.unwrap(),
        "a state Python issued"
    );
}
