//! The Slack Web API client: `oauth.v2.access`, `auth.test`, `oauth.v2.exchange`, `auth.revoke`.
//!
//! Async, pooled, rustls, redirects off. The base URL is configurable so that tests, benchmarks
//! and `slack-oauth demo` talk to the emulator.

mod builder;
mod client;
mod error;
mod types;
mod wire;
#[cfg(feature = "fuzzing")]
pub(crate) use wire::decode;

pub use builder::ClientBuilder;
pub use client::{Client, DEFAULT_BASE_URL};
pub use error::ApiError;
pub use types::{
    AccessGrant, AuthRevokeResponse, AuthTestResponse, AuthedUser, ClientCredentials,
    IncomingWebhook, NamedRef, OAuthV2AccessResponse,
};
