//! Slack request signature verification (the `v0` scheme), as a function and as a tower layer.
//!
//! Slack signs every request it sends an app: `X-Slack-Signature: v0=<hex>` is
//! HMAC-SHA256 with the app's signing secret over `v0:{X-Slack-Request-Timestamp}:{raw body}`.
//! [`verify`] checks it in constant time and rejects timestamps more than five minutes away from
//! `now` (replay protection). [`VerifySignatureLayer`] does the same for every request of an axum
//! app and answers `401 invalid signature` with no further detail.

mod error;
#[cfg(feature = "axum")]
mod layer;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;

use crate::secret::SigningSecret;

pub use error::SignatureError;
#[cfg(feature = "axum")]
pub use layer::{VerifiedBody, VerifySignature, VerifySignatureLayer};

/// The header holding the request timestamp (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
/// The header holding the signature (`v0=<hex>`).
pub const SIGNATURE_HEADER: &str = "x-slack-signature";
/// How far a request timestamp may be from now, either way. Slack's documented window: a request
/// older than five minutes may be a replay.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 5 * 60;

/// Verifies a Slack request signature.
///
/// `timestamp` and `signature` are the raw header values; `body` is the raw request body, exactly
/// as received.
///
/// ```
/// use slack_oauth::secret::SigningSecret;
/// use slack_oauth::signature::{sign, verify};
/// use time::OffsetDateTime;
///
/// let secret = SigningSecret::new("8f742231b10e8888abcd99yyyzzz85a5");
/// let now = OffsetDateTime::from_unix_timestamp(1_531_420_618).unwrap();
/// let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&command=%2Fweather";
/// let signature = sign(&secret, "1531420618", body);
/// assert!(verify(&secret, Some("1531420618"), body, Some(&signature), now).is_ok());
/// assert!(verify(&secret, Some("1531420618"), b"tampered", Some(&signature), now).is_err());
/// ```
pub fn verify(
    secret: &SigningSecret,
    timestamp: Option<&str>,
    body: &[u8],
    signature: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), SignatureError> {
    let timestamp = timestamp.ok_or(SignatureError::MissingTimestamp)?;
    let signature = signature.ok_or(SignatureError::MissingSignature)?;
    let sent_at: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::InvalidTimestamp)?;
    let age = now.unix_timestamp().saturating_sub(sent_at);
    if age.saturating_abs() > MAX_CLOCK_SKEW_SECONDS {
        return Err(SignatureError::Stale { age_seconds: age });
    }
    let hex_digest = signature
        .strip_prefix("v0=")
        .ok_or(SignatureError::Mismatch)?;
    let expected = decode_hex(hex_digest).ok_or(SignatureError::Mismatch)?;
    let mut mac = new_mac(secret);
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// Computes the `v0=<hex>` signature Slack would send for `timestamp` and `body`.
///
/// For tests and for tools that replay requests; apps only need [`verify`].
///
/// ```
/// use slack_oauth::secret::SigningSecret;
/// let signature = slack_oauth::signature::sign(&SigningSecret::new("s"), "1", b"body");
/// assert!(signature.starts_with("v0=") && signature.len() == 67);
/// ```
pub fn sign(secret: &SigningSecret, timestamp: &str, body: &[u8]) -> String {
    let mut mac = new_mac(secret);
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(3 + digest.len() * 2);
    out.push_str("v0=");
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn new_mac(secret: &SigningSecret) -> Hmac<Sha256> {
    // HMAC is defined for keys of any length, so this never fails for a secret from outside.
    #[allow(clippy::expect_used)]
    Hmac::<Sha256>::new_from_slice(secret.secret().as_bytes()).expect("HMAC takes any key length")
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(hex_value(pair[0])? << 4 | hex_value(pair[1])?))
        .collect()
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
