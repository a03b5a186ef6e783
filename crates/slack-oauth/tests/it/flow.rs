//! The install flow (`slack_oauth::flow` and `slack_oauth::axum::routes`).
//!
//! Every request goes over real HTTP: `fixtures::send` serves the router on a loopback port and
//! sends the request with hyper's client.
//!
//! - `router`: every install and callback branch through the axum router (a fake store with
//!   failure knobs, a manual clock): statuses, reasons, pages, headers, the state cookie's
//!   deletion on every outcome, redirects, custom handlers.
//! - `emulator`: complete installs against `slack_emulator` (its own HTTP server), with
//!   `MemoryStore`: workspace, org-wide, user-only installs, Slack's failures, storage failures,
//!   replays, expiry, and a browser-like walk that keeps its cookies.

pub(crate) mod fixtures;

mod emulator;
mod router;
