//! `RotationError`: why a token refresh failed, keeping Slack's own error string.

use std::fmt;

use crate::api::ApiError;
use crate::installation::Installation;
use crate::store::StoreError;

/// Which token of an installation a refresh is about.
///
/// ```
/// use slack_oauth::rotation::TokenKind;
/// assert_eq!(TokenKind::Bot.to_string(), "bot");
/// assert_eq!(TokenKind::User.as_str(), "user");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// The bot token of a workspace or org.
    Bot,
    /// One installing user's token.
    User,
}

impl TokenKind {
    /// `bot` or `user`: the `token_type` Slack answers with.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bot => "bot",
            Self::User => "user",
        }
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token rotation failed. Nothing is stored as rotated when this is returned, except the
/// successful half of a [`Partial`](RotationError::Partial) rotation.
///
/// ```
/// use slack_oauth::rotation::{RotationError, TokenKind};
/// let error = RotationError::Slack { token: TokenKind::Bot, error: "invalid_refresh_token".into() };
/// assert_eq!(error.slack_error(), Some("invalid_refresh_token"));
/// assert_eq!(
///     error.to_string(),
///     "refreshing the bot token failed: invalid_refresh_token; the installation must be \
///      reinstalled if the refresh token was revoked or spent"
/// );
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RotationError {
    /// Slack answered `ok: false`; `error` is Slack's string (`invalid_refresh_token`,
    /// `invalid_client_id`, `token_rotation_not_enabled`, ...).
    #[error("refreshing the {token} token failed: {error}; the installation must be reinstalled if the refresh token was revoked or spent")]
    Slack {
        /// Which token.
        token: TokenKind,
        /// Slack's `error` string.
        error: String,
    },
    /// The call to `oauth.v2.access` failed without an answer from Slack (rate limited past the
    /// retry bound, 5xx, timeout, network). Nothing was stored; retry later.
    #[error("refreshing the {token} token failed: {source}")]
    Api {
        /// Which token.
        token: TokenKind,
        /// The client's error.
        #[source]
        source: ApiError,
    },
    /// Slack refreshed a token of another kind than asked (`token_type`), so the refresh token
    /// is stored in the wrong field. Nothing was stored.
    #[error("expected a {expected} token from oauth.v2.access, got token_type {}; check which field holds this refresh token", got.as_deref().unwrap_or("(none)"))]
    TokenTypeMismatch {
        /// The kind asked for.
        expected: TokenKind,
        /// The `token_type` Slack answered with.
        got: Option<String>,
    },
    /// The stored token expires but has no refresh token to renew it with: reinstall the app.
    #[error("the {token} token expires but no refresh token is stored for it; reinstall the app in this workspace")]
    NoRefreshToken {
        /// Which token.
        token: TokenKind,
    },
    /// Slack's answer had no `access_token`. Nothing was stored.
    #[error("oauth.v2.access answered a {token} refresh without access_token; nothing was stored")]
    MissingAccessToken {
        /// Which token.
        token: TokenKind,
    },
    /// Slack's answer had no `refresh_token`. Nothing was stored.
    #[error(
        "oauth.v2.access answered a {token} refresh without refresh_token; nothing was stored"
    )]
    MissingRefreshToken {
        /// Which token.
        token: TokenKind,
    },
    /// The token is marked as needing a reinstall (its grant was lost or revoked): it is not
    /// sent to Slack again. The workspace (or user) must install the app again.
    #[error("the {token} token needs the app to be reinstalled ({reason}); it is not sent to Slack again")]
    NeedsReinstall {
        /// Which token.
        token: TokenKind,
        /// Why: Slack's error string, or `answer_lost (...)` when a refresh token was spent
        /// without its answer being saved.
        reason: String,
    },
    /// Slack gave no answer within the refresh deadline (`--slack-timeout`). The refresh token
    /// may have been spent; the next attempt finds out.
    #[error("refreshing the {token} token got no answer within {}s; the next attempt checks whether the refresh token was spent", after.as_secs_f64())]
    Deadline {
        /// Which token.
        token: TokenKind,
        /// The deadline.
        after: std::time::Duration,
    },
    /// The installation to rotate is not in the store (save it first, or it was deleted).
    #[error(
        "no stored {token} token for this installation; save the installation before rotating it"
    )]
    NotStored {
        /// Which token.
        token: TokenKind,
    },
    /// Reading from or writing to the store failed.
    #[error("store error during token rotation: {0}")]
    Store(#[from] StoreError),
    /// Another holder kept the rotation lease past the wait bound and the token was not
    /// refreshed meanwhile. Retry later; check for a stuck instance.
    #[error("timed out waiting for the rotation lease {lease}; another instance holds it")]
    LeaseTimeout {
        /// The lease name (client id, org, team and user ids; no secret).
        lease: String,
    },
    /// The `oauth.v2.access` budget ([`Rotation::max_per_minute`](super::Rotation::max_per_minute),
    /// shared through the store by every instance) stayed spent for as long as a refresh
    /// waits for it (60 s). Nothing was sent; retry later.
    #[error("the oauth.v2.access budget is spent (retry in {}s); the {token} token was not refreshed", retry_after.as_secs_f64())]
    BudgetExhausted {
        /// Which token.
        token: TokenKind,
        /// When one more call would fit, as of the last try.
        retry_after: std::time::Duration,
    },
    /// The rotation task stopped unexpectedly (it panicked or the runtime shut down).
    #[error("the token rotation task stopped before finishing")]
    Interrupted,
    /// One token of the installation was rotated and the other failed. `installation` holds
    /// the successful new token (already saved by [`Rotation`](super::Rotation)); `error` says
    /// why the other failed.
    #[error("one token was rotated but the other failed: {error}")]
    Partial {
        /// The installation with the token that was rotated.
        installation: Box<Installation>,
        /// Why the other token failed.
        error: Box<RotationError>,
    },
}

impl RotationError {
    /// Slack's `error` string, when Slack answered `ok: false` (also inside
    /// [`Partial`](RotationError::Partial)).
    pub fn slack_error(&self) -> Option<&str> {
        match self {
            Self::Slack { error, .. } => Some(error),
            Self::Api { source, .. } => source.slack_error(),
            Self::Partial { error, .. } => error.slack_error(),
            _ => None,
        }
    }

    /// Whether trying again later may succeed (rate limits, Slack or network trouble, a busy
    /// store, a held lease, an answer that was lost or unreadable: the next attempt finds out
    /// whether the refresh token was spent).
    ///
    /// ```
    /// use slack_oauth::rotation::{RotationError, TokenKind};
    /// assert!(RotationError::LeaseTimeout { lease: "x".into() }.is_transient());
    /// assert!(!RotationError::NoRefreshToken { token: TokenKind::User }.is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        // An unclear outcome is settled by the next attempt (see `Rotation`): retry it.
        if self.may_have_redeemed() {
            return true;
        }
        match self {
            Self::Api { source, .. } => source.is_transient(),
            Self::Slack { error, .. } => matches!(
                error.as_str(),
                "internal_error" | "fatal_error" | "service_unavailable" | "ratelimited"
            ),
            Self::Store(error) => error.is_transient(),
            Self::LeaseTimeout { .. }
            | Self::Interrupted
            | Self::Deadline { .. }
            | Self::BudgetExhausted { .. } => true,
            Self::Partial { error, .. } => error.is_transient(),
            _ => false,
        }
    }

    /// Whether Slack may have redeemed the refresh token even though no new tokens came back:
    /// no answer, a reset, a 5xx, an undecodable or incomplete answer, or Slack's
    /// `internal_error`-like codes. A 429, a refused connection and other `ok: false` answers
    /// redeemed nothing.
    pub(crate) fn may_have_redeemed(&self) -> bool {
        match self {
            Self::Api { source, .. } => matches!(
                source,
                ApiError::Server { .. }
                    | ApiError::Timeout { .. }
                    | ApiError::Transport { .. }
                    | ApiError::Decode { .. }
                    | ApiError::Status { .. }
            ),
            Self::Slack { error, .. } => matches!(
                error.as_str(),
                "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout"
            ),
            Self::Deadline { .. }
            | Self::MissingAccessToken { .. }
            | Self::MissingRefreshToken { .. }
            | Self::TokenTypeMismatch { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn from_api(token: TokenKind, error: ApiError) -> Self {
        match error {
            ApiError::Slack { error, .. } => Self::Slack { token, error },
            source => Self::Api { token, source },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    fn slack(error: &str) -> RotationError {
        RotationError::Slack {
            token: TokenKind::Bot,
            error: error.to_owned(),
        }
    }

    #[test]
    fn slacks_error_string_is_found_wherever_it_is_held() {
        assert_eq!(
            slack("invalid_client_id").slack_error(),
            Some("invalid_client_id")
        );
        let api = RotationError::Api {
            token: TokenKind::User,
            source: ApiError::Slack {
                method: "oauth.v2.access",
                error: "invalid_grant".to_owned(),
            },
        };
        assert_eq!(api.slack_error(), Some("invalid_grant"));
        let partial = RotationError::Partial {
            installation: Box::new(Installation::new("U1", time::OffsetDateTime::UNIX_EPOCH)),
            error: Box::new(slack("token_revoked")),
        };
        assert_eq!(partial.slack_error(), Some("token_revoked"));
        assert_eq!(RotationError::Interrupted.slack_error(), None);
    }

    #[test]
    fn transient_errors_are_the_ones_a_later_try_may_fix() {
        let transient = [
            slack("ratelimited"),
            slack("internal_error"),
            RotationError::Store(StoreError::Closed("down")),
            RotationError::LeaseTimeout { lease: "l".into() },
            RotationError::Interrupted,
            RotationError::BudgetExhausted {
                token: TokenKind::Bot,
                retry_after: std::time::Duration::from_secs(1),
            },
            RotationError::Api {
                token: TokenKind::Bot,
                source: ApiError::RateLimited {
                    method: "oauth.v2.access",
                    retry_after: std::time::Duration::from_secs(1),
                },
            },
        ];
        let partial = |error| RotationError::Partial {
            installation: Box::new(Installation::new("U1", time::OffsetDateTime::UNIX_EPOCH)),
            error: Box::new(error),
        };
        for error in transient.iter().chain([&partial(slack("ratelimited"))]) {
            assert!(error.is_transient(), "{error:?}");
        }
        assert!(!partial(slack("invalid_client_id")).is_transient());
        let lasting = [
            slack("invalid_client_id"),
            slack("invalid_refresh_token"),
            RotationError::Store(StoreError::Config("bad".into())),
            RotationError::NoRefreshToken {
                token: TokenKind::User,
            },
        ];
        for error in &lasting {
            assert!(!error.is_transient(), "{error:?}");
        }
    }

    #[test]
    fn only_unclear_answers_may_have_redeemed_the_refresh_token() {
        for code in [
            "internal_error",
            "fatal_error",
            "service_unavailable",
            "request_timeout",
        ] {
            assert!(slack(code).may_have_redeemed(), "{code}");
        }
        for code in ["ratelimited", "invalid_client_id", "invalid_refresh_token"] {
            assert!(!slack(code).may_have_redeemed(), "{code}");
        }
        let deadline = RotationError::Deadline {
            token: TokenKind::Bot,
            after: std::time::Duration::from_secs(10),
        };
        assert!(deadline.may_have_redeemed());
        assert!(!RotationError::LeaseTimeout { lease: "l".into() }.may_have_redeemed());
    }
}
