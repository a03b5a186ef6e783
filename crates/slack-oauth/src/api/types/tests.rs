//! Every documented response shape, decoded from JSON as Slack (or the mock Slack of
//! docs/reference-sections.md §12.5) sends it.

use super::*;

fn access(json: &str) -> OAuthV2AccessResponse {
    serde_json::from_str(json).unwrap()
}

/// docs/reference-sections.md §12.5: the mock Slack's `oauth.v2.access` answer (bot + user
/// install).
const BOT_AND_USER: &str = r#"{
    "ok": true,
    "access_token": "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
    "token_type": "bot",
    "scope": "chat:write,commands",
    "bot_user_id": "U0KRQLJ9H",
    "app_id": "A0KRD7HC3",
    "team": {"name": "Slack Softball Team", "id": "T9TK3CUKW"},
    "enterprise": {"name": "slack-sports", "id": "E12345678"},
    "authed_user": {"id": "U1234", "scope": "chat:write", "access_token": "xoxp-1234",
                    "token_type": "user"}
}"#;

#[test]
fn bot_and_user_install() {
    let r = access(BOT_AND_USER);
    assert_eq!(r.app_id, Some(AppId::new("A0KRD7HC3")));
    assert_eq!(
        r.access_token.as_ref().unwrap().secret(),
        "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"
    );
    assert_eq!(r.token_type.as_deref(), Some("bot"));
    assert_eq!(r.scope, Scopes::parse("chat:write,commands"));
    assert_eq!(r.bot_user_id, Some(UserId::new("U0KRQLJ9H")));
    let team = r.team.unwrap();
    assert_eq!(team.id, Some(TeamId::new("T9TK3CUKW")));
    assert_eq!(team.name.as_deref(), Some("Slack Softball Team"));
    let enterprise = r.enterprise.unwrap();
    assert_eq!(enterprise.id, Some(EnterpriseId::new("E12345678")));
    assert_eq!(enterprise.name.as_deref(), Some("slack-sports"));
    assert!(!r.is_enterprise_install);
    let user = r.authed_user.unwrap();
    assert_eq!(user.id, Some(UserId::new("U1234")));
    assert_eq!(user.scope, Scopes::parse("chat:write"));
    assert_eq!(user.access_token.unwrap().secret(), "xoxp-1234");
    assert_eq!(user.token_type.as_deref(), Some("user"));
    assert!(user.refresh_token.is_none() && user.expires_in.is_none());
    assert!(r.refresh_token.is_none() && r.expires_in.is_none());
    assert!(r.incoming_webhook.is_none());
}

#[test]
fn user_token_only_install() {
    let r = access(
        r#"{"ok": true, "app_id": "A1", "team": {"id": "T1", "name": "Team"},
            "enterprise": null, "is_enterprise_install": false,
            "authed_user": {"id": "U1", "scope": "search:read", "access_token": "xoxp-1-2",
                            "token_type": "user"}}"#,
    );
    assert!(r.access_token.is_none());
    assert!(r.token_type.is_none());
    assert!(r.scope.is_empty());
    assert!(r.bot_user_id.is_none());
    assert!(r.enterprise.is_none());
    assert_eq!(r.team.unwrap().id, Some(TeamId::new("T1")));
    let user = r.authed_user.unwrap();
    assert_eq!(user.access_token.unwrap().secret(), "xoxp-1-2");
    assert!(user.scope.contains("search:read"));
}

#[test]
fn org_wide_install_has_no_team() {
    let r = access(
        r#"{"ok": true, "app_id": "A1", "access_token": "xoxb-1-2", "token_type": "bot",
            "scope": "commands", "bot_user_id": "U0BOT", "team": null,
            "enterprise": {"id": "E1", "name": "Org"}, "is_enterprise_install": true,
            "authed_user": {"id": "W1"}}"#,
    );
    assert!(r.team.is_none());
    assert!(r.is_enterprise_install);
    assert_eq!(r.enterprise.unwrap().id, Some(EnterpriseId::new("E1")));
    let user = r.authed_user.unwrap();
    assert_eq!(user.id, Some(UserId::new("W1")));
    assert!(user.access_token.is_none());
    assert!(user.scope.is_empty());
}

#[test]
fn workspace_inside_an_org() {
    let r = access(
        r#"{"ok": true, "access_token": "xoxb-1-2", "token_type": "bot", "scope": "commands",
            "team": {"id": "T2", "name": "Sales"}, "enterprise": {"id": "E1", "name": "Org"},
            "is_enterprise_install": false, "authed_user": {"id": "W2"}}"#,
    );
    assert_eq!(r.team.unwrap().id, Some(TeamId::new("T2")));
    assert_eq!(r.enterprise.unwrap().id, Some(EnterpriseId::new("E1")));
    assert!(!r.is_enterprise_install);
}

#[test]
fn incoming_webhook() {
    let r = access(
        r##"{"ok": true, "access_token": "xoxb-1-2", "token_type": "bot",
             "scope": "incoming-webhook", "team": {"id": "T1"},
             "incoming_webhook": {"channel": "#general", "channel_id": "C1",
                "configuration_url": "https://team.slack.com/services/B1",
                "url": "https://hooks.slack.com/services/T1/B1/HOOKSECRET"}}"##,
    );
    let hook = r.incoming_webhook.clone().unwrap();
    assert_eq!(
        hook.url.as_deref(),
        Some("https://hooks.slack.com/services/T1/B1/HOOKSECRET")
    );
    assert_eq!(hook.channel.as_deref(), Some("#general"));
    assert_eq!(hook.channel_id.as_deref(), Some("C1"));
    assert_eq!(
        hook.configuration_url.as_deref(),
        Some("https://team.slack.com/services/B1")
    );
    let shown = format!("{r:?}");
    assert!(!shown.contains("HOOKSECRET"), "{shown}");
    assert!(shown.contains("C1"), "{shown}");
}

#[test]
fn rotation_fields_at_top_level() {
    // A bot refresh (docs/reference-sections.md §9.1).
    let r = access(
        r#"{"ok": true, "app_id": "A1", "access_token": "xoxe.xoxb-1-new", "expires_in": 43200,
            "refresh_token": "xoxe-1-next", "token_type": "bot", "scope": "chat:write",
            "bot_user_id": "U0BOT", "team": {"id": "T1", "name": "Team"}, "enterprise": null}"#,
    );
    assert_eq!(r.access_token.unwrap().secret(), "xoxe.xoxb-1-new");
    assert_eq!(r.refresh_token.unwrap().secret(), "xoxe-1-next");
    assert_eq!(r.expires_in, Some(43200));
    assert_eq!(r.token_type.as_deref(), Some("bot"));
    assert!(r.authed_user.is_none());
}

#[test]
fn rotation_fields_under_authed_user() {
    let r = access(
        r#"{"ok": true, "access_token": "xoxe.xoxb-1-b", "expires_in": 43200,
            "refresh_token": "xoxe-1-bot", "token_type": "bot", "scope": "commands",
            "team": {"id": "T1"},
            "authed_user": {"id": "U1", "scope": "search:read",
                "access_token": "xoxe.xoxp-1-u", "token_type": "user",
                "refresh_token": "xoxe-1-user", "expires_in": 43201}}"#,
    );
    assert_eq!(r.refresh_token.unwrap().secret(), "xoxe-1-bot");
    let user = r.authed_user.unwrap();
    assert_eq!(user.access_token.unwrap().secret(), "xoxe.xoxp-1-u");
    assert_eq!(user.refresh_token.unwrap().secret(), "xoxe-1-user");
    assert_eq!(user.expires_in, Some(43201));
}

#[test]
fn unknown_fields_are_ignored() {
    let r = access(
        r#"{"ok": true, "warning": "superfluous_charset", "access_token": "xoxb-1-2",
            "response_metadata": {"warnings": ["superfluous_charset"]},
            "team": {"id": "T1", "domain": "team", "extra": [1, 2]},
            "authed_user": {"id": "U1", "new_field": {"nested": true}},
            "incoming_webhook": {"url": "https://hooks.slack.com/x", "extra": null},
            "something_new": 42}"#,
    );
    assert_eq!(r.team.unwrap().id, Some(TeamId::new("T1")));
    assert_eq!(r.authed_user.unwrap().id, Some(UserId::new("U1")));
}

#[test]
fn scope_null_or_missing_is_empty() {
    for json in [
        r#"{"ok": true, "scope": null, "authed_user": {"id": "U1", "scope": null}}"#,
        r#"{"ok": true, "authed_user": {"id": "U1"}}"#,
        r#"{"ok": true, "scope": "", "authed_user": {"id": "U1", "scope": ""}}"#,
    ] {
        let r = access(json);
        assert!(r.scope.is_empty(), "{json}");
        assert!(r.authed_user.unwrap().scope.is_empty(), "{json}");
    }
}

#[test]
fn null_booleans_are_false() {
    let r = access(r#"{"ok": true, "is_enterprise_install": null}"#);
    assert!(!r.is_enterprise_install);
    let r = access(r#"{"ok": true}"#);
    assert!(!r.is_enterprise_install);
    assert_eq!(r, OAuthV2AccessResponse::default());
}

#[test]
fn exchange_response() {
    // oauth.v2.exchange answers with the oauth.v2.access shape.
    let r = access(
        r#"{"ok": true, "app_id": "A1", "access_token": "xoxe.xoxp-1-u", "token_type": "user",
            "scope": "search:read", "refresh_token": "xoxe-1-r", "expires_in": 43200,
            "team": {"id": "T1"}, "enterprise": null, "is_enterprise_install": false}"#,
    );
    assert_eq!(r.token_type.as_deref(), Some("user"));
    assert_eq!(r.refresh_token.unwrap().secret(), "xoxe-1-r");
}

#[test]
fn auth_test_with_a_bot_token() {
    let r: AuthTestResponse = serde_json::from_str(
        r#"{"ok": true, "url": "https://subarachnoid.slack.com/", "team": "Subarachnoid Workspace",
            "user": "bot", "team_id": "T0G9PQBBK", "user_id": "W23456789",
            "bot_id": "BZYBOTHED"}"#,
    )
    .unwrap();
    assert_eq!(r.url.as_deref(), Some("https://subarachnoid.slack.com/"));
    assert_eq!(r.team.as_deref(), Some("Subarachnoid Workspace"));
    assert_eq!(r.user.as_deref(), Some("bot"));
    assert_eq!(r.team_id, Some(TeamId::new("T0G9PQBBK")));
    assert_eq!(r.user_id, Some(UserId::new("W23456789")));
    assert_eq!(r.bot_id, Some(BotId::new("BZYBOTHED")));
    assert!(r.enterprise_id.is_none());
    assert!(!r.is_enterprise_install);
}

#[test]
fn auth_test_with_a_user_token_in_an_org() {
    let r: AuthTestResponse = serde_json::from_str(
        r#"{"ok": true, "url": "https://org.enterprise.slack.com/", "user": "some-user",
            "user_id": "W99999", "enterprise_id": "E1", "is_enterprise_install": true}"#,
    )
    .unwrap();
    assert!(r.bot_id.is_none());
    assert!(r.team_id.is_none());
    assert_eq!(r.enterprise_id, Some(EnterpriseId::new("E1")));
    assert!(r.is_enterprise_install);
}

#[test]
fn auth_revoke() {
    let r: AuthRevokeResponse = serde_json::from_str(r#"{"ok": true, "revoked": true}"#).unwrap();
    assert!(r.revoked);
    let r: AuthRevokeResponse = serde_json::from_str(r#"{"ok": true}"#).unwrap();
    assert!(!r.revoked);
}

#[test]
fn debug_of_responses_shows_no_token() {
    let r = access(BOT_AND_USER);
    let shown = format!("{r:?}");
    assert!(!shown.contains("pdFZKVeTuE8sk7oOcBrzbqgy"), "{shown}");
    assert!(!shown.contains("xoxp-1234"), "{shown}");
    assert!(shown.contains("T9TK3CUKW"), "{shown}");

    let credentials = ClientCredentials::new("111.222", "CLIENTSECRET");
    let grant = AccessGrant::Code {
        code: AuthorizationCode::new("CODEVALUE"),
        redirect_uri: None,
        code_verifier: Some("VERIFIER".to_owned()),
    };
    let shown = format!("{credentials:?} {grant:?}");
    assert!(!shown.contains("CLIENTSECRET"), "{shown}");
    assert!(!shown.contains("CODEVALUE"), "{shown}");
    assert!(!shown.contains("VERIFIER"), "{shown}");
    assert!(shown.contains("code_verifier"), "{shown}");
}
