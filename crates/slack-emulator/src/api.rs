//! The `/api/{method}` endpoint: parameters, client credentials, faults, latency, JSON answers.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::faults::{fault_response, Fault};
use crate::methods::{Answer, CodeRedemption, MethodResult};
use crate::state::Shared;

/// The content type of every Web API answer, as Slack sends it.
pub(crate) const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// A JSON answer with Slack's content type.
pub(crate) fn json_response(status: StatusCode, value: &Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{\"ok\":false}".to_vec());
    (status, [(header::CONTENT_TYPE, JSON_CONTENT_TYPE)], body).into_response()
}

/// Handles any `/api/{method}` call (GET or POST).
pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let method = uri.path().strip_prefix("/api/").unwrap_or_default();
    let params = Params::new(uri.query(), &body, &headers);
    let (latency, fault) = shared.begin_call(method);
    let rate_limited = matches!(fault, Some(Fault::RateLimited { .. }));
    // When the client sent it, before any latency (the sender's view), and when the emulator
    // was done with it, however it ends (the guard runs on drop). A call turned away by rate
    // limiting was not presented: the client retries it after Retry-After.
    let _presentation = match (
        method,
        params.get("grant_type"),
        params.get("refresh_token"),
    ) {
        ("oauth.v2.access", Some("refresh_token"), Some(token)) if !rate_limited => {
            let (key, index) = shared.record_presentation(token);
            Some(PresentationGuard {
                shared: Arc::clone(&shared),
                key,
                index,
            })
        }
        _ => None,
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut answer_delay = None;
    let mut lose_answer = false;
    match fault {
        None => {}
        Some(Fault::Slow(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::SlowResponse(delay)) => answer_delay = Some(delay),
        Some(Fault::AnswerLost) => lose_answer = true,
        Some(fault) => {
            if let Some(response) = fault_response(&fault) {
                return response;
            }
        }
    }
    let response = answer(&shared, method, &params);
    if let Some(delay) = answer_delay {
        tokio::time::sleep(delay).await;
    }
    if lose_answer {
        return broken_response();
    }
    response
}

/// Marks a presentation done when the handler ends (answered, failed, or dropped).
struct PresentationGuard {
    shared: Arc<Shared>,
    key: String,
    index: usize,
}

impl Drop for PresentationGuard {
    fn drop(&mut self) {
        self.shared.presentation_done(&self.key, self.index);
    }
}

/// A response whose body fails at once: the server breaks the connection mid-answer.
fn broken_response() -> Response {
    let failing = futures::stream::once(async {
        Err::<Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "emulated: the answer was lost",
        ))
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, JSON_CONTENT_TYPE)],
        axum::body::Body::from_stream(failing),
    )
        .into_response()
}

/// Runs one method and turns its result into Slack's JSON (HTTP 200 even for `ok:false`).
fn answer(shared: &Shared, method: &str, params: &Params) -> Response {
    let result = match method {
        "oauth.v2.access" => oauth_v2_access(shared, params),
        "oauth.v2.exchange" => client_id(shared, params).and_then(|_| {
            let token = params.get("token").ok_or("invalid_token")?;
            shared.exchange(token)
        }),
        "auth.test" => params
            .token()
            .ok_or("not_authed")
            .and_then(|token| shared.auth_test(token)),
        "auth.revoke" => params.token().ok_or("not_authed").and_then(|token| {
            let test = params
                .get("test")
                .is_some_and(|t| matches!(t, "1" | "true" | "yes"));
            shared.revoke(token, test)
        }),
        _ => Err("unknown_method"),
    };
    match result {
        Ok(Answer { mut body, scopes }) => {
            body.insert("ok".to_owned(), Value::Bool(true));
            let mut response = json_response(StatusCode::OK, &Value::Object(body));
            if let Some(value) = scopes.and_then(|s| HeaderValue::from_str(&s).ok()) {
                response.headers_mut().insert("x-oauth-scopes", value);
            }
            response
        }
        Err(error) => json_response(StatusCode::OK, &json!({"ok": false, "error": error})),
    }
}

/// `oauth.v2.access`: a code redemption or a refresh.
fn oauth_v2_access(shared: &Shared, params: &Params) -> MethodResult {
    let client_id = client_id(shared, params)?;
    match params.get("grant_type") {
        Some("refresh_token") => shared.refresh(params.get("refresh_token").unwrap_or_default()),
        None | Some("authorization_code") => shared.redeem_code(&CodeRedemption {
            code: params.get("code").ok_or("invalid_code")?,
            client_id: &client_id,
            redirect_uri: params.get("redirect_uri"),
            code_verifier: params.get("code_verifier"),
        }),
        Some(_) => Err("invalid_grant_type"),
    }
}

/// Checks the client credentials (HTTP Basic first, then the form fields) and returns the id.
fn client_id(shared: &Shared, params: &Params) -> Result<String, &'static str> {
    let (id, secret) = match &params.basic {
        Some((id, secret)) => (Some(id.as_str()), Some(secret.as_str())),
        None => (params.get("client_id"), params.get("client_secret")),
    };
    let id = id.filter(|id| !id.is_empty()).ok_or("invalid_client_id")?;
    if shared
        .config
        .client_id
        .as_deref()
        .is_some_and(|expected| expected != id)
    {
        return Err("invalid_client_id");
    }
    let secret = secret
        .filter(|secret| !secret.is_empty())
        .ok_or("bad_client_secret")?;
    if shared
        .config
        .client_secret
        .as_deref()
        .is_some_and(|expected| expected != secret)
    {
        return Err("bad_client_secret");
    }
    Ok(id.to_owned())
}

/// A call's parameters: query and form body (the body wins), plus the Authorization header.
#[derive(Debug, Default)]
pub(crate) struct Params {
    fields: HashMap<String, String>,
    basic: Option<(String, String)>,
    bearer: Option<String>,
}

impl Params {
    /// Parses leniently: bad percent-encoding and non-UTF-8 bytes are replaced, never rejected.
    pub(crate) fn new(query: Option<&str>, body: &[u8], headers: &HeaderMap) -> Self {
        let mut fields = HashMap::new();
        let query = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes());
        for (name, value) in query.chain(url::form_urlencoded::parse(body)) {
            fields.insert(name.into_owned(), value.into_owned());
        }
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().split_once(' '));
        let (mut basic, mut bearer) = (None, None);
        match authorization {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => {
                basic = decode_basic(rest.trim());
            }
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => {
                bearer = Some(rest.trim().to_owned()).filter(|t| !t.is_empty());
            }
            _ => {}
        }
        Self {
            fields,
            basic,
            bearer,
        }
    }

    /// A non-empty parameter.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The token: `Authorization: Bearer`, else the `token` parameter.
    fn token(&self) -> Option<&str> {
        self.bearer.as_deref().or_else(|| self.get("token"))
    }
}

/// `base64(id:secret)`; anything malformed counts as no Basic credentials.
fn decode_basic(encoded: &str) -> Option<(String, String)> {
    let decoded = STANDARD.decode(encoded).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(authorization: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_bytes(authorization) {
            headers.insert(header::AUTHORIZATION, value);
        }
        headers
    }

    #[test]
    fn basic_auth_is_decoded() {
        let params = Params::new(None, b"", &headers(b"Basic MTExLjIyMjpzZWM="));
        assert_eq!(params.basic, Some(("111.222".to_owned(), "sec".to_owned())));
    }

    #[test]
    fn malformed_input_never_fails() {
        for auth in [
            &b"Basic !!!"[..],
            b"Basic",
            b"Bearer",
            b"Basic \xff\xfe",
            b"xx",
        ] {
            let params = Params::new(Some("%zz=%ff"), b"a=%\xff\xfe&&=&code", &headers(auth));
            assert_eq!(params.basic, None);
            assert_eq!(params.token(), None);
        }
    }

    #[test]
    fn body_overrides_query_and_empty_is_absent() {
        let params = Params::new(Some("code=q&state="), b"code=b", &HeaderMap::new());
        assert_eq!(params.get("code"), Some("b"));
        assert_eq!(params.get("state"), None);
    }
}
