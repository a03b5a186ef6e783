//! `Client`: HTTP plumbing for the Web API methods (form POSTs, auth headers, 429 retries).

use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::time::Instant;
use url::Url;

use super::wire;
use super::{
    AccessGrant, ApiError, AuthRevokeResponse, AuthTestResponse, ClientCredentials,
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

/// Sent with every request, so that Slack (and the emulator's logs) can tell who is calling.
const USER_AGENT: &str = concat!("slack-oauth/", env!("CARGO_PKG_VERSION"), " (rust)");

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
    http: reqwest::Client,
    base_url: Url,
    max_retries: u32,
    max_retry_wait: Duration,
}

/// Builds a [`Client`].
///
/// ```
/// use std::time::Duration;
/// let client = slack_oauth::api::Client::builder()
///     .connect_timeout(Duration::from_secs(2))
///     .max_retries(5)
///     .build()?;
/// # drop(client);
/// # Ok::<(), slack_oauth::api::ApiError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    base_url: String,
    connect_timeout: Duration,
    request_timeout: Duration,
    max_retries: u32,
    max_retry_wait: Duration,
}

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
        ClientBuilder {
            base_url: DEFAULT_BASE_URL.to_owned(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_retries: 2,
            max_retry_wait: Duration::from_secs(30),
        }
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
    /// ```no_run
    /// use slack_oauth::api::{AccessGrant, Client, ClientCredentials};
    /// use slack_oauth::secret::AuthorizationCode;
    ///
    /// # async fn run() -> Result<(), slack_oauth::api::ApiError> {
    /// let client = Client::new()?;
    /// let credentials = ClientCredentials::new("111.222", "client-secret");
    /// let grant = AccessGrant::Code {
    ///     code: AuthorizationCode::new("code-from-the-redirect"),
    ///     redirect_uri: Some("https://example.com/slack/oauth_redirect".to_owned()),
    ///     code_verifier: None,
    /// };
    /// let response = client.oauth_v2_access(&credentials, &grant).await?;
    /// println!("installed in {:?}", response.team.and_then(|team| team.id));
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
    /// ```no_run
    /// use slack_oauth::secret::BotToken;
    ///
    /// # async fn run(client: slack_oauth::api::Client) -> Result<(), slack_oauth::api::ApiError> {
    /// let token = BotToken::new("xoxb-…");
    /// let identity = client.auth_test(&(&token).into()).await?;
    /// println!("bot {:?} in team {:?}", identity.bot_id, identity.team_id);
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
    /// ```no_run
    /// use slack_oauth::api::ClientCredentials;
    /// use slack_oauth::secret::AccessToken;
    ///
    /// # async fn run(client: slack_oauth::api::Client) -> Result<(), slack_oauth::api::ApiError> {
    /// let credentials = ClientCredentials::new("111.222", "client-secret");
    /// let rotating = client
    ///     .oauth_v2_exchange(&credentials, &AccessToken::new("xoxb-long-lived"))
    ///     .await?;
    /// assert!(rotating.refresh_token.is_some());
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
    /// ```no_run
    /// use slack_oauth::secret::AccessToken;
    ///
    /// # async fn run(client: slack_oauth::api::Client) -> Result<(), slack_oauth::api::ApiError> {
    /// let revoked = client.auth_revoke(&AccessToken::new("xoxp-…"), false).await?;
    /// assert!(revoked.revoked);
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
        let url = self.base_url.join(method).map_err(|error| {
            ApiError::Config(format!("cannot build the URL of {method}: {error}"))
        })?;
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

impl ClientBuilder {
    /// The base URL (`SLACK_API_URL`); a missing trailing `/` is added.
    ///
    /// Checked by [`build`](Self::build): it must be an absolute `http` or `https` URL.
    ///
    /// ```
    /// let client = slack_oauth::api::Client::builder().base_url("http://127.0.0.1:9/api").build()?;
    /// assert_eq!(client.base_url().as_str(), "http://127.0.0.1:9/api/");
    /// # Ok::<(), slack_oauth::api::ApiError>(())
    /// ```
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The TCP/TLS connect timeout (default 5 s).
    ///
    /// ```
    /// let builder = slack_oauth::api::Client::builder()
    ///     .connect_timeout(std::time::Duration::from_millis(500));
    /// # builder.build()?;
    /// # Ok::<(), slack_oauth::api::ApiError>(())
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The whole-request timeout, from sending to the end of the body (default 30 s). Each
    /// attempt after a 429 gets its own.
    ///
    /// ```
    /// let builder = slack_oauth::api::Client::builder()
    ///     .request_timeout(std::time::Duration::from_secs(10));
    /// # builder.build()?;
    /// # Ok::<(), slack_oauth::api::ApiError>(())
    /// ```
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How many times a 429 is retried after its `Retry-After` (default 2); `0` never retries.
    ///
    /// ```
    /// let builder = slack_oauth::api::Client::builder().max_retries(0);
    /// # builder.build()?;
    /// # Ok::<(), slack_oauth::api::ApiError>(())
    /// ```
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The longest `Retry-After` the client waits out before giving up (default 30 s). A longer
    /// one gives [`ApiError::RateLimited`] at once, so the caller can reschedule instead.
    ///
    /// ```
    /// let builder = slack_oauth::api::Client::builder()
    ///     .max_retry_wait(std::time::Duration::from_secs(5));
    /// # builder.build()?;
    /// # Ok::<(), slack_oauth::api::ApiError>(())
    /// ```
    pub fn max_retry_wait(mut self, wait: Duration) -> Self {
        self.max_retry_wait = wait;
        self
    }

    /// Builds the client; an invalid base URL gives [`ApiError::Config`].
    ///
    /// ```
    /// use slack_oauth::api::{ApiError, Client};
    /// assert!(matches!(Client::builder().base_url("not a url").build(), Err(ApiError::Config(_))));
    /// assert!(Client::builder().base_url("https://slack.com/api").build().is_ok());
    /// ```
    pub fn build(self) -> Result<Client, ApiError> {
        let base_url = parse_base_url(&self.base_url)?;
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .build()
            .map_err(|error| ApiError::Config(format!("cannot build the HTTP client: {error}")))?;
        Ok(Client {
            http,
            base_url,
            max_retries: self.max_retries,
            max_retry_wait: self.max_retry_wait,
        })
    }
}

/// Parses the base URL and makes it end in `/`, so that `join("auth.test")` appends.
fn parse_base_url(raw: &str) -> Result<Url, ApiError> {
    let hint = "use an absolute http(s) URL such as https://slack.com/api/";
    let mut url = Url::parse(raw.trim())
        .map_err(|error| ApiError::Config(format!("invalid base URL {raw:?}: {error}; {hint}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(ApiError::Config(format!(
            "invalid base URL {raw:?}: not an http(s) URL; {hint}"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ApiError::Config(format!(
            "invalid base URL {raw:?}: it must not have a query or fragment; {hint}"
        )));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_gets_a_trailing_slash() {
        for (raw, expected) in [
            ("https://slack.com/api", "https://slack.com/api/"),
            ("https://slack.com/api/", "https://slack.com/api/"),
            ("http://127.0.0.1:1234", "http://127.0.0.1:1234/"),
            (" http://127.0.0.1:1234/x/y ", "http://127.0.0.1:1234/x/y/"),
        ] {
            assert_eq!(parse_base_url(raw).unwrap().as_str(), expected, "{raw}");
        }
    }

    #[test]
    fn method_urls_append_to_the_base() {
        let base = parse_base_url("http://127.0.0.1:1234/api").unwrap();
        assert_eq!(
            base.join("oauth.v2.access").unwrap().as_str(),
            "http://127.0.0.1:1234/api/oauth.v2.access"
        );
    }

    #[test]
    fn invalid_base_urls_are_config_errors() {
        for raw in [
            "",
            "slack.com/api",
            "ftp://slack.com/api/",
            "mailto:a@b.c",
            "https://slack.com/api/?x=1",
            "https://slack.com/api/#frag",
        ] {
            let error = Client::builder().base_url(raw).build().unwrap_err();
            assert!(matches!(error, ApiError::Config(_)), "{raw}: {error:?}");
            assert!(
                error.to_string().contains("https://slack.com/api/"),
                "{error}"
            );
        }
    }

    #[test]
    fn user_agent_names_the_crate_and_version() {
        assert_eq!(
            USER_AGENT,
            format!("slack-oauth/{} (rust)", env!("CARGO_PKG_VERSION"))
        );
    }
}
