//! The install, success and failure pages (Bolt's layout and texts), and their HTTP responses.
//!
//! Every value put in a page is HTML-escaped exactly once (Bolt escapes Slack's reasons twice,
//! W23). Pages load nothing from anywhere (the "Add to Slack" button is inline SVG and CSS, not
//! Bolt's image on Slack's CDN); responses carry a Content-Security-Policy that allows nothing
//! but inline styles and `data:` images, and `Cache-Control: no-store` and `Referrer-Policy: no-referrer`, so the
//! code and state in the callback URL are neither cached nor leaked in a `Referer` (RFC 9700 §4.2).

use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS,
};
use http::{HeaderValue, Response, StatusCode};

use crate::installation::Installation;

/// `Content-Type` of every page.
pub const HTML_CONTENT_TYPE: &str = "text/html; charset=utf-8";

/// `Content-Security-Policy` of every page: no scripts, no frames, no forms, no request to any
/// host; images only from `data:` (the empty favicon), inline styles for the style block.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; \
     img-src data:; style-src 'unsafe-inline'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const STYLE: &str = "<style>
body {
  padding: 10px 15px;
  font-family: verdana;
  text-align: center;
}
</style>
";

/// The install page's style: Bolt's, plus Slack's "Add to Slack" button drawn in CSS (white,
/// a light border, the logo and a bold label; 48 px high, never wider than the screen).
const INSTALL_STYLE: &str = "<style>
body {
  padding: 10px 15px;
  font-family: verdana;
  text-align: center;
}
.add-to-slack {
  display: inline-flex;
  align-items: center;
  gap: 12px;
  box-sizing: border-box;
  max-width: 100%;
  height: 48px;
  padding: 0 20px;
  border: 1px solid #ddd;
  border-radius: 6px;
  background: #fff;
  color: #1d1c1d;
  font: 600 16px/1 -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif;
  text-decoration: none;
  white-space: nowrap;
}
.add-to-slack:hover, .add-to-slack:focus {
  border-color: #aaa;
  box-shadow: 0 1px 4px rgba(0, 0, 0, 0.15);
}
.add-to-slack svg {
  flex: none;
  width: 20px;
  height: 20px;
}
</style>
";

/// Slack's logo, inline: the page requests nothing from any host.
const SLACK_LOGO_SVG: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 122.8 122.8\" \
     aria-hidden=\"true\" focusable=\"false\">\
     <path fill=\"#e01e5a\" d=\"M25.8 77.6a12.9 12.9 0 1 1-12.9-12.9h12.9zm6.5 0a12.9 12.9 0 0 1 25.8 \
     0v32.3a12.9 12.9 0 1 1-25.8 0z\"/>\
     <path fill=\"#36c5f0\" d=\"M45.2 25.8a12.9 12.9 0 1 1 12.9-12.9v12.9zm0 6.5a12.9 12.9 0 0 1 0 \
     25.8H12.9a12.9 12.9 0 1 1 0-25.8z\"/>\
     <path fill=\"#2eb67d\" d=\"M97 45.2a12.9 12.9 0 1 1 12.9 12.9H97zm-6.5 0a12.9 12.9 0 0 1-25.8 \
     0V12.9a12.9 12.9 0 1 1 25.8 0z\"/>\
     <path fill=\"#ecb22e\" d=\"M77.6 97a12.9 12.9 0 1 1-12.9 12.9V97zm0-6.5a12.9 12.9 0 0 1 0-25.8h32.3a12.9 \
     12.9 0 1 1 0 25.8z\"/></svg>";

/// Escapes `&`, `<`, `>`, `"` and `'` as Python's `html.escape` does.
pub(crate) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#x27;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

/// The install page: a title and an "Add to Slack" button linking to `authorize_url`. The
/// button is inline SVG and CSS, so the page loads nothing from any host.
///
/// ```
/// let page = slack_oauth::flow::pages::install_page("https://slack.com/oauth/v2/authorize?state=s&client_id=1");
/// assert!(page.starts_with("<html>\n<head>\n"));
/// assert!(page.contains("<h2>Slack App Installation</h2>"));
/// assert!(page.contains("href=\"https://slack.com/oauth/v2/authorize?state=s&amp;client_id=1\""));
/// assert!(page.contains("Add to Slack</a>"));
/// assert!(!page.contains("src="), "no image to fetch");
/// ```
pub fn install_page(authorize_url: &str) -> String {
    format!(
        "<html>\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <link rel=\"icon\" href=\"data:,\">\n{INSTALL_STYLE}</head>\n<body>\n\
         <h2>Slack App Installation</h2>\n\
         <p><a class=\"add-to-slack\" href=\"{}\">{SLACK_LOGO_SVG}Add to Slack</a></p>\n\
         </body>\n</html>\n",
        escape(authorize_url)
    )
}

/// Where the success page sends the browser, in Bolt's order: `success_url` if configured; for an
/// org-wide install with an org URL and an app id, the org's app management page; without a team
/// or app id, `slack://open`; else the app in the Slack client, `slack://app?team=…&id=…`.
///
/// The org URL comes from Slack's answer, so it is followed only when it is `https` on Slack's
/// domains (`slack.com` and its subdomains) or on the host of `authorize_url` (the configured
/// authorize page: an emulator, a proxy); anything else falls back to the Slack client link.
///
/// ```
/// use slack_oauth::flow::pages::success_target;
/// use slack_oauth::installation::Installation;
///
/// let mut installation = Installation::new("U1", time::OffsetDateTime::UNIX_EPOCH);
/// installation.app_id = Some("A111".into());
/// let slack = "https://slack.com/oauth/v2/authorize";
/// assert_eq!(success_target(&installation, None, slack), "slack://open");
/// installation.team_id = Some("T111".into());
/// assert_eq!(success_target(&installation, None, slack), "slack://app?team=T111&id=A111");
/// assert_eq!(success_target(&installation, Some("https://a.test/ok"), slack), "https://a.test/ok");
/// ```
pub fn success_target(
    installation: &Installation,
    success_url: Option<&str>,
    authorize_url: &str,
) -> String {
    if let Some(url) = success_url {
        return url.to_owned();
    }
    if let (true, Some(enterprise_url), Some(app_id)) = (
        installation.is_enterprise_install,
        installation
            .enterprise_url
            .as_deref()
            .and_then(|url| trusted_org_url(url, authorize_url)),
        &installation.app_id,
    ) {
        // The parsed URL, serialized: what the browser would follow, in ASCII.
        let enterprise_url = enterprise_url.as_str();
        let slash = if enterprise_url.ends_with('/') {
            ""
        } else {
            "/"
        };
        return format!(
            "{enterprise_url}{slash}manage/organization/apps/profile/{}/workspaces/add",
            encode(app_id.as_str())
        );
    }
    match (&installation.team_id, &installation.app_id) {
        (Some(team_id), Some(app_id)) => format!(
            "slack://app?team={}&id={}",
            encode(team_id.as_str()),
            encode(app_id.as_str())
        ),
        _ => "slack://open".to_owned(),
    }
}

/// The success page: "Thank you!", a meta refresh to [`success_target`], and, when the
/// installation has a team, a link to that workspace in Slack's web client (Bolt links to
/// `…/client/None` for org-wide installs, W22).
///
/// ```
/// use slack_oauth::flow::pages::success_page;
/// use slack_oauth::installation::Installation;
///
/// let mut installation = Installation::new("U1", time::OffsetDateTime::UNIX_EPOCH);
/// installation.app_id = Some("A111".into());
/// installation.team_id = Some("T111".into());
/// let page = success_page(&installation, None, "https://slack.com/oauth/v2/authorize");
/// assert!(page.contains("<meta http-equiv=\"refresh\" content=\"0; URL=slack://app?team=T111&amp;id=A111\">"));
/// assert!(page.contains("<a href=\"https://app.slack.com/client/T111\" target=\"_blank\">this link</a>"));
/// ```
pub fn success_page(
    installation: &Installation,
    success_url: Option<&str>,
    authorize_url: &str,
) -> String {
    let target = escape(&success_target(installation, success_url, authorize_url));
    let browser = installation
        .team_id
        .as_ref()
        .map_or_else(String::new, |team_id| {
            format!(
                " If you use the browser version of Slack, click <a href=\"{}\" \
             target=\"_blank\">this link</a> instead.",
                escape(&format!(
                    "https://app.slack.com/client/{}",
                    encode(team_id.as_str())
                ))
            )
        });
    format!(
        "\n<html>\n<head>\n<meta http-equiv=\"refresh\" content=\"0; URL={target}\">\n{STYLE}\
         </head>\n<body>\n<h2>Thank you!</h2>\n\
         <p>Redirecting to the Slack App... click <a href=\"{target}\">here</a>.{browser}</p>\n\
         </body>\n</html>\n"
    )
}

/// The failure page: "Oops, Something Went Wrong!", a link back to `install_path`, and the
/// reason text (see [`CallbackError::detail`](crate::flow::CallbackError::detail)).
///
/// ```
/// let page = slack_oauth::flow::pages::failure_page("/slack/install", "<b>test</b>: from Slack");
/// assert!(page.contains("<h2>Oops, Something Went Wrong!</h2>"));
/// assert!(page.contains(
///     "<p>Please try again from <a href=\"/slack/install\">here</a> or contact the app owner \
///      (reason: &lt;b&gt;test&lt;/b&gt;: from Slack)</p>"
/// ));
/// ```
pub fn failure_page(install_path: &str, reason: &str) -> String {
    format!(
        "\n<html>\n<head>\n{STYLE}</head>\n<body>\n<h2>Oops, Something Went Wrong!</h2>\n\
         <p>Please try again from <a href=\"{}\">here</a> or contact the app owner \
         (reason: {})</p>\n</body>\n</html>\n",
        escape(install_path),
        escape(reason)
    )
}

/// A page response: `status`, the HTML content type, and the security headers.
pub(crate) fn html_response(status: StatusCode, body: String) -> Response<String> {
    // Error pages carry no secret by design; at TRACE they are logged whole, so that the
    // secret scan over a test run (S7) reads every error body the flow answered with.
    if status.is_client_error() || status.is_server_error() {
        tracing::trace!(status = status.as_u16(), body = %body, "error page");
    }
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(HTML_CONTENT_TYPE));
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// A `302 Found` to `location` with an empty body and the same headers as a page (Bolt sends the
/// HTML content type with its redirects too). `None` when `location` cannot be a header value.
pub(crate) fn redirect_response(location: &str) -> Option<Response<String>> {
    let location = HeaderValue::from_str(location).ok()?;
    let mut response = html_response(StatusCode::FOUND, String::new());
    response.headers_mut().insert(LOCATION, location);
    Some(response)
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// An org URL the success page may send the browser to, parsed: https on Slack's domains, or
/// on the configured authorize page's host.
fn trusted_org_url(value: &str, authorize_url: &str) -> Option<url::Url> {
    let url = url::Url::parse(value).ok()?;
    let host = url.host_str().map(str::to_ascii_lowercase)?;
    let on_slack = url.scheme() == "https" && (host == "slack.com" || host.ends_with(".slack.com"));
    let on_authorize_host = url::Url::parse(authorize_url).is_ok_and(|authorize| {
        authorize.scheme() == url.scheme()
            && authorize.host_str().map(str::to_ascii_lowercase) == Some(host.clone())
            && authorize.port_or_known_default() == url.port_or_known_default()
    });
    (on_slack || on_authorize_host).then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_is_pythons_html_escape() {
        assert_eq!(
            escape("<b>\"Tom\" & 'Jerry'</b>"),
            "&lt;b&gt;&quot;Tom&quot; &amp; &#x27;Jerry&#x27;&lt;/b&gt;",
        );
    }

    #[test]
    fn pages_carry_the_security_headers() {
        let response = html_response(http::StatusCode::OK, "<html></html>".into());
        assert_eq!(
            response.headers()["content-type"],
            "text/html; charset=utf-8"
        );
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(response.headers()["referrer-policy"], "no-referrer");
        assert!(response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'"));
    }

    #[test]
    fn redirects_are_302_with_the_page_headers() {
        let response = redirect_response("https://a.test/ok").unwrap();
        assert_eq!(response.status(), 302);
        assert_eq!(response.headers()["location"], "https://a.test/ok");
        assert!(redirect_response("https://a.test/\n").is_none());
    }
    use time::OffsetDateTime;

    const SLACK: &str = "https://slack.com/oauth/v2/authorize";

    fn installation(app_id: Option<&str>, team_id: Option<&str>) -> Installation {
        let mut installation = Installation::new("U1", OffsetDateTime::UNIX_EPOCH);
        installation.app_id = app_id.map(Into::into);
        installation.team_id = team_id.map(Into::into);
        installation
    }

    #[test]
    fn install_page_is_bolts_layout_with_an_inline_button() {
        let page = install_page("https://slack.com/oauth/v2/authorize?state=s&client_id=1");
        assert!(page.starts_with("<html>\n<head>\n<meta charset=\"utf-8\">\n"));
        assert!(page.contains("<link rel=\"icon\" href=\"data:,\">"));
        assert!(page.contains(
            "<body>\n<h2>Slack App Installation</h2>\n<p><a class=\"add-to-slack\" \
             href=\"https://slack.com/oauth/v2/authorize?state=s&amp;client_id=1\"><svg "
        ));
        assert!(page.ends_with("</svg>Add to Slack</a></p>\n</body>\n</html>\n"));
        assert!(!page.contains("state=s&client_id"));
        // Nothing to fetch: no src, no url(), no host but the link's and the SVG namespace.
        assert!(!page.contains("src=") && !page.contains("url("));
        let hosts: Vec<&str> = page
            .split("://")
            .skip(1)
            .map(|rest| rest.split(['/', '"', '?']).next().unwrap_or(rest))
            .collect();
        assert_eq!(hosts, ["slack.com", "www.w3.org"], "{page}");
    }

    #[test]
    fn install_page_escapes_markup() {
        let page = install_page("https://a.test/?x=<b>test</b>\"");
        assert!(page.contains("x=&lt;b&gt;test&lt;/b&gt;&quot;\""), "{page}");
        assert!(!page.contains("<b>"));
    }

    #[test]
    fn success_page_is_bolts_layout() {
        assert_eq!(
            success_page(&installation(Some("A111"), Some("T111")), None, SLACK),
            "\n<html>\n<head>\n<meta http-equiv=\"refresh\" content=\"0; URL=slack://app?team=T111&amp;id=A111\">\n\
             <style>\nbody {\n  padding: 10px 15px;\n  font-family: verdana;\n  text-align: center;\n}\n</style>\n\
             </head>\n<body>\n<h2>Thank you!</h2>\n<p>Redirecting to the Slack App... click \
             <a href=\"slack://app?team=T111&amp;id=A111\">here</a>. If you use the browser version of Slack, \
             click <a href=\"https://app.slack.com/client/T111\" target=\"_blank\">this link</a> instead.</p>\n\
             </body>\n</html>\n"
        );
    }

    #[test]
    fn success_without_team_opens_slack_and_has_no_browser_link() {
        let page = success_page(&installation(Some("A111"), None), None, SLACK);
        assert!(page.contains("URL=slack://open\""));
        assert!(!page.contains("app.slack.com/client"), "{page}");
        assert!(!page.contains("None"));
        let page = success_page(&installation(None, Some("T1")), None, SLACK);
        assert!(page.contains("URL=slack://open\""));
        assert!(page.contains("https://app.slack.com/client/T1"));
    }

    #[test]
    fn org_wide_success_goes_to_the_org_app_page() {
        let mut org = installation(Some("A1"), None);
        org.is_enterprise_install = true;
        org.enterprise_id = Some("E1".into());
        org.enterprise_url = Some("https://org.enterprise.slack.com/".to_owned());
        assert_eq!(
            success_target(&org, None, SLACK),
            "https://org.enterprise.slack.com/manage/organization/apps/profile/A1/workspaces/add"
        );
        assert!(success_page(&org, None, SLACK).contains(
            "URL=https://org.enterprise.slack.com/manage/organization/apps/profile/A1/workspaces/add\""
        ));
        // A configured success_url always wins.
        assert_eq!(
            success_target(&org, Some("https://a.test/done"), SLACK),
            "https://a.test/done"
        );
        // A missing trailing slash is added; a non-http org URL is not trusted.
        org.enterprise_url = Some("https://org.enterprise.slack.com".to_owned());
        assert!(success_target(&org, None, SLACK)
            .starts_with("https://org.enterprise.slack.com/manage/"));
        // Only https on Slack's domains, or the authorize page's host, is followed.
        for untrusted in [
            "javascript:alert(1)//",
            "https://evil.test/",
            "https://slack.com.evil.test/",
            "https://evilslack.com/",
            "http://org.enterprise.slack.com/",
            "//org.enterprise.slack.com/",
        ] {
            org.enterprise_url = Some(untrusted.to_owned());
            assert_eq!(
                success_target(&org, None, SLACK),
                "slack://open",
                "{untrusted}"
            );
        }
        org.enterprise_url = Some("http://127.0.0.1:9/org/".to_owned());
        assert_eq!(
            success_target(&org, None, "http://127.0.0.1:9/oauth/v2/authorize"),
            "http://127.0.0.1:9/org/manage/organization/apps/profile/A1/workspaces/add"
        );
        assert_eq!(
            success_target(&org, None, "http://127.0.0.1:10/oauth/v2/authorize"),
            "slack://open",
            "another port"
        );
        // Not org-wide: the org URL is ignored.
        let mut grid_workspace = installation(Some("A1"), Some("T1"));
        grid_workspace.enterprise_url = Some("https://org.enterprise.slack.com/".to_owned());
        assert_eq!(
            success_target(&grid_workspace, None, SLACK),
            "slack://app?team=T1&id=A1"
        );
    }

    #[test]
    fn success_target_encodes_ids() {
        assert_eq!(
            success_target(&installation(Some("A&1"), Some("T 1")), None, SLACK),
            "slack://app?team=T+1&id=A%261"
        );
    }

    #[test]
    fn failure_page_is_bolts_layout_escaped_once() {
        assert_eq!(
            failure_page("/slack/install", "a&b"),
            "\n<html>\n<head>\n<style>\nbody {\n  padding: 10px 15px;\n  font-family: verdana;\n  \
             text-align: center;\n}\n</style>\n</head>\n<body>\n<h2>Oops, Something Went Wrong!</h2>\n\
             <p>Please try again from <a href=\"/slack/install\">here</a> or contact the app owner \
             (reason: a&amp;b)</p>\n</body>\n</html>\n"
        );
        let page = failure_page("/install?\"x\"", "<b>test</b>");
        assert!(page.contains("(reason: &lt;b&gt;test&lt;/b&gt;)"));
        assert!(page.contains("href=\"/install?&quot;x&quot;\""));
        assert!(!page.contains("&amp;lt;"));
    }

    #[test]
    fn responses_carry_security_headers() {
        for response in [
            html_response(StatusCode::BAD_REQUEST, String::new()),
            redirect_response("https://a.test/").unwrap(),
        ] {
            let headers = response.headers();
            assert_eq!(headers[CONTENT_TYPE], HTML_CONTENT_TYPE);
            assert_eq!(headers[CACHE_CONTROL], "no-store");
            assert_eq!(headers[REFERRER_POLICY], "no-referrer");
            assert_eq!(headers[X_CONTENT_TYPE_OPTIONS], "nosniff");
            let csp = headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
            assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
        }
    }
}
