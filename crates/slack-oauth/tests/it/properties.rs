//! Property tests of the parsers and checks that take input from outside (S8 and part of S9).
//!
//! Each property runs 10,000 cases in CI; `SLACK_OAUTH_PROPERTY_CASES=1000000` runs a million
//! (reliability.md's S8 count). A failure prints the smallest input proptest shrank it to.

use proptest::prelude::*;
use slack_oauth::flow::CallbackParams;
use slack_oauth::secret::{SigningSecret, StateValue};
use slack_oauth::signature::{sign, verify, SignatureError, MAX_CLOCK_SKEW_SECONDS};
use slack_oauth::state::StateCookie;
use time::OffsetDateTime;

/// The cases per property: `SLACK_OAUTH_PROPERTY_CASES`, else 10,000.
pub(crate) fn config() -> ProptestConfig {
    let cases = std::env::var("SLACK_OAUTH_PROPERTY_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(10_000);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const NOW: i64 = 1_767_225_600;

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(NOW).unwrap()
}

fn secret() -> SigningSecret {
    SigningSecret::new("8f742231b10e8888abcd99yyyzzz85a5") // fake
}

/// A signature header as a forger might write it: random hex of the right or wrong length,
/// other versions, case and whitespace variants, or arbitrary text.
fn forged_signature() -> impl Strategy<Value = String> {
    prop_oneof![
        "v0=[0-9a-f]{64}",
        "v0=[0-9a-fA-F]{0,80}",
        "[vV][0-9]=[0-9a-f]{64}",
        " ?v0= ?[0-9a-f]{64} ?",
        ".{0,100}",
    ]
}

proptest! {
    #![proptest_config(config())]

    /// S8: no body is accepted with a signature that was not made for it with the secret.
    #[test]
    fn forged_signatures_are_never_accepted(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        age in -MAX_CLOCK_SKEW_SECONDS..=MAX_CLOCK_SKEW_SECONDS,
        signature in forged_signature(),
    ) {
        let timestamp = (NOW - age).to_string();
        // A random string equal to the real signature has probability 2^-256.
        prop_assume!(signature != sign(&secret(), &timestamp, &body));
        prop_assert!(verify(&secret(), Some(&timestamp), &body, Some(&signature), now()).is_err());
    }

    /// S8: a real signature stops verifying when anything it covers changes: one byte of the
    /// body, the timestamp, or the secret.
    #[test]
    fn a_signature_covers_body_timestamp_and_secret(
        body in proptest::collection::vec(any::<u8>(), 1..512),
        flip in any::<proptest::sample::Index>(),
        bit in 0u8..8,
        age in -MAX_CLOCK_SKEW_SECONDS..MAX_CLOCK_SKEW_SECONDS,
        other_secret in "[a-z0-9]{1,40}",
    ) {
        let timestamp = (NOW - age).to_string();
        let signature = sign(&secret(), &timestamp, &body);
        prop_assert!(verify(&secret(), Some(&timestamp), &body, Some(&signature), now()).is_ok());

        let mut tampered = body.clone();
        let at = flip.index(tampered.len());
        tampered[at] ^= 1 << bit;
        prop_assert!(verify(&secret(), Some(&timestamp), &tampered, Some(&signature), now()).is_err());

        let later = (NOW - age + 1).to_string();
        prop_assert!(verify(&secret(), Some(&later), &body, Some(&signature), now()).is_err());

        prop_assume!(other_secret != secret().secret());
        let other = SigningSecret::new(other_secret);
        prop_assert!(verify(&other, Some(&timestamp), &body, Some(&signature), now()).is_err());
    }

    /// S8: a timestamp more than 300 s from now is refused even with a valid signature.
    #[test]
    fn stale_and_future_timestamps_are_refused(
        body in proptest::collection::vec(any::<u8>(), 0..64),
        off in (MAX_CLOCK_SKEW_SECONDS + 1)..(10 * 365 * 24 * 3600),
        future in any::<bool>(),
    ) {
        let sent = if future { NOW + off } else { NOW - off };
        let timestamp = sent.to_string();
        let signature = sign(&secret(), &timestamp, &body);
        let refused = verify(&secret(), Some(&timestamp), &body, Some(&signature), now());
        prop_assert!(matches!(refused, Err(SignatureError::Stale { .. })), "{refused:?}");
    }

    /// Timestamp headers that are not a number are refused without a panic, whatever they hold.
    #[test]
    fn any_timestamp_header_is_handled(timestamp in ".{0,40}", body in ".{0,64}") {
        let signature = sign(&secret(), &timestamp, body.as_bytes());
        let checked = verify(&secret(), Some(&timestamp), body.as_bytes(), Some(&signature), now());
        let in_window = timestamp
            .trim()
            .parse::<i64>()
            .is_ok_and(|at| (NOW - at).saturating_abs() <= MAX_CLOCK_SKEW_SECONDS);
        prop_assert_eq!(checked.is_ok(), in_window);
    }

    /// The state cookie matches exactly its own name and value, wherever it sits among other
    /// cookies and header lines, and nothing else: a prefix, a suffix or another cookie's value
    /// never passes.
    #[test]
    fn the_state_cookie_matches_only_its_own_value(
        state in "[A-Za-z0-9_-]{1,30}",
        other in "[A-Za-z0-9_-]{1,30}",
        before in proptest::collection::vec("[a-z]{1,8}=[A-Za-z0-9_-]{0,10}", 0..4),
        after in proptest::collection::vec("[a-z]{1,8}=[A-Za-z0-9_-]{0,10}", 0..4),
        quoted in any::<bool>(),
        split in any::<bool>(),
    ) {
        let cookie = StateCookie::new("__Host-slack-app-oauth-state");
        let value = if quoted { format!("\"{state}\"") } else { state.clone() };
        let mut pieces = before.clone();
        pieces.push(format!("__Host-slack-app-oauth-state={value}"));
        pieces.extend(after.clone());
        let headers: Vec<String> = if split {
            pieces.iter().map(Clone::clone).collect()
        } else {
            vec![pieces.join("; ")]
        };
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        prop_assert!(cookie.is_valid_browser(&StateValue::new(state.clone()), headers.clone()));
        prop_assume!(other != state);
        prop_assert!(!cookie.is_valid_browser(&StateValue::new(other.clone()), headers.clone()));
        let longer = format!("{state}x");
        prop_assert!(!cookie.is_valid_browser(&StateValue::new(longer), headers.clone()));
        if state.len() > 1 {
            let prefix = state[..state.len() - 1].to_owned();
            prop_assert!(!cookie.is_valid_browser(&StateValue::new(prefix), headers));
        }
    }

    /// Any Cookie header, however malformed, is read without a panic, and a state matches only
    /// if one of the header's `;`-separated pieces is `name=state` (or its quoted form), name
    /// and value trimmed.
    #[test]
    fn any_cookie_header_is_handled(
        header in "[ s=\";,a-zA-Z0-9]{0,60}|.{0,200}",
        state in "[A-Za-z0-9]{1,10}",
    ) {
        let cookie = StateCookie::new("s");
        let matched = cookie.is_valid_browser(&StateValue::new(state.clone()), [header.as_str()]);
        let expected = header.split(';').any(|piece| {
            piece.split_once('=').is_some_and(|(name, value)| {
                let value = value.trim();
                name.trim() == "s" && (value == state || value == format!("\"{state}\""))
            })
        });
        prop_assert_eq!(matched, expected);
    }

    /// The callback query: any string parses without a panic; the first `code`, `state` and
    /// `error` win, percent-decoded.
    #[test]
    fn any_callback_query_is_parsed(
        noise in proptest::collection::vec("[a-z%=&+0-9A-F]{0,12}", 0..6),
        code in "[A-Za-z0-9.]{1,20}",
        state in "[A-Za-z0-9_-]{1,22}",
    ) {
        let junk = noise.join("&");
        let _ = CallbackParams::from_query(&junk);
        let query = format!("code={code}&state={state}&code=second&{junk}&state=second");
        let params = CallbackParams::from_query(&query);
        prop_assert_eq!(params.code.as_ref().map(|c| c.secret().to_owned()), Some(code));
        prop_assert_eq!(params.state.as_ref().map(|s| s.secret().to_owned()), Some(state));
    }
}
