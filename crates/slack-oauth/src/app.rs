//! The common case wired in one place (feature `axum`): settings and secrets from the
//! environment, a store from `DATABASE_URL` behind the authorize cache, the Web API client, the
//! install flow, and authorize with lazy token rotation, with the signature and authorize
//! layers applied in the one order that is safe.
//!
//! Every part stays usable on its own ([`OAuthFlow`], [`Authorizer`], [`AuthorizeLayer`],
//! [`VerifySignatureLayer`], the stores): [`SlackApp`] only saves the wiring.
//!
//! ```no_run
//! use axum::{routing::post, Router};
//! use slack_oauth::{Authorized, SlackApp};
//!
//! async fn events(auth: Option<Authorized>) -> &'static str {
//!     if let Some(Authorized(result)) = auth {
//!         let _bot_token = result.bot_token; // call the Web API as the app's bot
//!     }
//!     ""
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let slack = SlackApp::from_env().await?;
//! let app = slack
//!     .install_routes()
//!     .merge(slack.authorized(Router::new().route("/slack/events", post(events))));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```

use std::fmt;

use axum::Router;

use crate::api::{ApiError, Client, ClientCredentials, DEFAULT_BASE_URL};
use crate::authorize::{AuthorizeLayer, Authorizer, CachedStore};
use crate::encryption::{EncryptionKeys, KeyError, ENCRYPTION_KEYS_ENV};
use crate::flow::OAuthFlow;
use crate::rotation::{Rotation, TokenRotator};
use crate::secret::SigningSecret;
use crate::settings::{ConfigError, OAuthSettings};
use crate::signature::VerifySignatureLayer;
use crate::store::{AnyStore, StoreError};

/// The store [`SlackApp`] uses: the one `DATABASE_URL` names, behind the authorize cache (the
/// flow's saves and the rotation's updates go through the cache, so it never serves a stale
/// token from this process).
pub type AppStore = CachedStore<AnyStore>;

/// The store used when `DATABASE_URL` is unset: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://slack-oauth.db";

/// Environment variable of the signing secret (Slack's app settings, "Basic Information").
pub const SIGNING_SECRET_ENV: &str = "SLACK_SIGNING_SECRET";

/// What can stop [`SlackApp`] from starting; each message says what to set.
///
/// ```
/// use slack_oauth::app::SetupError;
/// use slack_oauth::{secret::SigningSecret, settings::OAuthSettings, SlackApp};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let settings = OAuthSettings::new("111.222", "client-secret").scopes(["chat:write"]);
/// let error = SlackApp::builder(settings, SigningSecret::new("signing-secret"))
///     .database_url("mysql://localhost/slack")
///     .build()
///     .await
///     .unwrap_err();
/// assert!(matches!(error, SetupError::Store(_)), "{error}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The OAuth settings are missing or invalid.
    #[error(transparent)]
    Settings(#[from] ConfigError),
    /// `SLACK_SIGNING_SECRET` is not set.
    #[error(
        "{SIGNING_SECRET_ENV} is not set: copy the Signing Secret from your app's \
         Basic Information page at https://api.slack.com/apps"
    )]
    MissingSigningSecret,
    /// `SLACK_TOKEN_ENCRYPTION_KEYS` is set but malformed.
    #[error("{ENCRYPTION_KEYS_ENV}: {0}")]
    Keys(#[from] KeyError),
    /// The Web API client could not be built (a bad `SLACK_API_URL`).
    #[error(transparent)]
    Client(#[from] ApiError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A Slack app's OAuth side, wired: the install flow, authorize with lazy rotation, and the
/// layers. Cheap to clone.
///
/// ```
/// use axum::{routing::post, Extension, Router};
/// use slack_oauth::{secret::SigningSecret, settings::OAuthSettings, Authorized, SlackApp};
///
/// async fn events(Extension(authorized): Extension<Authorized>) -> &'static str {
///     let _ = authorized; // the workspace's ids and live tokens
///     "ok"
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let settings = OAuthSettings::new("111.222", "client-secret").scopes(["chat:write"]);
/// let slack = SlackApp::builder(settings, SigningSecret::new("signing-secret"))
///     .database_url("memory://")
///     .build()
///     .await?;
/// let app: Router = Router::new()
///     .merge(slack.install_routes())
///     .merge(slack.authorized(Router::new().route("/slack/events", post(events))));
/// # let _ = app;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SlackApp {
    flow: OAuthFlow<AppStore>,
    authorizer: Authorizer<AppStore, Rotation<AppStore>>,
    signing_secret: SigningSecret,
}

impl fmt::Debug for SlackApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackApp")
            .field("client_id", &self.flow.settings().client_id)
            .field("store", &self.flow.store().inner().backend())
            .finish_non_exhaustive()
    }
}

impl SlackApp {
    /// Everything from the environment: [`OAuthSettings::from_env`] (`SLACK_CLIENT_ID`,
    /// `SLACK_CLIENT_SECRET`, `SLACK_SCOPES`, ...), `SLACK_SIGNING_SECRET`, `DATABASE_URL`
    /// (default [`DEFAULT_DATABASE_URL`]), `SLACK_API_URL` (default Slack's) and
    /// `SLACK_TOKEN_ENCRYPTION_KEYS` (optional). Empty values count as unset.
    ///
    /// # Errors
    /// [`SetupError`], naming what to set.
    pub async fn from_env() -> Result<Self, SetupError> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let settings = OAuthSettings::from_env()?;
        let signing_secret = env(SIGNING_SECRET_ENV).ok_or(SetupError::MissingSigningSecret)?;
        let mut builder = Self::builder(settings, SigningSecret::new(signing_secret));
        if let Some(url) = env("DATABASE_URL") {
            builder = builder.database_url(url);
        }
        if let Some(url) = env("SLACK_API_URL") {
            builder = builder.api_url(url);
        }
        if let Some(keys) = env(ENCRYPTION_KEYS_ENV) {
            builder = builder.encryption_keys(EncryptionKeys::parse(&keys)?);
        }
        builder.build().await
    }

    /// A builder from explicit settings and signing secret; see [`SlackAppBuilder`].
    ///
    /// ```
    /// use slack_oauth::{secret::SigningSecret, settings::OAuthSettings, SlackApp};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// let settings = OAuthSettings::new("111.222", "client-secret").scopes(["chat:write"]);
    /// let slack = SlackApp::builder(settings, SigningSecret::new("signing-secret"))
    ///     .database_url("memory://")
    ///     .build()
    ///     .await?;
    /// assert_eq!(slack.flow().settings().install_path, "/slack/install");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(settings: OAuthSettings, signing_secret: SigningSecret) -> SlackAppBuilder {
        SlackAppBuilder {
            settings,
            signing_secret,
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            api_url: None,
            keys: None,
        }
    }

    /// The install page and the OAuth callback (at the settings' `install_path` and
    /// `redirect_uri_path`), ready to merge into an app.
    pub fn install_routes(&self) -> Router {
        crate::axum::routes(&self.flow).with_state(self.flow.clone())
    }

    /// `routes` behind signature verification and then authorize: a request reaches them only
    /// with a valid Slack signature, with [`Authorized`](crate::authorize::Authorized) in its
    /// extensions when its workspace is installed (expiring tokens refreshed first), and
    /// `app_uninstalled` / `tokens_revoked` applied to the store. The order of the two layers
    /// is fixed here, so it cannot be got wrong.
    pub fn authorized(&self, routes: Router) -> Router {
        routes
            .layer(AuthorizeLayer::new(self.authorizer.clone()))
            .layer(VerifySignatureLayer::new(self.signing_secret.clone()))
    }

    /// The install flow.
    pub fn flow(&self) -> &OAuthFlow<AppStore> {
        &self.flow
    }

    /// The authorizer (for frameworks other than axum).
    pub fn authorizer(&self) -> &Authorizer<AppStore, Rotation<AppStore>> {
        &self.authorizer
    }

    /// The Web API client.
    pub fn client(&self) -> &Client {
        self.flow.client()
    }

    /// The store, behind the authorize cache.
    pub fn store(&self) -> &AppStore {
        self.flow.store()
    }
}

/// Builds a [`SlackApp`] from explicit parts; every part has the default
/// [`SlackApp::from_env`] would use.
///
/// ```
/// use slack_oauth::{secret::SigningSecret, settings::OAuthSettings, SlackApp};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let settings = OAuthSettings::new("111.222", "client-secret").scopes(["chat:write"]);
/// let slack = SlackApp::builder(settings, SigningSecret::new("signing-secret"))
///     .database_url("memory://")
///     .api_url("http://127.0.0.1:8080/api/") // the emulator's
///     .build()
///     .await?;
/// assert_eq!(slack.client().base_url().as_str(), "http://127.0.0.1:8080/api/");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[must_use]
pub struct SlackAppBuilder {
    settings: OAuthSettings,
    signing_secret: SigningSecret,
    database_url: String,
    api_url: Option<String>,
    keys: Option<EncryptionKeys>,
}

impl SlackAppBuilder {
    /// The store: `sqlite://path`, `postgres://…` or `memory://` (default
    /// [`DEFAULT_DATABASE_URL`]).
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = url.into();
        self
    }

    /// Slack's Web API base URL (default `https://slack.com/api/`; the emulator's for tests).
    pub fn api_url(mut self, url: impl Into<String>) -> Self {
        self.api_url = Some(url.into());
        self
    }

    /// Encrypts tokens at rest with `keys` (see [`encryption`](crate::encryption)).
    pub fn encryption_keys(mut self, keys: EncryptionKeys) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Validates the settings, opens the store and wires the parts.
    ///
    /// # Errors
    /// [`SetupError`].
    pub async fn build(self) -> Result<SlackApp, SetupError> {
        self.settings.validate()?;
        let api_url = self.api_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
        let client = Client::builder()
            .base_url(api_url)
            .allow_insecure_base_url(self.settings.allow_insecure_slack_url)
            .build()?;
        let client_id = self.settings.client_id.clone();
        let store =
            AnyStore::connect_encrypted(&self.database_url, client_id.clone(), self.keys).await?;
        let changes = store.changes().await?;
        let store = CachedStore::new(store);
        if let Some(changes) = changes {
            // On PostgreSQL, other instances' writes reach this cache in milliseconds.
            tokio::spawn(store.follow_changes(changes));
        }
        let credentials = ClientCredentials::new(client_id, self.settings.client_secret.clone());
        let rotation = Rotation::new(
            TokenRotator::new(client.clone(), credentials),
            store.clone(),
        )
        .minutes_before_expiration(self.settings.token_rotation_expiration_minutes);
        let authorizer = Authorizer::new(store.clone()).refresher(rotation);
        let flow = OAuthFlow::new(self.settings, store, client)?;
        Ok(SlackApp {
            flow,
            authorizer,
            signing_secret: self.signing_secret,
        })
    }
}
