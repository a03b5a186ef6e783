//! The install flow (`slack_oauth::flow` and `slack_oauth::axum::routes`).
//!
//! - `router`: every install and callback branch through the axum router with
//!   `tower::ServiceExt::oneshot` (no socket, a fake store, a manual clock): statuses, reasons,
//!   pages, headers, the state cookie's deletion on every outcome, redirects, custom handlers.
//! - `emulator`: the code exchange over real HTTP against `slack_emulator`, with `MemoryStore`:
//!   full installs (workspace, org-wide, user-only), Slack's failures, storage failures, replays,
//!   expiry, and one browser-like walk over real sockets.

mod fixtures;

mod emulator;
mod router;
