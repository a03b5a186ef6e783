//! Slack request signatures: any timestamp, signature header and body. Accepted only when the
//! signature is the one Slack would compute and the timestamp is within five minutes.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use slack_oauth::secret::SigningSecret;
use slack_oauth::signature::{sign, verify};
use time::OffsetDateTime;

#[derive(Arbitrary, Debug)]
struct Request<'a> {
    timestamp: Option<&'a str>,
    signature: Option<&'a str>,
    body: &'a [u8],
    now: i64,
    /// Sign the request for real, so that the accepting path is explored too.
    signed: bool,
}

fuzz_target!(|request: Request<'_>| {
    let secret = SigningSecret::new("8f742231b10e8888abcd99yyyzzz85a5"); // fake
    let Ok(now) = OffsetDateTime::from_unix_timestamp(request.now) else {
        return;
    };
    let real;
    let signature = match (request.signed, request.timestamp) {
        (true, Some(timestamp)) => {
            real = sign(&secret, timestamp, request.body);
            Some(real.as_str())
        }
        _ => request.signature,
    };
    if verify(&secret, request.timestamp, request.body, signature, now).is_ok() {
        let timestamp = request.timestamp.expect("accepted without a timestamp");
        let signature = signature.expect("accepted without a signature");
        let expected = sign(&secret, timestamp, request.body);
        assert!(
            signature.eq_ignore_ascii_case(&expected),
            "accepted a signature that is not the body's"
        );
        let sent_at: i64 = timestamp
            .trim()
            .parse()
            .expect("accepted a non-numeric timestamp");
        assert!(
            now.unix_timestamp()
                .saturating_sub(sent_at)
                .saturating_abs()
                <= 300,
            "accepted a stale timestamp"
        );
    }
});
