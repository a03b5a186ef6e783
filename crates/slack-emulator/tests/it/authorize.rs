//! `/oauth/v2/authorize`: the approve page, approve and cancel redirects, auto-approve, errors.

use slack_emulator::{EmulatorConfig, Grant, InstallKind};

use crate::support::*;

const STATE: &str = "st ate/+&=é";

/// The value of `attribute` in the tag whose `id` is `id`, HTML-decoded.
fn attribute_of(page: &str, id: &str, attribute: &str) -> String {
    let tag_start = page.find(&format!("id=\"{id}\"")).expect("element present");
    let tag_start = page[..tag_start].rfind('<').unwrap();
    let tag = &page[tag_start..tag_start + page[tag_start..].find('>').unwrap()];
    let marker = format!("{attribute}=\"");
    let start = tag.find(&marker).expect("attribute present") + marker.len();
    let end = start + tag[start..].find('"').unwrap();
    html_escape::decode_html_entities(&tag[start..end]).into_owned()
}

/// The hidden fields of the approve form, HTML-decoded.
fn hidden_fields(page: &str) -> Vec<(String, String)> {
    page.match_indices("<input type=\"hidden\"")
        .map(|(at, _)| {
            let tag = &page[at..at + page[at..].find('>').unwrap()];
            let field = |name: &str| {
                let marker = format!("{name}=\"");
                let start = tag.find(&marker).unwrap() + marker.len();
                let end = start + tag[start..].find('"').unwrap();
                html_escape::decode_html_entities(&tag[start..end]).into_owned()
            };
            (field("name"), field("value"))
        })
        .collect()
}

async fn authorize(
    emulator: &slack_emulator::Emulator,
    params: &[(&str, &str)],
) -> reqwest::Response {
    http()
        .get(emulator.authorize_url())
        .query(params)
        .send()
        .await
        .unwrap()
}

fn standard_params<'a>() -> Vec<(&'a str, &'a str)> {
    vec![
        ("client_id", CLIENT_ID),
        ("scope", "chat:write,commands"),
        ("user_scope", "search:read"),
        ("state", STATE),
        ("redirect_uri", REDIRECT_URI),
    ]
}

#[tokio::test]
async fn page_shows_the_request_and_approve_redirects_with_code_and_state() {
    let emulator = spawn(config()).await;
    let response = authorize(&emulator, &standard_params()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let page = response.text().await.unwrap();
    for needle in [
        "A0EMULATOR",
        CLIENT_ID,
        "chat:write",
        "commands",
        "search:read",
        "T0EMULATOR",
    ] {
        assert!(page.contains(needle), "page lacks {needle}: {page}");
    }
    assert_eq!(
        emulator.counters().codes_issued,
        0,
        "showing the page issues nothing"
    );

    // Submit the page's own form, as a browser would.
    assert!(page.contains("<button id=\"approve\""));
    let action = page
        .split("<form method=\"post\" action=\"")
        .nth(1)
        .unwrap();
    let action = &action[..action.find('"').unwrap()];
    let fields = hidden_fields(&page);
    let response = http()
        .post(format!(
            "{}{}",
            emulator.url(),
            action.trim_start_matches('/')
        ))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("https://app.test/slack/oauth_redirect?tenant=a%20b&code="));
    let params = query(&location);
    assert_eq!(params["state"], STATE);
    assert_eq!(params["tenant"], "a b");
    assert_eq!(emulator.counters().codes_issued, 1);

    let access = redeem(&emulator, &params["code"], Some(REDIRECT_URI)).await;
    assert_ok(&access);
    assert_eq!(access["scope"], "chat:write,commands");
    assert_eq!(access["authed_user"]["scope"], "search:read");
}

#[tokio::test]
async fn cancel_redirects_with_access_denied_and_state() {
    let emulator = spawn(config()).await;
    let page = authorize(&emulator, &standard_params())
        .await
        .text()
        .await
        .unwrap();
    let cancel = attribute_of(&page, "cancel", "href");
    assert!(cancel.starts_with("https://app.test/slack/oauth_redirect?tenant=a%20b&"));
    let params = query(&cancel);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], STATE);
    assert!(!params.contains_key("code"));
}

#[tokio::test]
async fn auto_approve_from_query_or_config_skips_the_page() {
    let emulator = spawn(config()).await;
    let mut params = standard_params();
    params.push(("auto_approve", "1"));
    let response = authorize(&emulator, &params).await;
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap();
    assert_eq!(query(location)["state"], STATE);

    let emulator = spawn(EmulatorConfig {
        auto_approve: true,
        ..config()
    })
    .await;
    let response = authorize(&emulator, &standard_params()).await;
    assert_eq!(response.status(), 302);
    let code = query(response.headers()["location"].to_str().unwrap())["code"].clone();
    assert_ok(&redeem(&emulator, &code, Some(REDIRECT_URI)).await);
}

#[tokio::test]
async fn wrong_client_id_and_missing_redirect_uri_are_error_pages() {
    let emulator = spawn(config()).await;
    let mut params = standard_params();
    params[0] = ("client_id", "999.<b>");
    let response = authorize(&emulator, &params).await;
    assert_eq!(response.status(), 400);
    let page = response.text().await.unwrap();
    assert!(page.contains("invalid client_id"));
    assert!(!page.contains("<b>"), "the error page escapes input");

    let params: Vec<_> = standard_params()
        .into_iter()
        .filter(|(name, _)| *name != "redirect_uri")
        .collect();
    let response = authorize(&emulator, &params).await;
    assert_eq!(response.status(), 400);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("missing redirect_uri"));

    let response = authorize(
        &emulator,
        &[("client_id", CLIENT_ID), ("redirect_uri", REDIRECT_URI)],
    )
    .await;
    assert_eq!(response.status(), 400, "no scope at all");
    assert_eq!(emulator.counters().codes_issued, 0);
}

#[tokio::test]
async fn empty_scope_with_user_scope_installs_user_only() {
    let emulator = spawn(config()).await;
    let response = authorize(
        &emulator,
        &[
            ("client_id", CLIENT_ID),
            ("scope", ""),
            ("user_scope", "search:read,users:read"),
            ("redirect_uri", REDIRECT_URI),
            ("auto_approve", "1"),
        ],
    )
    .await;
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        !query(&location).contains_key("state"),
        "no state was given"
    );
    let access = redeem(&emulator, &query(&location)["code"], Some(REDIRECT_URI)).await;
    assert_ok(&access);
    assert!(access.get("access_token").is_none());
    assert!(access.get("bot_user_id").is_none());
    assert_eq!(access["authed_user"]["scope"], "search:read,users:read");
    assert!(s(&access, "/authed_user/access_token").starts_with("xoxp-"));
}

#[tokio::test]
async fn team_parameter_and_default_grant_shape_the_install() {
    let emulator = spawn(config()).await;
    let mut params = standard_params();
    params.push(("team", "T0OTHER"));
    params.push(("auto_approve", "1"));
    let location = authorize(&emulator, &params).await.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let access = redeem(&emulator, &query(&location)["code"], Some(REDIRECT_URI)).await;
    assert_eq!(access["team"]["id"], "T0OTHER");

    emulator.set_default_grant(Grant {
        kind: InstallKind::OrgWide,
        ..Grant::default()
    });
    let location = authorize(&emulator, &params).await.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let access = redeem(&emulator, &query(&location)["code"], Some(REDIRECT_URI)).await;
    assert!(access["team"].is_null());
    assert_eq!(access["enterprise"]["id"], "E0EMULATOR");
}

#[tokio::test]
async fn pkce_challenge_requires_the_matching_verifier() {
    let emulator = spawn(config()).await;
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let mut params = standard_params();
    params.extend([
        (
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        ),
        ("code_challenge_method", "S256"),
        ("auto_approve", "1"),
    ]);
    let location = authorize(&emulator, &params).await.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let code = query(&location)["code"].clone();
    let with = |verifier: Option<&'static str>| {
        let mut form = vec![
            ("code", code.clone()),
            ("redirect_uri", REDIRECT_URI.to_owned()),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v.to_owned()));
        }
        form
    };
    for bad in [None, Some("wrong-verifier")] {
        let form = with(bad);
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = call(&emulator, "oauth.v2.access", &form).await;
        assert_eq!(error(&response), "invalid_code_verifier");
    }
    let form = with(Some(verifier));
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_ok(&call(&emulator, "oauth.v2.access", &form).await);

    params.retain(|(name, _)| *name != "code_challenge_method");
    params.push(("code_challenge_method", "S512"));
    assert_eq!(authorize(&emulator, &params).await.status(), 400);
}
