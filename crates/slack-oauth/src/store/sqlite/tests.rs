//! The writer thread's guarantees: group commit, a bad write failing alone, a failed commit
//! failing its whole group, queued writes surviving their callers, shutdown.

use std::time::Duration;

use futures::FutureExt as _;

use super::statement::{statement, Statement};
use super::SqliteStore;
use crate::store::StoreErrorKind;

async fn store(dir: &tempfile::TempDir) -> SqliteStore {
    let url = format!("sqlite://{}", dir.path().join("writer.db").display());
    SqliteStore::connect(&url, "111.222").await.unwrap()
}

fn lease_names(dir: &tempfile::TempDir) -> Vec<String> {
    let connection = rusqlite::Connection::open(dir.path().join("writer.db")).unwrap();
    let mut statement = connection
        .prepare("SELECT name FROM slack_oauth_leases ORDER BY name")
        .unwrap();
    statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn insert_lease(name: &str) -> Statement<'_> {
    statement!(
        "INSERT INTO slack_oauth_leases (name, holder, expires_at) VALUES (?, 'h', 0)",
        name,
    )
}

/// Many concurrent writers share transactions; each gets its own row counts, and a write that
/// fails inside a group is rolled back alone and reported to its owner with SQLite's error,
/// while the others commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouped_writes_commit_together_and_fail_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let mut tasks = Vec::new();
    for n in 0..200 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("lease-{n:03}");
            if n % 50 == 7 {
                store
                    .write(vec![statement!(
                        "INSERT INTO no_such_table VALUES (?)",
                        name.as_str()
                    )])
                    .await
            } else {
                store.write(vec![insert_lease(&name)]).await
            }
        }));
    }
    let mut failed = 0;
    for (n, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok(changed) => assert_eq!(changed, vec![1], "write {n}"),
            Err(error) => {
                assert_eq!(n % 50, 7, "only the bad writes fail: {error}");
                assert!(error.to_string().contains("no_such_table"), "{error}");
                failed += 1;
            }
        }
    }
    assert_eq!(failed, 4);
    assert_eq!(lease_names(&dir).len(), 196, "every good write committed");
    let commits = store.writer_stats().commits;
    assert!(
        (1..200).contains(&commits),
        "200 concurrent writes were grouped into fewer commits: {commits}"
    );
}

/// A COMMIT that fails (here: a deferred foreign key, checked only at COMMIT; the bundled SQLite
/// enforces foreign keys by default, `SQLITE_DEFAULT_FOREIGN_KEYS=1`) fails every write of its
/// group, and none of them is stored; the next group commits normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_fails_every_write_of_its_group_and_stores_none() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    store
        .write(vec![
            statement!("CREATE TABLE parent (id INTEGER PRIMARY KEY)"),
            statement!(
                "CREATE TABLE child (parent_id INTEGER REFERENCES parent (id) \
                 DEFERRABLE INITIALLY DEFERRED)"
            ),
        ])
        .await
        .unwrap();
    // Queue the writes while the writer is busy, so that they form one group: the writer waits
    // in BEGIN for a lock another connection holds, with a first write.
    let blocker = rusqlite::Connection::open(dir.path().join("writer.db")).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let first = {
        let store = store.clone();
        tokio::spawn(async move { store.write(vec![insert_lease("first")]).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut writes = Vec::new();
    for n in 0..10 {
        let store = store.clone();
        writes.push(tokio::spawn(async move {
            let name = format!("grouped-{n}");
            let mut statements = vec![insert_lease(&name)];
            if n == 5 {
                // Valid as a statement; breaks the constraint only at COMMIT.
                statements.push(statement!("INSERT INTO child (parent_id) VALUES (42)"));
            }
            store.write(statements).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    blocker.execute_batch("COMMIT").unwrap();
    first.await.unwrap().unwrap();
    let mut errors = 0;
    for write in writes {
        if let Err(error) = write.await.unwrap() {
            assert!(error.to_string().contains("committing"), "{error}");
            assert!(error.to_string().contains("FOREIGN KEY"), "{error}");
            errors += 1;
        }
    }
    assert_eq!(
        errors, 10,
        "every write that shared the failed COMMIT failed"
    );
    assert_eq!(
        lease_names(&dir),
        ["first"],
        "none of the failed group is stored"
    );
    store.write(vec![insert_lease("after")]).await.unwrap();
    assert!(lease_names(&dir).contains(&"after".to_owned()));
}

/// A write whose caller went away after it was queued is committed; a write never polled was
/// never started. `close` commits the queue and leaves an empty WAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_writes_outlive_their_callers_and_close_flushes_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let names: Vec<String> = (0..100).map(|n| format!("dropped-{n:03}")).collect();
    for name in &names {
        // One poll sends the write; the future is then dropped without waiting for its commit.
        let _ = store.write(vec![insert_lease(name)]).now_or_never();
    }
    drop(store.write(vec![insert_lease("never-polled")]));
    store.close().await.unwrap();
    assert_eq!(lease_names(&dir), names, "every queued write committed");
    let wal = dir.path().join("writer.db-wal");
    let wal_size = std::fs::metadata(&wal).map_or(0, |m| m.len());
    assert_eq!(wal_size, 0, "close checkpoints and truncates the WAL");
    let error = store.write(vec![insert_lease("late")]).await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Unavailable, "{error}");
    assert!(error.to_string().contains("closed"), "{error}");
    store.close().await.unwrap();
}

/// The writer checkpoints as it goes: the WAL does not grow with the number of writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let wal = dir.path().join("writer.db-wal");
    let mut largest = 0;
    for round in 0..6 {
        for n in 0..1000 {
            store
                .write(vec![insert_lease(&format!("{round}-{n}"))])
                .await
                .unwrap();
        }
        largest = largest.max(std::fs::metadata(&wal).unwrap().len());
    }
    let checkpoints = store
        .engine
        .writer
        .stats()
        .checkpoints
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        checkpoints >= 5,
        "a checkpoint every 1,000 commits: {checkpoints}"
    );
    // 6,000 commits of ~2 pages each without checkpoints: ~50 MB.
    assert!(largest < 20 << 20, "WAL reached {largest} bytes");
}

/// A full disk (here SQLite's `max_page_count`, set low on the writer): every write reports
/// either success, and is stored, or an error, and nothing of it is stored; once there is room
/// again, writes succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_writes_without_storing_any_part_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let pages: i64 = rusqlite::Connection::open(dir.path().join("writer.db"))
        .unwrap()
        .query_row("PRAGMA page_count", [], |row| row.get(0))
        .unwrap();
    // The pragma answers with a row, which `execute` reports as an error after it took effect.
    let limit = pages + 3;
    let _ = store
        .write(vec![Statement::new(
            Box::leak(format!("PRAGMA max_page_count = {limit}").into_boxed_str()),
            [],
        )])
        .await;
    // Each write: a lease row and a 2 KB filler row, in one write: both or neither.
    store
        .write(vec![statement!(
            "CREATE TABLE filler (name TEXT, pad TEXT)"
        )])
        .await
        .unwrap();
    let mut writes = Vec::new();
    for n in 0..40 {
        let store = store.clone();
        writes.push(tokio::spawn(async move {
            let name = format!("full-{n:02}");
            let result = store
                .write(vec![
                    insert_lease(&name),
                    statement!(
                        "INSERT INTO filler VALUES (?, zeroblob(2048))",
                        name.as_str()
                    ),
                ])
                .await;
            (name, result)
        }));
    }
    let mut committed = Vec::new();
    let mut failed = 0;
    for write in writes {
        match write.await.unwrap() {
            (name, Ok(_)) => committed.push(name),
            (_, Err(error)) => {
                assert!(error.to_string().contains("full"), "{error}");
                failed += 1;
            }
        }
    }
    assert!(failed > 0, "the limit was reached");
    committed.sort();
    assert_eq!(
        lease_names(&dir),
        committed,
        "exactly the writes that succeeded are stored"
    );
    let fillers: i64 = rusqlite::Connection::open(dir.path().join("writer.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM filler", [], |row| row.get(0))
        .unwrap();
    assert_eq!(
        fillers,
        i64::try_from(committed.len()).unwrap(),
        "no write half made"
    );
    let _ = store
        .write(vec![Statement::new("PRAGMA max_page_count = 1000000", [])])
        .await;
    store.write(vec![insert_lease("room-again")]).await.unwrap();
}
