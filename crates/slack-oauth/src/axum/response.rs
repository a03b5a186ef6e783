//! `IntoResponse` for the flow's errors.

use ::axum::response::{IntoResponse, Response};

use crate::flow::CallbackError;

/// The error's [`status`](CallbackError::status) with its [`reason`](CallbackError::reason) as a
/// plain-text body, for custom callback handlers. It does not delete the state cookie: add
/// [`OAuthFlow::state_cookie`](crate::flow::OAuthFlow::state_cookie)'s deletion, or use
/// [`handle_callback`](crate::flow::OAuthFlow::handle_callback), which does.
///
/// ```
/// use axum::response::IntoResponse;
/// let response = slack_oauth::flow::CallbackError::InvalidState.into_response();
/// assert_eq!(response.status(), 401);
/// ```
impl IntoResponse for CallbackError {
    fn into_response(self) -> Response {
        (self.status(), self.reason().to_owned()).into_response()
    }
}
