//! # slack-emulator
//!
//! A local stand-in for **Slack's OAuth side**, for tests, benchmarks and `slack-oauth demo`. It
//! serves, on a loopback port:
//!
//! | path | what it does |
//! |---|---|
//! | `GET /oauth/v2/authorize` | the approve page (or, with auto-approve, a redirect with a code) |
//! | `POST /oauth/v2/authorize/approve` | the page's "Allow" button |
//! | `/api/oauth.v2.access` | code redemption and refresh-token rotation |
//! | `/api/oauth.v2.exchange` | long-lived token → rotating pair |
//! | `/api/auth.test` | token check |
//! | `/api/auth.revoke` | revokes one token |
//!
//! It speaks Slack's wire protocol from the server side (form bodies, HTTP Basic client
//! credentials, `ok:false` with HTTP 200, `Retry-After` on 429) and does not depend on the
//! `slack-oauth` crate. It is not a full Slack: there are no other Web API methods, events or
//! workspaces with channels. See the crate README for every behaviour it pins down where Slack's
//! documentation is silent.
//!
//! Tests can script failures ([`Emulator::inject`]), move the emulator's clock
//! ([`Emulator::advance_clock`]) and read what it saw ([`Emulator::counters`]).
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use slack_emulator::{Emulator, EmulatorConfig, Grant};
//!
//! let emulator = Emulator::spawn(EmulatorConfig::default()).await?;
//! let code = emulator.issue_code(Grant::default(), Some("https://app.test/slack/oauth_redirect"));
//! let response: serde_json::Value = reqwest::Client::new()
//!     .post(format!("{}oauth.v2.access", emulator.api_url()))
//!     .basic_auth("111.222", Some("secret"))
//!     .form(&[("code", code.as_str()), ("redirect_uri", "https://app.test/slack/oauth_redirect")])
//!     .send()
//!     .await?
//!     .json()
//!     .await?;
//! assert_eq!(response["ok"], true);
//! assert_eq!(response["team"]["id"], "T0EMULATOR");
//! assert!(response["access_token"].as_str().unwrap().starts_with("xoxb-"));
//! assert_eq!(emulator.counters().codes_redeemed, 1);
//! emulator.shutdown().await;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
#![cfg_attr(not(test), forbid(unsafe_code))]

mod api;
mod authorize;
mod config;
mod faults;
mod methods;
mod server;
mod state;
mod tokens;

pub use config::{EmulatorConfig, Grant, InstallKind};
pub use faults::{Fault, ANY_METHOD};
pub use server::Emulator;
pub use state::{Counters, Presentation, RefreshTokenStatus, TokenGeneration};
pub use tokens::refresh_token_key;

// Every log line and panic of the unit tests goes to the secret scan (S7).
#[cfg(test)]
slack_oauth_test::capture_logs!();
