//! Integration tests of the `slack-oauth` binary, spawned as a process.
//!
//! - `abuse`: S10, garbage at install and callback: memory, states and panics bounded.
//! - `bolt`: a real Bolt for Python app beside `serve` on one database (SQLite, PostgreSQL):
//!   every event handled with a live token while `serve` rotates them.
//! - `basics`: `--help`, `--version`, usage and configuration errors (exit code 2).
//! - `demo`: the demo's install URL, through the approve page, then `installations list`.
//! - `emulate`: the emulator as a process.
//! - `env`: flags and their environment variables: precedence, blank variables, `--help`.
//! - `exchange`: long-lived tokens made rotating (`oauth.v2.exchange`) on a SQLite file.
//! - `production`: `serve`'s background rotation, `/metrics`, `/healthz` and `/readyz`, JSON logs.
//! - `rotate`: batch rotation against a spawned emulator on a SQLite file.
//! - `serve`: a full install over HTTP against a spawned emulator, then `installations`, then
//!   graceful shutdown.

// Every log line and panic of this test process goes to the secret scan (S7).
slack_oauth_test::capture_logs!();

mod abuse;
mod basics;
mod bolt;
mod demo;
mod emulate;
mod env;
mod exchange;
mod production;
mod rotate;
mod serve;
mod support;
