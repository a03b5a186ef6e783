//! Token, code and refresh-token formats, and the PKCE check.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::distributions::{Alphanumeric, Uniform};
use rand::Rng;
use sha2::{Digest, Sha256};

/// Whose token: the bot's (`xoxb`) or the installing user's (`xoxp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Bot,
    User,
}

impl TokenKind {
    /// The `token_type` Slack reports.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TokenKind::Bot => "bot",
            TokenKind::User => "user",
        }
    }

    /// Guesses the kind from a token's prefix (for tokens the emulator never issued).
    pub(crate) fn guess(token: &str) -> Self {
        if token.starts_with("xoxb-") || token.starts_with("xoxe.xoxb-") {
            TokenKind::Bot
        } else {
            TokenKind::User
        }
    }
}

pub(crate) fn alnum(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn digits(len: usize) -> String {
    let dist = Uniform::from(b'0'..=b'9');
    rand::thread_rng()
        .sample_iter(dist)
        .take(len)
        .map(char::from)
        .collect()
}

fn hex(len: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let dist = Uniform::from(0..HEX.len());
    rand::thread_rng()
        .sample_iter(dist)
        .take(len)
        .map(|i| char::from(HEX[i]))
        .collect()
}

/// A new access token: `xoxb-…` / `xoxp-…`, or `xoxe.xoxb-1-…` / `xoxe.xoxp-1-…` when rotating.
pub(crate) fn access_token(kind: TokenKind, rotating: bool) -> String {
    match (kind, rotating) {
        (TokenKind::Bot, false) => format!("xoxb-{}-{}-{}", digits(13), digits(13), alnum(24)),
        (TokenKind::User, false) => format!(
            "xoxp-{}-{}-{}-{}",
            digits(13),
            digits(13),
            digits(13),
            hex(32)
        ),
        (TokenKind::Bot, true) => format!("xoxe.xoxb-1-{}", alnum(64)),
        (TokenKind::User, true) => format!("xoxe.xoxp-1-{}", alnum(64)),
    }
}

/// A new refresh token, `xoxe-1-…`.
pub(crate) fn refresh_token() -> String {
    format!("xoxe-1-{}", alnum(64))
}

/// A new authorization code, shaped like Slack's (`<digits>.<digits>.<hex>`).
pub(crate) fn code() -> String {
    format!("{}.{}.{}", digits(13), digits(13), hex(64))
}

/// The non-secret key under which [`Counters::refresh_redemptions`](crate::Counters) counts a
/// refresh token: the first 12 hex digits of its SHA-256.
///
/// ```
/// let key = slack_emulator::refresh_token_key("xoxe-1-abc");
/// assert_eq!(key.len(), 12);
/// assert!(!key.contains("abc"));
/// ```
pub fn refresh_token_key(refresh_token: &str) -> String {
    let digest = Sha256::digest(refresh_token.as_bytes());
    digest
        .iter()
        .take(6)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// How the authorize request transformed its `code_verifier` (RFC 7636).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PkceMethod {
    Plain,
    S256,
}

impl PkceMethod {
    /// Parses `code_challenge_method`; absent means `plain` (RFC 7636 §4.3).
    pub(crate) fn parse(method: Option<&str>) -> Option<Self> {
        match method {
            None | Some("") | Some("plain") => Some(PkceMethod::Plain),
            Some("S256") => Some(PkceMethod::S256),
            Some(_) => None,
        }
    }
}

/// A PKCE challenge bound to a code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pkce {
    pub(crate) challenge: String,
    pub(crate) method: PkceMethod,
}

impl Pkce {
    /// Whether `verifier` answers the challenge.
    pub(crate) fn verify(&self, verifier: &str) -> bool {
        match self.method {
            PkceMethod::Plain => verifier == self.challenge,
            PkceMethod::S256 => {
                URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == self.challenge
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_slack() {
        assert!(access_token(TokenKind::Bot, false).starts_with("xoxb-"));
        assert!(access_token(TokenKind::User, false).starts_with("xoxp-"));
        assert!(access_token(TokenKind::Bot, true).starts_with("xoxe.xoxb-1-"));
        assert!(access_token(TokenKind::User, true).starts_with("xoxe.xoxp-1-"));
        assert!(refresh_token().starts_with("xoxe-1-"));
        assert_ne!(refresh_token(), refresh_token());
        assert_eq!(code().split('.').count(), 3);
    }

    #[test]
    fn s256_matches_rfc7636_appendix_b() {
        let pkce = Pkce {
            challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned(),
            method: PkceMethod::S256,
        };
        assert!(pkce.verify("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
        assert!(!pkce.verify("wrong"));
    }

    #[test]
    fn unknown_pkce_method_is_rejected() {
        assert_eq!(PkceMethod::parse(Some("S512")), None);
        assert_eq!(PkceMethod::parse(None), Some(PkceMethod::Plain));
    }
}
