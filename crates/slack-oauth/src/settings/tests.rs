//! Unit tests of `OAuthSettings` and `ConfigError`.

use super::error::CREDENTIALS_HINT;
use super::*;
use std::collections::HashMap;

fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

#[test]
fn every_missing_credential_is_reported_at_once() {
    let error = OAuthSettings::from_lookup(lookup(&[])).unwrap_err();
    assert_eq!(
        error,
        ConfigError::Missing {
            names: vec!["SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"]
        }
    );
    let message = error.to_string();
    assert!(message.starts_with("SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are not set"));
    assert!(message.contains("Basic Information"));
}

#[test]
fn empty_credential_counts_as_missing() {
    let error = OAuthSettings::from_lookup(lookup(&[
        ("SLACK_CLIENT_ID", "111.222"),
        ("SLACK_CLIENT_SECRET", "  "),
    ]))
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("SLACK_CLIENT_SECRET is not set; {CREDENTIALS_HINT}")
    );
}

#[test]
fn every_variable_is_read() {
    let settings = OAuthSettings::from_lookup(lookup(&[
        ("SLACK_CLIENT_ID", "111.222"),
        ("SLACK_CLIENT_SECRET", "sec"),
        ("SLACK_SCOPES", "chat:write,commands"),
        ("SLACK_USER_SCOPES", "search:read"),
        ("SLACK_REDIRECT_URI", "https://a.example/cb?x=1"),
        (
            "SLACK_AUTHORIZE_URL",
            "https://emu.example/oauth/v2/authorize",
        ),
        ("SLACK_INSTALL_PATH", "/install"),
        ("SLACK_REDIRECT_URI_PATH", "/cb"),
        ("SLACK_SUCCESS_URL", "https://a.example/ok"),
        ("SLACK_FAILURE_URL", "/ko?lang=en"),
    ]))
    .unwrap();
    assert_eq!(settings.client_id, "111.222");
    assert_eq!(settings.client_secret.secret(), "sec");
    assert_eq!(settings.scopes.as_slice(), ["chat:write", "commands"]);
    assert_eq!(settings.user_scopes.as_slice(), ["search:read"]);
    assert_eq!(
        settings.redirect_uri.as_deref(),
        Some("https://a.example/cb?x=1")
    );
    assert_eq!(
        settings.authorize_url,
        "https://emu.example/oauth/v2/authorize"
    );
    assert_eq!(settings.install_path, "/install");
    assert_eq!(settings.redirect_uri_path, "/cb");
    assert_eq!(
        settings.success_url.as_deref(),
        Some("https://a.example/ok")
    );
    assert_eq!(settings.failure_url.as_deref(), Some("/ko?lang=en"));
}

#[test]
fn defaults_match_bolt() {
    let settings = OAuthSettings::from_lookup(lookup(&[
        ("SLACK_CLIENT_ID", "1"),
        ("SLACK_CLIENT_SECRET", "2"),
    ]))
    .unwrap();
    assert!(settings.scopes.is_empty() && settings.user_scopes.is_empty());
    assert_eq!(settings.install_path, "/slack/install");
    assert_eq!(settings.redirect_uri_path, "/slack/oauth_redirect");
    assert_eq!(
        settings.authorize_url,
        "https://slack.com/oauth/v2/authorize"
    );
    assert_eq!(settings.state_cookie_name, None);
    assert_eq!(
        settings.resolved_state_cookie_name(),
        "__Host-slack-app-oauth-state"
    );
    assert_eq!(settings.state_expiration, Duration::from_secs(600));
    assert_eq!(settings.token_rotation_expiration_minutes, 120);
    assert!(settings.install_page_rendering_enabled);
    assert!(settings.state_validation_enabled);
    assert!(settings.state_cookie_secure);
    assert_eq!(settings.state_cookie_same_site, SameSite::Lax);
    assert_eq!(settings.redirect_uri, None);
}

#[test]
fn bad_values_name_the_setting_and_variable() {
    let base = [("SLACK_CLIENT_ID", "1"), ("SLACK_CLIENT_SECRET", "2")];
    let cases = [
        (
            "SLACK_INSTALL_PATH",
            "slack/install",
            "install_path (SLACK_INSTALL_PATH)",
        ),
        (
            "SLACK_REDIRECT_URI_PATH",
            "//evil.example",
            "redirect_uri_path",
        ),
        (
            "SLACK_AUTHORIZE_URL",
            "not a url",
            "authorize_url (SLACK_AUTHORIZE_URL)",
        ),
        (
            "SLACK_REDIRECT_URI",
            "/relative",
            "redirect_uri (SLACK_REDIRECT_URI)",
        ),
        (
            "SLACK_SUCCESS_URL",
            "//evil.example/welcome",
            "success_url (SLACK_SUCCESS_URL)",
        ),
        (
            "SLACK_SUCCESS_URL",
            "http://a.example/ok",
            "success_url (SLACK_SUCCESS_URL)",
        ),
        (
            "SLACK_FAILURE_URL",
            "javascript:alert(1)",
            "failure_url (SLACK_FAILURE_URL)",
        ),
    ];
    for (name, value, expected) in cases {
        let mut vars = base.to_vec();
        vars.push((name, value));
        let error = OAuthSettings::from_lookup(lookup(&vars)).unwrap_err();
        let message = error.to_string();
        assert!(message.starts_with(expected), "{name}: {message}");
        assert!(message.contains(value), "{name}: {message}");
    }
}

#[test]
fn the_cookie_is_host_prefixed_whenever_it_is_secure_on_https() {
    let settings = || OAuthSettings::new("1", "2");
    let https = "https://app.test/slack/oauth_redirect";
    let http = "http://127.0.0.1:3000/slack/oauth_redirect";
    for (settings, name) in [
        (settings(), "__Host-slack-app-oauth-state"),
        (
            settings().redirect_uri(https),
            "__Host-slack-app-oauth-state",
        ),
        (settings().redirect_uri(http), "slack-app-oauth-state"),
        (
            settings().redirect_uri("HTTP://APP.TEST/cb"),
            "slack-app-oauth-state",
        ),
        (
            settings().redirect_uri(https).state_cookie_secure(false),
            "slack-app-oauth-state",
        ),
        (
            settings().redirect_uri(https).state_cookie_name("bolt"),
            "bolt",
        ),
    ] {
        assert_eq!(settings.resolved_state_cookie_name(), name, "{settings:?}");
        assert!(settings.validate().is_ok());
        assert!(crate::state::StateCookie::from_settings(&settings)
            .issue(&crate::secret::StateValue::new("s"))
            .unwrap()
            .starts_with(&format!("{name}=s;")));
    }
}

#[test]
fn cookie_settings_are_checked() {
    let settings = || OAuthSettings::new("1", "2");
    assert!(settings().state_cookie_name("bad name").validate().is_err());
    assert!(settings().state_cookie_name("").validate().is_err());
    assert!(settings()
        .state_cookie_name("__Host-slack-app-oauth-state")
        .validate()
        .is_ok());
    assert!(settings()
        .state_cookie_name("__Host-slack-app-oauth-state")
        .state_cookie_secure(false)
        .validate()
        .is_err());
    assert!(settings().state_cookie_secure(false).validate().is_ok());
    assert!(settings()
        .state_expiration(Duration::from_millis(10))
        .validate()
        .is_err());
}

#[test]
fn setters_accept_iterables_and_debug_hides_the_secret() {
    let settings = OAuthSettings::new("1", "TOPSECRET")
        .scopes(["a", "b"])
        .user_scopes(Vec::<String>::new());
    assert_eq!(settings.scopes.to_string(), "a,b");
    assert!(settings.user_scopes.is_empty());
    let shown = format!("{settings:?}");
    assert!(!shown.contains("TOPSECRET"), "{shown}");
}

#[test]
fn success_and_failure_urls_are_paths_or_https() {
    for ok in [
        "/welcome",
        "/done?x=1&y=2",
        "https://app.test/ok",
        "http://127.0.0.1:3000/ok",
        "http://localhost/ok",
    ] {
        let settings = OAuthSettings::new("1", "2").success_url(ok).failure_url(ok);
        assert!(settings.validate().is_ok(), "{ok}");
    }
    for bad in [
        "//evil.test/x",
        "/\\evil.test",
        "http://app.test/ok",
        "javascript:alert(1)",
        "data:text/html,x",
        "welcome",
        "/ok\nSet-Cookie: x",
    ] {
        assert!(
            OAuthSettings::new("1", "2")
                .success_url(bad)
                .validate()
                .is_err(),
            "{bad}"
        );
        assert!(
            OAuthSettings::new("1", "2")
                .failure_url(bad)
                .validate()
                .is_err(),
            "{bad}"
        );
    }
}
