//! `ClientBuilder`: timeouts, retry bounds and the base URL of a [`Client`].

use std::time::Duration;

use url::Url;

use super::{ApiError, Client, DEFAULT_BASE_URL};

/// Sent with every request, so that Slack (and the emulator's logs) can tell who is calling.
const USER_AGENT: &str = concat!("slack-oauth/", env!("CARGO_PKG_VERSION"), " (rust)");

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
    allow_insecure_base_url: bool,
}

impl ClientBuilder {
    /// The defaults: Slack's base URL, a 5 s connect timeout (a healthy connection to Slack takes
    /// well under a second, so longer means the network is broken), a 30 s request timeout,
    /// 2 retries after a 429 and a 30 s longest wait (long enough to ride out a burst, short
    /// enough that a caller waiting on an install callback is not held for minutes).
    pub(super) fn new() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_retries: 2,
            max_retry_wait: Duration::from_secs(30),
            allow_insecure_base_url: false,
        }
    }

    /// The base URL (`SLACK_API_URL`); a missing trailing `/` is added.
    ///
    /// Checked by [`build`](Self::build): it must be an absolute `https` URL, or `http` to a
    /// loopback address (the emulator, a local proxy); see
    /// [`allow_insecure_base_url`](Self::allow_insecure_base_url) for anything else.
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

    /// Accepts a plain `http` base URL that is not on a loopback address (default `false`).
    ///
    /// Every call carries the client secret or a token, so plain http anywhere but this machine
    /// hands them to whoever is on the path; turn this on only for a test network you control
    /// (`--allow-insecure-slack-url` on the command line).
    ///
    /// ```
    /// use slack_oauth::api::Client;
    /// assert!(Client::builder().base_url("http://slack.test/api").build().is_err());
    /// let client = Client::builder()
    ///     .base_url("http://slack.test/api")
    ///     .allow_insecure_base_url(true)
    ///     .build()?;
    /// assert_eq!(client.base_url().as_str(), "http://slack.test/api/");
    /// # Ok::<(), slack_oauth::api::ApiError>(())
    /// ```
    pub fn allow_insecure_base_url(mut self, allow: bool) -> Self {
        self.allow_insecure_base_url = allow;
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
        let base_url = parse_base_url(&self.base_url, self.allow_insecure_base_url)?;
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .build()
            .map_err(|error| ApiError::Config(format!("cannot build the HTTP client: {error}")))?;
        let method_urls = super::client::METHODS
            .iter()
            .filter_map(|method| Some((*method, base_url.join(method).ok()?)))
            .collect::<Vec<_>>()
            .into();
        Ok(Client {
            http,
            method_urls,
            base_url,
            max_retries: self.max_retries,
            max_retry_wait: self.max_retry_wait,
        })
    }
}

/// Parses the base URL and makes it end in `/`, so that `join("auth.test")` appends.
fn parse_base_url(raw: &str, allow_insecure: bool) -> Result<Url, ApiError> {
    let hint = "use an absolute https URL such as https://slack.com/api/";
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
    if url.scheme() == "http" && !allow_insecure && !crate::settings::is_loopback(&url) {
        return Err(ApiError::Config(format!(
            "invalid base URL {raw:?}: plain http to a host other than this machine would send \
             the client secret and tokens unencrypted; use https, a loopback address (the \
             emulator), or allow it explicitly (--allow-insecure-slack-url)"
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
            assert_eq!(
                parse_base_url(raw, false).unwrap().as_str(),
                expected,
                "{raw}"
            );
        }
    }

    #[test]
    fn plain_http_only_to_this_machine_unless_allowed() {
        for local in [
            "http://127.0.0.1:9/api",
            "http://127.8.0.1/api",
            "http://[::1]:9/api",
            "http://localhost:9/api",
            "http://emulator.localhost/api",
        ] {
            assert!(parse_base_url(local, false).is_ok(), "{local}");
        }
        for remote in [
            "http://slack.com/api",
            "http://10.0.0.1/api",
            "http://localhost.example.com/api",
            "http://[::2]/api",
        ] {
            let error = parse_base_url(remote, false).unwrap_err();
            assert!(
                error.to_string().contains("--allow-insecure-slack-url"),
                "{remote}: {error}"
            );
            assert!(parse_base_url(remote, true).is_ok(), "{remote}");
        }
    }

    #[test]
    fn method_urls_append_to_the_base() {
        let base = parse_base_url("http://127.0.0.1:1234/api", false).unwrap();
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
