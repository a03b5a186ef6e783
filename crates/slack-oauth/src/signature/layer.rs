//! `VerifySignatureLayer`: checks Slack's signature on every request before the handler runs.

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Limited};
use tower::{Layer, Service};

use super::{verify, SignatureError, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::clock::{Clock, SystemClock};
use crate::secret::SigningSecret;

/// Slack's payloads are small; a larger body is refused before it is hashed.
const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// The raw body of a request whose signature was verified, placed in the request extensions.
/// The request body itself is also passed on unchanged.
#[derive(Clone, Debug)]
pub struct VerifiedBody(pub Bytes);

/// A tower layer that verifies Slack's `v0` signature on every request.
///
/// A request that fails gets `401` with the body `invalid signature` and never reaches the
/// handler. The reason is logged at debug level (target `slack_oauth::signature`).
///
/// ```
/// use axum::{routing::post, Router};
/// use slack_oauth::secret::SigningSecret;
/// use slack_oauth::signature::VerifySignatureLayer;
///
/// let app: Router = Router::new()
///     .route("/slack/events", post(|body: String| async move { body }))
///     .layer(VerifySignatureLayer::new(SigningSecret::new("signing-secret")));
/// ```
#[derive(Clone, Debug)]
pub struct VerifySignatureLayer {
    secret: Arc<SigningSecret>,
    clock: Arc<dyn Clock>,
    max_body_bytes: usize,
}

impl VerifySignatureLayer {
    /// A layer checking signatures made with `secret`, against the system clock.
    pub fn new(secret: SigningSecret) -> Self {
        Self {
            secret: Arc::new(secret),
            clock: Arc::new(SystemClock),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// Uses another clock (tests).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The largest body accepted, in bytes (default 1 MiB).
    #[must_use]
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }
}

impl<S> Layer<S> for VerifySignatureLayer {
    type Service = VerifySignature<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifySignature {
            inner,
            config: self.clone(),
        }
    }
}

/// The service made by [`VerifySignatureLayer`].
#[derive(Clone, Debug)]
pub struct VerifySignature<S> {
    inner: S,
    config: VerifySignatureLayer,
}

impl<S> Service<Request<Body>> for VerifySignature<S>
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The clone that was polled ready is the one that must serve this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let bytes = match Limited::new(body, config.max_body_bytes).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(error) => {
                    let reason = if error.is::<http_body_util::LengthLimitError>() {
                        SignatureError::BodyTooLarge {
                            limit: config.max_body_bytes,
                        }
                    } else {
                        SignatureError::BodyUnreadable
                    };
                    return Ok(reject(&reason));
                }
            };
            let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
            if let Err(reason) = verify(
                &config.secret,
                header(TIMESTAMP_HEADER),
                &bytes,
                header(SIGNATURE_HEADER),
                config.clock.now(),
            ) {
                return Ok(reject(&reason));
            }
            parts.extensions.insert(VerifiedBody(bytes.clone()));
            inner
                .call(Request::from_parts(parts, Body::from(bytes)))
                .await
        })
    }
}

fn reject(reason: &SignatureError) -> Response {
    tracing::debug!(target: "slack_oauth::signature", %reason, "rejected a request");
    (StatusCode::UNAUTHORIZED, "invalid signature").into_response()
}
