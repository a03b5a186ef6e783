//! Secret values (tokens, client and signing secrets, OAuth codes, states) that never print.
//!
//! Every type here wraps a shared string (`Arc<str>`: clones cost no allocation) and implements `Debug` with a redacted form: tokens keep their
//! kind prefix (`xoxb-…(redacted)`) so logs stay useful, everything else prints `[redacted]`.
//! None of them implements `Display`, so a secret cannot end up in a `format!("{}")` by accident.
//! The value is read only through [`secret()`](BotToken::secret).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The redacted form of a token: its kind prefix (up to the first `-`) and `…(redacted)`.
///
/// Prefixes are kept only when they look like Slack's (`xoxb`, `xoxe.xoxp`, `xoxe`); anything else
/// is fully redacted so that an unusual value cannot leak through its "prefix".
///
/// ```
/// assert_eq!(slack_oauth::secret::redacted_token("xoxb-1-2-abc"), "xoxb-…(redacted)");
/// assert_eq!(slack_oauth::secret::redacted_token("hunter2"), "[redacted]");
/// ```
pub fn redacted_token(value: &str) -> String {
    match value.split_once('-') {
        Some((prefix, _)) if prefix.split('.').all(is_token_kind) => {
            format!("{prefix}-…(redacted)")
        }
        _ => "[redacted]".to_owned(),
    }
}

/// `xoxb`, `xoxp`, `xoxe`, `xoxa`, ...: `xox` and one lowercase letter.
fn is_token_kind(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    bytes.len() == 4 && bytes.starts_with(b"xox") && bytes[3].is_ascii_lowercase()
}

macro_rules! secret_type {
    ($(#[$meta:meta])* $name:ident, token = $is_token:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(Arc::from(value.into()))
            }

            /// The secret value itself.
            ///
            /// # Security
            /// Never log or display the returned string.
            pub fn secret(&self) -> &str {
                &self.0
            }

            /// Consumes the wrapper and returns the secret value.
            ///
            /// # Security
            /// Never log or display the returned string.
            pub fn into_secret(self) -> String {
                self.0.to_string()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let shown = if $is_token { redacted_token(&self.0) } else { "[redacted]".to_owned() };
                write!(f, concat!(stringify!($name), "({})"), shown)
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(Arc::from(value))
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(Arc::from(value))
            }
        }
    };
}

secret_type!(
    /// A bot token (`xoxb-…`, or `xoxe.xoxb-…` with rotation).
    ///
    /// ```
    /// let token = slack_oauth::secret::BotToken::new("xoxb-1-2-abc");
    /// assert_eq!(format!("{token:?}"), "BotToken(xoxb-…(redacted))");
    /// ```
    BotToken, token = true
);
secret_type!(
    /// A user token (`xoxp-…`, or `xoxe.xoxp-…` with rotation).
    ///
    /// ```
    /// let token = slack_oauth::secret::UserToken::new("xoxp-1-2-abc");
    /// assert_eq!(format!("{token:?}"), "UserToken(xoxp-…(redacted))");
    /// ```
    UserToken, token = true
);
secret_type!(
    /// A refresh token (`xoxe-1-…`), single use: Slack revokes it shortly after it is redeemed.
    ///
    /// ```
    /// let token = slack_oauth::secret::RefreshToken::new("xoxe-1-abc");
    /// assert_eq!(format!("{token:?}"), "RefreshToken(xoxe-…(redacted))");
    /// ```
    RefreshToken, token = true
);
secret_type!(
    /// Any Slack access token, when the kind is not known (for `auth.test`, `auth.revoke`).
    ///
    /// ```
    /// let token = slack_oauth::secret::AccessToken::new("xoxb-1-2-abc");
    /// assert_eq!(format!("{token:?}"), "AccessToken(xoxb-…(redacted))");
    /// ```
    AccessToken, token = true
);
secret_type!(
    /// The app's client secret, from the app's Basic Information page.
    ///
    /// ```
    /// let secret = slack_oauth::secret::ClientSecret::new("abc123");
    /// assert_eq!(format!("{secret:?}"), "ClientSecret([redacted])");
    /// ```
    ClientSecret, token = false
);
secret_type!(
    /// The app's signing secret, used to verify that requests come from Slack.
    ///
    /// ```
    /// let secret = slack_oauth::secret::SigningSecret::new("abc123");
    /// assert_eq!(format!("{secret:?}"), "SigningSecret([redacted])");
    /// ```
    SigningSecret, token = false
);
secret_type!(
    /// A temporary OAuth authorization `code` from the redirect, exchanged once for tokens.
    ///
    /// ```
    /// let code = slack_oauth::secret::AuthorizationCode::new("123.456.abc");
    /// assert_eq!(format!("{code:?}"), "AuthorizationCode([redacted])");
    /// ```
    AuthorizationCode, token = false
);
secret_type!(
    /// A CSRF `state` value: issued into a state store, bound to the browser by a cookie.
    ///
    /// ```
    /// let state = slack_oauth::secret::StateValue::new("4f1c…");
    /// assert_eq!(format!("{state:?}"), "StateValue([redacted])");
    /// ```
    StateValue, token = false
);

impl From<BotToken> for AccessToken {
    fn from(token: BotToken) -> Self {
        Self(token.0)
    }
}

impl From<UserToken> for AccessToken {
    fn from(token: UserToken) -> Self {
        Self(token.0)
    }
}

impl From<&BotToken> for AccessToken {
    fn from(token: &BotToken) -> Self {
        Self(token.0.clone())
    }
}

impl From<&UserToken> for AccessToken {
    fn from(token: &UserToken) -> Self {
        Self(token.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let values = [
            format!("{:?}", BotToken::new("xoxb-111-222-SECRETVALUE")), // fake: a sentinel
            format!("{:?}", UserToken::new("xoxe.xoxp-1-SECRETVALUE")),
            format!("{:?}", RefreshToken::new("xoxe-1-SECRETVALUE")),
            format!("{:?}", AccessToken::new("SECRETVALUE")),
            format!("{:?}", ClientSecret::new("SECRETVALUE")),
            format!("{:?}", SigningSecret::new("SECRETVALUE")),
            format!("{:?}", AuthorizationCode::new("SECRETVALUE")),
            format!("{:?}", StateValue::new("SECRETVALUE")),
        ];
        for shown in values {
            assert!(!shown.contains("SECRETVALUE"), "{shown}");
            assert!(shown.contains("redacted"), "{shown}");
        }
    }

    #[test]
    fn rotated_token_prefix_is_kept() {
        assert_eq!(redacted_token("xoxe.xoxb-1-abc"), "xoxe.xoxb-…(redacted)");
        assert_eq!(redacted_token("xoxbSECRET-1"), "[redacted]");
        assert_eq!(redacted_token(""), "[redacted]");
    }
}
