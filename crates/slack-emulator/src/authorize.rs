//! `/oauth/v2/authorize`: the approve page, its approve and cancel controls, and the redirects.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use url::Url;

use crate::config::{Grant, InstallKind};
use crate::state::Shared;
use crate::tokens::{Pkce, PkceMethod};

/// The parameters an approve form carries back, in page order.
const FORWARDED: [&str; 8] = [
    "client_id",
    "scope",
    "user_scope",
    "state",
    "redirect_uri",
    "team",
    "code_challenge",
    "code_challenge_method",
];

/// `GET /oauth/v2/authorize`: the approve page, or at once a redirect with a code.
pub(crate) async fn page(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    let fields = parse_fields(uri.query().unwrap_or_default().as_bytes());
    let request = match AuthorizeRequest::parse(&shared, &fields) {
        Ok(request) => request,
        Err(message) => return error_page(&message),
    };
    let auto = fields
        .get("auto_approve")
        .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "yes"));
    if shared.config.auto_approve || auto {
        return request.approve(&shared);
    }
    let grant = request.grant(shared.lock().default_grant.clone());
    html(StatusCode::OK, &approve_page(&request, &grant, &fields))
}

/// `POST /oauth/v2/authorize/approve`: the approve button.
pub(crate) async fn approve(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let fields = parse_fields(&body);
    match AuthorizeRequest::parse(&shared, &fields) {
        Ok(request) => request.approve(&shared),
        Err(message) => error_page(&message),
    }
}

fn parse_fields(input: &[u8]) -> HashMap<String, String> {
    let mut fields = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(input) {
        fields
            .entry(name.into_owned())
            .or_insert_with(|| value.into_owned());
    }
    fields
}

/// A checked authorize request.
#[derive(Debug)]
struct AuthorizeRequest {
    client_id: String,
    scopes: Vec<String>,
    user_scopes: Vec<String>,
    state: Option<String>,
    /// Exactly as given: `oauth.v2.access` must repeat it byte for byte.
    redirect_uri: String,
    redirect_url: Url,
    team: Option<String>,
    pkce: Option<Pkce>,
}

impl AuthorizeRequest {
    fn parse(shared: &Shared, fields: &HashMap<String, String>) -> Result<Self, String> {
        let get = |name: &str| {
            fields
                .get(name)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let client_id = get("client_id").ok_or("missing client_id: pass your app's client id")?;
        if let Some(expected) = shared.config.client_id.as_deref() {
            if expected != client_id {
                return Err(format!(
                    "invalid client_id {client_id:?}: this emulator only knows client id {expected:?}"
                ));
            }
        }
        let redirect_uri = get("redirect_uri").ok_or(
            "missing redirect_uri: the emulator has no app configuration to fall back on, \
             so pass redirect_uri explicitly",
        )?;
        let redirect_url = Url::parse(redirect_uri)
            .map_err(|e| format!("invalid redirect_uri {redirect_uri:?}: {e}"))?;
        if redirect_url.fragment().is_some() || redirect_url.cannot_be_a_base() {
            return Err(format!(
                "invalid redirect_uri {redirect_uri:?}: it must be an absolute URL without '#'"
            ));
        }
        let scopes = split_scopes(get("scope"));
        let user_scopes = split_scopes(get("user_scope"));
        if scopes.is_empty() && user_scopes.is_empty() {
            return Err("invalid_scope: request at least one scope or user_scope".to_owned());
        }
        let pkce = match get("code_challenge") {
            None => None,
            Some(challenge) => {
                let method = get("code_challenge_method");
                let method = PkceMethod::parse(method).ok_or_else(|| {
                    format!(
                        "invalid code_challenge_method {:?}: use S256 or plain",
                        method.unwrap_or_default()
                    )
                })?;
                Some(Pkce {
                    challenge: challenge.to_owned(),
                    method,
                })
            }
        };
        Ok(Self {
            client_id: client_id.to_owned(),
            scopes,
            user_scopes,
            state: get("state").map(str::to_owned),
            redirect_uri: redirect_uri.to_owned(),
            redirect_url,
            team: get("team").map(str::to_owned),
            pkce,
        })
    }

    /// What approving installs: the default grant with this request's scopes and workspace.
    fn grant(&self, default: Grant) -> Grant {
        let mut grant = default;
        if self.scopes.is_empty() {
            grant.kind = InstallKind::UserOnly;
        }
        grant.bot_scopes.clone_from(&self.scopes);
        grant.user_scopes.clone_from(&self.user_scopes);
        if let Some(team) = &self.team {
            if grant.kind != InstallKind::OrgWide && *team != grant.team_id {
                grant.team_name = format!("Workspace {team}");
                grant.team_id.clone_from(team);
            }
        }
        grant
    }

    /// Issues a code and redirects back with it.
    fn approve(self, shared: &Shared) -> Response {
        let grant = self.grant(shared.lock().default_grant.clone());
        let code = shared.issue_code(
            grant,
            Some(self.redirect_uri.clone()),
            Some(self.client_id.clone()),
            self.pkce.clone(),
        );
        self.redirect(&[("code", &code)])
    }

    /// `redirect_uri` plus `extra` and `state`, keeping its own query string.
    fn redirect_url(&self, extra: &[(&str, &str)]) -> Url {
        let mut url = self.redirect_url.clone();
        {
            let mut query = url.query_pairs_mut();
            for (name, value) in extra {
                query.append_pair(name, value);
            }
            if let Some(state) = &self.state {
                query.append_pair("state", state);
            }
        }
        url
    }

    fn redirect(&self, extra: &[(&str, &str)]) -> Response {
        let url = self.redirect_url(extra);
        match HeaderValue::from_str(url.as_str()) {
            Ok(location) => (
                StatusCode::FOUND,
                [
                    (header::LOCATION, location),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
            )
                .into_response(),
            Err(_) => error_page("invalid redirect_uri: it cannot be sent in a Location header"),
        }
    }
}

/// Slack separates scopes with commas; spaces are tolerated too.
fn split_scopes(scopes: Option<&str>) -> Vec<String> {
    scopes
        .unwrap_or_default()
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn html(status: StatusCode, body: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body.to_owned(),
    )
        .into_response()
}

fn error_page(message: &str) -> Response {
    let body = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Emulated Slack: \
         authorize error</title></head><body><h1>Something went wrong</h1>\
         <p id=\"error\">{}</p></body></html>\n",
        text(message)
    );
    html(StatusCode::BAD_REQUEST, &body)
}

fn scope_list(scopes: &[String]) -> String {
    if scopes.is_empty() {
        return "<p>none</p>".to_owned();
    }
    let items: String = scopes
        .iter()
        .map(|s| format!("<li><code>{}</code></li>", text(s)))
        .collect();
    format!("<ul>{items}</ul>")
}

fn approve_page(
    request: &AuthorizeRequest,
    grant: &Grant,
    fields: &HashMap<String, String>,
) -> String {
    let hidden: String = FORWARDED
        .iter()
        .filter_map(|name| fields.get(*name).map(|value| (name, value)))
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
                attr(name),
                attr(value)
            )
        })
        .collect();
    let target = match grant.team() {
        Some((id, name)) => format!("workspace {} ({})", text(name), text(id)),
        None => format!(
            "organization {} ({})",
            text(&grant.enterprise_name),
            text(&grant.enterprise_id)
        ),
    };
    let cancel = request.redirect_url(&[("error", "access_denied")]);
    format!(
        r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Emulated Slack: install {app}</title></head>
<body>
<h1>Install app <span id="app-id">{app}</span></h1>
<p>Client id <code id="client-id">{client_id}</code> asks to be installed in <span id="team">{target}</span>.</p>
<h2>Bot scopes</h2>
<div id="bot-scopes">{bot_scopes}</div>
<h2>User scopes</h2>
<div id="user-scopes">{user_scopes}</div>
<p>After this, your browser goes back to <code id="redirect-uri">{redirect}</code>.</p>
<form method="post" action="/oauth/v2/authorize/approve">
{hidden}<button id="approve" type="submit">Allow</button>
<a id="cancel" href="{cancel}">Cancel</a>
</form>
</body></html>
"#,
        app = text(&grant.app_id),
        client_id = text(&request.client_id),
        bot_scopes = scope_list(&grant.bot_scopes),
        user_scopes = scope_list(&grant.user_scopes),
        redirect = text(&request.redirect_uri),
        cancel = attr(cancel.as_str()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_split_on_commas_and_spaces() {
        assert_eq!(
            split_scopes(Some(" chat:write,,commands im:history ")),
            ["chat:write", "commands", "im:history"]
        );
        assert!(split_scopes(None).is_empty());
    }

    #[test]
    fn page_escapes_everything() {
        let shared = Shared::new(Default::default(), "http://127.0.0.1:1/".to_owned());
        let fields = parse_fields(
            b"client_id=%3Cscript%3E&scope=a%3Cb&redirect_uri=https://x.test/cb&state=%22%3E%3Cx",
        );
        let request = AuthorizeRequest::parse(&shared, &fields).unwrap();
        let grant = request.grant(Grant::default());
        let page = approve_page(&request, &grant, &fields);
        assert!(!page.contains("<script>"));
        assert!(!page.contains("a<b"));
        assert!(!page.contains("\"><x"));
        assert!(page.contains("&lt;script&gt;"));
    }
}
