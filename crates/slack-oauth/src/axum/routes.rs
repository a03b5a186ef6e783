//! `routes`: GET install path and GET redirect path, on a router for any app state.

use ::axum::body::Body;
use ::axum::extract::rejection::QueryRejection;
use ::axum::extract::{FromRef, Query, RawQuery, State};
use ::axum::response::Response;
use ::axum::routing::get;
use ::axum::Router;
use http::header::COOKIE;
use http::HeaderMap;

use crate::flow::{CallbackParams, OAuthFlow};
use crate::store::{InstallationStore, StateStore};

/// A router with the install flow's two routes, at the flow's `install_path` and
/// `redirect_uri_path` (read from `flow` once, here; the handlers take the flow from the app
/// state):
///
/// - `GET {install_path}[?team=T…]` → [`OAuthFlow::handle_installation`];
/// - `GET {redirect_uri_path}?code=…&state=…` → [`OAuthFlow::handle_callback`], with the
///   request's `Cookie` headers. Any query, even a malformed one, gets the flow's own answer.
///
/// The router works with any app state `S` the flow can be taken from (`OAuthFlow: FromRef<S>`),
/// so it merges or nests into an existing app. Prefer `merge`: the failure page links back to
/// `install_path` as configured, which under `nest("/prefix", …)` lacks the prefix.
///
/// ```
/// use axum::extract::FromRef;
/// use axum::Router;
/// use slack_oauth::{api::Client, flow::OAuthFlow, settings::OAuthSettings, store::MemoryStore};
///
/// #[derive(Clone)]
/// struct AppState {
///     flow: OAuthFlow<MemoryStore>,
///     greeting: String,
/// }
///
/// // (or `#[derive(FromRef)]` with axum's `macros` feature)
/// impl FromRef<AppState> for OAuthFlow<MemoryStore> {
///     fn from_ref(state: &AppState) -> Self {
///         state.flow.clone()
///     }
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let flow = OAuthFlow::new(OAuthSettings::new("111.222", "secret"), MemoryStore::new(), Client::new()?)?;
/// let app: Router = Router::<AppState>::new()
///     .merge(slack_oauth::axum::routes(&flow))
///     .with_state(AppState { flow, greeting: "hi".to_owned() });
/// # let _ = app;
/// # Ok(())
/// # }
/// ```
pub fn routes<S, St>(flow: &OAuthFlow<St>) -> Router<S>
where
    St: InstallationStore + StateStore + Clone + Send + Sync + 'static,
    OAuthFlow<St>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route(&flow.settings().install_path, get(install::<St>))
        .route(&flow.settings().redirect_uri_path, get(callback::<St>))
}

async fn install<St>(State(flow): State<OAuthFlow<St>>, RawQuery(query): RawQuery) -> Response
where
    St: InstallationStore + StateStore + Clone + Send + Sync + 'static,
{
    let team = query.as_deref().and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "team")
            .map(|(_, value)| value.into_owned())
    });
    flow.handle_installation(team.as_deref())
        .await
        .map(Body::from)
}

async fn callback<St>(
    State(flow): State<OAuthFlow<St>>,
    params: Result<Query<CallbackParams>, QueryRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response
where
    St: InstallationStore + StateStore + Clone + Send + Sync + 'static,
{
    // A query serde refuses (a repeated parameter) is read the way Bolt reads it, first value
    // wins, so the user gets the flow's failure page rather than axum's rejection text.
    let params = match params {
        Ok(Query(params)) => params,
        Err(_) => CallbackParams::from_query(query.as_deref().unwrap_or("")),
    };
    // HTTP/2 may split cookies over several header lines; RFC 9113 §8.2.3 joins them with "; ".
    let cookies: Vec<&str> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    let cookie = (!cookies.is_empty()).then(|| cookies.join("; "));
    flow.handle_callback(params, cookie.as_deref())
        .await
        .map(Body::from)
}
