//! The OAuth v2 install flow, independent of any web framework: `OAuthFlow`.
//!
//! Two steps, each available as a typed call or as a ready HTTP response:
//!
//! | step | typed | HTTP (`http::Response<String>`) |
//! |---|---|---|
//! | install path | [`OAuthFlow::start_install`] → [`InstallStart`] | [`OAuthFlow::handle_installation`] |
//! | redirect path | [`OAuthFlow::complete`] → `Result<Installation, CallbackError>` | [`OAuthFlow::handle_callback`] |
//!
//! The callback checks, in Bolt's order: Slack's `error` parameter, the state cookie
//! (`invalid_browser`, the state is not consumed), the state (`invalid_state`, consumed once),
//! the `code` (`missing_code`), the exchange (`invalid_code`), and the save (`storage_error`).
//! The `http` responses add the state cookie's deletion to every outcome. The `axum` feature
//! mounts both on a router ([`crate::axum::routes`]).
//!
//! Where this departs from Bolt, on purpose: authorize URL values are percent-encoded (W26);
//! `failure_url` is used (W21); reasons are HTML-escaped once (W23); any store error is a
//! `storage_error` page with the cookie deleted (W24); user-only org-wide installs work (W6) and a
//! missing `bot_id` or `scope` is stored as empty (W5, W25); the pages send a strict
//! Content-Security-Policy, `no-store` and `no-referrer`; the cookie has `SameSite=Lax`.

mod authorize_url;
mod callback;
mod error;
mod exchange;
#[cfg(feature = "fuzzing")]
pub(crate) use exchange::build_installation;
mod handlers;
mod install;
mod live_states;
pub mod pages;

use std::fmt;
use std::sync::Arc;

pub use authorize_url::AuthorizeUrl;
pub use callback::CallbackParams;
pub use error::{CallbackError, InstallError};
pub(crate) use handlers::configured_location;
pub use handlers::{DefaultPages, HandlerFuture};
pub use install::InstallStart;

use crate::api::Client;
use crate::clock::{Clock, SystemClock};
use crate::settings::{ConfigError, OAuthSettings};
use crate::state::StateCookie;
use crate::store::{InstallationStore, StateStore};
use handlers::{FailureHandler, SuccessHandler};

/// The install flow: settings, a store for states and installations, a Slack API client and a
/// clock. Cheap to clone (the store is cloned, the rest is shared).
///
/// ```
/// use slack_oauth::api::Client;
/// use slack_oauth::flow::OAuthFlow;
/// use slack_oauth::settings::OAuthSettings;
/// use slack_oauth::store::MemoryStore;
///
/// let settings = OAuthSettings::new("111.222", "client-secret").scopes(["commands"]);
/// let flow = OAuthFlow::new(settings, MemoryStore::new(), Client::new()?)?;
/// assert_eq!(flow.settings().install_path, "/slack/install");
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
pub struct OAuthFlow<S> {
    shared: Arc<Shared>,
    store: S,
}

/// What every clone of a flow shares.
#[derive(Clone)]
struct Shared {
    settings: Arc<OAuthSettings>,
    authorize_url: AuthorizeUrl,
    cookie: StateCookie,
    client: Client,
    clock: Arc<dyn Clock>,
    success_handler: Option<SuccessHandler>,
    failure_handler: Option<FailureHandler>,
    live_states: Arc<live_states::LiveStates>,
}

impl<S> OAuthFlow<S>
where
    S: InstallationStore + StateStore + Clone + Send + Sync + 'static,
{
    /// A flow with the system clock and the default pages. Fails when the settings do not
    /// [`validate`](OAuthSettings::validate).
    pub fn new(settings: OAuthSettings, store: S, client: Client) -> Result<Self, ConfigError> {
        settings.validate()?;
        let authorize_url = AuthorizeUrl::from_settings(&settings)?;
        let cookie = StateCookie::from_settings(&settings);
        let max_live_states = settings.max_live_states;
        Ok(Self {
            shared: Arc::new(Shared {
                settings: Arc::new(settings),
                authorize_url,
                cookie,
                client,
                clock: Arc::new(SystemClock),
                success_handler: None,
                failure_handler: None,
                live_states: Arc::new(live_states::LiveStates::new(max_live_states)),
            }),
            store,
        })
    }

    /// Uses `clock` for state expiry, `installed_at` and token expiries (tests pass a
    /// [`ManualClock`](crate::clock::ManualClock)).
    ///
    /// ```
    /// # use slack_oauth::{api::Client, flow::OAuthFlow, settings::OAuthSettings, store::MemoryStore};
    /// use slack_oauth::clock::{Clock, ManualClock};
    /// let flow = OAuthFlow::new(OAuthSettings::new("1", "2"), MemoryStore::new(), Client::new()?)?
    ///     .with_clock(ManualClock::at_unix(1_700_000_000));
    /// assert_eq!(flow.clock().now().unix_timestamp(), 1_700_000_000);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        Arc::make_mut(&mut self.shared).clock = Arc::new(clock);
        self
    }

    /// Answers a successful install with `handler` instead of the default page or
    /// `success_url` redirect. The handler gets the stored installation and the
    /// [`DefaultPages`] to fall back on; the state cookie's deletion is added to its response.
    ///
    /// ```
    /// # use slack_oauth::{api::Client, flow::OAuthFlow, settings::OAuthSettings, store::MemoryStore};
    /// let flow = OAuthFlow::new(OAuthSettings::new("1", "2"), MemoryStore::new(), Client::new()?)?
    ///     .with_success_handler(|installation, defaults| async move {
    ///         if installation.is_enterprise_install {
    ///             return defaults.success(&installation);
    ///         }
    ///         http::Response::new(format!("Welcome, {}!", installation.user_id))
    ///     });
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_success_handler<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(crate::installation::Installation, DefaultPages) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = http::Response<String>> + Send + 'static,
    {
        Arc::make_mut(&mut self.shared).success_handler = Some(handlers::success(handler));
        self
    }

    /// Answers a failed install with `handler` instead of the default page or `failure_url`
    /// redirect. Its status is kept; the state cookie's deletion is added to its response.
    ///
    /// ```
    /// # use slack_oauth::{api::Client, flow::OAuthFlow, settings::OAuthSettings, store::MemoryStore};
    /// let flow = OAuthFlow::new(OAuthSettings::new("1", "2"), MemoryStore::new(), Client::new()?)?
    ///     .with_failure_handler(|error, _defaults| async move {
    ///         let mut response = http::Response::new(format!("install failed: {}", error.reason()));
    ///         *response.status_mut() = http::StatusCode::BAD_GATEWAY;
    ///         response
    ///     });
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_failure_handler<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(CallbackError, DefaultPages) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = http::Response<String>> + Send + 'static,
    {
        Arc::make_mut(&mut self.shared).failure_handler = Some(handlers::failure(handler));
        self
    }
}

impl<S> OAuthFlow<S> {
    /// The settings.
    ///
    /// ```
    /// # use slack_oauth::{api::Client, flow::OAuthFlow, settings::OAuthSettings, store::MemoryStore};
    /// let flow = OAuthFlow::new(OAuthSettings::new("1", "2"), MemoryStore::new(), Client::new()?)?;
    /// assert_eq!(flow.settings().redirect_uri_path, "/slack/oauth_redirect");
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn settings(&self) -> &OAuthSettings {
        &self.shared.settings
    }

    /// The store of states and installations.
    ///
    /// ```
    /// # use slack_oauth::{api::Client, flow::OAuthFlow, settings::OAuthSettings, store::MemoryStore};
    /// let flow = OAuthFlow::new(OAuthSettings::new("1", "2"), MemoryStore::new(), Client::new()?)?;
    /// let store: &MemoryStore = flow.store();
    /// # let _ = store;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The Slack API client.
    ///
    /// ```
    /// # use slack_oauth::{api::Client, flow::OAuthFlow, settings::OAuthSettings, store::MemoryStore};
    /// let flow = OAuthFlow::new(OAuthSettings::new("1", "2"), MemoryStore::new(), Client::new()?)?;
    /// assert_eq!(flow.client().base_url().as_str(), "https://slack.com/api/");
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn client(&self) -> &Client {
        &self.shared.client
    }

    /// The clock.
    ///
    /// ```
    /// # use slack_oauth::{api::Client, flow::OAuthFlow, settings::OAuthSettings, store::MemoryStore};
    /// let flow = OAuthFlow::new(OAuthSettings::new("1", "2"), MemoryStore::new(), Client::new()?)?;
    /// assert!(flow.clock().now().unix_timestamp() > 1_700_000_000);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn clock(&self) -> &dyn Clock {
        self.shared.clock.as_ref()
    }

    /// The state cookie (for a custom callback handler that must delete it).
    ///
    /// ```
    /// # use slack_oauth::{api::Client, flow::OAuthFlow, settings::OAuthSettings, store::MemoryStore};
    /// let flow = OAuthFlow::new(OAuthSettings::new("1", "2"), MemoryStore::new(), Client::new()?)?;
    /// assert!(flow.state_cookie().deletion().starts_with("__Host-slack-app-oauth-state=deleted;"));
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn state_cookie(&self) -> &StateCookie {
        &self.shared.cookie
    }

    /// The authorize URL generator.
    ///
    /// ```
    /// # use slack_oauth::{api::Client, flow::OAuthFlow, settings::OAuthSettings, store::MemoryStore};
    /// let flow = OAuthFlow::new(OAuthSettings::new("1", "2"), MemoryStore::new(), Client::new()?)?;
    /// let url = flow.authorize_url().generate("state", None);
    /// assert!(url.as_str().starts_with("https://slack.com/oauth/v2/authorize?state=state&client_id=1"));
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn authorize_url(&self) -> &AuthorizeUrl {
        &self.shared.authorize_url
    }

    /// The default responses for these settings.
    ///
    /// ```
    /// # use slack_oauth::{api::Client, flow::OAuthFlow, settings::OAuthSettings, store::MemoryStore};
    /// let flow = OAuthFlow::new(OAuthSettings::new("1", "2"), MemoryStore::new(), Client::new()?)?;
    /// let response = flow.default_pages().failure(&slack_oauth::flow::CallbackError::MissingCode);
    /// assert_eq!(response.status(), 401);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn default_pages(&self) -> DefaultPages {
        DefaultPages::new(Arc::clone(&self.shared.settings))
    }
}

impl<S: Clone> Clone for OAuthFlow<S> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            store: self.store.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for OAuthFlow<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthFlow")
            .field("settings", &self.shared.settings)
            .field("store", &self.store)
            .field("client", &self.shared.client)
            .field("clock", &self.shared.clock)
            .field(
                "custom_success_handler",
                &self.shared.success_handler.is_some(),
            )
            .field(
                "custom_failure_handler",
                &self.shared.failure_handler.is_some(),
            )
            .finish()
    }
}
