//! Store tests: the conformance suite on every backend, plus backend-specific tests.
//!
//! - `memory`: the suite on `MemoryStore`.
//! - `sqlite`: the suite on `SqliteStore` (a fresh WAL file under `target/test-dbs/` per test),
//!   column encodings, rows written the way Python writes them, Python's own DDL, concurrency.
//! - `interop`: real Python `slack_sdk` and this crate sharing one SQLite file, both ways.
//! - `postgres`: `PostgresStore` against a real server (see that module).

// Every log line and panic of this test process goes to the secret scan (S7).
slack_oauth_test::capture_logs!();

#[cfg(feature = "sqlite")]
mod interop;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
