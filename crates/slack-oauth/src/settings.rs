//! `OAuthSettings`: the install flow's configuration (from code or the environment) and `ConfigError`.
//!
//! Required values go to [`OAuthSettings::new`]; everything else has the default of Bolt for
//! Python and a chained setter with the field's name. [`OAuthSettings::from_env`] reads the same
//! `SLACK_*` variables as Bolt and reports every missing one at once.

use std::fmt;
use std::time::Duration;

use url::Url;

use crate::ids::ClientId;
use crate::installation::Scopes;
use crate::secret::ClientSecret;

pub use cookie::SameSite;
pub use error::ConfigError;

mod error;

/// Slack's authorize endpoint for OAuth v2.
pub const DEFAULT_AUTHORIZE_URL: &str = "https://slack.com/oauth/v2/authorize";
/// Where the install page is served, as in Bolt.
pub const DEFAULT_INSTALL_PATH: &str = "/slack/install";
/// Where Slack redirects back to, as in Bolt.
pub const DEFAULT_REDIRECT_URI_PATH: &str = "/slack/oauth_redirect";
/// The state cookie's name on plain-http development setups: Bolt's (Python and JavaScript).
pub const DEFAULT_STATE_COOKIE_NAME: &str = "slack-app-oauth-state";
/// The state cookie's name whenever the cookie is `Secure` and the redirect URI is not plain
/// http: the `__Host-` prefix makes browsers refuse it unless it is `Secure`, has `Path=/` and
/// no `Domain`, so a sibling subdomain cannot plant or overwrite it (a cookie-tossing attack on
/// the state binding).
pub const HOST_STATE_COOKIE_NAME: &str = "__Host-slack-app-oauth-state";
/// How long an issued state (and its cookie) stays valid: 10 minutes, as in every Slack SDK.
/// Long enough to read Slack's consent screen, short enough that a leaked state is soon useless.
pub const DEFAULT_STATE_EXPIRATION: Duration = Duration::from_secs(600);
/// The default cap on outstanding OAuth states: far above any real install rate (it would take
/// 166 installs started per second, each abandoned, to reach it within the 10-minute state
/// lifetime), low enough that the table stays small.
pub const DEFAULT_MAX_LIVE_STATES: u64 = 100_000;
/// Environment variable of [`OAuthSettings::max_live_states`] (`0` for no cap).
pub const MAX_LIVE_STATES_ENV: &str = "SLACK_OAUTH_MAX_LIVE_STATES";
/// How long before expiry a rotating token is refreshed, as in Bolt.
pub const DEFAULT_TOKEN_ROTATION_EXPIRATION_MINUTES: u32 = 120;

/// The install flow's settings.
///
/// Fields are public for reading; set them with the chained setters of the same name. Nothing is
/// checked until [`validate`](Self::validate), which [`OAuthFlow::new`](crate::flow::OAuthFlow::new)
/// and [`from_env`](Self::from_env) call.
///
/// ```
/// use slack_oauth::settings::OAuthSettings;
///
/// let settings = OAuthSettings::new("111.222", "client-secret")
///     .scopes(["commands", "chat:write"])
///     .user_scopes(["search:read"])
///     .redirect_uri("https://app.example.com/slack/oauth_redirect")
///     .success_url("https://app.example.com/welcome");
/// settings.validate()?;
/// assert_eq!(settings.install_path, "/slack/install");
/// assert_eq!(settings.scopes.to_string(), "commands,chat:write");
/// assert!(!format!("{settings:?}").contains("client-secret"));
/// # Ok::<_, slack_oauth::settings::ConfigError>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct OAuthSettings {
    /// The app's client id (`SLACK_CLIENT_ID`).
    pub client_id: ClientId,
    /// The app's client secret (`SLACK_CLIENT_SECRET`).
    pub client_secret: ClientSecret,
    /// Bot scopes to request (`SLACK_SCOPES`, comma-separated).
    pub scopes: Scopes,
    /// User scopes to request (`SLACK_USER_SCOPES`, comma-separated).
    pub user_scopes: Scopes,
    /// The `redirect_uri` sent to Slack, exactly as configured (`SLACK_REDIRECT_URI`). When unset,
    /// Slack uses the app's only configured redirect URL.
    pub redirect_uri: Option<String>,
    /// The path of the install page (`SLACK_INSTALL_PATH`, default `/slack/install`).
    pub install_path: String,
    /// The path Slack redirects back to (`SLACK_REDIRECT_URI_PATH`, default
    /// `/slack/oauth_redirect`).
    pub redirect_uri_path: String,
    /// Whether the install path shows a page with an "Add to Slack" button (default) or
    /// redirects straight to Slack with a 302.
    pub install_page_rendering_enabled: bool,
    /// Where to send the browser after a successful install, instead of the default page
    /// (`SLACK_SUCCESS_URL`).
    pub success_url: Option<String>,
    /// Where to send the browser after a failed install, with `?error=<reason>` appended,
    /// instead of the default page (`SLACK_FAILURE_URL`).
    pub failure_url: Option<String>,
    /// Slack's authorize endpoint (`SLACK_AUTHORIZE_URL`); a query string it has is kept.
    pub authorize_url: String,
    /// Whether the flow issues a state and checks it and its browser cookie on the way back.
    /// Turning it off removes the CSRF protection; only do it behind another check.
    pub state_validation_enabled: bool,
    /// The state cookie's name; `None` (the default) for [`HOST_STATE_COOKIE_NAME`] when the
    /// cookie is `Secure` and the redirect URI is not plain `http`, else
    /// [`DEFAULT_STATE_COOKIE_NAME`]. The name in use is
    /// [`resolved_state_cookie_name`](Self::resolved_state_cookie_name).
    pub state_cookie_name: Option<String>,
    /// How long a state stays valid; also the cookie's `Max-Age` (default 600 s).
    pub state_expiration: Duration,
    /// Whether the state cookie carries `Secure` (default true). Browsers keep `Secure` cookies
    /// on `http://localhost` and `http://127.0.0.1`, so local demos work with it on.
    pub state_cookie_secure: bool,
    /// The state cookie's `SameSite` (default `Lax`: Slack's redirect back is a top-level
    /// cross-site GET, which `Strict` would strip the cookie from).
    pub state_cookie_same_site: SameSite,
    /// How many minutes before expiry a rotating token is refreshed (default 120). Unlike Bolt
    /// (W29), `0` means "only once expired".
    pub token_rotation_expiration_minutes: u32,
    /// The most OAuth states outstanding at once (issued, neither used nor expired); past it the
    /// install path issues none and answers 503 (`SLACK_OAUTH_MAX_LIVE_STATES`, default
    /// [`DEFAULT_MAX_LIVE_STATES`]; `None` for no cap). Real installs use a handful; the cap
    /// bounds the state table when something hammers the install page.
    pub max_live_states: Option<u64>,
    /// Whether [`authorize_url`](Self::authorize_url) may be plain `http` to a host other than
    /// this machine (default `false`: `https`, or `http` on a loopback address for the emulator).
    pub allow_insecure_slack_url: bool,
}

impl OAuthSettings {
    /// Settings with the given credentials and every default.
    pub fn new(client_id: impl Into<ClientId>, client_secret: impl Into<ClientSecret>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scopes: Scopes::default(),
            user_scopes: Scopes::default(),
            redirect_uri: None,
            install_path: DEFAULT_INSTALL_PATH.to_owned(),
            redirect_uri_path: DEFAULT_REDIRECT_URI_PATH.to_owned(),
            install_page_rendering_enabled: true,
            success_url: None,
            failure_url: None,
            authorize_url: DEFAULT_AUTHORIZE_URL.to_owned(),
            state_validation_enabled: true,
            state_cookie_name: None,
            state_expiration: DEFAULT_STATE_EXPIRATION,
            state_cookie_secure: true,
            state_cookie_same_site: SameSite::Lax,
            token_rotation_expiration_minutes: DEFAULT_TOKEN_ROTATION_EXPIRATION_MINUTES,
            max_live_states: Some(DEFAULT_MAX_LIVE_STATES),
            allow_insecure_slack_url: false,
        }
    }

    /// Settings from the process environment; see [`from_lookup`](Self::from_lookup) for the
    /// variables read.
    ///
    /// ```
    /// use slack_oauth::settings::OAuthSettings;
    /// match OAuthSettings::from_env() {
    ///     Ok(settings) => println!("installing with client id {}", settings.client_id),
    ///     Err(error) => println!("{error}"), // names every missing variable
    /// }
    /// ```
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Settings from a variable lookup (the environment, a file, a test map). Reads
    /// `SLACK_CLIENT_ID` and `SLACK_CLIENT_SECRET` (required), `SLACK_SCOPES` and
    /// `SLACK_USER_SCOPES` (comma-separated), `SLACK_REDIRECT_URI`, `SLACK_AUTHORIZE_URL`,
    /// `SLACK_INSTALL_PATH`, `SLACK_REDIRECT_URI_PATH`, `SLACK_SUCCESS_URL` and
    /// `SLACK_FAILURE_URL`. An empty value counts as unset. Then [`validate`](Self::validate)s.
    ///
    /// ```
    /// use slack_oauth::settings::{ConfigError, OAuthSettings};
    ///
    /// let env = |name: &str| match name {
    ///     "SLACK_CLIENT_ID" => Some("111.222".to_owned()),
    ///     "SLACK_SCOPES" => Some("commands, chat:write".to_owned()),
    ///     _ => None,
    /// };
    /// let error = OAuthSettings::from_lookup(env).unwrap_err();
    /// assert!(matches!(&error, ConfigError::Missing { names } if names == &["SLACK_CLIENT_SECRET"]));
    /// assert!(error.to_string().contains("Basic Information"));
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let client_id = get("SLACK_CLIENT_ID");
        let client_secret = get("SLACK_CLIENT_SECRET");
        let (client_id, client_secret) = match (client_id, client_secret) {
            (Some(id), Some(secret)) => (id, secret),
            (id, secret) => {
                let mut names = Vec::new();
                if id.is_none() {
                    names.push("SLACK_CLIENT_ID");
                }
                if secret.is_none() {
                    names.push("SLACK_CLIENT_SECRET");
                }
                return Err(ConfigError::Missing { names });
            }
        };
        let mut settings = Self::new(client_id.trim(), client_secret.trim());
        if let Some(scopes) = get("SLACK_SCOPES") {
            settings.scopes = Scopes::parse(&scopes);
        }
        if let Some(scopes) = get("SLACK_USER_SCOPES") {
            settings.user_scopes = Scopes::parse(&scopes);
        }
        settings.redirect_uri = get("SLACK_REDIRECT_URI");
        if let Some(url) = get("SLACK_AUTHORIZE_URL") {
            settings.authorize_url = url;
        }
        if let Some(path) = get("SLACK_INSTALL_PATH") {
            settings.install_path = path;
        }
        if let Some(path) = get("SLACK_REDIRECT_URI_PATH") {
            settings.redirect_uri_path = path;
        }
        settings.success_url = get("SLACK_SUCCESS_URL");
        settings.failure_url = get("SLACK_FAILURE_URL");
        if let Some(cap) = get(MAX_LIVE_STATES_ENV) {
            settings.max_live_states = match cap.trim().parse::<u64>() {
                Ok(0) => None,
                Ok(cap) => Some(cap),
                Err(_) => {
                    return Err(invalid(
                        MAX_LIVE_STATES_ENV,
                        &cap,
                        "must be a whole number (0 for no cap)",
                    ))
                }
            };
        }
        if let Some(allow) = get(ALLOW_INSECURE_SLACK_URL_ENV) {
            settings.allow_insecure_slack_url = parse_flag(ALLOW_INSECURE_SLACK_URL_ENV, &allow)?;
        }
        settings.validate()?;
        Ok(settings)
    }

    /// Sets the bot scopes.
    ///
    /// ```
    /// let s = slack_oauth::settings::OAuthSettings::new("1", "2").scopes(["commands", "chat:write"]);
    /// assert_eq!(s.scopes.to_string(), "commands,chat:write");
    /// ```
    #[must_use]
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().collect();
        self
    }

    /// Sets the user scopes.
    ///
    /// ```
    /// let s = slack_oauth::settings::OAuthSettings::new("1", "2").user_scopes(["search:read"]);
    /// assert_eq!(s.user_scopes.to_string(), "search:read");
    /// ```
    #[must_use]
    pub fn user_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.user_scopes = scopes.into_iter().collect();
        self
    }

    /// Sets the `redirect_uri` sent to Slack.
    ///
    /// ```
    /// let s = slack_oauth::settings::OAuthSettings::new("1", "2").redirect_uri("https://a.test/cb");
    /// assert_eq!(s.redirect_uri.as_deref(), Some("https://a.test/cb"));
    /// ```
    #[must_use]
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(uri.into());
        self
    }

    /// Sets the install page's path.
    ///
    /// ```
    /// let s = slack_oauth::settings::OAuthSettings::new("1", "2").install_path("/install");
    /// assert_eq!(s.install_path, "/install");
    /// ```
    #[must_use]
    pub fn install_path(mut self, path: impl Into<String>) -> Self {
        self.install_path = path.into();
        self
    }

    /// Sets the path Slack redirects back to.
    ///
    /// ```
    /// let s = slack_oauth::settings::OAuthSettings::new("1", "2").redirect_uri_path("/cb");
    /// assert_eq!(s.redirect_uri_path, "/cb");
    /// ```
    #[must_use]
    pub fn redirect_uri_path(mut self, path: impl Into<String>) -> Self {
        self.redirect_uri_path = path.into();
        self
    }

    /// Shows the install page (true, default) or redirects straight to Slack (false).
    ///
    /// ```
    /// let s = slack_oauth::settings::OAuthSettings::new("1", "2").install_page_rendering_enabled(false);
    /// assert_eq!(s.install_page_rendering_enabled, false);
    /// ```
    #[must_use]
    pub fn install_page_rendering_enabled(mut self, enabled: bool) -> Self {
        self.install_page_rendering_enabled = enabled;
        self
    }

    /// Sets where the browser goes after a successful install.
    ///
    /// ```
    /// let s = slack_oauth::settings::OAuthSettings::new("1", "2").success_url("https://a.test/ok");
    /// assert_eq!(s.success_url.as_deref(), Some("https://a.test/ok"));
    /// ```
    #[must_use]
    pub fn success_url(mut self, url: impl Into<String>) -> Self {
        self.success_url = Some(url.into());
        self
    }

    /// Sets where the browser goes after a failed install (`?error=<reason>` is appended).
    ///
    /// ```
    /// let s = slack_oauth::settings::OAuthSettings::new("1", "2").failure_url("https://a.test/ko");
    /// assert_eq!(s.failure_url.as_deref(), Some("https://a.test/ko"));
    /// ```
    #[must_use]
    pub fn failure_url(mut self, url: impl Into<String>) -> Self {
        self.failure_url = Some(url.into());
        self
    }

    /// Sets Slack's authorize endpoint.
    ///
    /// ```
    /// let s = slack_oauth::settings::OAuthSettings::new("1", "2").authorize_url("http://127.0.0.1:9/oauth/v2/authorize");
    /// assert_eq!(s.authorize_url, "http://127.0.0.1:9/oauth/v2/authorize");
    /// ```
    #[must_use]
    pub fn authorize_url(mut self, url: impl Into<String>) -> Self {
        self.authorize_url = url.into();
        self
    }

    /// Turns the state check (CSRF protection) on (default) or off.
    ///
    /// ```
    /// let s = slack_oauth::settings::OAuthSettings::new("1", "2").state_validation_enabled(false);
    /// assert_eq!(s.state_validation_enabled, false);
    /// ```
    #[must_use]
    pub fn state_validation_enabled(mut self, enabled: bool) -> Self {
        self.state_validation_enabled = enabled;
        self
    }

    /// Sets the state cookie's name, instead of the automatic choice (for instance Bolt's
    /// `slack-app-oauth-state`, to move an app between implementations mid-install).
    ///
    /// ```
    /// let s = slack_oauth::settings::OAuthSettings::new("1", "2").state_cookie_name("my-state");
    /// assert_eq!(s.resolved_state_cookie_name(), "my-state");
    /// ```
    #[must_use]
    pub fn state_cookie_name(mut self, name: impl Into<String>) -> Self {
        self.state_cookie_name = Some(name.into());
        self
    }

    /// The state cookie's name in use: the configured one, else [`HOST_STATE_COOKIE_NAME`] when
    /// the cookie is `Secure` and the redirect URI is not plain `http` (an unset redirect URI
    /// is the app's registered one, https in production), else [`DEFAULT_STATE_COOKIE_NAME`].
    ///
    /// ```
    /// use slack_oauth::settings::OAuthSettings;
    /// let production = OAuthSettings::new("1", "2").redirect_uri("https://app.test/slack/oauth_redirect");
    /// assert_eq!(production.resolved_state_cookie_name(), "__Host-slack-app-oauth-state");
    /// let local = OAuthSettings::new("1", "2").redirect_uri("http://localhost:3000/slack/oauth_redirect");
    /// assert_eq!(local.resolved_state_cookie_name(), "slack-app-oauth-state");
    /// ```
    pub fn resolved_state_cookie_name(&self) -> &str {
        if let Some(name) = &self.state_cookie_name {
            return name;
        }
        let plain_http = self
            .redirect_uri
            .as_deref()
            .is_some_and(|uri| uri.trim_start().to_ascii_lowercase().starts_with("http:"));
        if self.state_cookie_secure && !plain_http {
            HOST_STATE_COOKIE_NAME
        } else {
            DEFAULT_STATE_COOKIE_NAME
        }
    }

    /// Sets how long a state stays valid.
    ///
    /// ```
    /// let s = slack_oauth::settings::OAuthSettings::new("1", "2").state_expiration(std::time::Duration::from_secs(300));
    /// assert_eq!(s.state_expiration.as_secs(), 300);
    /// ```
    #[must_use]
    pub fn state_expiration(mut self, expiration: Duration) -> Self {
        self.state_expiration = expiration;
        self
    }

    /// Sets whether the state cookie carries `Secure`.
    ///
    /// ```
    /// let s = slack_oauth::settings::OAuthSettings::new("1", "2").state_cookie_secure(false);
    /// assert_eq!(s.state_cookie_secure, false);
    /// ```
    #[must_use]
    pub fn state_cookie_secure(mut self, secure: bool) -> Self {
        self.state_cookie_secure = secure;
        self
    }

    /// Sets the state cookie's `SameSite`.
    ///
    /// ```
    /// let s = slack_oauth::settings::OAuthSettings::new("1", "2").state_cookie_same_site(slack_oauth::settings::SameSite::Strict);
    /// assert_eq!(s.state_cookie_same_site, slack_oauth::settings::SameSite::Strict);
    /// ```
    #[must_use]
    pub fn state_cookie_same_site(mut self, same_site: SameSite) -> Self {
        self.state_cookie_same_site = same_site;
        self
    }

    /// Sets how many minutes before expiry rotating tokens are refreshed.
    ///
    /// ```
    /// let s = slack_oauth::settings::OAuthSettings::new("1", "2").token_rotation_expiration_minutes(30);
    /// assert_eq!(s.token_rotation_expiration_minutes, 30);
    /// ```
    #[must_use]
    pub fn token_rotation_expiration_minutes(mut self, minutes: u32) -> Self {
        self.token_rotation_expiration_minutes = minutes;
        self
    }

    /// The cap on outstanding states (`None`: no cap). See [`max_live_states`](Self#structfield.max_live_states).
    ///
    /// ```
    /// let s = slack_oauth::settings::OAuthSettings::new("1", "2").max_live_states(Some(1_000));
    /// assert_eq!(s.max_live_states, Some(1_000));
    /// ```
    #[must_use]
    pub fn max_live_states(mut self, cap: Option<u64>) -> Self {
        self.max_live_states = cap;
        self
    }

    /// Accepts a plain `http` [`authorize_url`](Self::authorize_url) on a host other than this
    /// machine (`--allow-insecure-slack-url`). The browser would carry the state and the
    /// app's client id over plain http: for a test network you control only.
    ///
    /// ```
    /// use slack_oauth::settings::OAuthSettings;
    /// let settings = OAuthSettings::new("1", "2").authorize_url("http://slack.test/oauth/v2/authorize");
    /// assert!(settings.validate().is_err());
    /// assert!(settings.allow_insecure_slack_url(true).validate().is_ok());
    /// ```
    #[must_use]
    pub fn allow_insecure_slack_url(mut self, allow: bool) -> Self {
        self.allow_insecure_slack_url = allow;
        self
    }

    /// Checks the settings: credentials are set, paths start with `/`, URLs (authorize, redirect,
    /// success, failure) are absolute `http(s)` URLs, the cookie name is a valid cookie name and its
    /// `__Host-`/`__Secure-` prefix rules hold, and the state lifetime is positive.
    ///
    /// ```
    /// use slack_oauth::settings::{ConfigError, OAuthSettings};
    /// let settings = OAuthSettings::new("111.222", "secret").install_path("slack/install");
    /// let error = settings.validate().unwrap_err();
    /// assert!(matches!(error, ConfigError::Invalid { setting: "install_path", .. }));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut missing = Vec::new();
        if self.client_id.as_str().trim().is_empty() {
            missing.push("SLACK_CLIENT_ID");
        }
        if self.client_secret.secret().trim().is_empty() {
            missing.push("SLACK_CLIENT_SECRET");
        }
        if !missing.is_empty() {
            return Err(ConfigError::Missing { names: missing });
        }
        check_path("install_path", &self.install_path)?;
        check_path("redirect_uri_path", &self.redirect_uri_path)?;
        if self.install_path == self.redirect_uri_path {
            return Err(invalid(
                "redirect_uri_path",
                &self.redirect_uri_path,
                "must differ from install_path",
            ));
        }
        check_url("authorize_url", &self.authorize_url)?;
        if !self.allow_insecure_slack_url {
            if let Ok(url) = Url::parse(&self.authorize_url) {
                if url.scheme() == "http" && !is_loopback(&url) {
                    return Err(invalid(
                        "authorize_url",
                        &self.authorize_url,
                        "is plain http to a host other than this machine; use https, a \
                         loopback address (the emulator), or allow it explicitly \
                         (--allow-insecure-slack-url)",
                    ));
                }
            }
        }
        if let Some(uri) = &self.redirect_uri {
            check_url("redirect_uri", uri)?;
        }
        if let Some(url) = &self.success_url {
            check_redirect_target("success_url", url)?;
        }
        if let Some(url) = &self.failure_url {
            check_redirect_target("failure_url", url)?;
        }
        self.check_cookie()?;
        Ok(())
    }

    fn check_cookie(&self) -> Result<(), ConfigError> {
        let name = self.resolved_state_cookie_name();
        // RFC 6265 cookie-name is an RFC 7230 token.
        let is_token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !is_token {
            return Err(invalid(
                "state_cookie_name",
                name,
                "must be a cookie name: letters, digits and !#$%&'*+-.^_`|~ only",
            ));
        }
        let prefixed = name.starts_with("__Host-") || name.starts_with("__Secure-");
        if prefixed && !self.state_cookie_secure {
            return Err(invalid(
                "state_cookie_name",
                name,
                "has a __Host-/__Secure- prefix, which browsers accept only with Secure; \
                 turn state_cookie_secure on or drop the prefix",
            ));
        }
        if self.state_cookie_same_site == SameSite::None && !self.state_cookie_secure {
            return Err(invalid(
                "state_cookie_same_site",
                "None",
                "requires state_cookie_secure; use SameSite=Lax",
            ));
        }
        if self.state_expiration.as_secs() == 0 {
            return Err(invalid(
                "state_expiration",
                &format!("{:?}", self.state_expiration),
                "must be at least one second",
            ));
        }
        Ok(())
    }
}

fn check_path(setting: &'static str, path: &str) -> Result<(), ConfigError> {
    if !path.starts_with('/') {
        return Err(invalid(setting, path, "must start with '/'"));
    }
    // `{`, `}`, `*` and `:` would be route parameters to axum and other routers.
    if path.starts_with("//")
        || path.contains(['?', '#', '{', '}', '*', ':'])
        || path.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid(
            setting,
            path,
            "must be a plain path (no '//' prefix, query, fragment, whitespace or {}*:)",
        ));
    }
    Ok(())
}

fn check_url(setting: &'static str, value: &str) -> Result<(), ConfigError> {
    let url = Url::parse(value)
        .map_err(|error| invalid(setting, value, &format!("is not an absolute URL ({error})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(
            setting,
            value,
            "must be an http:// or https:// URL",
        ));
    }
    if url.fragment().is_some() && setting == "authorize_url" {
        return Err(invalid(setting, value, "must not have a #fragment"));
    }
    Ok(())
}

/// Where the browser may be sent after an install: a path on this site (`/welcome?x=1`), an
/// `https` URL, or `http` on a loopback address (local development). Never a scheme-relative
/// `//host` or a `javascript:`/`data:` URL.
fn check_redirect_target(setting: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) || value.contains('\\') {
        return Err(invalid(
            setting,
            value,
            "must not contain whitespace, control characters or backslashes",
        ));
    }
    if let Some(rest) = value.strip_prefix('/') {
        if rest.starts_with('/') {
            return Err(invalid(
                setting,
                value,
                "is a scheme-relative URL (//host): use a path such as /welcome or an https URL",
            ));
        }
        if crate::flow::configured_location(value, None).is_none() {
            return Err(invalid(
                setting,
                value,
                "resolves to a path starting with // (another host, for a browser): remove the \
                 dot segments",
            ));
        }
        return Ok(());
    }
    let url = Url::parse(value).map_err(|error| {
        invalid(
            setting,
            value,
            &format!("must be a path such as /welcome or an https URL ({error})"),
        )
    })?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        _ => Err(invalid(
            setting,
            value,
            "must be a path such as /welcome or an https URL (http only on this machine)",
        )),
    }
}

/// Environment variable of [`OAuthSettings::allow_insecure_slack_url`] (`true` or `false`).
pub const ALLOW_INSECURE_SLACK_URL_ENV: &str = "SLACK_OAUTH_ALLOW_INSECURE_SLACK_URL";

/// `true`/`1`/`yes`/`on` or `false`/`0`/`no`/`off`, any case.
fn parse_flag(setting: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(invalid(setting, value, "must be true or false")),
    }
}

/// Whether `url` points at this machine: a loopback IP (`127.0.0.0/8`, `::1`), `localhost`
/// or a `*.localhost` name (RFC 6761 reserves them for loopback).
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => {
            // One trailing dot is the absolute form of the same name; `localhost..` is no name.
            let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
            name == "localhost" || (name.ends_with(".localhost") && !name.contains(".."))
        }
        None => false,
    }
}

fn invalid(setting: &'static str, value: &str, problem: &str) -> ConfigError {
    ConfigError::Invalid {
        setting,
        value: value.to_owned(),
        problem: problem.to_owned(),
    }
}

impl fmt::Debug for OAuthSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthSettings")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("scopes", &self.scopes)
            .field("user_scopes", &self.user_scopes)
            .field("redirect_uri", &self.redirect_uri)
            .field("install_path", &self.install_path)
            .field("redirect_uri_path", &self.redirect_uri_path)
            .field(
                "install_page_rendering_enabled",
                &self.install_page_rendering_enabled,
            )
            .field("success_url", &self.success_url)
            .field("failure_url", &self.failure_url)
            .field("authorize_url", &self.authorize_url)
            .field("state_validation_enabled", &self.state_validation_enabled)
            .field("state_cookie_name", &self.state_cookie_name)
            .field("state_expiration", &self.state_expiration)
            .field("state_cookie_secure", &self.state_cookie_secure)
            .field("state_cookie_same_site", &self.state_cookie_same_site)
            .field(
                "token_rotation_expiration_minutes",
                &self.token_rotation_expiration_minutes,
            )
            .field("max_live_states", &self.max_live_states)
            .field("allow_insecure_slack_url", &self.allow_insecure_slack_url)
            .finish()
    }
}

#[cfg(test)]
mod tests;
