//! `CallbackError` (why an install did not complete) and `InstallError` (why one could not start).

use http::StatusCode;

use crate::api::ApiError;
use crate::state::UnsafeStateValue;
use crate::store::StoreError;

/// What the failure page says about server-side failures.
pub(crate) const SERVER_ISSUE: &str =
    "The app's server encountered an issue. Contact the app developer.";

/// The longest Slack `error` value kept; the rest is cut (it comes from the query string).
const MAX_REASON_LEN: usize = 100;

/// Why the OAuth callback failed, in the order the callback checks.
///
/// [`reason`](Self::reason) gives the reason string the Slack SDKs use and
/// [`status`](Self::status) the HTTP status they suggest.
///
/// ```
/// use slack_oauth::flow::CallbackError;
/// let error = CallbackError::InvalidBrowser;
/// assert_eq!(error.reason(), "invalid_browser");
/// assert_eq!(error.status(), http::StatusCode::BAD_REQUEST);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// The user cancelled on Slack's consent screen (`?error=access_denied`). Status 200.
    #[error("access_denied: the user cancelled the installation on Slack's consent screen")]
    AccessDenied,
    /// Slack redirected back with another `error` value. Status 200.
    #[error("{reason}: Slack redirected back with this error")]
    SlackError {
        /// Slack's `error` value (at most 100 characters kept).
        reason: String,
    },
    /// The state cookie is missing or does not match the `state` parameter: the callback was
    /// opened in another browser, reloaded, or not started from the install path. The state is
    /// not consumed. Status 400.
    #[error(
        "invalid_browser: the state cookie is missing or does not match; \
         the install was not started from the install path in this browser, or the page was reloaded"
    )]
    InvalidBrowser,
    /// The state was never issued, already used, or has expired. Status 401.
    #[error("invalid_state: the state was already used, has expired, or was never issued")]
    InvalidState,
    /// The redirect has no `code`. Status 401.
    #[error("missing_code: the redirect from Slack has no code parameter")]
    MissingCode,
    /// Exchanging the code (`oauth.v2.access`) or reading the bot (`auth.test`) failed; the
    /// [`ApiError`] source keeps Slack's error string. Status 401.
    #[error("invalid_code: the code could not be exchanged for tokens")]
    InvalidCode(#[source] ApiError),
    /// The state or installation store failed. Status 500.
    #[error("storage_error: the installation could not be stored")]
    StorageError(#[source] StoreError),
}

impl CallbackError {
    /// A failure for Slack's `error` parameter: [`AccessDenied`](Self::AccessDenied) for
    /// `access_denied`, else [`SlackError`](Self::SlackError).
    ///
    /// ```
    /// use slack_oauth::flow::CallbackError;
    /// assert!(matches!(CallbackError::from_slack_error("access_denied"), CallbackError::AccessDenied));
    /// assert_eq!(CallbackError::from_slack_error("invalid_team_for_non_distributed_app").reason(),
    ///            "invalid_team_for_non_distributed_app");
    /// ```
    pub fn from_slack_error(error: &str) -> Self {
        if error == "access_denied" {
            return Self::AccessDenied;
        }
        let cut = error
            .char_indices()
            .nth(MAX_REASON_LEN)
            .map_or(error.len(), |(index, _)| index);
        Self::SlackError {
            reason: error[..cut].to_owned(),
        }
    }

    /// The reason string of the Slack SDKs: `access_denied` (or Slack's other `error` value),
    /// `invalid_browser`, `invalid_state`, `missing_code`, `invalid_code` or `storage_error`.
    ///
    /// ```
    /// # use slack_oauth::flow::CallbackError;
    /// assert_eq!(CallbackError::MissingCode.reason(), "missing_code");
    /// ```
    pub fn reason(&self) -> &str {
        match self {
            Self::AccessDenied => "access_denied",
            Self::SlackError { reason } => reason,
            Self::InvalidBrowser => "invalid_browser",
            Self::InvalidState => "invalid_state",
            Self::MissingCode => "missing_code",
            Self::InvalidCode(_) => "invalid_code",
            Self::StorageError(_) => "storage_error",
        }
    }

    /// The `outcome` label of [`INSTALLS_TOTAL`](crate::telemetry::INSTALLS_TOTAL): the
    /// reason, except that Slack's other `error` values (chosen by whoever opened the URL) all
    /// count as `slack_error`.
    pub(crate) fn metric_outcome(&self) -> &'static str {
        match self {
            Self::AccessDenied => "access_denied",
            Self::SlackError { .. } => "slack_error",
            Self::InvalidBrowser => "invalid_browser",
            Self::InvalidState => "invalid_state",
            Self::MissingCode => "missing_code",
            Self::InvalidCode(_) => "invalid_code",
            Self::StorageError(_) => "storage_error",
        }
    }

    /// The HTTP status Bolt suggests: 200 for Slack's errors, 400 for `invalid_browser`, 401 for
    /// `invalid_state`, `missing_code` and `invalid_code`, 500 for `storage_error`.
    ///
    /// ```
    /// # use slack_oauth::flow::CallbackError;
    /// assert_eq!(CallbackError::AccessDenied.status(), 200);
    /// assert_eq!(CallbackError::InvalidState.status(), 401);
    /// ```
    pub fn status(&self) -> StatusCode {
        match self {
            Self::AccessDenied | Self::SlackError { .. } => StatusCode::OK,
            Self::InvalidBrowser => StatusCode::BAD_REQUEST,
            Self::InvalidState | Self::MissingCode | Self::InvalidCode(_) => {
                StatusCode::UNAUTHORIZED
            }
            Self::StorageError(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The text the default failure page shows: the reason, a colon, and what it means for the
    /// installing user (Bolt's `build_detailed_error`, with the configured `install_path` in the
    /// `invalid_browser` text and Slack's own error named for `invalid_code`). Not HTML-escaped.
    ///
    /// ```
    /// # use slack_oauth::flow::CallbackError;
    /// assert_eq!(
    ///     CallbackError::InvalidState.detail("/slack/install"),
    ///     "invalid_state: The state parameter is no longer valid.",
    /// );
    /// assert_eq!(
    ///     CallbackError::from_slack_error("<b>test</b>").detail("/slack/install"),
    ///     "<b>test</b>: This error code is returned from Slack. Refer to the documents for details.",
    /// );
    /// ```
    pub fn detail(&self, install_path: &str) -> String {
        let reason = self.reason();
        match self {
            Self::InvalidBrowser => format!(
                "{reason}: This can occur due to page reload, not beginning the OAuth flow from \
                 the valid starting URL, or the {install_path} URL not using https://"
            ),
            Self::InvalidState => format!("{reason}: The state parameter is no longer valid."),
            Self::MissingCode => {
                format!("{reason}: The code parameter is missing in this redirection.")
            }
            Self::StorageError(_) => format!("{reason}: {SERVER_ISSUE}"),
            Self::InvalidCode(error) => match error.slack_error() {
                Some(slack) => format!(
                    "{reason}: The app could not complete the installation with Slack \
                     (Slack said: {slack}). Please start over."
                ),
                None => format!(
                    "{reason}: The app could not complete the installation with Slack. \
                     Please start over."
                ),
            },
            Self::AccessDenied | Self::SlackError { .. } => format!(
                "{reason}: This error code is returned from Slack. Refer to the documents for details."
            ),
        }
    }
}

/// Why an install could not start.
///
/// ```
/// use slack_oauth::flow::InstallError;
/// let error = InstallError::UnsafeState(slack_oauth::state::UnsafeStateValue);
/// assert!(error.to_string().contains("cookie"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// The state store could not issue a state.
    #[error("could not issue an OAuth state; check the state store")]
    Store(#[source] StoreError),
    /// A custom state store issued a state that cannot go into the cookie.
    #[error(transparent)]
    UnsafeState(#[from] UnsafeStateValue),
    /// The authorize URL cannot go into a `Location` header (only a custom state store or an odd
    /// `team` could cause it).
    #[error("the authorize URL is not a valid Location header value")]
    InvalidLocation,
    /// As many states as [`OAuthSettings::max_live_states`](crate::settings::OAuthSettings::max_live_states)
    /// are outstanding (issued, neither used nor expired): no new one is issued. The install
    /// page answers 503.
    #[error("too many OAuth states are outstanding (the cap is {cap}); try again later")]
    TooManyStates {
        /// The cap.
        cap: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_and_statuses_match_bolt() {
        let api = || ApiError::Slack {
            method: "oauth.v2.access",
            error: "invalid_code".to_owned(),
        };
        let cases: Vec<(CallbackError, &str, u16)> = vec![
            (CallbackError::AccessDenied, "access_denied", 200),
            (CallbackError::from_slack_error("x"), "x", 200),
            (CallbackError::InvalidBrowser, "invalid_browser", 400),
            (CallbackError::InvalidState, "invalid_state", 401),
            (CallbackError::MissingCode, "missing_code", 401),
            (CallbackError::InvalidCode(api()), "invalid_code", 401),
            (
                CallbackError::StorageError(StoreError::Config("x".to_owned())),
                "storage_error",
                500,
            ),
        ];
        for (error, reason, status) in cases {
            assert_eq!(error.reason(), reason);
            assert_eq!(error.status().as_u16(), status, "{reason}");
            assert!(error.to_string().starts_with(reason), "{error}");
            assert!(error.detail("/i").starts_with(&format!("{reason}: ")));
        }
    }

    #[test]
    fn details_use_bolts_texts() {
        assert_eq!(
            CallbackError::InvalidBrowser.detail("/custom/install"),
            "invalid_browser: This can occur due to page reload, not beginning the OAuth flow \
             from the valid starting URL, or the /custom/install URL not using https://"
        );
        assert_eq!(
            CallbackError::MissingCode.detail("/"),
            "missing_code: The code parameter is missing in this redirection."
        );
        assert_eq!(
            CallbackError::StorageError(StoreError::Config("x".to_owned())).detail("/"),
            "storage_error: The app's server encountered an issue. Contact the app developer."
        );
        let invalid_code = CallbackError::InvalidCode(ApiError::Slack {
            method: "oauth.v2.access",
            error: "bad_redirect_uri".to_owned(),
        });
        assert!(invalid_code
            .detail("/")
            .contains("(Slack said: bad_redirect_uri)"));
        assert!(!invalid_code.detail("/").contains("returned from Slack"));
    }

    #[test]
    fn invalid_code_keeps_the_api_error_as_source() {
        let error = CallbackError::InvalidCode(ApiError::Slack {
            method: "oauth.v2.access",
            error: "invalid_code".to_owned(),
        });
        let source = std::error::Error::source(&error).unwrap();
        assert_eq!(source.to_string(), "oauth.v2.access failed: invalid_code");
    }

    #[test]
    fn long_slack_errors_are_cut() {
        let long = "é".repeat(500);
        assert_eq!(
            CallbackError::from_slack_error(&long)
                .reason()
                .chars()
                .count(),
            MAX_REASON_LEN
        );
        assert_eq!(CallbackError::from_slack_error("").reason(), "");
    }
}
