//! # slack-oauth
//!
//! Everything a multi-workspace Slack app needs between a user clicking "Add to Slack" and the
//! app holding a valid token for that workspace: the OAuth v2 install flow, installation and state
//! stores (memory, SQLite, PostgreSQL; schemas shared with Python's slack_sdk), token rotation that
//! refreshes each token exactly once even across instances, and per-request authorize.
//!
//! ## Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `sqlite` | yes | `store::SqliteStore` |
//! | `postgres` | yes | `store::PostgresStore` |
//! | `axum` | yes | `axum` routes and layers |
//! | `fuzzing` | no | entry points for the `cargo fuzz` targets in `fuzz/`; not API, never in production |
//! | `failpoints` | no | named crash points (the `fail` crate) in rotation and the stores' commits, for the crash tests; never in production |
#![cfg_attr(not(test), forbid(unsafe_code))]

pub mod api;
pub mod authorize;
#[cfg(feature = "axum")]
pub mod axum;
pub mod clock;
pub mod encryption;
pub mod flow;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod ids;
pub mod installation;
pub mod rotation;
pub mod secret;
pub mod settings;
pub mod signature;
pub mod state;
pub mod store;

// Every log line and panic of the unit tests goes to the secret scan (S7).
#[cfg(test)]
slack_oauth_test::capture_logs!();
