//! The install path: issue a state, build the authorize URL and the state cookie.

use std::fmt;

use http::header::SET_COOKIE;
use http::{HeaderValue, Response, StatusCode};
use url::Url;

use super::error::InstallError;
use super::{pages, OAuthFlow};
use crate::store::{InstallationStore, StateStore};

/// What the install path hands the browser: the authorize URL and, with state validation on,
/// the state cookie to set.
///
/// `Debug` hides both: each holds the state.
///
/// ```
/// # use slack_oauth::{api::Client, flow::OAuthFlow, settings::OAuthSettings, store::MemoryStore};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let flow = OAuthFlow::new(OAuthSettings::new("1", "2"), MemoryStore::new(), Client::new()?)?;
/// let start = flow.start_install(None).await?;
/// assert!(!format!("{start:?}").contains("state="));
/// # Ok(())
/// # })
/// # }
/// ```
///
/// # Security
/// Send both to the browser; never log them.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InstallStart {
    /// Slack's consent screen for this install, with the state in its query.
    pub authorize_url: Url,
    /// The `Set-Cookie` value binding the state to the browser; `None` when state validation
    /// is off.
    pub set_cookie: Option<String>,
}

impl fmt::Debug for InstallStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut url = self.authorize_url.clone();
        url.set_query(Some("[redacted]"));
        f.debug_struct("InstallStart")
            .field("authorize_url", &url.as_str())
            .field(
                "set_cookie",
                &self.set_cookie.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

impl<S> OAuthFlow<S>
where
    S: InstallationStore + StateStore + Clone + Send + Sync + 'static,
{
    /// Starts an install: issues a state valid for `state_expiration` (from the flow's clock)
    /// and returns the authorize URL and the cookie. `team` preselects a workspace on Slack's
    /// consent screen. With state validation off, no state is issued, the URL has `state=` and
    /// there is no cookie.
    ///
    /// ```
    /// # use slack_oauth::{api::Client, flow::OAuthFlow, settings::OAuthSettings, store::MemoryStore};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let flow = OAuthFlow::new(OAuthSettings::new("111.222", "secret"), MemoryStore::new(), Client::new()?)?;
    /// let start = flow.start_install(Some("T12345")).await?;
    /// assert!(start.authorize_url.as_str().starts_with("https://slack.com/oauth/v2/authorize?state="));
    /// assert!(start.authorize_url.as_str().ends_with("&team=T12345"));
    /// assert!(start.set_cookie.unwrap().starts_with("__Host-slack-app-oauth-state="));
    /// # Ok(())
    /// # })
    /// # }
    /// ```
    pub async fn start_install(&self, team: Option<&str>) -> Result<InstallStart, InstallError> {
        if !self.settings().state_validation_enabled {
            return Ok(InstallStart {
                authorize_url: self.authorize_url().generate("", team),
                set_cookie: None,
            });
        }
        let expires_at = self
            .clock()
            .now()
            .checked_add(time::Duration::seconds(
                i64::try_from(self.settings().state_expiration.as_secs()).unwrap_or(i64::MAX),
            ))
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        self.shared
            .live_states
            .admit(self.store(), self.clock().now())
            .await?;
        let state = self
            .store()
            .issue(expires_at)
            .await
            .map_err(InstallError::Store)?;
        let set_cookie = self.state_cookie().issue(&state)?;
        Ok(InstallStart {
            authorize_url: self.authorize_url().generate(state.secret(), team),
            set_cookie: Some(set_cookie),
        })
    }

    /// The install path's response: the install page (200) with the state cookie, or, with
    /// `install_page_rendering_enabled` off, a 302 to Slack with the cookie. When no state can
    /// be issued: a 500 failure page, logged; a 503 page when too many states are outstanding
    /// ([`OAuthSettings::max_live_states`](crate::settings::OAuthSettings::max_live_states)).
    ///
    /// ```
    /// # use slack_oauth::{api::Client, flow::OAuthFlow, settings::OAuthSettings, store::MemoryStore};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let flow = OAuthFlow::new(OAuthSettings::new("111.222", "secret"), MemoryStore::new(), Client::new()?)?;
    /// let response = flow.handle_installation(None).await;
    /// assert_eq!(response.status(), 200);
    /// assert!(response.headers().contains_key("set-cookie"));
    /// assert!(response.body().contains("https://slack.com/oauth/v2/authorize?state="));
    /// # Ok(())
    /// # })
    /// # }
    /// ```
    pub async fn handle_installation(&self, team: Option<&str>) -> Response<String> {
        match self.install_response(team).await {
            Ok(response) => response,
            // Logged once a minute by the cap itself.
            Err(InstallError::TooManyStates { .. }) => self.default_pages().busy(),
            Err(error) => {
                tracing::error!(error = %error, "slack oauth install could not start");
                self.default_pages().internal_error()
            }
        }
    }

    async fn install_response(&self, team: Option<&str>) -> Result<Response<String>, InstallError> {
        let start = self.start_install(team).await?;
        let mut response = if self.settings().install_page_rendering_enabled {
            pages::html_response(
                StatusCode::OK,
                pages::install_page(start.authorize_url.as_str()),
            )
        } else {
            pages::redirect_response(start.authorize_url.as_str())
                .ok_or(InstallError::InvalidLocation)?
        };
        if let Some(cookie) = start.set_cookie {
            let value = HeaderValue::from_str(&cookie)
                .map_err(|_| InstallError::UnsafeState(crate::state::UnsafeStateValue))?;
            response.headers_mut().append(SET_COOKIE, value);
        }
        tracing::debug!(
            page = self.settings().install_page_rendering_enabled,
            team = team.unwrap_or(""),
            "slack oauth install started"
        );
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_state() {
        let start = InstallStart {
            authorize_url: Url::parse(
                "https://slack.com/oauth/v2/authorize?state=SECRETSTATE&client_id=1",
            )
            .unwrap(),
            set_cookie: Some("slack-app-oauth-state=SECRETSTATE; Secure".to_owned()),
        };
        let shown = format!("{start:?}");
        assert!(!shown.contains("SECRETSTATE"), "{shown}");
        assert!(
            shown.contains("https://slack.com/oauth/v2/authorize?[redacted]"),
            "{shown}"
        );
    }
}
