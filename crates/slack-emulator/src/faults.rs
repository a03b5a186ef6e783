//! Scripted failures: what the next calls of a method answer instead of the normal response.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// A failure injected with [`Emulator::inject`](crate::Emulator::inject), applied to a call
/// before normal handling. A faulted call changes no state, except with [`Fault::Slow`] and
/// [`Fault::SlowResponse`], which answer normally in the end, and [`Fault::AnswerLost`], which
/// handles the call and loses the answer.
///
/// ```
/// use std::time::Duration;
/// use slack_emulator::Fault;
///
/// let faults = [
///     Fault::RateLimited { retry_after_secs: 1 },
///     Fault::ServerError { status: 503 },
///     Fault::MalformedJson,
///     Fault::Slow(Duration::from_millis(50)),
///     Fault::SlowResponse(Duration::from_millis(50)),
///     Fault::SlackError("internal_error".to_owned()),
/// ];
/// assert_eq!(faults.len(), 6);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// HTTP 429 with `Retry-After: retry_after_secs` and `{"ok":false,"error":"ratelimited"}`.
    RateLimited {
        /// The `Retry-After` value, in seconds.
        retry_after_secs: u64,
    },
    /// The given HTTP status (500 if it is not a valid status) with a small plain-text body.
    ServerError {
        /// The HTTP status.
        status: u16,
    },
    /// HTTP 200, `application/json`, with a truncated JSON body.
    MalformedJson,
    /// Waits, then handles the call normally (the request is applied after the wait).
    Slow(Duration),
    /// Handles the call at once (tokens are issued, refresh tokens spent), then waits before
    /// answering: a client that times out meanwhile loses the answer, as after a slow network.
    SlowResponse(Duration),
    /// HTTP 200 with `{"ok":false,"error":<given string>}`.
    SlackError(String),
    /// Handles the call (tokens are issued, refresh tokens spent), then breaks the connection
    /// instead of answering: the client sees a transport error, the answer is lost.
    AnswerLost,
}

/// Method name that [`Emulator::inject`](crate::Emulator::inject) matches against any method.
pub const ANY_METHOD: &str = "*";

/// Pending faults per method, consumed in the order injected.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    queues: HashMap<String, VecDeque<(Fault, u32)>>,
}

impl Faults {
    /// Queues `fault` for the next `times` calls of `method` (after any already queued).
    pub(crate) fn push(&mut self, method: &str, fault: Fault, times: u32) {
        if times == 0 {
            return;
        }
        self.queues
            .entry(method.to_owned())
            .or_default()
            .push_back((fault, times));
    }

    /// Takes the fault for one call of `method`: its own queue first, then [`ANY_METHOD`].
    pub(crate) fn take(&mut self, method: &str) -> Option<Fault> {
        Self::take_from(&mut self.queues, method)
            .or_else(|| Self::take_from(&mut self.queues, ANY_METHOD))
    }

    fn take_from(queues: &mut HashMap<String, VecDeque<(Fault, u32)>>, key: &str) -> Option<Fault> {
        let queue = queues.get_mut(key)?;
        let (fault, remaining) = queue.front_mut()?;
        let fault = fault.clone();
        *remaining -= 1;
        if *remaining == 0 {
            queue.pop_front();
        }
        if queue.is_empty() {
            queues.remove(key);
        }
        Some(fault)
    }
}

/// The answer for a fault that replaces the response, or `None` for the slow kinds.
pub(crate) fn fault_response(fault: &Fault) -> Option<Response> {
    match fault {
        Fault::RateLimited { retry_after_secs } => {
            let mut response = crate::api::json_response(
                StatusCode::TOO_MANY_REQUESTS,
                &serde_json::json!({"ok": false, "error": "ratelimited"}),
            );
            if let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            Some(response)
        }
        Fault::ServerError { status } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = format!("emulated server error: HTTP {}", status.as_u16());
            Some(
                (
                    status,
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    body,
                )
                    .into_response(),
            )
        }
        Fault::MalformedJson => Some(
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, crate::api::JSON_CONTENT_TYPE)],
                r#"{"ok":true,"app_id":"A0EMULATOR","access_tok"#,
            )
                .into_response(),
        ),
        Fault::SlackError(error) => Some(crate::api::json_response(
            StatusCode::OK,
            &serde_json::json!({"ok": false, "error": error}),
        )),
        Fault::Slow(_) | Fault::SlowResponse(_) | Fault::AnswerLost => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_consumed_in_order_then_wildcard() {
        let mut faults = Faults::default();
        faults.push("auth.test", Fault::MalformedJson, 2);
        faults.push("auth.test", Fault::SlackError("x".to_owned()), 1);
        faults.push(ANY_METHOD, Fault::ServerError { status: 502 }, 1);
        faults.push("auth.test", Fault::MalformedJson, 0);
        assert_eq!(faults.take("auth.test"), Some(Fault::MalformedJson));
        assert_eq!(faults.take("auth.test"), Some(Fault::MalformedJson));
        assert_eq!(
            faults.take("auth.test"),
            Some(Fault::SlackError("x".to_owned()))
        );
        assert_eq!(
            faults.take("auth.test"),
            Some(Fault::ServerError { status: 502 })
        );
        assert_eq!(faults.take("auth.test"), None);
        assert_eq!(faults.take("oauth.v2.access"), None);
    }

    #[test]
    fn invalid_status_becomes_500() {
        let response = fault_response(&Fault::ServerError { status: 42 });
        assert_eq!(
            response.map(|r| r.status()),
            Some(StatusCode::INTERNAL_SERVER_ERROR)
        );
    }
}
