//! `oauth.v2.access` answers (install and refresh): any body. Decoded only when `ok` is `true`;
//! a refresh is a success only with a non-empty access token and refresh token of the asked
//! kind (a 200 `ok:false` or an answer without a refresh token is never saved as one); the
//! installation built from an answer never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slack_oauth::api::ApiError;
use slack_oauth::fuzzing::{decode_oauth_v2_access, installation_from, refresh_from};
use slack_oauth::rotation::TokenKind;
use time::OffsetDateTime;

fuzz_target!(|body: &[u8]| {
    let now = OffsetDateTime::from_unix_timestamp(1_764_000_000).expect("a valid time");
    // Read lossily: the decoder skips fields it does not use without checking their UTF-8
    // (harmless: every field it keeps is checked), so the oracle must not be stricter.
    let json: Option<serde_json::Value> = serde_json::from_str(&String::from_utf8_lossy(body)).ok();
    let ok = json
        .as_ref()
        .and_then(|value| value.get("ok"))
        .and_then(serde_json::Value::as_bool);
    match decode_oauth_v2_access(body) {
        Ok(response) => {
            assert_eq!(ok, Some(true), "decoded an answer whose ok is not true");
            let json = json.expect("decoded a body that is not JSON");
            for kind in [TokenKind::Bot, TokenKind::User] {
                if let Ok((access_token, refresh_token, _)) =
                    refresh_from(kind, response.clone(), now)
                {
                    assert_eq!(json["token_type"].as_str(), Some(kind.as_str()));
                    assert!(!access_token.is_empty() && !refresh_token.secret().is_empty());
                    assert_eq!(json["access_token"].as_str(), Some(access_token.as_str()));
                    assert_eq!(json["refresh_token"].as_str(), Some(refresh_token.secret()));
                }
            }
            if let Ok(installation) = installation_from(response, now) {
                assert!(
                    !installation.user_id.as_str().is_empty() || json["authed_user"]["id"] == ""
                );
                let _ = format!("{installation:?}");
            }
        }
        Err(ApiError::Slack { error, .. }) => {
            assert_eq!(
                ok,
                Some(false),
                "an ok:{ok:?} answer read as Slack's error {error}"
            );
        }
        Err(error) => {
            // A well-formed ok:false is Slack's error; one whose error string is not UTF-8, or
            // that repeats a field (`{"ok":false,"ok":false,...}`: ambiguous, where a generic
            // JSON reader keeps the last), may be refused as unreadable instead (still an
            // error, never a success).
            if error.to_string().contains("duplicate field") {
                return;
            }
            let strict_ok = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|value| value.get("ok").and_then(serde_json::Value::as_bool));
            assert_ne!(strict_ok, Some(false), "an ok:false answer read as {error}");
            let _ = error.to_string();
        }
    }
});
