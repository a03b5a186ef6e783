//! Finding the ids to authorize in an incoming Slack request body.
//!
//! [`Incoming::parse`] reads the raw body (as verified by the signature layer) of:
//! - **Events API** JSON: `team_id`, `enterprise_id`, `authorizations[0]` (preferred, as Bolt
//!   does, so that events from Slack Connect / externally shared channels authorize as the
//!   installation Slack delivered them for), `event.user`;
//! - **slash commands** (form): `team_id`, `enterprise_id`, `user_id`, `is_enterprise_install`;
//! - **interactivity and options** (form field `payload`, JSON): `team.id` (or `user.team_id`),
//!   `enterprise.id`, `user.id`, `is_enterprise_install`;
//! - `url_verification` and `ssl_check`, which need no authorize, and the lifecycle events
//!   `app_uninstalled` / `tokens_revoked`, which need none either.
//!
//! Malformed bodies give an [`IncomingError`], never a panic; errors never quote the body.

use serde_json::Value;

use super::lifecycle::LifecycleEvent;
use super::AuthorizeRequest;
use crate::ids::{EnterpriseId, TeamId, UserId};

/// What an incoming request is, as far as authorize is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Incoming {
    /// Slack's URL check when the Events URL is configured: answer with `challenge`.
    UrlVerification {
        /// The value to echo back.
        challenge: String,
    },
    /// Slack's certificate check (`ssl_check=1`): answer 200.
    SslCheck,
    /// `app_uninstalled` or `tokens_revoked`: apply it (see [`lifecycle`](super::lifecycle)),
    /// do not authorize.
    Lifecycle {
        /// The workspace or org it is about.
        workspace: AuthorizeRequest,
        /// The event.
        event: LifecycleEvent,
    },
    /// A request to authorize (event, slash command, interactivity, options).
    Authorize(AuthorizeRequest),
    /// Something else that needs no authorize (for example `app_rate_limited`).
    Other,
}

/// An incoming body could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum IncomingError {
    /// The body (or the `payload` form field) is not valid JSON.
    #[error("{what} is not valid JSON (line {line}, column {column}); is this a Slack request?")]
    Json {
        /// Which part: `request body` or `payload field`.
        what: &'static str,
        /// Where the syntax error is.
        line: usize,
        /// Where the syntax error is.
        column: usize,
    },
    /// The body is neither JSON nor a valid form.
    #[error("request body is neither JSON nor a form; is this a Slack request?")]
    Form,
    /// The body names no workspace and no org, so there is nothing to authorize against.
    #[error("the request names no team and no enterprise; it cannot be authorized")]
    NoWorkspace,
}

impl Incoming {
    /// Reads a raw request body. JSON bodies are recognised by their first non-space byte (`{`),
    /// anything else is read as a form.
    ///
    /// ```
    /// use slack_oauth::authorize::Incoming;
    /// let body = b"command=%2Fweather&team_id=T1&user_id=U1&is_enterprise_install=false";
    /// let Incoming::Authorize(request) = Incoming::parse(body)? else { panic!() };
    /// assert_eq!(request.team_id.unwrap().as_str(), "T1");
    /// assert_eq!(request.user_id.unwrap().as_str(), "U1");
    /// # Ok::<_, slack_oauth::authorize::IncomingError>(())
    /// ```
    ///
    /// # Errors
    /// [`IncomingError`] when the body cannot be read or names no workspace.
    pub fn parse(body: &[u8]) -> Result<Self, IncomingError> {
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if first == Some(&b'{') {
            let value = parse_json(body, "request body")?;
            return events(&value);
        }
        let form: Vec<(String, String)> =
            serde_urlencoded::from_bytes(body).map_err(|_| IncomingError::Form)?;
        let field = |name: &str| {
            form.iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        if field("ssl_check").is_some() {
            return Ok(Self::SslCheck);
        }
        if let Some(payload) = field("payload") {
            let value = parse_json(payload.as_bytes(), "payload field")?;
            return interactivity(&value);
        }
        let text = |name: &str| field(name).filter(|value| !value.is_empty());
        let request = AuthorizeRequest {
            enterprise_id: text("enterprise_id").map(EnterpriseId::from),
            team_id: text("team_id").map(TeamId::from),
            user_id: text("user_id").map(UserId::from),
            is_enterprise_install: field("is_enterprise_install") == Some("true"),
            actor_enterprise_id: text("enterprise_id").map(EnterpriseId::from),
            actor_team_id: text("team_id").map(TeamId::from),
            actor_user_id: text("user_id").map(UserId::from),
        };
        authorize(request)
    }
}

fn parse_json(bytes: &[u8], what: &'static str) -> Result<Value, IncomingError> {
    serde_json::from_slice(bytes).map_err(|error| IncomingError::Json {
        what,
        line: error.line(),
        column: error.column(),
    })
}

fn authorize(request: AuthorizeRequest) -> Result<Incoming, IncomingError> {
    if request.team_id.is_none() && request.enterprise_id.is_none() {
        return Err(IncomingError::NoWorkspace);
    }
    Ok(Incoming::Authorize(request))
}

/// A non-empty string at `pointer`.
fn string(value: &Value, pointer: &str) -> Option<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `true` for JSON `true` or the string `"true"`.
fn flag(value: &Value, pointer: &str) -> bool {
    match value.pointer(pointer) {
        Some(Value::Bool(flag)) => *flag,
        Some(Value::String(text)) => text == "true",
        _ => false,
    }
}

fn events(value: &Value) -> Result<Incoming, IncomingError> {
    match value.get("type").and_then(Value::as_str) {
        Some("url_verification") => {
            return Ok(Incoming::UrlVerification {
                challenge: string(value, "/challenge").unwrap_or_default(),
            })
        }
        Some("event_callback") => {}
        _ => return Ok(Incoming::Other),
    }
    // Bolt prefers authorizations[0]: for shared channels the top-level ids may be the other
    // org's, while the authorization is the installation the event was delivered for.
    let auth = value.pointer("/authorizations/0");
    let from_auth = |field: &str| auth.and_then(|a| string(a, field));
    let request = AuthorizeRequest {
        enterprise_id: from_auth("/enterprise_id")
            .or_else(|| string(value, "/enterprise_id"))
            .map(EnterpriseId::from),
        team_id: from_auth("/team_id")
            .or_else(|| string(value, "/team_id"))
            .map(TeamId::from),
        user_id: string(value, "/event/user")
            .or_else(|| string(value, "/event/user/id"))
            .map(UserId::from),
        is_enterprise_install: auth.map_or_else(
            || flag(value, "/is_enterprise_install"),
            |a| flag(a, "/is_enterprise_install"),
        ),
        actor_enterprise_id: string(value, "/event/user_enterprise")
            .or_else(|| string(value, "/enterprise_id"))
            .map(EnterpriseId::from),
        actor_team_id: string(value, "/event/user_team")
            .or_else(|| string(value, "/event/team"))
            .or_else(|| string(value, "/team_id"))
            .map(TeamId::from),
        actor_user_id: string(value, "/event/user").map(UserId::from),
    };
    if let Some(event) = value.get("event") {
        if let Some(lifecycle) = LifecycleEvent::from_event(event) {
            if request.team_id.is_none() && request.enterprise_id.is_none() {
                return Err(IncomingError::NoWorkspace);
            }
            return Ok(Incoming::Lifecycle {
                workspace: request,
                event: lifecycle,
            });
        }
        let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
        if LifecycleEvent::is_lifecycle_type(kind) {
            // A lifecycle event we cannot read: nothing to authorize, nothing to delete.
            return Ok(Incoming::Other);
        }
    }
    authorize(request)
}

fn interactivity(value: &Value) -> Result<Incoming, IncomingError> {
    let request = AuthorizeRequest {
        enterprise_id: string(value, "/enterprise/id")
            .or_else(|| string(value, "/user/enterprise_id"))
            .map(EnterpriseId::from),
        team_id: string(value, "/team/id")
            .or_else(|| string(value, "/user/team_id"))
            .map(TeamId::from),
        user_id: string(value, "/user/id").map(UserId::from),
        is_enterprise_install: flag(value, "/is_enterprise_install"),
        actor_enterprise_id: string(value, "/user/enterprise_id")
            .or_else(|| string(value, "/enterprise/id"))
            .map(EnterpriseId::from),
        actor_team_id: string(value, "/user/team_id")
            .or_else(|| string(value, "/team/id"))
            .map(TeamId::from),
        actor_user_id: string(value, "/user/id").map(UserId::from),
    };
    authorize(request)
}

#[cfg(test)]
mod tests;
