//! Router-level tests: the install path and every callback branch up to the code exchange,
//! through `slack_oauth::axum::routes` over real HTTP (`fixtures::send`), a fake store and a
//! manual clock.

use std::time::Duration;

use axum::extract::FromRef;
use axum::Router;
use slack_oauth::flow::{CallbackError, OAuthFlow};

use super::fixtures::*;

#[tokio::test]
async fn install_page_sets_the_state_cookie_and_stores_the_state() {
    let store = FakeStore::new();
    let (flow, _clock) = flow(settings(), store.clone());
    let (answer, state) = install(&app(&flow)).await;

    assert_eq!(answer.status, 200);
    assert_page_headers(&answer);
    assert_eq!(state.len(), 22, "128 random bits, base64url");
    assert_eq!(
        answer.set_cookies(),
        [format!(
            "{COOKIE}={state}; Secure; HttpOnly; Path=/; Max-Age=600; SameSite=Lax"
        )]
    );
    assert!(answer.body.contains(&format!(
        "href=\"https://slack.com/oauth/v2/authorize?state={state}&amp;client_id=111.222\
         &amp;scope=chat%3Awrite%2Ccommands&amp;user_scope=search%3Aread\""
    )));
    assert!(answer.body.contains("<h2>Slack App Installation</h2>"));
    assert_eq!(
        store.state_expiry(&state).unwrap().unix_timestamp(),
        T0 + 600,
        "expiry = the flow's clock + state_expiration"
    );
}

#[tokio::test]
async fn install_without_page_redirects_to_slack_with_the_cookie() {
    let (flow, _clock) = flow(
        settings().install_page_rendering_enabled(false),
        FakeStore::new(),
    );
    let app = app(&flow);
    let (answer, state) = install(&app).await;
    assert_eq!(answer.status, 302);
    assert!(answer.body.is_empty());
    assert!(answer.header("location").starts_with(&format!(
        "https://slack.com/oauth/v2/authorize?state={state}&client_id=111.222&"
    )));

    let answer = send(&app, get("/slack/install?team=T12345&team=T999", &[])).await;
    assert_eq!(answer.status, 302);
    assert!(
        answer.header("location").ends_with("&team=T12345"),
        "the first team wins: {}",
        answer.header("location")
    );
}

#[tokio::test]
async fn install_with_state_validation_off_sets_no_cookie() {
    let store = FakeStore::new();
    let (flow, _clock) = flow(
        settings()
            .state_validation_enabled(false)
            .install_page_rendering_enabled(false),
        store.clone(),
    );
    let answer = send(&app(&flow), get("/slack/install", &[])).await;
    assert_eq!(answer.status, 302);
    assert!(answer.set_cookies().is_empty());
    assert!(answer
        .header("location")
        .starts_with("https://slack.com/oauth/v2/authorize?state=&client_id=111.222"));
}

#[tokio::test]
async fn install_answers_500_when_no_state_can_be_issued() {
    let (flow, _clock) = flow(
        settings(),
        FakeStore::with(Knobs {
            fail_issue: true,
            ..Knobs::default()
        }),
    );
    let answer = send(&app(&flow), get("/slack/install", &[])).await;
    assert_eq!(answer.status, 500);
    assert!(answer.set_cookies().is_empty());
    assert!(answer.body.contains("(reason: storage_error: "));
    assert_page_headers(&answer);
}

/// Past the cap on live states the install page issues no state: 503 with Retry-After, no
/// cookie, nothing stored; states used by completed installs make room again.
#[tokio::test]
async fn install_answers_503_past_the_cap_on_live_states() {
    let store = FakeStore::new();
    let (flow, _clock) = flow(settings().max_live_states(Some(2)), store.clone());
    let app = app(&flow);
    let (first, _) = install(&app).await;
    let (second, _) = install(&app).await;
    assert_eq!(first.status, 200);
    assert_eq!(second.status, 200);
    for _ in 0..5 {
        let refused = send(&app, get("/slack/install", &[])).await;
        assert_eq!(refused.status, 503);
        assert_eq!(refused.header("retry-after"), "60");
        assert!(refused.set_cookies().is_empty());
        assert!(refused.body.contains("(reason: busy: "), "{}", refused.body);
        assert_page_headers(&refused);
    }
    assert_eq!(
        slack_oauth::store::StateStore::count_live(
            &store,
            time::OffsetDateTime::from_unix_timestamp(T0).unwrap()
        )
        .await
        .unwrap(),
        2,
        "no state was issued past the cap"
    );
}

#[tokio::test]
async fn install_refuses_a_state_that_cannot_be_a_cookie() {
    let (flow, _clock) = flow(
        settings(),
        FakeStore::with(Knobs {
            fixed_state: Some("a;b=c"),
            ..Knobs::default()
        }),
    );
    let answer = send(&app(&flow), get("/slack/install", &[])).await;
    assert_eq!(answer.status, 500);
    assert!(answer.set_cookies().is_empty());
}

#[tokio::test]
async fn slack_error_is_a_200_failure_and_leaves_the_state_alone() {
    let store = FakeStore::new();
    let (flow, _clock) = flow(settings(), store.clone());
    let app = app(&flow);
    let (_, state) = install(&app).await;

    let answer = send(
        &app,
        get(
            &callback(&format!("error=access_denied&state={state}")),
            &[&cookie_for(&state)],
        ),
    )
    .await;
    assert_failure(&answer, 200, "access_denied");
    assert_eq!(store.consumes(), 0, "a cancelled flow does not consume");

    // Another error string is shown once-escaped, with no cookie at all.
    let answer = send(&app, get(&callback("error=%3Cb%3Etest%3C%2Fb%3E"), &[])).await;
    assert_failure(&answer, 200, "&lt;b&gt;test&lt;/b&gt;");
    assert!(!answer.body.contains("<b>"));
}

#[tokio::test]
async fn missing_cookie_is_invalid_browser_and_keeps_the_state() {
    let store = FakeStore::new();
    let (flow, _clock) = flow(settings(), store.clone());
    let app = app(&flow);
    let (_, state) = install(&app).await;

    let answer = send(&app, get(&callback(&format!("code=c&state={state}")), &[])).await;
    assert_failure(&answer, 400, "invalid_browser");
    assert!(answer
        .body
        .contains("or the /slack/install URL not using https://"));
    assert_eq!(store.consumes(), 0);
    assert!(store.state_expiry(&state).is_some(), "not consumed");
}

#[tokio::test]
async fn cookie_of_another_state_is_invalid_browser() {
    let store = FakeStore::new();
    let (flow, _clock) = flow(settings(), store.clone());
    let app = app(&flow);
    let (_, mine) = install(&app).await;
    let (_, theirs) = install(&app).await;

    let answer = send(
        &app,
        get(
            &callback(&format!("code=c&state={theirs}")),
            &[&cookie_for(&mine)],
        ),
    )
    .await;
    assert_failure(&answer, 400, "invalid_browser");
    assert_eq!(store.consumes(), 0);
}

#[tokio::test]
async fn state_parameter_other_than_the_cookie_is_invalid_browser() {
    let (flow, _clock) = flow(settings(), FakeStore::new());
    let app = app(&flow);
    let (_, state) = install(&app).await;
    for query in ["code=c&state=invalid", "code=c", "code=c&state="] {
        let answer = send(&app, get(&callback(query), &[&cookie_for(&state)])).await;
        assert_failure(&answer, 400, "invalid_browser");
    }
}

#[tokio::test]
async fn replayed_state_is_invalid_state() {
    let store = FakeStore::new();
    let (flow, _clock) = flow(settings(), store.clone());
    let app = app(&flow);
    let (_, state) = install(&app).await;
    let request = || get(&callback(&format!("state={state}")), &[&cookie_for(&state)]);

    // The first use consumes the state (and fails later, for lack of a code).
    assert_failure(&send(&app, request()).await, 401, "missing_code");
    assert_failure(&send(&app, request()).await, 401, "invalid_state");
    assert_eq!(store.consumes(), 2);
}

#[tokio::test]
async fn missing_or_empty_code_is_missing_code() {
    let (flow, _clock) = flow(settings(), FakeStore::new());
    let app = app(&flow);
    for code in ["", "code=&"] {
        let (_, state) = install(&app).await;
        let answer = send(
            &app,
            get(
                &callback(&format!("{code}state={state}")),
                &[&cookie_for(&state)],
            ),
        )
        .await;
        assert_failure(&answer, 401, "missing_code");
        assert!(answer
            .body
            .contains("The code parameter is missing in this redirection."));
    }
}

#[tokio::test]
async fn store_refusing_the_state_is_invalid_state() {
    let (flow, _clock) = flow(
        settings(),
        FakeStore::with(Knobs {
            consume_answer: Some(false),
            ..Knobs::default()
        }),
    );
    let app = app(&flow);
    let (_, state) = install(&app).await;
    let answer = send(
        &app,
        get(
            &callback(&format!("code=c&state={state}")),
            &[&cookie_for(&state)],
        ),
    )
    .await;
    assert_failure(&answer, 401, "invalid_state");
}

#[tokio::test]
async fn expired_state_is_invalid_state() {
    let (flow, clock) = flow(settings(), FakeStore::new());
    let app = app(&flow);

    let (_, fresh) = install(&app).await;
    clock.advance(Duration::from_secs(599));
    let answer = send(
        &app,
        get(&callback(&format!("state={fresh}")), &[&cookie_for(&fresh)]),
    )
    .await;
    assert_failure(&answer, 401, "missing_code"); // still valid at 599 s

    let (_, stale) = install(&app).await;
    clock.advance(Duration::from_secs(601));
    let answer = send(
        &app,
        get(
            &callback(&format!("code=c&state={stale}")),
            &[&cookie_for(&stale)],
        ),
    )
    .await;
    assert_failure(&answer, 401, "invalid_state");
}

#[tokio::test]
async fn state_store_failure_is_storage_error() {
    let (flow, _clock) = flow(
        settings(),
        FakeStore::with(Knobs {
            fail_consume: true,
            ..Knobs::default()
        }),
    );
    let app = app(&flow);
    let (_, state) = install(&app).await;
    let answer = send(
        &app,
        get(
            &callback(&format!("code=c&state={state}")),
            &[&cookie_for(&state)],
        ),
    )
    .await;
    assert_failure(&answer, 500, "storage_error");
}

#[tokio::test]
async fn unreachable_slack_is_invalid_code_after_consuming_the_state() {
    let store = FakeStore::new();
    let (flow, _clock) = flow(settings(), store.clone());
    let app = app(&flow);
    let (_, state) = install(&app).await;
    let answer = send(
        &app,
        get(
            &callback(&format!("code=c&state={state}")),
            &[&cookie_for(&state)],
        ),
    )
    .await;
    assert_failure(&answer, 401, "invalid_code");
    assert_eq!(
        store.state_expiry(&state),
        None,
        "consumed before the exchange"
    );
    assert!(store.saved().is_empty());
}

#[tokio::test]
async fn state_validation_off_skips_cookie_and_state() {
    let store = FakeStore::new();
    let (flow, _clock) = flow(settings().state_validation_enabled(false), store.clone());
    let answer = send(&app(&flow), get(&callback("state=bogus"), &[])).await;
    assert_failure(&answer, 401, "missing_code");
    assert_eq!(store.consumes(), 0);
}

#[tokio::test]
async fn cookies_over_several_header_lines_and_among_others_are_found() {
    let (flow, _clock) = flow(settings(), FakeStore::new());
    let app = app(&flow);
    let (_, state) = install(&app).await;
    let answer = send(
        &app,
        get(
            &callback(&format!("state={state}")),
            &["a=1; b=2", &format!("x=y; {COOKIE}=\"{state}\"")],
        ),
    )
    .await;
    assert_failure(&answer, 401, "missing_code"); // past the browser and state checks
}

#[tokio::test]
async fn malformed_query_gets_the_flow_page_not_a_rejection() {
    let (flow, _clock) = flow(settings(), FakeStore::new());
    let app = app(&flow);
    let (_, state) = install(&app).await;
    // A repeated parameter, which serde refuses: read as Bolt does, first value wins.
    let answer = send(
        &app,
        get(
            &callback(&format!("state={state}&state=other&code=&code=x")),
            &[&cookie_for(&state)],
        ),
    )
    .await;
    assert_failure(&answer, 401, "missing_code");
    // Invalid percent-encoding and junk.
    let answer = send(&app, get(&callback("state=%ZZ&&=&%"), &[])).await;
    assert_failure(&answer, 400, "invalid_browser");
}

#[tokio::test]
async fn failure_url_gets_a_redirect_with_the_reason() {
    let (flow, _clock) = flow(
        settings().failure_url("https://app.test/oops?lang=en"),
        FakeStore::new(),
    );
    let answer = send(&app(&flow), get(&callback("code=c&state=s"), &[])).await;
    assert_eq!(answer.status, 302);
    assert_eq!(
        answer.header("location"),
        "https://app.test/oops?lang=en&error=invalid_browser"
    );
    assert!(answer.body.is_empty());
    assert_deletes_cookie(&answer);

    // A path on this site keeps its query and gets the reason appended.
    let (on_site, _clock) =
        super::fixtures::flow(settings().failure_url("/oops?lang=en"), FakeStore::new());
    let answer = send(&app(&on_site), get(&callback("code=c&state=s"), &[])).await;
    assert_eq!(answer.status, 302);
    assert_eq!(
        answer.header("location"),
        "/oops?lang=en&error=invalid_browser"
    );
}

#[tokio::test]
async fn custom_failure_handler_status_passes_through_with_the_deletion() {
    let (flow, _clock) = flow(settings(), FakeStore::new());
    let flow = flow.with_failure_handler(|error: CallbackError, _defaults| async move {
        let mut response = http::Response::new(format!("customized: {}", error.reason()));
        *response.status_mut() = http::StatusCode::BAD_GATEWAY;
        response
    });
    let answer = send(&app(&flow), get(&callback("code=c&state=s"), &[])).await;
    assert_eq!(answer.status, 502);
    assert_eq!(answer.body, "customized: invalid_browser");
    assert_deletes_cookie(&answer);
}

#[tokio::test]
async fn custom_failure_handler_can_fall_back_to_the_default_page() {
    let (flow, _clock) = flow(settings(), FakeStore::new());
    let flow = flow.with_failure_handler(|error: CallbackError, defaults| async move {
        defaults.failure(&error)
    });
    let answer = send(&app(&flow), get(&callback("error=access_denied"), &[])).await;
    assert_failure(&answer, 200, "access_denied");
}

#[tokio::test]
async fn panicking_handler_still_answers_500_and_deletes_the_cookie() {
    let (flow, _clock) = flow(settings(), FakeStore::new());
    let flow = flow.with_failure_handler(|_error, _defaults| async move {
        panic!("handler bug");
    });
    let answer = send(&app(&flow), get(&callback("error=access_denied"), &[])).await;
    assert_failure(&answer, 500, "storage_error");
}

#[tokio::test]
async fn routes_follow_the_configured_paths_and_nest_into_an_app() {
    #[derive(Clone)]
    struct AppState {
        flow: OAuthFlow<FakeStore>,
        name: &'static str,
    }
    impl FromRef<AppState> for OAuthFlow<FakeStore> {
        fn from_ref(state: &AppState) -> Self {
            state.flow.clone()
        }
    }
    impl FromRef<AppState> for &'static str {
        fn from_ref(state: &AppState) -> Self {
            state.name
        }
    }

    let (flow, _clock) = flow(
        settings()
            .install_path("/install")
            .redirect_uri_path("/oauth/callback"),
        FakeStore::new(),
    );
    let app: Router = Router::<AppState>::new()
        .route(
            "/",
            axum::routing::get(|axum::extract::State(name): axum::extract::State<&'static str>| async move {
                name
            }),
        )
        .nest("/slack", slack_oauth::axum::routes(&flow))
        .with_state(AppState { flow, name: "app" });

    assert_eq!(send(&app, get("/", &[])).await.body, "app");
    let answer = send(&app, get("/slack/install", &[])).await;
    assert_eq!(answer.status, 200);
    let state = answer.issued_state();
    let answer = send(
        &app,
        get(
            &format!("/slack/oauth/callback?state={state}"),
            &[&cookie_for(&state)],
        ),
    )
    .await;
    assert_failure(&answer, 401, "missing_code");
    // The failure page links back to the configured install path.
    assert!(answer.body.contains("<a href=\"/install\">here</a>"));
    assert_eq!(send(&app, get("/install", &[])).await.status, 404);
}

#[tokio::test]
async fn complete_reports_each_branch_as_a_typed_error() {
    let (flow, _clock) = flow(settings(), FakeStore::new());
    let start = flow.start_install(None).await.unwrap();
    let state = start
        .authorize_url
        .query_pairs()
        .find(|(name, _)| name == "state")
        .unwrap()
        .1
        .into_owned();
    let cookie = cookie_for(&state);
    let params = |query: &str| slack_oauth::flow::CallbackParams::from_query(query);

    let error = flow
        .complete(params("error=access_denied"), Some(&cookie))
        .await
        .unwrap_err();
    assert!(matches!(error, CallbackError::AccessDenied));
    let error = flow
        .complete(params(&format!("state={state}")), None)
        .await
        .unwrap_err();
    assert!(matches!(error, CallbackError::InvalidBrowser));
    let error = flow
        .complete(params(&format!("state={state}")), Some(&cookie))
        .await
        .unwrap_err();
    assert!(matches!(error, CallbackError::MissingCode));
    let error = flow
        .complete(params(&format!("code=c&state={state}")), Some(&cookie))
        .await
        .unwrap_err();
    assert!(matches!(error, CallbackError::InvalidState));
    assert_eq!(error.status(), 401);
}
