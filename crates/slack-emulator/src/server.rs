//! The [`Emulator`] handle: binds the server, exposes its URLs, and scripts its state.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::{any, get, post};
use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{EmulatorConfig, Grant};
use crate::faults::Fault;
use crate::state::{Counters, Shared};
use crate::tokens::TokenKind;

/// How long [`Emulator::shutdown`] lets in-flight requests finish before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A running emulator. Cheap to clone; all clones drive the same server. Dropping the last
/// clone, or calling [`shutdown`](Emulator::shutdown), stops it.
///
/// The server runs as a task on the tokio runtime that called [`spawn`](Emulator::spawn) or
/// [`bind`](Emulator::bind), and stops with that runtime.
#[derive(Clone)]
pub struct Emulator {
    inner: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.inner.addr)
            .field("config", &self.inner.shared.config)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Starts an emulator on `127.0.0.1` with a free port.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use slack_emulator::{Emulator, EmulatorConfig};
    /// let emulator = Emulator::spawn(EmulatorConfig::default()).await?;
    /// assert!(emulator.url().starts_with("http://127.0.0.1:"));
    /// emulator.shutdown().await;
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn spawn(config: EmulatorConfig) -> std::io::Result<Emulator> {
        Self::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    /// Starts an emulator on `addr` (port 0 picks a free port).
    ///
    /// # Errors
    ///
    /// The bind error, or an error when called outside a tokio runtime.
    pub async fn bind(addr: SocketAddr, config: EmulatorConfig) -> std::io::Result<Emulator> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(std::io::Error::other(
                "slack-emulator needs a tokio runtime: call it from within #[tokio::main] or #[tokio::test]",
            ));
        }
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config, format!("http://{addr}/")));
        let router = Router::new()
            .route("/api/{method}", any(crate::api::handle))
            .route("/oauth/v2/authorize", get(crate::authorize::page))
            .route(
                "/oauth/v2/authorize/approve",
                post(crate::authorize::approve),
            )
            .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
            .with_state(Arc::clone(&shared));
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                // Resolves on `true`, or when every handle is gone (the sender is dropped).
                let _ = stopped.wait_for(|stop| *stop).await;
            });
            if let Err(error) = serve.await {
                tracing::warn!(%error, "slack emulator server stopped with an error");
            }
        });
        Ok(Emulator {
            inner: Arc::new(Handle {
                shared,
                addr,
                stop,
                task: Mutex::new(Some(task)),
            }),
        })
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The root URL, `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        self.shared().base_url.clone()
    }

    /// The Web API base URL, `http://127.0.0.1:PORT/api/` (Slack's is `https://slack.com/api/`).
    pub fn api_url(&self) -> String {
        format!("{}api/", self.shared().base_url)
    }

    /// The authorize URL, `http://127.0.0.1:PORT/oauth/v2/authorize`.
    pub fn authorize_url(&self) -> String {
        format!("{}oauth/v2/authorize", self.shared().base_url)
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        self.shared().lock().counters.clone()
    }

    /// Whether `refresh_token` is live (issued, never redeemed), spent, revoked, or unknown.
    pub fn refresh_token_status(&self, refresh_token: &str) -> crate::RefreshTokenStatus {
        use crate::RefreshTokenStatus;
        match self.shared().lock().refresh.get(refresh_token) {
            None => RefreshTokenStatus::Unknown,
            Some(record) if record.revoked => RefreshTokenStatus::Revoked,
            Some(record) if record.spent_at.is_some() => RefreshTokenStatus::Spent,
            Some(_) => RefreshTokenStatus::Live,
        }
    }

    /// Where `token` (an access or refresh token of a rotating pair) sits in its family: the
    /// family (one per install or exchange) and its generation (0 for the token issued by the
    /// install, then one more per refresh). `None` for unknown and long-lived tokens.
    pub fn token_generation(&self, token: &str) -> Option<crate::TokenGeneration> {
        let shared = self.shared();
        let inner = shared.lock();
        inner.families.iter().find_map(|(family, tokens)| {
            tokens
                .access
                .iter()
                .position(|t| t == token)
                .or_else(|| tokens.refresh.iter().position(|t| t == token))
                .map(|generation| crate::TokenGeneration {
                    family: *family,
                    generation,
                })
        })
    }

    /// Sets every counter back to zero (issued codes and tokens stay valid).
    pub fn reset_counters(&self) {
        self.shared().lock().counters = Counters::default();
    }

    /// Makes the next `times` calls of `method` (a Web API method name such as
    /// `"oauth.v2.access"`, or [`ANY_METHOD`](crate::ANY_METHOD)) fail with `fault`. Faults
    /// queue up in the order injected; a method's own faults come before `"*"` ones.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use slack_emulator::{Emulator, EmulatorConfig, Fault};
    /// let emulator = Emulator::spawn(EmulatorConfig::default()).await?;
    /// emulator.inject("auth.test", Fault::RateLimited { retry_after_secs: 3 }, 1);
    /// let response = reqwest::Client::new()
    ///     .post(format!("{}auth.test", emulator.api_url()))
    ///     .send()
    ///     .await?;
    /// assert_eq!(response.status(), 429);
    /// assert_eq!(response.headers()["retry-after"], "3");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn inject(&self, method: &str, fault: Fault, times: u32) {
        self.shared().lock().faults.push(method, fault, times);
    }

    /// Sets the latency added to every Web API call.
    pub fn set_latency(&self, latency: Duration) {
        self.shared().lock().latency = latency;
    }

    /// Sets what an approved `authorize` installs from now on.
    pub fn set_default_grant(&self, grant: Grant) {
        self.shared().lock().default_grant = grant;
    }

    /// A code for `oauth.v2.access`, as if a user had approved an install of `grant`. With
    /// `redirect_uri`, the redemption must send the same value (else `bad_redirect_uri`).
    /// The code is not bound to a client id.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use slack_emulator::{Emulator, EmulatorConfig, Grant, InstallKind};
    /// let emulator = Emulator::spawn(EmulatorConfig::default()).await?;
    /// let org = Grant { kind: InstallKind::OrgWide, ..Grant::default() };
    /// let code = emulator.issue_code(org, None);
    /// let response: serde_json::Value = reqwest::Client::new()
    ///     .post(format!("{}oauth.v2.access", emulator.api_url()))
    ///     .form(&[("client_id", "1.2"), ("client_secret", "s"), ("code", code.as_str())])
    ///     .send()
    ///     .await?
    ///     .json()
    ///     .await?;
    /// assert!(response["team"].is_null());
    /// assert_eq!(response["is_enterprise_install"], true);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn issue_code(&self, grant: Grant, redirect_uri: Option<&str>) -> String {
        self.shared()
            .issue_code(grant, redirect_uri.map(str::to_owned), None, None)
    }

    /// A live rotating pair `(access token, refresh token)` for `grant`'s bot (or, with `user`,
    /// its installing user) without the HTTP dance, e.g. to seed thousands of installs for a
    /// benchmark. Works whatever [`EmulatorConfig::rotation`] says, but redeeming the refresh
    /// token needs rotation on.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use slack_emulator::{Emulator, EmulatorConfig, Grant};
    /// let emulator = Emulator::spawn(EmulatorConfig { rotation: true, ..Default::default() }).await?;
    /// let (access, refresh) = emulator.seed_refresh_token(&Grant::for_team("T1"), false);
    /// assert!(access.starts_with("xoxe.xoxb-1-"));
    /// assert!(refresh.starts_with("xoxe-1-"));
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn seed_refresh_token(&self, grant: &Grant, user: bool) -> (String, String) {
        let issued = self.shared().seed(grant, kind(user), true);
        (issued.access, issued.refresh.unwrap_or_default())
    }

    /// A live long-lived token (`xoxb-…`, or `xoxp-…` with `user`) for `grant`, as issued before
    /// rotation was turned on: the input of `oauth.v2.exchange`.
    pub fn seed_token(&self, grant: &Grant, user: bool) -> String {
        self.shared().seed(grant, kind(user), false).access
    }

    /// Moves the emulator's clock forward: code expiry, token expiry and refresh grace are all
    /// measured on it. Real time keeps passing too.
    pub fn advance_clock(&self, by: Duration) {
        self.shared().clock.advance(by);
    }

    /// The emulator's current time as a Unix timestamp (real time plus every
    /// [`advance_clock`](Emulator::advance_clock)).
    pub fn now_unix(&self) -> Duration {
        self.shared().clock.unix()
    }

    /// Stops the server for every clone: new connections are refused, and in-flight requests
    /// get a short grace period before they are cut.
    pub async fn shutdown(self) {
        let _ = self.inner.stop.send(true);
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut task) = task {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

fn kind(user: bool) -> TokenKind {
    if user {
        TokenKind::User
    } else {
        TokenKind::Bot
    }
}
