//! Helpers for the flow tests: a fake store with failure knobs, a store wrapper that fails
//! `save`, flow and request builders, and response assertions.

// Each test module uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::Router;
use http::{Request, StatusCode};
use slack_oauth::api::Client;
use slack_oauth::clock::ManualClock;
use slack_oauth::flow::OAuthFlow;
use slack_oauth::installation::{Bot, Installation};
use slack_oauth::secret::StateValue;
use slack_oauth::settings::OAuthSettings;
use slack_oauth::store::{
    new_state_value, InstallationQuery, InstallationStore, StateStore, StoreError, TokenUpdate,
};
use std::future::IntoFuture as _;
use time::OffsetDateTime;

/// The app's client id in these tests.
pub const CLIENT_ID: &str = "111.222";
/// The app's client secret in these tests.
pub const CLIENT_SECRET: &str = "flow-client-secret-0123456789";
/// The state cookie's name: `__Host-` prefixed, as the settings here are Secure and not on
/// plain http.
pub const COOKIE: &str = "__Host-slack-app-oauth-state";
/// The deletion `Set-Cookie` every callback answer carries.
pub const DELETION: &str = "__Host-slack-app-oauth-state=deleted; Secure; HttpOnly; Path=/; \
                            Expires=Thu, 01 Jan 1970 00:00:00 GMT; SameSite=Lax";
/// The manual clock's start.
pub const T0: i64 = 1_700_000_000;

/// A store of states and installations in memory, with knobs to make it fail.
#[derive(Clone, Debug, Default)]
pub struct FakeStore {
    inner: Arc<FakeInner>,
}

#[derive(Debug, Default)]
struct FakeInner {
    states: Mutex<HashMap<String, OffsetDateTime>>,
    installations: Mutex<Vec<Installation>>,
    consumes: AtomicUsize,
    knobs: Mutex<Knobs>,
}

/// What the fake store does instead of its job.
#[derive(Clone, Copy, Debug, Default)]
pub struct Knobs {
    /// `consume` always answers this.
    pub consume_answer: Option<bool>,
    /// `consume` fails.
    pub fail_consume: bool,
    /// `issue` fails.
    pub fail_issue: bool,
    /// `save` fails.
    pub fail_save: bool,
    /// `issue` hands out this state instead of a random one.
    pub fixed_state: Option<&'static str>,
}

impl FakeStore {
    /// A working store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store with `knobs`.
    pub fn with(knobs: Knobs) -> Self {
        let store = Self::default();
        *store.inner.knobs.lock().unwrap() = knobs;
        store
    }

    /// How many times `consume` was called.
    pub fn consumes(&self) -> usize {
        self.inner.consumes.load(Ordering::SeqCst)
    }

    /// The expiry of `state`, if it is still stored.
    pub fn state_expiry(&self, state: &str) -> Option<OffsetDateTime> {
        self.inner.states.lock().unwrap().get(state).copied()
    }

    /// Every saved installation.
    pub fn saved(&self) -> Vec<Installation> {
        self.inner.installations.lock().unwrap().clone()
    }

    fn knobs(&self) -> Knobs {
        *self.inner.knobs.lock().unwrap()
    }
}

fn failure(what: &str) -> StoreError {
    StoreError::Config(format!("fake store told to fail {what}"))
}

impl StateStore for FakeStore {
    async fn issue(&self, expires_at: OffsetDateTime) -> Result<StateValue, StoreError> {
        let knobs = self.knobs();
        if knobs.fail_issue {
            return Err(failure("issue"));
        }
        let state = knobs
            .fixed_state
            .map_or_else(new_state_value, StateValue::new);
        self.inner
            .states
            .lock()
            .unwrap()
            .insert(state.secret().to_owned(), expires_at);
        Ok(state)
    }

    async fn consume(&self, state: &StateValue, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.inner.consumes.fetch_add(1, Ordering::SeqCst);
        let knobs = self.knobs();
        if knobs.fail_consume {
            return Err(failure("consume"));
        }
        if let Some(answer) = knobs.consume_answer {
            return Ok(answer);
        }
        let expires_at = self.inner.states.lock().unwrap().remove(state.secret());
        Ok(expires_at.is_some_and(|at| now < at))
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let mut states = self.inner.states.lock().unwrap();
        let before = states.len();
        states.retain(|_, at| *at > now);
        Ok((before - states.len()) as u64)
    }

    async fn count_live(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let states = self.inner.states.lock().unwrap();
        Ok(states.values().filter(|at| **at > now).count() as u64)
    }
}

impl InstallationStore for FakeStore {
    async fn save(&self, installation: &Installation) -> Result<(), StoreError> {
        if self.knobs().fail_save {
            return Err(failure("save"));
        }
        self.inner
            .installations
            .lock()
            .unwrap()
            .push(installation.clone());
        Ok(())
    }

    async fn save_bot(&self, _bot: &Bot) -> Result<(), StoreError> {
        Ok(())
    }

    async fn find_bot(&self, _query: &InstallationQuery) -> Result<Option<Bot>, StoreError> {
        Ok(None)
    }

    async fn find_installation(
        &self,
        _query: &InstallationQuery,
    ) -> Result<Option<Installation>, StoreError> {
        Ok(None)
    }

    async fn delete_bot(&self, _query: &InstallationQuery) -> Result<(), StoreError> {
        Ok(())
    }

    async fn delete_installation(&self, _query: &InstallationQuery) -> Result<(), StoreError> {
        Ok(())
    }

    async fn list_installations(&self) -> Result<Vec<Installation>, StoreError> {
        Ok(self.saved())
    }

    async fn list_expiring(
        &self,
        _deadline: OffsetDateTime,
    ) -> Result<Vec<Installation>, StoreError> {
        Ok(Vec::new())
    }

    async fn update_rotated_token(&self, _update: &TokenUpdate) -> Result<bool, StoreError> {
        Ok(false)
    }

    async fn try_acquire_lease(
        &self,
        _name: &str,
        _holder: &str,
        _ttl: std::time::Duration,
    ) -> Result<slack_oauth::store::LeaseAcquisition, StoreError> {
        Ok(slack_oauth::store::LeaseAcquisition::Held {
            pending_intent: None,
        })
    }

    async fn record_refresh_intent(
        &self,
        _name: &str,
        _holder: &str,
        _fingerprint: &str,
        _ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        Ok(true)
    }

    async fn release_lease(&self, _name: &str, _holder: &str) -> Result<(), StoreError> {
        Ok(())
    }

    async fn abandon_lease(&self, _name: &str, _holder: &str) -> Result<(), StoreError> {
        Ok(())
    }

    async fn spend_refresh_budget(
        &self,
        _limit: u32,
    ) -> Result<slack_oauth::store::BudgetSpend, StoreError> {
        Ok(slack_oauth::store::BudgetSpend::Spent { used: 1 })
    }

    async fn flag_reinstall(
        &self,
        _grant: &slack_oauth::store::LostGrant,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }
}

/// Wraps a store and makes its `save` fail; everything else is delegated.
#[derive(Clone, Debug)]
pub struct FailingSave<S>(pub S);

impl<S: StateStore> StateStore for FailingSave<S> {
    async fn issue(&self, expires_at: OffsetDateTime) -> Result<StateValue, StoreError> {
        self.0.issue(expires_at).await
    }

    async fn consume(&self, state: &StateValue, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.0.consume(state, now).await
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.0.purge_expired(now).await
    }

    async fn count_live(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.0.count_live(now).await
    }
}

impl<S: InstallationStore> InstallationStore for FailingSave<S> {
    async fn save(&self, _installation: &Installation) -> Result<(), StoreError> {
        Err(failure("save"))
    }

    async fn save_bot(&self, bot: &Bot) -> Result<(), StoreError> {
        self.0.save_bot(bot).await
    }

    async fn find_bot(&self, query: &InstallationQuery) -> Result<Option<Bot>, StoreError> {
        self.0.find_bot(query).await
    }

    async fn find_installation(
        &self,
        query: &InstallationQuery,
    ) -> Result<Option<Installation>, StoreError> {
        self.0.find_installation(query).await
    }

    async fn delete_bot(&self, query: &InstallationQuery) -> Result<(), StoreError> {
        self.0.delete_bot(query).await
    }

    async fn delete_installation(&self, query: &InstallationQuery) -> Result<(), StoreError> {
        self.0.delete_installation(query).await
    }

    async fn list_installations(&self) -> Result<Vec<Installation>, StoreError> {
        self.0.list_installations().await
    }

    async fn list_expiring(
        &self,
        deadline: OffsetDateTime,
    ) -> Result<Vec<Installation>, StoreError> {
        self.0.list_expiring(deadline).await
    }

    async fn update_rotated_token(&self, update: &TokenUpdate) -> Result<bool, StoreError> {
        self.0.update_rotated_token(update).await
    }

    async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<slack_oauth::store::LeaseAcquisition, StoreError> {
        self.0.try_acquire_lease(name, holder, ttl).await
    }

    async fn record_refresh_intent(
        &self,
        name: &str,
        holder: &str,
        fingerprint: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        self.0
            .record_refresh_intent(name, holder, fingerprint, ttl)
            .await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.0.release_lease(name, holder).await
    }

    async fn abandon_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.0.abandon_lease(name, holder).await
    }

    async fn spend_refresh_budget(
        &self,
        limit: u32,
    ) -> Result<slack_oauth::store::BudgetSpend, StoreError> {
        self.0.spend_refresh_budget(limit).await
    }

    async fn flag_reinstall(
        &self,
        grant: &slack_oauth::store::LostGrant,
    ) -> Result<bool, StoreError> {
        self.0.flag_reinstall(grant).await
    }
}

/// Settings with the test credentials and scopes.
pub fn settings() -> OAuthSettings {
    OAuthSettings::new(CLIENT_ID, CLIENT_SECRET)
        .scopes(["chat:write", "commands"])
        .user_scopes(["search:read"])
}

/// A client for `api_url` with short timeouts.
pub fn client(api_url: &str) -> Client {
    Client::builder()
        .base_url(api_url)
        .connect_timeout(std::time::Duration::from_secs(5))
        .request_timeout(std::time::Duration::from_secs(15))
        .max_retries(0)
        .build()
        .unwrap()
}

/// A client that must never be called: branches before the exchange do not reach Slack, and
/// a call to this address is refused.
pub fn unreachable_client() -> Client {
    client("http://127.0.0.1:9/api/")
}

/// A flow over `store` with `settings`, a client that is never reached, and a manual clock at
/// [`T0`].
pub fn flow<S>(settings: OAuthSettings, store: S) -> (OAuthFlow<S>, ManualClock)
where
    S: InstallationStore + StateStore + Clone + Send + Sync + 'static,
{
    let clock = ManualClock::at_unix(T0);
    let flow = OAuthFlow::new(settings, store, unreachable_client())
        .unwrap()
        .with_clock(clock.clone());
    (flow, clock)
}

/// The flow's routes with the flow as the router state.
pub fn app<S>(flow: &OAuthFlow<S>) -> Router
where
    S: InstallationStore + StateStore + Clone + Send + Sync + 'static,
{
    slack_oauth::axum::routes(flow).with_state(flow.clone())
}

/// A response with its body read.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Answer {
    /// Every `Set-Cookie` value.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(http::header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// A header's value.
    #[track_caller]
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    /// The state set by an install answer, read from its cookie.
    #[track_caller]
    pub fn issued_state(&self) -> String {
        let cookies = self.set_cookies();
        assert_eq!(cookies.len(), 1, "{cookies:?}");
        let value = cookies[0]
            .strip_prefix(&format!("{COOKIE}="))
            .expect("the state cookie");
        value.split(';').next().unwrap().to_owned()
    }
}

/// Sends `request` to `app` over real HTTP: `app` is served on a loopback port for this one
/// request and the request goes through hyper's client with its path and query as given
/// (malformed ones included), each `Cookie` header on its own line.
pub async fn send(app: &Router, request: Request<Body>) -> Answer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(axum::serve(listener, app.clone()).into_future());
    let (mut parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |path| path.as_str())
        .to_owned();
    parts.uri = format!("http://{address}{path}").parse().unwrap();
    let request = Request::from_parts(parts, http_body_util::Full::new(body));
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    server.abort();
    Answer {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

/// `GET uri`, with a `Cookie` header per item of `cookies`.
pub fn get(uri: &str, cookies: &[&str]) -> Request<Body> {
    let mut request = Request::get(uri);
    for cookie in cookies {
        request = request.header(http::header::COOKIE, *cookie);
    }
    request.body(Body::empty()).unwrap()
}

/// `GET /slack/install` and the state it issued.
pub async fn install(app: &Router) -> (Answer, String) {
    let answer = send(app, get("/slack/install", &[])).await;
    let state = answer.issued_state();
    (answer, state)
}

/// The callback URI for `query`.
pub fn callback(query: &str) -> String {
    format!("/slack/oauth_redirect?{query}")
}

/// The `Cookie` header value binding `state`.
pub fn cookie_for(state: &str) -> String {
    format!("{COOKIE}={state}")
}

/// Asserts a failure answer: its status, the reason text on the page, the page headers and the
/// cookie's deletion.
#[track_caller]
pub fn assert_failure(answer: &Answer, status: u16, reason: &str) {
    assert_eq!(answer.status.as_u16(), status, "{}", answer.body);
    assert!(
        answer.body.contains(&format!("(reason: {reason}: ")),
        "reason {reason} not on the page: {}",
        answer.body
    );
    assert!(answer.body.contains("Oops, Something Went Wrong!"));
    assert_page_headers(answer);
    assert_deletes_cookie(answer);
}

/// Asserts the headers every page carries.
#[track_caller]
pub fn assert_page_headers(answer: &Answer) {
    assert_eq!(answer.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(answer.header("cache-control"), "no-store");
    assert_eq!(answer.header("referrer-policy"), "no-referrer");
    assert_eq!(answer.header("x-content-type-options"), "nosniff");
    assert!(answer
        .header("content-security-policy")
        .starts_with("default-src 'none'"));
}

/// Asserts that the answer deletes the state cookie (and sets no other cookie).
#[track_caller]
pub fn assert_deletes_cookie(answer: &Answer) {
    assert_eq!(answer.set_cookies(), [DELETION]);
}
