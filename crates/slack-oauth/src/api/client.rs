//! `Client`: HTTP plumbing for the Web API methods (form POSTs, auth headers, 429 retries).

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::time::Instant;
use url::Url;

use super::wire;
use super::{
    AccessGrant, ApiError, AuthRevokeResponse, AuthTestResponse, ClientBuilder, ClientCredentials,
    OAuthV2AccessResponse,
};
use crate::secret::AccessToken;

/// Slack's Web API base URL.
///
/// ```
/// let client = slack_oauth::api::Client::new()?;
/// assert_eq!(client.base_url().as_str(), slack_oauth::api::DEFAULT_BASE_URL);
/// # Ok::<(), slack_oauth::api::ApiError>(())
/// ```
pub const DEFAULT_BASE_URL: &str = "https://slack.com/api/";

/// A Slack Web API client. Cheap to clone (connections are pooled and shared).
///
/// Every method is a form `POST` to `{base_url}{method}`; redirects are never followed (a
/// redirect could carry the client secret or a token to another host).
///
/// # Failures and retries
///
/// - HTTP 429: the client waits `Retry-After` seconds and tries again, up to
///   [`max_retries`](ClientBuilder::max_retries) times, then returns
///   [`ApiError::RateLimited`]. Retrying is safe even for a code exchange, because Slack does not
///   process a call it rate-limits.
/// - HTTP 5xx: [`ApiError::Server`] at once, **without** retrying: Slack may have processed the
///   call before failing, and an authorization code or refresh token is single use, so a blind
///   retry could turn a transient error into `invalid_code` / `invalid_refresh_token`.
/// - `ok: false`: [`ApiError::Slack`] with Slack's error string.
/// - No connection ([`ApiError::Connect`]): Slack never saw the call, so retrying is safe. A
///   timeout ([`ApiError::Timeout`]) is not: Slack may have handled the call.
/// - A body that is not the expected JSON, or larger than 1 MiB: [`ApiError::Decode`], with the
///   JSON path of the problem but never the body (Slack bodies hold tokens).
///
/// Calls are logged with `tracing` at debug level (method, status, attempt, elapsed time);
/// tokens, secrets and bodies never are.
///
/// ```
/// use std::time::Duration;
/// use slack_oauth::api::Client;
///
/// let client = Client::builder()
///     .base_url("http://127.0.0.1:8080/api") // the trailing `/` is added
///     .request_timeout(Duration::from_secs(10))
///     .build()?;
/// assert_eq!(client.base_url().as_str(), "http://127.0.0.1:8080/api/");
/// let shared = client.clone(); // shares the connection pool
/// # drop(shared);
/// # Ok::<(), slack_oauth::api::ApiError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    pub(super) http: reqwest::Client,
    pub(super) base_url: Url,
    /// The URL of every method in [`METHODS`], joined once instead of on every call.
    pub(super) method_urls: Arc<[(&'static str, Url)]>,
    pub(super) max_retries: u32,
    pub(super) max_retry_wait: Duration,
}

/// The Web API methods this client calls.
pub(super) const METHODS: [&str; 4] = [
    "oauth.v2.access",
    "oauth.v2.exchange",
    "auth.test",
    "auth.revoke",
];

/// How a call authenticates.
#[derive(Clone, Copy)]
enum Auth<'a> {
    /// HTTP Basic with the app's credentials (the `oauth.v2.*` methods).
    Basic(&'a ClientCredentials),
    /// `Authorization: Bearer <token>`.
    Bearer(&'a AccessToken),
}

impl Client {
    /// A client for `https://slack.com/api/` with default timeouts and retries.
    ///
    /// ```
    /// let client = slack_oauth::api::Client::new()?;
    /// assert_eq!(client.base_url().as_str(), "https://slack.com/api/");
    /// # Ok::<(), slack_oauth::api::ApiError>(())
    /// ```
    pub fn new() -> Result<Self, ApiError> {
        Self::builder().build()
    }

    /// A builder with the defaults: Slack's base URL, a 5 s connect timeout, a 30 s request
    /// timeout, 2 retries after a 429 and a 30 s longest wait.
    ///
    /// ```
    /// let client = slack_oauth::api::Client::builder().build()?;
    /// # drop(client);
    /// # Ok::<(), slack_oauth::api::ApiError>(())
    /// ```
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// The base URL, ending in `/`.
    ///
    /// ```
    /// let client = slack_oauth::api::Client::builder().base_url("http://localhost:3000").build()?;
    /// assert_eq!(client.base_url().as_str(), "http://localhost:3000/");
    /// # Ok::<(), slack_oauth::api::ApiError>(())
    /// ```
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// `oauth.v2.access`: exchanges a code, or redeems a refresh token.
    ///
    /// The client id and secret go in an `Authorization: Basic` header, never in the body. The
    /// body is `redirect_uri` (when given), `code` and `code_verifier` (when given) for a code,
    /// or `grant_type=refresh_token&refresh_token=…` for a refresh.
    ///
    /// A code or refresh token is single use: after [`ApiError::Server`], [`ApiError::Timeout`]
    /// or [`ApiError::Transport`] Slack may already have redeemed it, so do not retry blindly
    /// (a refresh should re-read the stored installation first).
    ///
    /// ```
    /// use slack_oauth::api::{AccessGrant, Client, ClientCredentials};
    /// use slack_oauth::secret::AuthorizationCode;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let slack = slack_emulator::Emulator::spawn(Default::default()).await?;
    /// let redirect_uri = "https://example.com/slack/oauth_redirect";
    /// # let code_from_the_redirect =
    /// #     slack.issue_code(slack_emulator::Grant::default(), Some(redirect_uri));
    /// // `Client::new()` talks to Slack; here, to the emulator.
    /// let client = Client::builder().base_url(slack.api_url()).build()?;
    /// let credentials = ClientCredentials::new("111.222", "client-secret");
    /// let grant = AccessGrant::Code {
    ///     code: AuthorizationCode::new(code_from_the_redirect),
    ///     redirect_uri: Some(redirect_uri.to_owned()),
    ///     code_verifier: None,
    /// };
    /// let response = client.oauth_v2_access(&credentials, &grant).await?;
    /// assert_eq!(response.team.unwrap().id.unwrap().as_str(), "T0EMULATOR");
    /// assert!(response.access_token.unwrap().secret().starts_with("xoxb-"));
    ///
    /// // The code is single use.
    /// let again = client.oauth_v2_access(&credentials, &grant).await.unwrap_err();
    /// assert_eq!(again.slack_error(), Some("invalid_code"));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn oauth_v2_access(
        &self,
        credentials: &ClientCredentials,
        grant: &AccessGrant,
    ) -> Result<OAuthV2AccessResponse, ApiError> {
        let mut form: Vec<(&str, &str)> = Vec::with_capacity(3);
        match grant {
            AccessGrant::Code {
                code,
                redirect_uri,
                code_verifier,
            } => {
                // The order Python's slack_sdk uses (redirect_uri, then code).
                if let Some(redirect_uri) = redirect_uri {
                    form.push(("redirect_uri", redirect_uri));
                }
                form.push(("code", code.secret()));
                if let Some(code_verifier) = code_verifier {
                    form.push(("code_verifier", code_verifier));
                }
            }
            AccessGrant::RefreshToken(refresh_token) => {
                form.push(("grant_type", "refresh_token"));
                form.push(("refresh_token", refresh_token.secret()));
            }
        }
        self.call("oauth.v2.access", Auth::Basic(credentials), &form)
            .await
    }

    /// `auth.test` with `token`: who the token belongs to (and, for a bot token, the `bot_id`).
    ///
    /// ```
    /// use slack_oauth::secret::BotToken;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let slack = slack_emulator::Emulator::spawn(Default::default()).await?;
    /// # let client = slack_oauth::api::Client::builder().base_url(slack.api_url()).build()?;
    /// # let bot_token = slack.seed_token(&Default::default(), false);
    /// let token = BotToken::new(bot_token);
    /// let identity = client.auth_test(&(&token).into()).await?;
    /// assert_eq!(identity.bot_id.unwrap().as_str(), "B0EMULATOR");
    /// assert_eq!(identity.team_id.unwrap().as_str(), "T0EMULATOR");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn auth_test(&self, token: &AccessToken) -> Result<AuthTestResponse, ApiError> {
        self.call("auth.test", Auth::Bearer(token), &[]).await
    }

    /// `oauth.v2.exchange`: trades a long-lived token for an expiring one and a refresh token.
    ///
    /// Each long-lived token can be exchanged once (`token_already_exchanged`); Slack expires the
    /// old token after the first refresh of the new pair, so do not revoke it yourself.
    ///
    /// ```
    /// use slack_oauth::api::ClientCredentials;
    /// use slack_oauth::secret::AccessToken;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let config = slack_emulator::EmulatorConfig { rotation: true, ..Default::default() };
    /// # let slack = slack_emulator::Emulator::spawn(config).await?;
    /// # let client = slack_oauth::api::Client::builder().base_url(slack.api_url()).build()?;
    /// # let long_lived = slack.seed_token(&Default::default(), false);
    /// let credentials = ClientCredentials::new("111.222", "client-secret");
    /// let rotating = client
    ///     .oauth_v2_exchange(&credentials, &AccessToken::new(long_lived))
    ///     .await?;
    /// assert!(rotating.access_token.unwrap().secret().starts_with("xoxe.xoxb-"));
    /// assert!(rotating.refresh_token.is_some());
    /// assert_eq!(rotating.expires_in, Some(43_200));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn oauth_v2_exchange(
        &self,
        credentials: &ClientCredentials,
        token: &AccessToken,
    ) -> Result<OAuthV2AccessResponse, ApiError> {
        let form = [("token", token.secret())];
        self.call("oauth.v2.exchange", Auth::Basic(credentials), &form)
            .await
    }

    /// `auth.revoke`: revokes `token` (with `test`, only checks that it could be).
    ///
    /// ```
    /// use slack_oauth::secret::AccessToken;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let slack = slack_emulator::Emulator::spawn(Default::default()).await?;
    /// # let client = slack_oauth::api::Client::builder().base_url(slack.api_url()).build()?;
    /// # let user_token = slack.seed_token(&Default::default(), true);
    /// let token = AccessToken::new(user_token);
    /// assert!(!client.auth_revoke(&token, true).await?.revoked); // only a check
    /// assert!(client.auth_revoke(&token, false).await?.revoked);
    /// let error = client.auth_test(&token).await.unwrap_err();
    /// assert_eq!(error.slack_error(), Some("token_revoked"));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn auth_revoke(
        &self,
        token: &AccessToken,
        test: bool,
    ) -> Result<AuthRevokeResponse, ApiError> {
        let form = [("test", if test { "true" } else { "false" })];
        self.call("auth.revoke", Auth::Bearer(token), &form).await
    }

    /// POSTs `form` to `method`, retrying 429s, and decodes the answer.
    async fn call<T: DeserializeOwned>(
        &self,
        method: &'static str,
        auth: Auth<'_>,
        form: &[(&str, &str)],
    ) -> Result<T, ApiError> {
        let known = self
            .method_urls
            .iter()
            .find(|(name, _)| *name == method)
            .map(|(_, url)| url.clone());
        let url = match known {
            Some(url) => url,
            None => self.base_url.join(method).map_err(|error| {
                ApiError::Config(format!("cannot build the URL of {method}: {error}"))
            })?,
        };
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            let request = self.http.post(url.clone()).form(form);
            // reqwest marks both headers sensitive, so they are kept out of its own logs.
            let request = match auth {
                Auth::Basic(credentials) => request.basic_auth(
                    credentials.client_id.as_str(),
                    Some(credentials.client_secret.secret()),
                ),
                Auth::Bearer(token) => request.bearer_auth(token.secret()),
            };
            let response = match request.send().await {
                Ok(response) => response,
                Err(source) => {
                    let error = wire::transport_error(method, source);
                    tracing::debug!(
                        method,
                        attempt,
                        elapsed = ?started.elapsed(),
                        error = %error,
                        "slack api call failed"
                    );
                    return Err(error);
                }
            };
            let status = response.status();
            tracing::debug!(
                method,
                status = status.as_u16(),
                attempt,
                elapsed = ?started.elapsed(),
                "slack api call"
            );

            if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                let retry_after = wire::retry_after(response.headers());
                if attempt > self.max_retries || retry_after > self.max_retry_wait {
                    return Err(ApiError::RateLimited {
                        method,
                        retry_after,
                    });
                }
                drop(response);
                tracing::debug!(method, attempt, ?retry_after, "rate limited; waiting");
                tokio::time::sleep(retry_after).await;
                continue;
            }
            if status.is_server_error() {
                return Err(ApiError::Server {
                    method,
                    status: status.as_u16(),
                });
            }
            if !status.is_success() {
                return Err(ApiError::Status {
                    method,
                    status: status.as_u16(),
                });
            }
            let body = wire::read_body(method, response).await?;
            return wire::decode(method, &body);
        }
    }
}
