//! Request-id extraction for every payload kind, and malformed bodies.

use super::*;

fn authorize_request(body: &[u8]) -> AuthorizeRequest {
    match Incoming::parse(body).unwrap() {
        Incoming::Authorize(request) => request,
        other => panic!("expected Authorize, got {other:?}"),
    }
}

fn ids(request: &AuthorizeRequest) -> (Option<&str>, Option<&str>, Option<&str>, bool) {
    (
        request.enterprise_id.as_ref().map(EnterpriseId::as_str),
        request.team_id.as_ref().map(TeamId::as_str),
        request.user_id.as_ref().map(UserId::as_str),
        request.is_enterprise_install,
    )
}

#[test]
fn events_api_message() {
    let body = serde_json::json!({
        "token": "verification-token",
        "team_id": "T1",
        "enterprise_id": null,
        "api_app_id": "A1",
        "type": "event_callback",
        "event": {"type": "message", "user": "U1", "text": "hi", "channel": "C1"},
        "authorizations": [{
            "enterprise_id": null, "team_id": "T1", "user_id": "UB1",
            "is_bot": true, "is_enterprise_install": false
        }],
        "is_ext_shared_channel": false
    });
    let request = authorize_request(body.to_string().as_bytes());
    assert_eq!(ids(&request), (None, Some("T1"), Some("U1"), false));
}

#[test]
fn events_prefer_authorizations_for_shared_channels() {
    let body = serde_json::json!({
        "team_id": "T_OTHER",
        "enterprise_id": "E_OTHER",
        "type": "event_callback",
        "event": {"type": "message", "user": "U7", "user_team": "T_OTHER"},
        "authorizations": [{"enterprise_id": "E1", "team_id": null, "is_enterprise_install": true}],
        "is_ext_shared_channel": true
    });
    let request = authorize_request(body.to_string().as_bytes());
    assert_eq!(
        ids(&request),
        (Some("E1"), Some("T_OTHER"), Some("U7"), true)
    );
    assert_eq!(request.actor_team_id.unwrap().as_str(), "T_OTHER");
    assert_eq!(request.actor_user_id.unwrap().as_str(), "U7");
}

#[test]
fn events_without_user_and_with_user_objects() {
    let body = br#"{"type":"event_callback","team_id":"T1","event":{"type":"channel_created"}}"#;
    assert_eq!(
        ids(&authorize_request(body)),
        (None, Some("T1"), None, false)
    );
    let body =
        br#"{"type":"event_callback","team_id":"T1","event":{"type":"user_change","user":{"id":"U5"}}}"#;
    assert_eq!(ids(&authorize_request(body)).2, Some("U5"));
}

#[test]
fn url_verification_and_ssl_check_need_no_authorize() {
    let body = br#"{"token":"t","challenge":"3eZbrw1aB","type":"url_verification"}"#;
    assert_eq!(
        Incoming::parse(body).unwrap(),
        Incoming::UrlVerification {
            challenge: "3eZbrw1aB".into()
        }
    );
    assert_eq!(
        Incoming::parse(b"ssl_check=1&token=abc").unwrap(),
        Incoming::SslCheck
    );
    assert_eq!(
        Incoming::parse(br#"{"type":"app_rate_limited","team_id":"T1"}"#).unwrap(),
        Incoming::Other
    );
}

#[test]
fn lifecycle_events_are_recognised_org_wide_too() {
    let body = br#"{"type":"event_callback","team_id":"T1","event":{"type":"app_uninstalled"}}"#;
    let Incoming::Lifecycle { workspace, event } = Incoming::parse(body).unwrap() else {
        panic!("not lifecycle");
    };
    assert_eq!(event, LifecycleEvent::AppUninstalled);
    assert_eq!(ids(&workspace), (None, Some("T1"), None, false));

    let body = serde_json::json!({
        "type": "event_callback", "team_id": "T1", "enterprise_id": "E1",
        "event": {"type": "tokens_revoked", "tokens": {"oauth": ["U1"], "bot": ["UB"]}},
        "authorizations": [{"enterprise_id": "E1", "team_id": null, "is_enterprise_install": true}]
    });
    let Incoming::Lifecycle { workspace, event } =
        Incoming::parse(body.to_string().as_bytes()).unwrap()
    else {
        panic!("not lifecycle");
    };
    assert!(workspace.is_enterprise_install);
    assert_eq!(workspace.enterprise_id.unwrap().as_str(), "E1");
    assert_eq!(
        event,
        LifecycleEvent::TokensRevoked {
            oauth: vec!["U1".into()],
            bot: vec!["UB".into()]
        }
    );
}

#[test]
fn slash_commands() {
    let body = b"token=x&team_id=T1&team_domain=acme&enterprise_id=E1&enterprise_name=Acme\
        &channel_id=C1&user_id=U1&user_name=sam&command=%2Fweather&text=94070\
        &is_enterprise_install=true&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1";
    assert_eq!(
        ids(&authorize_request(body)),
        (Some("E1"), Some("T1"), Some("U1"), true)
    );
    let body = b"team_id=T1&enterprise_id=&user_id=U1&command=%2Fx&is_enterprise_install=false";
    assert_eq!(
        ids(&authorize_request(body)),
        (None, Some("T1"), Some("U1"), false)
    );
}

#[test]
fn interactivity_payloads() {
    let payload = serde_json::json!({
        "type": "block_actions",
        "team": {"id": "T1", "domain": "acme"},
        "enterprise": null,
        "user": {"id": "U1", "team_id": "T1"},
        "is_enterprise_install": false,
        "actions": []
    });
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    assert_eq!(
        ids(&authorize_request(body.as_bytes())),
        (None, Some("T1"), Some("U1"), false)
    );

    // An org-wide view submission: no team object, the user's team and the org.
    let payload = serde_json::json!({
        "type": "view_submission",
        "team": null,
        "enterprise": {"id": "E1", "name": "Acme"},
        "user": {"id": "U2", "team_id": "T9"},
        "is_enterprise_install": true
    });
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let request = authorize_request(body.as_bytes());
    assert_eq!(ids(&request), (Some("E1"), Some("T9"), Some("U2"), true));
    assert_eq!(request.actor_team_id.unwrap().as_str(), "T9");
}

#[test]
fn malformed_bodies_are_typed_errors() {
    let cases: [(&[u8], IncomingError); 6] = [
        (
            b"{not json",
            IncomingError::Json {
                what: "request body",
                line: 1,
                column: 2,
            },
        ),
        (
            b"payload=%7Bxoxb-secret",
            IncomingError::Json {
                what: "payload field",
                line: 1,
                column: 2,
            },
        ),
        (b"", IncomingError::NoWorkspace),
        (b"command=%2Fx&user_id=U1", IncomingError::NoWorkspace),
        (
            br#"{"type":"event_callback","event":{"type":"message"}}"#,
            IncomingError::NoWorkspace,
        ),
        (b"%%%=&&==%ff", IncomingError::NoWorkspace),
    ];
    for (body, expected) in cases {
        let error = Incoming::parse(body).unwrap_err();
        assert_eq!(error, expected, "{}", String::from_utf8_lossy(body));
        assert!(!error.to_string().contains("xoxb"));
    }
    // Odd shapes never panic.
    for body in [
        &br#"{"type":"event_callback","team_id":7,"authorizations":"x","event":[]}"#[..],
        br#"{"type":null}"#,
        b"payload=%5B%5D",
        b"payload=null",
    ] {
        let _ = Incoming::parse(body);
    }
}
