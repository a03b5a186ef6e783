//! `ApiError`: why a Web API call failed. Slack's own `error` string is kept; bodies are not
//! (a Slack response body can hold tokens).

use std::time::Duration;

/// A Web API call failed.
///
/// ```
/// use slack_oauth::api::ApiError;
/// let error = ApiError::Slack { method: "oauth.v2.access", error: "invalid_code".into() };
/// assert_eq!(error.slack_error(), Some("invalid_code"));
/// assert_eq!(error.to_string(), "oauth.v2.access failed: invalid_code");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// Slack answered `ok: false`; `error` is Slack's error string (`invalid_code`,
    /// `invalid_refresh_token`, `bad_redirect_uri`, ...).
    #[error("{method} failed: {error}")]
    Slack {
        /// The Web API method.
        method: &'static str,
        /// Slack's `error` string.
        error: String,
    },
    /// Slack answered HTTP 429 on every attempt, up to the retry bound.
    #[error("{method} was rate limited by Slack (retry after {}s); slow down or retry later", retry_after.as_secs())]
    RateLimited {
        /// The Web API method.
        method: &'static str,
        /// The last `Retry-After` Slack sent.
        retry_after: Duration,
    },
    /// Slack answered with a 5xx status.
    #[error(
        "{method} failed: Slack answered HTTP {status}; Slack may be having trouble, retry later"
    )]
    Server {
        /// The Web API method.
        method: &'static str,
        /// The HTTP status.
        status: u16,
    },
    /// Slack answered with an unexpected non-2xx status (not 429, not 5xx).
    #[error("{method} failed: unexpected HTTP {status}")]
    Status {
        /// The Web API method.
        method: &'static str,
        /// The HTTP status.
        status: u16,
    },
    /// No answer within the request timeout.
    #[error("{method} timed out; check the network path to the Slack API")]
    Timeout {
        /// The Web API method.
        method: &'static str,
    },
    /// The connection could not be made (DNS, refused, TLS).
    #[error("{method}: could not connect to the Slack API; check SLACK_API_URL and the network")]
    Connect {
        /// The Web API method.
        method: &'static str,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The body was not the JSON expected (not JSON at all, or a field of the wrong type).
    /// Holds the JSON path of the problem, never the body.
    #[error("{method}: Slack's response could not be read ({detail})")]
    Decode {
        /// The Web API method.
        method: &'static str,
        /// What was wrong, with the JSON path when there is one.
        detail: String,
    },
    /// Any other transport failure.
    #[error("{method}: request failed")]
    Transport {
        /// The Web API method.
        method: &'static str,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The client was configured wrongly (for example an invalid base URL).
    #[error("Slack API client configuration error: {0}")]
    Config(String),
}

impl ApiError {
    /// Slack's `error` string, when Slack answered `ok: false`.
    pub fn slack_error(&self) -> Option<&str> {
        match self {
            Self::Slack { error, .. } => Some(error),
            _ => None,
        }
    }

    /// Whether the same call may succeed later (rate limits, 5xx, timeouts, connection failures,
    /// and Slack's own `internal_error`, `fatal_error`, `service_unavailable`, `ratelimited`).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::RateLimited { .. }
            | Self::Server { .. }
            | Self::Timeout { .. }
            | Self::Connect { .. }
            | Self::Transport { .. } => true,
            Self::Slack { error, .. } => matches!(
                error.as_str(),
                "internal_error"
                    | "fatal_error"
                    | "service_unavailable"
                    | "ratelimited"
                    | "request_timeout"
            ),
            Self::Status { .. } | Self::Decode { .. } | Self::Config(_) => false,
        }
    }
}
