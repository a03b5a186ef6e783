//! The conformance suite on every SQLite configuration a user can build: a file, an in-memory
//! database, one with tokens encrypted at rest, and a file whose write lock another process keeps taking (as a Python Bolt app
//! sharing the file would).

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use slack_oauth::store::SqliteStore;
use slack_oauth_test::fixtures::CLIENT_ID;

slack_oauth_test::store_conformance!(file, slack_oauth_test::sqlite::temporary());

slack_oauth_test::store_conformance!(in_memory, async {
    SqliteStore::connect("sqlite::memory:", CLIENT_ID)
        .await
        .expect("an in-memory store")
});

// Tokens encrypted at rest: every case holds with the envelopes in the columns.
slack_oauth_test::store_conformance!(encrypted, async {
    let keys = slack_oauth::encryption::EncryptionKeys::parse(
        "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", // fake
    )
    .expect("a key");
    SqliteStore::connect_encrypted("sqlite::memory:", CLIENT_ID, Some(keys))
        .await
        .expect("an encrypted in-memory store")
});

slack_oauth_test::store_conformance!(file_locked_by_another_process, optional: async {
    let store = slack_oauth_test::sqlite::temporary().await;
    let path = store.path().expect("a file store").to_owned();
    lock_holder(&path).then_some(store)
});

/// Holds the database's write lock 200 ms out of every 250 ms, from a Python process, until
/// the test process exits. Returns once the lock was taken the first time; `false` when
/// Python cannot run here.
fn lock_holder(path: &std::path::Path) -> bool {
    const SCRIPT: &str = r#"
import os, sqlite3, sys, time
parent = os.getppid()
connection = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
first = True
deadline = time.monotonic() + 300
while os.getppid() == parent and time.monotonic() < deadline:
    connection.execute("BEGIN IMMEDIATE")
    if first:
        print("locked", flush=True)
        first = False
    time.sleep(0.2)
    connection.execute("COMMIT")
    time.sleep(0.05)
"#;
    let child = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return false;
    };
    let Some(stdout) = child.stdout.take() else {
        return false;
    };
    let mut line = String::new();
    let started = BufReader::new(stdout).read_line(&mut line).is_ok() && line.trim() == "locked";
    // The child exits on its own when this test process does (its parent changes).
    std::mem::forget(child);
    started
}
