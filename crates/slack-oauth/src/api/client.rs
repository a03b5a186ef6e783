//! `Client`: HTTP plumbing for the Web API methods.
// CONTRACT SKELETON: the api helper replaces the bodies; signatures are fixed.

use std::time::Duration;

use url::Url;

use super::{
    AccessGrant, ApiError, AuthRevokeResponse, AuthTestResponse, ClientCredentials,
    OAuthV2AccessResponse,
};
use crate::secret::AccessToken;

/// Slack's Web API base URL.
pub const DEFAULT_BASE_URL: &str = "https://slack.com/api/";

/// A Slack Web API client. Cheap to clone (connections are pooled and shared).
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base_url: Url,
    max_retries: u32,
    max_retry_wait: Duration,
}

/// Builds a [`Client`].
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    base_url: String,
    connect_timeout: Duration,
    request_timeout: Duration,
    max_retries: u32,
    max_retry_wait: Duration,
}

impl Client {
    /// A client for `https://slack.com/api/` with default timeouts and retries.
    pub fn new() -> Result<Self, ApiError> {
        Self::builder().build()
    }

    /// A builder with the defaults.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            base_url: DEFAULT_BASE_URL.to_owned(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_retries: 2,
            max_retry_wait: Duration::from_secs(30),
        }
    }

    /// The base URL, ending in `/`.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// `oauth.v2.access`: exchanges a code, or redeems a refresh token.
    pub async fn oauth_v2_access(
        &self,
        credentials: &ClientCredentials,
        grant: &AccessGrant,
    ) -> Result<OAuthV2AccessResponse, ApiError> {
        let _ = (
            credentials,
            grant,
            &self.http,
            self.max_retries,
            self.max_retry_wait,
        );
        unimplemented!("api helper")
    }

    /// `auth.test` with `token`.
    pub async fn auth_test(&self, token: &AccessToken) -> Result<AuthTestResponse, ApiError> {
        let _ = token;
        unimplemented!("api helper")
    }

    /// `oauth.v2.exchange`: trades a long-lived token for an expiring one and a refresh token.
    pub async fn oauth_v2_exchange(
        &self,
        credentials: &ClientCredentials,
        token: &AccessToken,
    ) -> Result<OAuthV2AccessResponse, ApiError> {
        let _ = (credentials, token);
        unimplemented!("api helper")
    }

    /// `auth.revoke`: revokes `token` (with `test`, only checks that it could be).
    pub async fn auth_revoke(
        &self,
        token: &AccessToken,
        test: bool,
    ) -> Result<AuthRevokeResponse, ApiError> {
        let _ = (token, test);
        unimplemented!("api helper")
    }
}

impl ClientBuilder {
    /// The base URL (`SLACK_API_URL`); a missing trailing `/` is added.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The TCP/TLS connect timeout (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The whole-request timeout (default 30 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How many times a 429 is retried after its `Retry-After` (default 2).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The longest `Retry-After` the client waits out before giving up (default 30 s).
    pub fn max_retry_wait(mut self, wait: Duration) -> Self {
        self.max_retry_wait = wait;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<Client, ApiError> {
        let _ = (self.connect_timeout, self.request_timeout);
        unimplemented!("api helper")
    }
}
