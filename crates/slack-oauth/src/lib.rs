//! # slack-oauth
//!
//! Everything a multi-workspace Slack app needs between a user clicking "Add to Slack" and the
//! app holding a valid token for that workspace: the OAuth v2 install flow, installation and state
//! stores (memory, SQLite, PostgreSQL; schemas shared with Python's slack_sdk), token rotation that
//! refreshes each token exactly once even across instances, and per-request authorize.
//!
//! ## Quick start
//!
//! An axum app that installs into any workspace and answers signed, authorized events, with
//! settings from the environment (`SLACK_CLIENT_ID`, `SLACK_CLIENT_SECRET`, `SLACK_SCOPES`,
//! `SLACK_SIGNING_SECRET`; `DATABASE_URL`, default a SQLite file):
//!
//! ```no_run
//! use axum::{routing::post, Router};
//! use slack_oauth::{Authorized, SlackApp};
//!
//! async fn events(auth: Option<Authorized>) -> &'static str {
//!     if let Some(Authorized(result)) = auth {
//!         println!("an event from {:?}; bot token at hand: {}", result.team_id, result.bot_token.is_some());
//!     }
//!     ""
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let slack = SlackApp::from_env().await?;
//!     let app = slack
//!         .install_routes() // GET /slack/install and /slack/oauth_redirect
//!         .merge(slack.authorized(Router::new().route("/slack/events", post(events))));
//!     let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
//!     axum::serve(listener, app).await?;
//!     Ok(())
//! }
//! ```
//!
//! [`SlackApp`] wires the common case; each part below also works alone (another web
//! framework, your own store, a rotation job). The runnable versions are in `examples/`; they
//! run against the local Slack emulator (`slack-oauth emulate`), no Slack workspace needed.
//!
//! ## Module map
//!
//! | module | what it holds |
//! |---|---|
//! | [`app`] | [`SlackApp`]: settings, store, client, flow, authorize and layers wired (feature `axum`) |
//! | [`settings`] | [`OAuthSettings`]: client id and secret, scopes, paths, redirect URLs |
//! | [`flow`] | [`OAuthFlow`]: the install page and the callback, framework-agnostic |
//! | [`axum`](mod@axum) | the flow's routes for axum (feature `axum`) |
//! | [`store`] | [`InstallationStore`](store::InstallationStore), [`StateStore`](store::StateStore) and the stores: [`MemoryStore`], [`SqliteStore`], [`PostgresStore`], [`AnyStore`] |
//! | [`installation`] | [`Installation`] and [`Bot`]: what an install leaves |
//! | [`authorize`] | [`Authorizer`], [`CachedStore`] and the axum [`AuthorizeLayer`](authorize::AuthorizeLayer): the tokens for one incoming request |
//! | [`signature`] | Slack request signatures and [`VerifySignatureLayer`](signature::VerifySignatureLayer) |
//! | [`rotation`] | token rotation: lazy ([`Rotation`](rotation::Rotation)) and proactive ([`rotate_all`](rotation::rotate_all)) |
//! | [`api`] | [`Client`]: the Slack Web API methods the flow and rotation call |
//! | [`encryption`] | tokens encrypted at rest (`SLACK_TOKEN_ENCRYPTION_KEYS`) |
//! | [`state`] | the state cookie |
//! | [`secret`] | token and secret types whose `Debug` redacts them |
//! | [`ids`], [`clock`] | typed Slack ids; the clock rotation and expiry read |
//! | [`telemetry`] | the metrics recorded through the `metrics` facade (names and labels) |
//!
//! The design, the life of an install, a refresh and an authorize call, and every deliberate
//! difference from Python's slack_sdk / slack_bolt are in the repository's `docs/` folder.
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
#[cfg(feature = "axum")]
pub mod app;
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
pub mod telemetry;

// The types nearly every app names, at the root.
pub use api::Client;
#[cfg(feature = "axum")]
pub use app::SlackApp;
#[cfg(feature = "axum")]
pub use authorize::Authorized;
pub use authorize::{Authorizer, CachedStore};
pub use flow::OAuthFlow;
pub use installation::{Bot, Installation};
pub use settings::OAuthSettings;
#[cfg(feature = "postgres")]
pub use store::PostgresStore;
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;
pub use store::{AnyStore, MemoryStore};

// Every log line and panic of the unit tests goes to the secret scan (S7).
#[cfg(test)]
slack_oauth_test::capture_logs!();
