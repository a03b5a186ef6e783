//! The redirect path: check Slack's answer, the browser and the state, exchange the code, save.

use std::panic::AssertUnwindSafe;

use futures::FutureExt as _;
use http::header::SET_COOKIE;
use http::{HeaderValue, Response};
use serde::Deserialize;

use super::error::CallbackError;
use super::{exchange, OAuthFlow};
use crate::installation::Installation;
use crate::secret::{AuthorizationCode, StateValue};
use crate::store::{InstallationStore, StateStore};

/// The query parameters Slack redirects back with. Every field is optional, so a redirect
/// missing one is answered by the flow (`missing_code`, `invalid_browser`), not rejected by a
/// framework's extractor. `Debug` redacts the code and the state.
///
/// ```
/// use slack_oauth::flow::CallbackParams;
/// let params = CallbackParams::from_query("code=123.456&state=abc&state=second");
/// assert_eq!(params.code.as_ref().unwrap().secret(), "123.456");
/// assert_eq!(params.state.as_ref().unwrap().secret(), "abc"); // the first value wins
/// assert_eq!(params.error, None);
/// assert!(!format!("{params:?}").contains("123.456"));
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[non_exhaustive]
pub struct CallbackParams {
    /// The authorization code to exchange.
    pub code: Option<AuthorizationCode>,
    /// The state issued by the install path.
    pub state: Option<StateValue>,
    /// Slack's error, when the user cancelled (`access_denied`) or Slack refused.
    pub error: Option<String>,
}

impl CallbackParams {
    /// Parses a raw query string (without `?`), keeping the first value of each parameter as
    /// Bolt does. Never fails: invalid percent-encoding is decoded lossily.
    pub fn from_query(query: &str) -> Self {
        let mut params = Self::default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                "code" if params.code.is_none() => {
                    params.code = Some(AuthorizationCode::new(value.into_owned()));
                }
                "state" if params.state.is_none() => {
                    params.state = Some(StateValue::new(value.into_owned()));
                }
                "error" if params.error.is_none() => params.error = Some(value.into_owned()),
                _ => {}
            }
        }
        params
    }
}

impl<S> OAuthFlow<S>
where
    S: InstallationStore + StateStore + Clone + Send + Sync + 'static,
{
    /// Completes an install from Slack's redirect and the request's `Cookie` header (several
    /// header lines joined with `"; "`), checking in Bolt's order:
    ///
    /// 1. an `error` parameter → [`AccessDenied`](CallbackError::AccessDenied) or
    ///    [`SlackError`](CallbackError::SlackError) (the state is left alone);
    /// 2. with state validation on, no `state` or no matching cookie →
    ///    [`InvalidBrowser`](CallbackError::InvalidBrowser) (the state is not consumed);
    /// 3. the state cannot be consumed (unknown, used, expired at the flow's clock) →
    ///    [`InvalidState`](CallbackError::InvalidState);
    /// 4. no (or an empty) `code` → [`MissingCode`](CallbackError::MissingCode);
    /// 5. `oauth.v2.access` or `auth.test` fails → [`InvalidCode`](CallbackError::InvalidCode);
    /// 6. the store fails (consume or save) → [`StorageError`](CallbackError::StorageError).
    ///
    /// On success the installation has been saved. Outcomes are logged (reason, team; never a
    /// code, state or token).
    ///
    /// ```
    /// # use slack_oauth::{api::Client, flow::{CallbackError, CallbackParams, OAuthFlow}};
    /// # use slack_oauth::{settings::OAuthSettings, store::MemoryStore};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let flow = OAuthFlow::new(OAuthSettings::new("111.222", "secret"), MemoryStore::new(), Client::new()?)?;
    /// let params = CallbackParams::from_query("code=123&state=abc");
    /// let error = flow.complete(params, None).await.unwrap_err();
    /// assert!(matches!(error, CallbackError::InvalidBrowser));
    /// assert_eq!(error.status(), 400);
    /// # Ok(())
    /// # })
    /// # }
    /// ```
    pub async fn complete(
        &self,
        params: CallbackParams,
        cookie_header: Option<&str>,
    ) -> Result<Installation, CallbackError> {
        let result = self.run_callback(params, cookie_header).await;
        crate::telemetry::install(match &result {
            Ok(_) => "success",
            Err(error) => error.metric_outcome(),
        });
        match &result {
            Ok(installation) => tracing::info!(
                team_id = installation.team_id.as_ref().map(|id| id.as_str()),
                enterprise_id = installation.enterprise_id.as_ref().map(|id| id.as_str()),
                user_id = installation.user_id.as_str(),
                is_enterprise_install = installation.is_enterprise_install,
                "slack app installed"
            ),
            Err(error @ (CallbackError::InvalidCode(_) | CallbackError::StorageError(_))) => {
                let source = std::error::Error::source(error).map(ToString::to_string);
                tracing::error!(
                    reason = error.reason(),
                    status = error.status().as_u16(),
                    error = source.as_deref().unwrap_or(""),
                    "slack oauth callback failed"
                );
            }
            Err(error) => tracing::warn!(
                reason = error.reason(),
                status = error.status().as_u16(),
                "slack oauth callback failed"
            ),
        }
        result
    }

    async fn run_callback(
        &self,
        params: CallbackParams,
        cookie_header: Option<&str>,
    ) -> Result<Installation, CallbackError> {
        if let Some(error) = params.error {
            return Err(CallbackError::from_slack_error(&error));
        }
        if self.settings().state_validation_enabled {
            let state = params.state.ok_or(CallbackError::InvalidBrowser)?;
            if !self.state_cookie().is_valid_browser(&state, cookie_header) {
                return Err(CallbackError::InvalidBrowser);
            }
            let consumed = self
                .store()
                .consume(&state, self.clock().now())
                .await
                .map_err(CallbackError::StorageError)?;
            if !consumed {
                return Err(CallbackError::InvalidState);
            }
        }
        let code = params
            .code
            .filter(|code| !code.secret().is_empty())
            .ok_or(CallbackError::MissingCode)?;
        let installation =
            exchange::run_installation(self.client(), self.settings(), code, self.clock().now())
                .await
                .map_err(CallbackError::InvalidCode)?;
        self.store()
            .save(&installation)
            .await
            .map_err(CallbackError::StorageError)?;
        Ok(installation)
    }

    /// The redirect path's response: [`complete`](Self::complete), then the custom success or
    /// failure handler if set, else the [`DefaultPages`](super::DefaultPages). Every response,
    /// including a custom handler's and the 500 page sent if a handler or the store panics,
    /// carries the `Set-Cookie` that deletes the state cookie.
    ///
    /// ```
    /// # use slack_oauth::{api::Client, flow::{CallbackParams, OAuthFlow}};
    /// # use slack_oauth::{settings::OAuthSettings, store::MemoryStore};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let flow = OAuthFlow::new(OAuthSettings::new("111.222", "secret"), MemoryStore::new(), Client::new()?)?;
    /// let response = flow.handle_callback(CallbackParams::from_query("error=access_denied"), None).await;
    /// assert_eq!(response.status(), 200);
    /// assert!(response.body().contains("(reason: access_denied: "));
    /// assert!(response.headers()["set-cookie"].to_str()?.starts_with("__Host-slack-app-oauth-state=deleted;"));
    /// # Ok(())
    /// # })
    /// # }
    /// ```
    pub async fn handle_callback(
        &self,
        params: CallbackParams,
        cookie_header: Option<&str>,
    ) -> Response<String> {
        let outcome = AssertUnwindSafe(self.callback_response(params, cookie_header))
            .catch_unwind()
            .await;
        let mut response = outcome.unwrap_or_else(|_| {
            tracing::error!(reason = "panic", "slack oauth callback panicked");
            crate::telemetry::install("panic");
            self.default_pages().internal_error()
        });
        if let Ok(deletion) = HeaderValue::from_str(&self.state_cookie().deletion()) {
            response.headers_mut().append(SET_COOKIE, deletion);
        }
        response
    }

    async fn callback_response(
        &self,
        params: CallbackParams,
        cookie_header: Option<&str>,
    ) -> Response<String> {
        let defaults = self.default_pages();
        match self.complete(params, cookie_header).await {
            Ok(installation) => match &self.shared.success_handler {
                Some(handler) => handler(installation, defaults).await,
                None => defaults.success(&installation),
            },
            Err(error) => match &self.shared.failure_handler {
                Some(handler) => handler(error, defaults).await,
                None => defaults.failure(&error),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_query_keeps_first_values_and_blanks() {
        let params = CallbackParams::from_query("state=&code=&error=&code=x&other=1");
        assert_eq!(params.state.unwrap().secret(), "");
        assert_eq!(params.code.unwrap().secret(), "");
        assert_eq!(params.error.as_deref(), Some(""));
    }

    #[test]
    fn from_query_decodes_and_never_fails() {
        let params = CallbackParams::from_query("code=a%2Bb+c&state=%ZZ%FF&error");
        assert_eq!(params.code.unwrap().secret(), "a+b c");
        assert_eq!(params.state.unwrap().secret(), "%ZZ\u{FFFD}");
        assert_eq!(params.error.as_deref(), Some(""));
        let empty = CallbackParams::from_query("");
        assert!(empty.code.is_none() && empty.state.is_none() && empty.error.is_none());
    }

    #[test]
    fn deserializes_from_a_query_with_missing_fields() {
        let params: CallbackParams = serde_urlencoded::from_str("state=s&extra=1").unwrap();
        assert_eq!(params.state.unwrap().secret(), "s");
        assert!(params.code.is_none());
    }
}
