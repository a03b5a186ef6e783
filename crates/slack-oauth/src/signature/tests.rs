use time::OffsetDateTime;

use super::*;

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const NOW: i64 = 1_531_420_618;

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).unwrap()
}

fn secret() -> SigningSecret {
    SigningSecret::new(SECRET)
}

#[test]
fn slack_documented_example_verifies() {
    // The example from Slack's "Verifying requests from Slack" page.
    let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    let expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    assert_eq!(sign(&secret(), "1531420618", body), expected);
    assert_eq!(
        verify(&secret(), Some("1531420618"), body, Some(expected), at(NOW)),
        Ok(())
    );
}

#[test]
fn tampered_body_is_rejected() {
    let signature = sign(&secret(), "1531420618", b"a=1");
    let result = verify(
        &secret(),
        Some("1531420618"),
        b"a=2",
        Some(&signature),
        at(NOW),
    );
    assert_eq!(result, Err(SignatureError::Mismatch));
}

#[test]
fn wrong_secret_is_rejected() {
    let signature = sign(&SigningSecret::new("other"), "1531420618", b"a=1");
    let result = verify(
        &secret(),
        Some("1531420618"),
        b"a=1",
        Some(&signature),
        at(NOW),
    );
    assert_eq!(result, Err(SignatureError::Mismatch));
}

#[test]
fn tampered_timestamp_is_rejected() {
    let signature = sign(&secret(), "1531420618", b"a=1");
    let result = verify(
        &secret(),
        Some("1531420619"),
        b"a=1",
        Some(&signature),
        at(NOW),
    );
    assert_eq!(result, Err(SignatureError::Mismatch));
}

#[test]
fn stale_and_future_timestamps_are_rejected_at_the_boundary() {
    for (sent, ok) in [
        (NOW - 300, true),
        (NOW - 301, false),
        (NOW + 300, true),
        (NOW + 301, false),
    ] {
        let ts = sent.to_string();
        let signature = sign(&secret(), &ts, b"x");
        let result = verify(&secret(), Some(&ts), b"x", Some(&signature), at(NOW));
        assert_eq!(result.is_ok(), ok, "timestamp {sent}: {result:?}");
    }
}

#[test]
fn missing_and_malformed_headers_are_rejected() {
    let signature = sign(&secret(), "1531420618", b"x");
    assert_eq!(
        verify(&secret(), None, b"x", Some(&signature), at(NOW)),
        Err(SignatureError::MissingTimestamp)
    );
    assert_eq!(
        verify(&secret(), Some("1531420618"), b"x", None, at(NOW)),
        Err(SignatureError::MissingSignature)
    );
    assert_eq!(
        verify(&secret(), Some("soon"), b"x", Some(&signature), at(NOW)),
        Err(SignatureError::InvalidTimestamp)
    );
    for bad in [
        "",
        "v0=",
        "v1=abc",
        "v0=zz",
        &signature[..60],
        &signature.replace("v0=", "v0=0"),
    ] {
        assert_eq!(
            verify(&secret(), Some("1531420618"), b"x", Some(bad), at(NOW)),
            Err(SignatureError::Mismatch),
            "{bad}"
        );
    }
}

#[test]
fn uppercase_hex_is_accepted() {
    let signature = sign(&secret(), "1531420618", b"x")
        .to_uppercase()
        .replace("V0=", "v0=");
    assert!(verify(
        &secret(),
        Some("1531420618"),
        b"x",
        Some(&signature),
        at(NOW)
    )
    .is_ok());
}

#[test]
fn errors_never_carry_the_expected_signature() {
    let expected = sign(&secret(), "1531420618", b"x");
    let hex = expected.trim_start_matches("v0=");
    let err = verify(&secret(), Some("1531420618"), b"x", Some("v0=00"), at(NOW)).unwrap_err();
    assert!(!format!("{err} {err:?}").contains(hex));
}

#[cfg(feature = "axum")]
mod layer {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::post;
    use axum::{Extension, Router};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::{secret, sign, NOW};
    use crate::clock::ManualClock;
    use crate::signature::{VerifiedBody, VerifySignatureLayer};

    fn app() -> Router {
        Router::new()
            .route(
                "/events",
                post(
                    |Extension(verified): Extension<VerifiedBody>, body: String| async move {
                        assert_eq!(verified.0, body.as_bytes());
                        format!("handled {body}")
                    },
                ),
            )
            .layer(
                VerifySignatureLayer::new(secret())
                    .clock(ManualClock::at_unix(NOW))
                    .max_body_bytes(64),
            )
    }

    async fn send(
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &'static str,
    ) -> (StatusCode, String) {
        let mut request = Request::post("/events");
        if let Some(ts) = timestamp {
            request = request.header("X-Slack-Request-Timestamp", ts);
        }
        if let Some(sig) = signature {
            request = request.header("X-Slack-Signature", sig);
        }
        let response = app()
            .oneshot(request.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn valid_request_reaches_the_handler_with_its_body() {
        let ts = NOW.to_string();
        let sig = sign(&secret(), &ts, b"a=1");
        assert_eq!(
            send(Some(&ts), Some(&sig), "a=1").await,
            (StatusCode::OK, "handled a=1".to_owned())
        );
    }

    #[tokio::test]
    async fn tampered_stale_and_missing_get_a_bare_401() {
        let ts = NOW.to_string();
        let sig = sign(&secret(), &ts, b"a=1");
        let stale_ts = (NOW - 301).to_string();
        let stale_sig = sign(&secret(), &stale_ts, b"a=1");
        let cases = [
            (Some(ts.as_str()), Some(sig.as_str()), "a=2"),
            (Some(stale_ts.as_str()), Some(stale_sig.as_str()), "a=1"),
            (None, Some(sig.as_str()), "a=1"),
            (Some(ts.as_str()), None, "a=1"),
        ];
        for (ts, sig, body) in cases {
            assert_eq!(
                send(ts, sig, body).await,
                (StatusCode::UNAUTHORIZED, "invalid signature".to_owned()),
                "{ts:?} {body}"
            );
        }
    }

    #[tokio::test]
    async fn oversized_body_is_rejected_before_hashing() {
        let ts = NOW.to_string();
        let body = "x".repeat(65);
        let sig = sign(&secret(), &ts, body.as_bytes());
        let body: &'static str = Box::leak(body.into_boxed_str());
        assert_eq!(
            send(Some(&ts), Some(&sig), body).await.0,
            StatusCode::UNAUTHORIZED
        );
    }

    /// The default limit is 1 MiB: a large interactivity payload (512 KiB) passes, a body one
    /// byte over the limit does not.
    #[tokio::test]
    async fn the_default_limit_is_one_mebibyte() {
        let app = |body_len: usize| {
            let ts = NOW.to_string();
            let body = "x".repeat(body_len);
            let sig = sign(&secret(), &ts, body.as_bytes());
            let router = Router::new()
                .route(
                    "/events",
                    post(|body: String| async move { body.len().to_string() }),
                )
                .layer(VerifySignatureLayer::new(secret()).clock(ManualClock::at_unix(NOW)));
            let request = Request::post("/events")
                .header("X-Slack-Request-Timestamp", ts)
                .header("X-Slack-Signature", sig)
                .body(Body::from(body))
                .unwrap();
            router.oneshot(request)
        };
        let accepted = app(512 * 1024).await.unwrap();
        assert_eq!(accepted.status(), StatusCode::OK);
        let refused = app(1024 * 1024 + 1).await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    }

    /// The layer is ready only when the service it wraps is (back-pressure passes through).
    #[tokio::test]
    async fn readiness_is_the_inner_services() {
        use std::task::{Context, Poll};
        use tower::{Layer as _, Service};

        #[derive(Clone)]
        struct NeverReady;
        impl Service<Request<Body>> for NeverReady {
            type Response = axum::response::Response;
            type Error = std::convert::Infallible;
            type Future = std::future::Ready<Result<Self::Response, Self::Error>>;
            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
                Poll::Pending
            }
            fn call(&mut self, _: Request<Body>) -> Self::Future {
                unreachable!("never ready")
            }
        }
        let mut service = VerifySignatureLayer::new(secret()).layer(NeverReady);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(service.poll_ready(&mut cx).is_pending());
    }
}
