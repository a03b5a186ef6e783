//! S4 (reliability.md): redirect targets built from hostile pieces. Whatever the configured
//! `success_url` / `failure_url`, Slack's error string and the org's `enterprise_url`, every
//! redirect the flow answers with (a `Location` header, the success page's meta refresh and
//! link) resolves, as a browser resolves it against the callback URL, to this site, the
//! configured https URL's own origin, a `slack://` deep link, Slack's domains (org-wide installs)
//! or the configured authorize host. The `redirect_uri` sent to Slack is the configured one.
//!
//! Each property runs 10,000 cases in CI; `SLACK_OAUTH_PROPERTY_CASES=100000` runs S4's count.

use std::sync::Arc;

use proptest::prelude::*;
use slack_oauth::flow::pages::{success_page, success_target};
use slack_oauth::flow::{AuthorizeUrl, CallbackError, DefaultPages};
use slack_oauth::installation::Installation;
use slack_oauth::settings::OAuthSettings;
use url::Url;

use super::properties::config;

/// Where the callback is served: what a browser resolves relative redirects against.
const CALLBACK: &str = "https://app.example.com/slack/oauth_redirect";
const AUTHORIZE: &str = "https://slack.com/oauth/v2/authorize";

/// Pieces attackers use against redirect checks: scheme-relative and backslash tricks, dot
/// segments, userinfo, encoded separators, whitespace and controls, other schemes and
/// look-alike hosts.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/".to_owned()),
        Just("//".to_owned()),
        Just("\\".to_owned()),
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just("%2F".to_owned()),
        Just("%2f".to_owned()),
        Just("%5C".to_owned()),
        Just("%2e%2e".to_owned()),
        Just("%00".to_owned()),
        Just("%0d%0a".to_owned()),
        Just("\t".to_owned()),
        Just("\n".to_owned()),
        Just(" ".to_owned()),
        Just("@".to_owned()),
        Just(":".to_owned()),
        Just("?".to_owned()),
        Just("#".to_owned()),
        Just("&".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just(">".to_owned()),
        Just("https:".to_owned()),
        Just("http:".to_owned()),
        Just("javascript:".to_owned()),
        Just("data:".to_owned()),
        Just("slack:".to_owned()),
        Just("evil.com".to_owned()),
        Just("slack.com".to_owned()),
        Just(".slack.com".to_owned()),
        Just("slack.com.evil.com".to_owned()),
        Just("app.example.com".to_owned()),
        Just("localhost".to_owned()),
        Just("127.0.0.1".to_owned()),
        Just("[::1]".to_owned()),
        Just(":443".to_owned()),
        Just("\u{3002}".to_owned()),
        Just("ｓｌａｃｋ.com".to_owned()),
        "[a-z]{1,6}",
        ".{1,4}",
    ]
}

/// A redirect target: pieces glued together, sometimes behind a plausible start.
fn target() -> impl Strategy<Value = String> {
    let glued = prop::collection::vec(piece(), 0..10).prop_map(|pieces| pieces.concat());
    (
        prop_oneof![
            Just(""),
            Just("/"),
            Just("https://"),
            Just("http://"),
            Just("https://app.example.com/"),
            Just("https://x.slack.com/"),
            Just("//"),
        ],
        glued,
    )
        .prop_map(|(start, rest)| format!("{start}{rest}"))
}

fn callback() -> Url {
    Url::parse(CALLBACK).unwrap()
}

/// Where a browser on the callback page goes for `location`, if anywhere.
fn resolve(location: &str) -> Option<Url> {
    callback().join(location).ok()
}

/// Whether `resolved` is this site or the origin of the configured absolute URL.
fn is_allowed_configured(resolved: &Url, configured: &str) -> bool {
    let this_site = resolved.origin() == callback().origin();
    let its_own = !configured.starts_with('/')
        && Url::parse(configured).is_ok_and(|url| {
            url.origin() == resolved.origin() && (url.scheme() == "https" || is_loopback(&url))
        });
    this_site || its_own
}

/// A loopback host (RFC 6761 names, loopback addresses): where plain http is allowed.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => {
            let name = name.strip_suffix('.').unwrap_or(name);
            name == "localhost" || (name.ends_with(".localhost") && !name.contains(".."))
        }
        None => false,
    }
}

fn installation(enterprise_url: Option<String>, team: Option<String>) -> Installation {
    let mut installation = Installation::new("U1", time::OffsetDateTime::UNIX_EPOCH);
    installation.app_id = Some("A111".into());
    installation.team_id = team.map(Into::into);
    installation.is_enterprise_install = enterprise_url.is_some();
    installation.enterprise_id = enterprise_url.as_ref().map(|_| "E1".into());
    installation.enterprise_url = enterprise_url;
    installation
}

/// Python's `html.escape`, as the pages escape attribute values.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

/// The URL in the success page's meta refresh, unescaped as a browser reads the attribute.
fn meta_refresh(page: &str) -> String {
    let start = page.find("URL=").expect("a meta refresh") + 4;
    let end = start
        + page[start..]
            .find("\">")
            .expect("the end of the meta refresh");
    page[start..end]
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A configured success or failure URL is refused by `validate`, or every redirect to it
/// (whatever Slack's error string appended to the failure URL) stays on this site or the
/// configured URL's own origin. Prints `RELIABILITY S4 ...` with the counts.
#[test]
fn configured_targets_never_leave_the_allowed_hosts() {
    use proptest::test_runner::TestRunner;
    use std::sync::atomic::{AtomicU64, Ordering};
    let (refused, redirected, pages) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let strategy = (
        prop_oneof![
            3 => target(),
            1 => "/[a-z./%?=&-]{0,16}",
            1 => "https://app\\.example\\.com/[a-z./%?=&-]{0,16}",
        ],
        prop_oneof![".{0,20}", target()],
        proptest::option::of("[A-Z0-9]{1,6}"),
    );
    let mut runner = TestRunner::new(config());
    let result = runner.run(&strategy, |(configured, reason, team)| {
        let settings = OAuthSettings::new("111.222", "s")
            .redirect_uri(CALLBACK)
            .success_url(configured.clone())
            .failure_url(configured.clone());
        if settings.validate().is_err() {
            refused.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let pages_of = DefaultPages::new(Arc::new(settings));
        let success = pages_of.success(&installation(None, team));
        let failure = pages_of.failure(&CallbackError::from_slack_error(&reason));
        for response in [success, failure] {
            let Some(location) = response.headers().get("location") else {
                pages.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            redirected.fetch_add(1, Ordering::Relaxed);
            let location = location.to_str().expect("a visible-ASCII Location");
            let resolved = resolve(location).expect("a Location a browser can follow");
            prop_assert!(
                is_allowed_configured(&resolved, &configured),
                "{configured:?} (reason {reason:?}) redirected to {location:?} = {resolved}"
            );
        }
        Ok(())
    });
    println!(
        "RELIABILITY S4 configured targets: {} payloads, {} refused by validation, {} redirects \
         all within the allowed hosts, {} answered with a page; 0 outside",
        refused.load(Ordering::Relaxed)
            + (redirected.load(Ordering::Relaxed) + pages.load(Ordering::Relaxed)) / 2,
        refused.load(Ordering::Relaxed),
        redirected.load(Ordering::Relaxed),
        pages.load(Ordering::Relaxed),
    );
    if let Err(error) = result {
        panic!("{error}");
    }
    assert!(
        redirected.load(Ordering::Relaxed) > 0,
        "no payload was accepted: the strategy is too narrow"
    );
}

proptest! {
    #![proptest_config(config())]

    /// The org-wide success page sends the browser to the org's URL only on Slack's domains
    /// (or the authorize host); anything else becomes a `slack://` deep link. The meta
    /// refresh and the link carry exactly that target.
    #[test]
    fn org_redirects_stay_on_slack(
        enterprise_url in target(),
        team in proptest::option::of(".{0,8}"),
    ) {
        let installation = installation(Some(enterprise_url.clone()), team);
        let target = success_target(&installation, None, AUTHORIZE);
        let resolved = resolve(&target).expect("a target a browser can follow");
        let host = resolved.host_str().unwrap_or_default().to_ascii_lowercase();
        let allowed = match resolved.scheme() {
            "slack" => matches!(host.as_str(), "app" | "open") || target == "slack://open",
            "https" => host == "slack.com" || host.ends_with(".slack.com"),
            _ => false,
        };
        prop_assert!(allowed, "{enterprise_url:?} led to {target:?} = {resolved}");
        let page = success_page(&installation, None, AUTHORIZE);
        prop_assert_eq!(meta_refresh(&page), target.clone());
        let link = format!("<a href=\"{}\">here</a>", escape(&target));
        prop_assert!(page.contains(&link));
    }

    /// The redirect_uri in the authorize URL is the configured one byte for byte, and the
    /// `team` an install link carries cannot change where the browser goes.
    #[test]
    fn the_redirect_uri_sent_to_slack_is_the_configured_one(
        path in "(/[a-zA-Z0-9._~%!$&'()*+,;=:@-]{0,12}){0,4}",
        query in proptest::option::of("[a-zA-Z0-9._~%!$'()*+,;=:@/?-]{0,20}"),
        team in proptest::option::of(".{0,20}"),
        state in "[A-Za-z0-9_-]{1,40}",
    ) {
        let redirect_uri = match &query {
            Some(query) => format!("https://app.example.com{path}?{query}"),
            None => format!("https://app.example.com{path}"),
        };
        let settings = OAuthSettings::new("111.222", "s")
            .scopes(["chat:write"])
            .redirect_uri(redirect_uri.clone());
        prop_assume!(settings.validate().is_ok());
        let url = AuthorizeUrl::from_settings(&settings).unwrap().generate(&state, team.as_deref());
        prop_assert_eq!(url.origin(), Url::parse(AUTHORIZE).unwrap().origin());
        prop_assert_eq!(url.path(), "/oauth/v2/authorize");
        let sent: Vec<String> = url
            .query_pairs()
            .filter(|(name, _)| name == "redirect_uri")
            .map(|(_, value)| value.into_owned())
            .collect();
        prop_assert_eq!(sent, vec![redirect_uri]);
        let teams: Vec<String> = url
            .query_pairs()
            .filter(|(name, _)| name == "team")
            .map(|(_, value)| value.into_owned())
            .collect();
        prop_assert_eq!(teams, team.into_iter().collect::<Vec<_>>());
    }
}

/// Found by the property above: a path whose dot segments resolve to `//host` was accepted and,
/// once `?error=` was appended, sent the browser to another host.
#[test]
fn a_path_resolving_to_another_host_is_refused() {
    for path in [
        "/..//evil.example/x",
        "/a/../..//evil.example",
        "/./%2e%2e//evil.example",
    ] {
        let settings = OAuthSettings::new("111.222", "s").failure_url(path);
        let error = settings.validate().expect_err(path).to_string();
        assert!(
            error.contains("resolves to a path starting with //"),
            "{error}"
        );
    }
    let settings = OAuthSettings::new("111.222", "s").failure_url("/a/../welcome?x=1");
    settings.validate().unwrap();
    let pages = DefaultPages::new(Arc::new(settings));
    let response = pages.failure(&CallbackError::from_slack_error("x&y=//evil.example"));
    assert_eq!(
        response.headers()["location"],
        "/welcome?x=1&error=x%26y%3D%2F%2Fevil.example"
    );
}

/// An org URL Slack sends with stray whitespace or non-ASCII is followed in its normalized,
/// ASCII form (what a browser would request), never as raw bytes.
#[test]
fn org_urls_are_followed_normalized() {
    let installation = installation(Some(" https://Org.Enterprise.SLACK.com\t".to_owned()), None);
    assert_eq!(
        success_target(&installation, None, AUTHORIZE),
        "https://org.enterprise.slack.com/manage/organization/apps/profile/A111/workspaces/add"
    );
}
