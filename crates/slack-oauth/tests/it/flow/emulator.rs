//! End-to-end installs: the flow's code exchange over real HTTP against `slack_emulator`, with
//! `MemoryStore` and a manual clock; the app served on loopback too (`fixtures::send`).

use std::time::Duration;

use axum::Router;
use slack_emulator::{Emulator, EmulatorConfig, Fault, Grant, InstallKind};
use slack_oauth::clock::ManualClock;
use slack_oauth::flow::{CallbackError, CallbackParams, OAuthFlow};
use slack_oauth::installation::Installation;
use slack_oauth::settings::OAuthSettings;
use slack_oauth::store::{InstallationQuery, InstallationStore, MemoryStore, StateStore};

use super::fixtures::*;

const REDIRECT_URI: &str = "https://app.test/slack/oauth_redirect";

/// An emulator that knows the test app, and a flow talking to it.
struct Setup<S> {
    emulator: Emulator,
    flow: OAuthFlow<S>,
    clock: ManualClock,
    app: Router,
}

fn emulator_config() -> EmulatorConfig {
    EmulatorConfig {
        client_id: Some(CLIENT_ID.to_owned()),
        client_secret: Some(CLIENT_SECRET.to_owned()),
        ..EmulatorConfig::default()
    }
}

async fn setup_with<S>(config: EmulatorConfig, settings: OAuthSettings, store: S) -> Setup<S>
where
    S: InstallationStore + StateStore + Clone + Send + Sync + 'static,
{
    let emulator = Emulator::spawn(config).await.unwrap();
    let clock = ManualClock::at_unix(T0);
    let settings = settings
        .redirect_uri(REDIRECT_URI)
        .authorize_url(emulator.authorize_url());
    let flow = OAuthFlow::new(settings, store, client(&emulator.api_url()))
        .unwrap()
        .with_clock(clock.clone());
    let app = app(&flow);
    Setup {
        emulator,
        flow,
        clock,
        app,
    }
}

async fn setup() -> Setup<MemoryStore> {
    setup_with(emulator_config(), settings(), MemoryStore::new()).await
}

impl<S> Setup<S> {
    /// A code for `grant`, bound to the configured redirect URI.
    fn code(&self, grant: Grant) -> String {
        self.emulator.issue_code(grant, Some(REDIRECT_URI))
    }

    /// Starts an install, then comes back with `code` and the state and its cookie.
    async fn install_with(&self, code: &str) -> Answer {
        let (_, state) = install(&self.app).await;
        send(
            &self.app,
            get(
                &callback(&format!("code={code}&state={state}")),
                &[&cookie_for(&state)],
            ),
        )
        .await
    }

    fn calls(&self, method: &str) -> u64 {
        self.emulator
            .counters()
            .calls
            .get(method)
            .copied()
            .unwrap_or(0)
    }
}

async fn find(store: &MemoryStore, query: InstallationQuery) -> Installation {
    store
        .find_installation(&query)
        .await
        .unwrap()
        .expect("the installation is stored")
}

#[tokio::test]
async fn workspace_install_stores_every_field_with_one_auth_test() {
    let setup = setup().await;
    let grant = Grant {
        incoming_webhook: true,
        ..Grant::default()
    };
    let answer = setup.install_with(&setup.code(grant)).await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_page_headers(&answer);
    assert_deletes_cookie(&answer);
    assert!(answer.body.contains("<h2>Thank you!</h2>"));
    assert!(answer
        .body
        .contains("URL=slack://app?team=T0EMULATOR&amp;id=A0EMULATOR\""));
    assert!(answer
        .body
        .contains("<a href=\"https://app.slack.com/client/T0EMULATOR\" target=\"_blank\">"));
    assert_eq!(setup.calls("oauth.v2.access"), 1);
    assert_eq!(setup.calls("auth.test"), 1);

    let i = find(setup.flow.store(), InstallationQuery::team("T0EMULATOR")).await;
    assert_eq!(i.app_id.as_ref().unwrap(), "A0EMULATOR");
    assert_eq!(i.enterprise_id, None);
    assert_eq!(i.enterprise_url, None);
    assert_eq!(i.team_id.as_ref().unwrap(), "T0EMULATOR");
    assert_eq!(i.team_name.as_deref(), Some("Emulated Workspace"));
    assert!(i.bot_token.as_ref().unwrap().secret().starts_with("xoxb-"));
    assert_eq!(i.bot_id.as_ref().unwrap(), "B0EMULATOR");
    assert_eq!(i.bot_user_id.as_ref().unwrap(), "U0EMULBOT");
    assert_eq!(i.bot_scopes.to_string(), "chat:write,commands");
    assert_eq!(i.bot_refresh_token, None);
    assert_eq!(i.bot_token_expires_at, None);
    assert_eq!(i.user_id, "U0EMULATOR");
    assert!(i.user_token.as_ref().unwrap().secret().starts_with("xoxp-"));
    assert_eq!(i.user_scopes.to_string(), "search:read");
    assert!(i.incoming_webhook_url.is_some());
    assert!(i.incoming_webhook_channel.is_some());
    assert!(i.incoming_webhook_channel_id.is_some());
    assert!(i.incoming_webhook_configuration_url.is_some());
    assert!(!i.is_enterprise_install);
    assert_eq!(i.token_type.as_deref(), Some("bot"));
    assert_eq!(
        i.installed_at.unix_timestamp(),
        T0,
        "installed_at is the flow's clock"
    );
}

#[tokio::test]
async fn rotating_install_stores_expiries_from_the_flow_clock() {
    let config = EmulatorConfig {
        rotation: true,
        ..emulator_config()
    };
    let setup = setup_with(config, settings(), MemoryStore::new()).await;
    let answer = setup.install_with(&setup.code(Grant::default())).await;
    assert_eq!(answer.status, 200, "{}", answer.body);

    let i = find(setup.flow.store(), InstallationQuery::team("T0EMULATOR")).await;
    assert!(i.bot_token.unwrap().secret().starts_with("xoxe.xoxb-"));
    assert!(i.bot_refresh_token.unwrap().secret().starts_with("xoxe-1-"));
    assert_eq!(
        i.bot_token_expires_at.unwrap().unix_timestamp(),
        T0 + 43_200
    );
    assert!(i.user_refresh_token.is_some());
    assert_eq!(
        i.user_token_expires_at.unwrap().unix_timestamp(),
        T0 + 43_200
    );
}

#[tokio::test]
async fn success_url_gets_a_redirect() {
    let setup = setup_with(
        emulator_config(),
        settings().success_url("https://app.test/welcome"),
        MemoryStore::new(),
    )
    .await;
    let answer = setup.install_with(&setup.code(Grant::default())).await;
    assert_eq!(answer.status, 302);
    assert_eq!(answer.header("location"), "https://app.test/welcome");
    assert_deletes_cookie(&answer);
}

#[tokio::test]
async fn reused_code_is_invalid_code_with_slacks_error_kept() {
    let setup = setup().await;
    let code = setup.code(Grant::default());
    assert_eq!(setup.install_with(&code).await.status, 200);

    let answer = setup.install_with(&code).await;
    assert_failure(&answer, 401, "invalid_code");
    assert!(answer.body.contains("(Slack said: invalid_code)"));

    // The typed error keeps the ApiError as its source.
    let start = setup.flow.start_install(None).await.unwrap();
    let state = start
        .authorize_url
        .query_pairs()
        .find(|(name, _)| name == "state")
        .unwrap()
        .1
        .into_owned();
    let error = setup
        .flow
        .complete(
            CallbackParams::from_query(&format!("code={code}&state={state}")),
            Some(&cookie_for(&state)),
        )
        .await
        .unwrap_err();
    match &error {
        CallbackError::InvalidCode(api) => assert_eq!(api.slack_error(), Some("invalid_code")),
        other => panic!("expected invalid_code, got {other:?}"),
    }
    assert!(std::error::Error::source(&error).is_some());
}

#[tokio::test]
async fn slack_ok_false_is_invalid_code_and_nothing_is_saved() {
    let setup = setup().await;
    setup.emulator.inject(
        "oauth.v2.access",
        Fault::SlackError("invalid_client".to_owned()),
        1,
    );
    let answer = setup.install_with(&setup.code(Grant::default())).await;
    assert_failure(&answer, 401, "invalid_code");
    assert!(answer.body.contains("(Slack said: invalid_client)"));
    assert!(setup
        .flow
        .store()
        .list_installations()
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn auth_test_failure_is_invalid_code() {
    let setup = setup().await;
    setup
        .emulator
        .inject("auth.test", Fault::ServerError { status: 503 }, 1);
    let answer = setup.install_with(&setup.code(Grant::default())).await;
    assert_failure(&answer, 401, "invalid_code");
    assert_eq!(setup.calls("auth.test"), 1);
    assert!(setup
        .flow
        .store()
        .list_installations()
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn failing_save_is_storage_error_with_the_cookie_deleted() {
    let setup = setup_with(
        emulator_config(),
        settings(),
        FailingSave(MemoryStore::new()),
    )
    .await;
    let (_, state) = install(&setup.app).await;
    let code = setup.code(Grant::default());
    let request = || {
        get(
            &callback(&format!("code={code}&state={state}")),
            &[&cookie_for(&state)],
        )
    };
    assert_failure(&send(&setup.app, request()).await, 500, "storage_error");
    // The state was spent before the exchange: a reload is invalid_state.
    assert_failure(&send(&setup.app, request()).await, 401, "invalid_state");
    assert_eq!(setup.calls("oauth.v2.access"), 1);
}

#[tokio::test]
async fn replayed_state_after_success_is_invalid_state() {
    let setup = setup().await;
    let (_, state) = install(&setup.app).await;
    let code = setup.code(Grant::default());
    let request = || {
        get(
            &callback(&format!("code={code}&state={state}")),
            &[&cookie_for(&state)],
        )
    };
    assert_eq!(send(&setup.app, request()).await.status, 200);
    assert_failure(&send(&setup.app, request()).await, 401, "invalid_state");
    assert_eq!(setup.calls("oauth.v2.access"), 1, "no second exchange");
}

#[tokio::test]
async fn wrong_or_missing_cookie_is_refused_before_slack_is_called() {
    let setup = setup().await;
    let (_, mine) = install(&setup.app).await;
    let (_, theirs) = install(&setup.app).await;
    let code = setup.code(Grant::default());

    let no_cookie = get(&callback(&format!("code={code}&state={mine}")), &[]);
    assert_failure(&send(&setup.app, no_cookie).await, 400, "invalid_browser");
    let other_cookie = get(
        &callback(&format!("code={code}&state={mine}")),
        &[&cookie_for(&theirs)],
    );
    assert_failure(
        &send(&setup.app, other_cookie).await,
        400,
        "invalid_browser",
    );
    assert_eq!(setup.calls("oauth.v2.access"), 0);

    // The state survived both attempts.
    let good = get(
        &callback(&format!("code={code}&state={mine}")),
        &[&cookie_for(&mine)],
    );
    assert_eq!(send(&setup.app, good).await.status, 200);
}

#[tokio::test]
async fn expired_state_is_invalid_state_before_slack_is_called() {
    let setup = setup().await;
    let (_, state) = install(&setup.app).await;
    setup.clock.advance(Duration::from_secs(601));
    let answer = send(
        &setup.app,
        get(
            &callback(&format!(
                "code={}&state={state}",
                setup.code(Grant::default())
            )),
            &[&cookie_for(&state)],
        ),
    )
    .await;
    assert_failure(&answer, 401, "invalid_state");
    assert_eq!(setup.calls("oauth.v2.access"), 0);
}

#[tokio::test]
async fn org_wide_install_succeeds_and_links_to_the_org_app_page() {
    let setup = setup().await;
    let grant = Grant {
        kind: InstallKind::OrgWide,
        ..Grant::default()
    };
    let answer = setup.install_with(&setup.code(grant)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains(
        "URL=https://emulated-org.enterprise.slack.com/manage/organization/apps/profile/A0EMULATOR/workspaces/add\""
    ));
    assert!(
        !answer.body.contains("app.slack.com/client"),
        "no browser link without a team (W22)"
    );
    assert_eq!(setup.calls("auth.test"), 1);

    let i = find(setup.flow.store(), InstallationQuery::org("E0EMULATOR")).await;
    assert!(i.is_enterprise_install);
    assert_eq!(i.team_id, None);
    assert_eq!(i.enterprise_id.as_ref().unwrap(), "E0EMULATOR");
    assert_eq!(i.enterprise_name.as_deref(), Some("Emulated Org"));
    assert_eq!(
        i.enterprise_url.as_deref(),
        Some("https://emulated-org.enterprise.slack.com/")
    );
    assert_eq!(i.bot_id.as_ref().unwrap(), "B0EMULATOR");
}

#[tokio::test]
async fn user_only_install_succeeds_without_auth_test() {
    let setup = setup().await;
    let grant = Grant {
        kind: InstallKind::UserOnly,
        bot_scopes: Vec::new(),
        ..Grant::default()
    };
    let answer = setup.install_with(&setup.code(grant)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(setup.calls("auth.test"), 0);

    let i = find(
        setup.flow.store(),
        InstallationQuery::team("T0EMULATOR").user("U0EMULATOR"),
    )
    .await;
    assert!(i.bot_token.is_none() && i.bot_id.is_none());
    assert!(
        i.bot_scopes.is_empty(),
        "W5: no bot scopes is empty, not a crash"
    );
    assert!(i.user_token.unwrap().secret().starts_with("xoxp-"));
    assert_eq!(i.user_scopes.to_string(), "search:read");
}

#[tokio::test]
async fn state_validation_off_accepts_a_bogus_state() {
    let setup = setup_with(
        emulator_config(),
        settings().state_validation_enabled(false),
        MemoryStore::new(),
    )
    .await;
    let code = setup.code(Grant::default());
    let answer = send(
        &setup.app,
        get(&callback(&format!("code={code}&state=bogus")), &[]),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_deletes_cookie(&answer);
}

/// The whole dance over real sockets, the way a browser does it: the install page, Slack's
/// authorize (auto-approved), the redirect back with the cookie.
#[tokio::test]
async fn browser_walk_over_real_sockets() {
    let emulator = Emulator::spawn(EmulatorConfig {
        auto_approve: true,
        ..emulator_config()
    })
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let settings = settings()
        .redirect_uri(format!("{base}/slack/oauth_redirect"))
        .authorize_url(emulator.authorize_url());
    let store = MemoryStore::new();
    let flow = OAuthFlow::new(settings, store.clone(), client(&emulator.api_url())).unwrap();
    let app = app(&flow);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = browser
        .get(format!("{base}/slack/install"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let html = page.text().await.unwrap();
    let href = html
        .split("class=\"add-to-slack\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .replace("&amp;", "&");
    assert!(href.starts_with(&emulator.authorize_url()), "{href}");

    let slack = browser.get(&href).send().await.unwrap();
    assert_eq!(slack.status(), 302, "{}", slack.text().await.unwrap());
    let back = slack.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        back.starts_with(&format!("{base}/slack/oauth_redirect?code=")),
        "{back}"
    );

    let done = browser
        .get(&back)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    assert!(done.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .starts_with("slack-app-oauth-state=deleted;"));
    assert!(done.text().await.unwrap().contains("Thank you!"));
    let i = find(&store, InstallationQuery::team("T0EMULATOR")).await;
    assert_eq!(i.user_id, "U0EMULATOR");

    server.abort();
    emulator.shutdown().await;
}
