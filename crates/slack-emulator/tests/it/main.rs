//! Integration tests of the emulator over real HTTP (reqwest against a loopback server).
//!
//! - `authorize`: the authorize page, approve/cancel redirects, auto-approve, PKCE.
//! - `access`: `oauth.v2.access` code redemption: credentials, single use, shapes.
//! - `rotation`: refresh tokens: rotation, grace, reuse, family revocation, limits.
//! - `tokens`: `auth.test`, `oauth.v2.exchange`, `auth.revoke`.
//! - `faults`: injected faults and latency.
//! - `robustness`: concurrency, hostile input, counters, lifecycle.

// Every log line and panic of this test process goes to the secret scan (S7).
slack_oauth_test::capture_logs!();

mod access;
mod authorize;
mod faults;
mod robustness;
mod rotation;
mod support;
mod tokens;
