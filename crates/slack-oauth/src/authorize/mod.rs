//! Per-request authorize: find the tokens for an incoming Slack request, refresh them when they
//! are about to expire, and clean up on `app_uninstalled` / `tokens_revoked`.
//!
//! [`Authorizer`] resolves an [`AuthorizeRequest`] (the org, workspace and user ids of a request)
//! to an [`AuthorizeResult`] the way slack_bolt's `InstallationStoreAuthorize` does, with these
//! deliberate differences:
//!
//! - **No `auth.test` per request.** Bolt calls `auth.test` once or twice for every request to
//!   learn the bot id, bot user id and user id. They are stored with the installation, so the
//!   result is built from the store alone: one store lookup (two when a non-installer has their
//!   own installation) and no network call.
//! - **Each token is refreshed at most once per authorize** (Bolt's W2 refreshes the bot token
//!   twice and fails the request). The workspace's installation is refreshed once and the result
//!   reused.
//! - **Nothing is written back with fields removed** (Bolt's W3 wipes the installer's user token
//!   when another user's request triggers a rotation). The authorizer never saves: refreshed tokens
//!   are persisted by the [`TokenRefresher`] (token rotation updates them in place).
//! - **A request with no user gets no user token** (Bolt's W40 hands such requests the installer's
//!   user token). [`Authorizer::user_token_for_userless_requests`] restores Bolt's behaviour.
//!
//! Token refresh is pluggable through [`TokenRefresher`]; without one, tokens are returned as
//! stored (an expiring one with a warning).

mod authorizer;
mod cache;
mod coalesce;
mod error;
mod incoming;
#[cfg(feature = "axum")]
mod layer;
pub mod lifecycle;
mod refresher;
mod request;

pub use authorizer::{Authorizer, UserTokenResolution, DEFAULT_REFRESH_WINDOW};
pub use cache::{
    CachedStore, DEFAULT_CACHE_CAPACITY, DEFAULT_CACHE_TTL, DEFAULT_NEGATIVE_CACHE_TTL,
};
pub use error::AuthorizeError;
pub use incoming::{Incoming, IncomingError};
#[cfg(feature = "axum")]
pub use layer::{Authorize, AuthorizeLayer, Authorized, REINSTALL_MESSAGE};
pub use refresher::{NoRefresher, RefreshError, TokenRefresher};
pub use request::{AuthorizeRequest, AuthorizeResult};
