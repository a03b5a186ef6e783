//! Reading Slack's answers: the size-capped body, the `ok`/`error` envelope, typed decoding whose
//! errors keep the JSON path but never a value, `Retry-After`, and transport error mapping.
//!
//! Slack bodies hold tokens, so nothing in this file ever copies body bytes into an error.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::ApiError;

/// The largest body read from Slack. Real OAuth responses are a few KiB; anything near this is a
/// misconfigured base URL or a hostile server, and buffering it without bound would let either
/// exhaust memory.
pub(super) const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The wait used when a 429 carries no usable `Retry-After` (Slack always sends one in practice;
/// one second keeps a misbehaving proxy from turning the retry loop into a busy loop).
pub(super) const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Reads the whole body, failing with [`ApiError::Decode`] past [`MAX_BODY_BYTES`].
pub(super) async fn read_body(
    method: &'static str,
    mut response: reqwest::Response,
) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::Decode {
        method,
        detail: format!("body larger than {MAX_BODY_BYTES} bytes"),
    };
    let declared = response.content_length().unwrap_or(0);
    if declared > MAX_BODY_BYTES as u64 {
        return Err(too_large());
    }
    // `declared` is at most MAX_BODY_BYTES here, so the cast cannot truncate.
    let mut body = Vec::with_capacity(declared as usize);
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|source| transport_error(method, source))?
    {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The part of every Web API answer that says whether the call worked.
#[derive(Deserialize)]
struct Envelope {
    ok: Option<serde_json::Value>,
    error: Option<serde_json::Value>,
}

/// Decodes a 2xx body: `ok: false` becomes [`ApiError::Slack`], `ok: true` the typed response.
pub(crate) fn decode<T: DeserializeOwned>(
    method: &'static str,
    body: &[u8],
) -> Result<T, ApiError> {
    // serde's derived structs also accept JSON arrays; every Web API answer is an object.
    match body.iter().find(|byte| !byte.is_ascii_whitespace()) {
        Some(b'{') => {}
        None => {
            let detail = "empty body".to_owned();
            return Err(ApiError::Decode { method, detail });
        }
        Some(_) => {
            let detail = match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                Ok(_) => "not a JSON object".to_owned(),
                Err(error) => syntax_detail(&error),
            };
            return Err(ApiError::Decode { method, detail });
        }
    }
    let envelope: Envelope = from_slice(method, body)?;
    match envelope.ok {
        Some(serde_json::Value::Bool(true)) => from_slice(method, body),
        Some(serde_json::Value::Bool(false)) => {
            let error = match envelope.error {
                Some(serde_json::Value::String(error)) if !error.is_empty() => error,
                _ => "unknown_error".to_owned(),
            };
            Err(ApiError::Slack { method, error })
        }
        _ => Err(ApiError::Decode {
            method,
            detail: "at ok: missing or not a boolean".to_owned(),
        }),
    }
}

fn from_slice<T: DeserializeOwned>(method: &'static str, body: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| decode_error(method, &error))?;
    deserializer.end().map_err(|error| ApiError::Decode {
        method,
        detail: syntax_detail(&error),
    })?;
    Ok(value)
}

fn decode_error(
    method: &'static str,
    error: &serde_path_to_error::Error<serde_json::Error>,
) -> ApiError {
    let inner = error.inner();
    let detail = match inner.classify() {
        serde_json::error::Category::Data => format!(
            "at {}: {}",
            safe_path(&error.path().to_string()),
            data_problem(&inner.to_string())
        ),
        _ => syntax_detail(inner),
    };
    ApiError::Decode { method, detail }
}

/// "not JSON" with a position, from a syntax, EOF or I/O error (never its message text).
fn syntax_detail(error: &serde_json::Error) -> String {
    let what = match error.classify() {
        serde_json::error::Category::Eof => "truncated JSON",
        _ => "not JSON",
    };
    format!("{what} (line {}, column {})", error.line(), error.column())
}

/// A JSON path as `serde_path_to_error` prints it (`authed_user.scope`, `team[0]`), reduced to
/// characters that field names and indices use, so that a map key from the body cannot leak.
fn safe_path(path: &str) -> String {
    const MAX: usize = 120;
    let cleaned: String = path
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']' | '?') {
                c
            } else {
                '?'
            }
        })
        .take(MAX)
        .collect();
    cleaned
}

/// A generic description of a serde "data" error. serde's messages quote the offending value
/// (`invalid type: string "xoxb-…", expected a boolean`), so only the category and the part the
/// target type wrote (`expected …`) are kept; names of missing fields are ours, so they stay.
fn data_problem(message: &str) -> String {
    // serde_json appends the position; it is not useful next to the path.
    let message = match message.rfind(" at line ") {
        Some(end) => &message[..end],
        None => message,
    };
    if let Some(rest) = message.strip_prefix("missing field `") {
        if let Some((field, _)) = rest.split_once('`') {
            if field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return format!("missing field `{field}`");
            }
        }
        return "missing field".to_owned();
    }
    let category = [
        ("invalid type", "wrong type"),
        ("invalid value", "invalid value"),
        ("invalid length", "wrong length"),
        ("unknown variant", "unknown variant"),
        ("duplicate field", "duplicate field"),
    ]
    .iter()
    .find(|(prefix, _)| message.starts_with(prefix))
    .map_or("unexpected value", |(_, category)| category);
    // The expected part comes last and is written by our types' visitors, so `rfind` finds the
    // real separator even when the quoted value itself contains ", expected ".
    let expected = message
        .rfind(", expected ")
        .map(|start| &message[start + ", expected ".len()..])
        .filter(|expected| {
            expected.len() <= 80 && !expected.contains(['"', '\'', '`', '\\', '\n'])
        });
    match expected {
        Some(expected) => format!("{category}, expected {expected}"),
        None => category.to_owned(),
    }
}

/// `Retry-After` in whole seconds, or [`DEFAULT_RETRY_AFTER`] when missing or unparseable.
pub(super) fn retry_after(headers: &reqwest::header::HeaderMap) -> Duration {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map_or(DEFAULT_RETRY_AFTER, Duration::from_secs)
}

/// Sorts a reqwest failure into `Connect` (nothing was sent), `Timeout` or `Transport`.
pub(super) fn transport_error(method: &'static str, source: reqwest::Error) -> ApiError {
    // A connect timeout is both; `Connect` is the more useful answer, because it tells the caller
    // that Slack never saw the request (so a code was not consumed).
    if source.is_connect() {
        ApiError::Connect { method, source }
    } else if source.is_timeout() {
        ApiError::Timeout { method }
    } else {
        ApiError::Transport { method, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AuthTestResponse, OAuthV2AccessResponse};

    const METHOD: &str = "auth.test";

    fn decode_detail<T: DeserializeOwned + std::fmt::Debug>(body: &str) -> String {
        match decode::<T>(METHOD, body.as_bytes()) {
            Err(ApiError::Decode { detail, .. }) => detail,
            other => panic!("expected Decode, got {other:?}"),
        }
    }

    #[test]
    fn ok_false_keeps_slacks_error_string() {
        let error = decode::<AuthTestResponse>(METHOD, br#"{"ok":false,"error":"invalid_auth"}"#)
            .unwrap_err();
        assert_eq!(error.slack_error(), Some("invalid_auth"));
    }

    #[test]
    fn ok_false_without_error_is_unknown_error() {
        for body in [
            r#"{"ok":false}"#,
            r#"{"ok":false,"error":7}"#,
            r#"{"ok":false,"error":""}"#,
        ] {
            let error = decode::<AuthTestResponse>(METHOD, body.as_bytes()).unwrap_err();
            assert_eq!(error.slack_error(), Some("unknown_error"), "{body}");
        }
    }

    #[test]
    fn missing_ok_is_a_decode_error() {
        let detail = decode_detail::<AuthTestResponse>(r#"{"user_id":"U1"}"#);
        assert_eq!(detail, "at ok: missing or not a boolean");
        let detail = decode_detail::<AuthTestResponse>(r#"{"ok":"yes"}"#);
        assert_eq!(detail, "at ok: missing or not a boolean");
    }

    #[test]
    fn non_json_detail_has_position_but_no_body() {
        let detail = decode_detail::<AuthTestResponse>("<html>xoxb-1-SECRET</html>");
        assert!(detail.starts_with("not JSON (line 1"), "{detail}");
        assert!(!detail.contains("SECRET"), "{detail}");
        let detail = decode_detail::<AuthTestResponse>(r#"{"ok":true,"user":"xoxb-SECRET"#);
        assert!(detail.starts_with("truncated JSON"), "{detail}");
        assert!(!detail.contains("SECRET"), "{detail}");
    }

    #[test]
    fn trailing_garbage_is_rejected() {
        let detail = decode_detail::<AuthTestResponse>(r#"{"ok":true} xoxb-SECRET"#);
        assert!(detail.starts_with("not JSON"), "{detail}");
        assert!(!detail.contains("SECRET"), "{detail}");
    }

    #[test]
    fn wrong_type_keeps_path_but_not_value() {
        let body = r#"{"ok":true,"authed_user":{"id":"U1","access_token":{"v":"xoxp-SECRET"}},
            "is_enterprise_install":false}"#;
        let detail = decode_detail::<OAuthV2AccessResponse>(body);
        assert!(
            detail.starts_with("at authed_user.access_token: wrong type"),
            "{detail}"
        );
        assert!(!detail.contains("SECRET"), "{detail}");

        let body = r#"{"ok":true,"is_enterprise_install":"xoxb-1-SECRET, expected a boolean"}"#;
        let detail = decode_detail::<OAuthV2AccessResponse>(body);
        assert_eq!(
            detail,
            "at is_enterprise_install: wrong type, expected a boolean"
        );
    }

    #[test]
    fn top_level_non_object_is_a_decode_error() {
        for body in [
            r#"["xoxb-SECRET"]"#,
            r#"[true, "xoxb-SECRET"]"#,
            r#""xoxb-SECRET""#,
        ] {
            let detail = decode_detail::<AuthTestResponse>(body);
            assert_eq!(detail, "not a JSON object");
        }
        assert_eq!(decode_detail::<AuthTestResponse>(" \n"), "empty body");
    }

    #[test]
    fn data_problem_drops_quoted_values() {
        let cases = [
            (
                r#"invalid type: string "xoxb-S", expected a boolean at line 1 column 9"#,
                "wrong type, expected a boolean",
            ),
            (
                r#"invalid value: string "xoxb-S", expected "something""#,
                "invalid value",
            ),
            (
                "missing field `ok` at line 1 column 2",
                "missing field `ok`",
            ),
            ("some custom message with xoxb-S", "unexpected value"),
            (
                r#"unknown variant `xoxb-S`, expected `a` or `b`"#,
                "unknown variant",
            ),
        ];
        for (message, expected) in cases {
            assert_eq!(data_problem(message), expected, "{message}");
        }
    }

    #[test]
    fn safe_path_keeps_field_names_and_indices_only() {
        assert_eq!(safe_path("authed_user.scope"), "authed_user.scope");
        assert_eq!(safe_path("team[0].id"), "team[0].id");
        assert_eq!(safe_path("a b\"c"), "a?b?c");
        assert_eq!(safe_path(&"x".repeat(500)).len(), 120);
    }

    #[test]
    fn retry_after_parses_seconds_and_defaults_to_one() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&headers), DEFAULT_RETRY_AFTER);
        headers.insert(reqwest::header::RETRY_AFTER, " 7 ".parse().unwrap());
        assert_eq!(retry_after(&headers), Duration::from_secs(7));
        headers.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), DEFAULT_RETRY_AFTER);
        headers.insert(reqwest::header::RETRY_AFTER, "-3".parse().unwrap());
        assert_eq!(retry_after(&headers), DEFAULT_RETRY_AFTER);
    }
}
