//! `AuthorizeLayer` and the `Authorized` extractor (feature `axum`).

use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Limited};
use tower::{Layer, Service};

use super::{lifecycle, AuthorizeResult, Authorizer, Incoming, TokenRefresher};
use crate::signature::VerifiedBody;
use crate::store::InstallationStore;

/// Bolt's message for a request whose installation is gone.
pub const REINSTALL_MESSAGE: &str = ":warning: We apologize, but for some unknown reason, your \
    installation with this app is no longer available. Please reinstall this app into your \
    workspace :bow:";

const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A tower layer that authorizes every Slack request and puts the [`AuthorizeResult`] in its
/// extensions, for the [`Authorized`] extractor.
///
/// Put it inside [`VerifySignatureLayer`](crate::signature::VerifySignatureLayer) (axum runs the
/// last `.layer` first), so that only signed requests reach the store; it then reuses the
/// verified body.
///
/// **It fails closed**: a request that did not come through a signature check (the layers in the
/// wrong order, or no `VerifySignatureLayer` at all) gets `401` and never reaches the store, so
/// an unsigned `app_uninstalled` cannot delete anything. An app that checks signatures some
/// other way opts out with
/// [`accept_unverified_requests_insecurely`](Self::accept_unverified_requests_insecurely).
///
/// Responses the layer makes itself:
///
/// | case | answer | why |
/// |---|---|---|
/// | authorized | the handler's | `Authorized` is in the extensions |
/// | `url_verification`, `ssl_check`, other non-authorizable events | the handler's | no `Authorized` |
/// | `app_uninstalled`, `tokens_revoked` | the handler's, after deleting (when enabled) | |
/// | not installed / reinstall needed, Events API | `200`, empty | a retry would not help; Slack retries non-2xx |
/// | not installed, slash command or interactivity | `200`, Bolt's reinstall message | the user sees why nothing happened |
/// | no verified signature (see above) | `401 unauthorized` | fails closed |
/// | malformed body | `400 bad request` | |
/// | store failure, transient refresh failure | `500 internal error` | Slack retries events |
///
/// ```
/// use axum::{routing::post, Router};
/// use slack_oauth::authorize::{Authorized, AuthorizeLayer, Authorizer};
/// use slack_oauth::secret::SigningSecret;
/// use slack_oauth::signature::VerifySignatureLayer;
/// use slack_oauth::store::MemoryStore;
///
/// async fn events(auth: Option<Authorized>) -> &'static str {
///     if auth.is_some() { "authorized" } else { "no authorize needed" }
/// }
///
/// let app: Router = Router::new()
///     .route("/slack/events", post(events))
///     .layer(AuthorizeLayer::new(Authorizer::new(MemoryStore::new())))
///     .layer(VerifySignatureLayer::new(SigningSecret::new("signing-secret")));
/// ```
#[derive(Debug)]
pub struct AuthorizeLayer<St, R> {
    authorizer: Authorizer<St, R>,
    lifecycle: bool,
    accept_unverified: bool,
}

impl<St: Clone, R> Clone for AuthorizeLayer<St, R> {
    fn clone(&self) -> Self {
        Self {
            authorizer: self.authorizer.clone(),
            lifecycle: self.lifecycle,
            accept_unverified: self.accept_unverified,
        }
    }
}

impl<St, R> AuthorizeLayer<St, R> {
    /// A layer authorizing with `authorizer`, applying lifecycle events to its store.
    pub fn new(authorizer: Authorizer<St, R>) -> Self {
        Self {
            authorizer,
            lifecycle: true,
            accept_unverified: false,
        }
    }

    /// Authorizes requests that did not come through
    /// [`VerifySignatureLayer`](crate::signature::VerifySignatureLayer) too (by default they get
    /// `401`). **Anyone who can reach the route can then act as any workspace**, and an unsigned
    /// `app_uninstalled` deletes installations: use it only when the signature is checked before
    /// this layer by other means (a gateway that verifies Slack's signature, say).
    ///
    /// ```
    /// use slack_oauth::authorize::{AuthorizeLayer, Authorizer};
    /// use slack_oauth::store::MemoryStore;
    ///
    /// // Behind a gateway that already verified X-Slack-Signature:
    /// let layer = AuthorizeLayer::new(Authorizer::new(MemoryStore::new()))
    ///     .accept_unverified_requests_insecurely();
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn accept_unverified_requests_insecurely(mut self) -> Self {
        self.accept_unverified = true;
        self
    }

    /// Whether `app_uninstalled` and `tokens_revoked` delete from the store (default `true`).
    #[must_use]
    pub fn apply_lifecycle_events(mut self, enabled: bool) -> Self {
        self.lifecycle = enabled;
        self
    }
}

impl<S, St: Clone, R> Layer<S> for AuthorizeLayer<St, R> {
    type Service = Authorize<S, St, R>;

    fn layer(&self, inner: S) -> Self::Service {
        Authorize {
            inner,
            config: self.clone(),
        }
    }
}

/// The service made by [`AuthorizeLayer`].
#[derive(Debug)]
pub struct Authorize<S, St, R> {
    inner: S,
    config: AuthorizeLayer<St, R>,
}

impl<S: Clone, St: Clone, R> Clone for Authorize<S, St, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            config: self.config.clone(),
        }
    }
}

impl<S, St, R> Service<Request<Body>> for Authorize<S, St, R>
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    St: InstallationStore + Clone + 'static,
    R: TokenRefresher,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let bytes = match parts.extensions.get::<VerifiedBody>() {
                Some(VerifiedBody(bytes)) => bytes.clone(),
                None if config.accept_unverified => {
                    match Limited::new(body, MAX_BODY_BYTES).collect().await {
                        Ok(collected) => collected.to_bytes(),
                        Err(_) => return Ok(bad_request()),
                    }
                }
                None => {
                    tracing::error!(
                        target: "slack_oauth::authorize",
                        "refused a request with no verified Slack signature: put \
                         VerifySignatureLayer outside AuthorizeLayer (the last .layer runs first)",
                    );
                    return Ok(unauthorized());
                }
            };
            match decide(&config, &bytes).await {
                Decision::Pass => {}
                Decision::Authorized(result) => {
                    parts.extensions.insert(result);
                }
                Decision::Answer(response) => return Ok(response),
            }
            inner
                .call(Request::from_parts(parts, Body::from(bytes)))
                .await
        })
    }
}

enum Decision {
    Pass,
    Authorized(AuthorizeResult),
    Answer(Response),
}

async fn decide<St, R>(config: &AuthorizeLayer<St, R>, body: &Bytes) -> Decision
where
    St: InstallationStore + Clone + 'static,
    R: TokenRefresher,
{
    let incoming = match Incoming::parse(body) {
        Ok(incoming) => incoming,
        Err(reason) => {
            tracing::debug!(target: "slack_oauth::authorize", %reason, "unreadable request");
            return Decision::Answer(bad_request());
        }
    };
    match incoming {
        Incoming::Authorize(request) => match config.authorizer.authorize(&request).await {
            Ok(Some(result)) => Decision::Authorized(result),
            Ok(None) => {
                tracing::warn!(
                    target: "slack_oauth::authorize",
                    enterprise_id = ?request.enterprise_id,
                    team_id = ?request.team_id,
                    "no installation for this request; the app must be (re)installed",
                );
                let is_json = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
                let body = if is_json { "" } else { REINSTALL_MESSAGE };
                Decision::Answer((StatusCode::OK, body).into_response())
            }
            Err(error) => {
                tracing::error!(target: "slack_oauth::authorize", %error, "authorize failed");
                Decision::Answer(internal_error())
            }
        },
        Incoming::Lifecycle { workspace, event } if config.lifecycle => {
            let store = config.authorizer.store();
            match lifecycle::apply(store, &workspace.workspace_query(), &event).await {
                Ok(()) => Decision::Pass,
                Err(error) => {
                    tracing::error!(target: "slack_oauth::authorize", %error, "lifecycle event failed");
                    Decision::Answer(internal_error())
                }
            }
        }
        _ => Decision::Pass,
    }
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, "unauthorized").into_response()
}

fn bad_request() -> Response {
    (StatusCode::BAD_REQUEST, "bad request").into_response()
}

fn internal_error() -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
}

/// The [`AuthorizeResult`] of a request that went through [`AuthorizeLayer`].
///
/// As an extractor it answers `500` when the request carries none (the layer is missing, or the
/// request needed no authorize); take `Option<Authorized>` on routes that also receive
/// `url_verification` or lifecycle events.
#[derive(Clone, Debug)]
pub struct Authorized(pub AuthorizeResult);

impl<S: Send + Sync> FromRequestParts<S> for Authorized {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<AuthorizeResult>() {
            Some(result) => Ok(Self(result.clone())),
            None => {
                tracing::error!(
                    target: "slack_oauth::authorize",
                    "no AuthorizeResult: is AuthorizeLayer on this route, and does it need authorize?",
                );
                Err((StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
            }
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Authorized {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<AuthorizeResult>().cloned().map(Self))
    }
}
