//! `SignatureError`: why a request's Slack signature was rejected.

/// A request's Slack signature was rejected.
///
/// The messages are for logs; the HTTP answer is always a bare `401 invalid signature`. No variant
/// holds the expected signature (that would hand an attacker a valid one for their body).
///
/// ```
/// use slack_oauth::signature::SignatureError;
/// assert_eq!(SignatureError::Mismatch.to_string(), "signature does not match the body");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The `X-Slack-Request-Timestamp` header is missing.
    #[error("missing X-Slack-Request-Timestamp header")]
    MissingTimestamp,
    /// The `X-Slack-Signature` header is missing.
    #[error("missing X-Slack-Signature header")]
    MissingSignature,
    /// The timestamp is not a whole number of seconds.
    #[error("X-Slack-Request-Timestamp is not a Unix timestamp")]
    InvalidTimestamp,
    /// The timestamp is more than five minutes from now (a replay, or a skewed clock).
    #[error("request timestamp is {age_seconds}s from now, beyond the 300s window; check the server clock")]
    Stale {
        /// Seconds between the timestamp and now (negative: in the future).
        age_seconds: i64,
    },
    /// The signature is malformed or does not match (wrong signing secret, or a tampered body).
    #[error("signature does not match the body")]
    Mismatch,
    /// The body is larger than the layer's limit.
    #[error("request body exceeds the {limit}-byte limit")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body could not be read.
    #[error("request body could not be read")]
    BodyUnreadable,
}
