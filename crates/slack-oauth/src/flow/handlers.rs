//! Custom success and failure handlers, and `DefaultPages`, the responses they can fall back on.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt as _;
use http::{Response, StatusCode};

use super::error::CallbackError;
use super::pages;
use crate::installation::Installation;
use crate::settings::OAuthSettings;

/// The future a custom handler returns, boxed.
///
/// ```
/// use futures::FutureExt as _;
/// let future: slack_oauth::flow::HandlerFuture = async { http::Response::new(String::new()) }.boxed();
/// # let _ = future;
/// ```
pub type HandlerFuture = BoxFuture<'static, Response<String>>;

pub(crate) type SuccessHandler =
    Arc<dyn Fn(Installation, DefaultPages) -> HandlerFuture + Send + Sync>;
pub(crate) type FailureHandler =
    Arc<dyn Fn(CallbackError, DefaultPages) -> HandlerFuture + Send + Sync>;

pub(crate) fn success<F, Fut>(handler: F) -> SuccessHandler
where
    F: Fn(Installation, DefaultPages) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<String>> + Send + 'static,
{
    Arc::new(move |installation, defaults| handler(installation, defaults).boxed())
}

pub(crate) fn failure<F, Fut>(handler: F) -> FailureHandler
where
    F: Fn(CallbackError, DefaultPages) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<String>> + Send + 'static,
{
    Arc::new(move |error, defaults| handler(error, defaults).boxed())
}

/// The flow's default responses, without the state cookie's deletion (the flow adds it to
/// every callback response, custom or not).
///
/// - success: a 302 to `success_url` when configured, else the success page (200);
/// - failure: a 302 to `failure_url` with `error=<reason>` added to its query when configured,
///   else the failure page with the error's suggested status.
///
/// ```
/// use std::sync::Arc;
/// use slack_oauth::flow::{CallbackError, DefaultPages};
/// use slack_oauth::settings::OAuthSettings;
///
/// let settings = OAuthSettings::new("1", "2").failure_url("https://app.test/oops?lang=en");
/// let defaults = DefaultPages::new(Arc::new(settings));
/// let response = defaults.failure(&CallbackError::InvalidState);
/// assert_eq!(response.status(), 302);
/// assert_eq!(response.headers()["location"], "https://app.test/oops?lang=en&error=invalid_state");
///
/// let defaults = DefaultPages::new(Arc::new(OAuthSettings::new("1", "2")));
/// let response = defaults.failure(&CallbackError::InvalidState);
/// assert_eq!(response.status(), 401);
/// assert!(response.body().contains("invalid_state: The state parameter is no longer valid."));
/// ```
#[derive(Clone)]
pub struct DefaultPages {
    settings: Arc<OAuthSettings>,
}

impl DefaultPages {
    /// The default responses for `settings`.
    pub fn new(settings: Arc<OAuthSettings>) -> Self {
        Self { settings }
    }

    /// The default success response.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use slack_oauth::{flow::DefaultPages, installation::Installation, settings::OAuthSettings};
    /// let defaults = DefaultPages::new(Arc::new(OAuthSettings::new("1", "2")));
    /// let installation = Installation::new("U1", time::OffsetDateTime::UNIX_EPOCH);
    /// let response = defaults.success(&installation);
    /// assert_eq!(response.status(), 200);
    /// assert!(response.body().contains("slack://open"));
    /// ```
    pub fn success(&self, installation: &Installation) -> Response<String> {
        if let Some(response) = self
            .settings
            .success_url
            .as_deref()
            .and_then(|configured| configured_location(configured, None))
            .and_then(|location| pages::redirect_response(&location))
        {
            return response;
        }
        pages::html_response(
            StatusCode::OK,
            pages::success_page(installation, None, &self.settings.authorize_url),
        )
    }

    /// The default failure response.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use slack_oauth::{flow::{CallbackError, DefaultPages}, settings::OAuthSettings};
    /// let defaults = DefaultPages::new(Arc::new(OAuthSettings::new("1", "2")));
    /// let response = defaults.failure(&CallbackError::InvalidBrowser);
    /// assert_eq!(response.status(), 400);
    /// assert!(response.body().contains("<a href=\"/slack/install\">here</a>"));
    /// ```
    pub fn failure(&self, error: &CallbackError) -> Response<String> {
        if let Some(response) = self
            .failure_location(error.reason())
            .and_then(|location| pages::redirect_response(&location))
        {
            return response;
        }
        let install_path = &self.settings.install_path;
        pages::html_response(
            error.status(),
            pages::failure_page(install_path, &error.detail(install_path)),
        )
    }

    /// The 503 page of an install path refusing new installs for a while (too many states
    /// outstanding), with `Retry-After: 60`.
    pub(crate) fn busy(&self) -> Response<String> {
        let mut response = pages::html_response(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::failure_page(
                &self.settings.install_path,
                "busy: the app is receiving too many install requests right now; try again in \
                 a minute",
            ),
        );
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("60"),
        );
        response
    }

    /// A 500 failure page for failures outside [`CallbackError`] (a panic, a state that cannot
    /// be issued), with the `storage_error` text.
    pub(crate) fn internal_error(&self) -> Response<String> {
        if let Some(response) = self
            .failure_location("storage_error")
            .and_then(|location| pages::redirect_response(&location))
        {
            return response;
        }
        pages::html_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            pages::failure_page(
                &self.settings.install_path,
                &format!("storage_error: {}", super::error::SERVER_ISSUE),
            ),
        )
    }

    fn failure_location(&self, reason: &str) -> Option<String> {
        configured_location(self.settings.failure_url.as_deref()?, Some(reason))
    }

    /// The settings the pages use.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use slack_oauth::{flow::DefaultPages, settings::OAuthSettings};
    /// let defaults = DefaultPages::new(Arc::new(OAuthSettings::new("1", "2")));
    /// assert_eq!(defaults.settings().install_path, "/slack/install");
    /// ```
    pub fn settings(&self) -> &OAuthSettings {
        &self.settings
    }
}

impl fmt::Debug for DefaultPages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefaultPages")
            .field("success_url", &self.settings.success_url)
            .field("failure_url", &self.settings.failure_url)
            .field("install_path", &self.settings.install_path)
            .finish()
    }
}

/// The `Location` for a configured success or failure URL (with `error=reason` appended),
/// normalized as a browser would send it: an absolute URL serialized (ASCII, percent-encoded),
/// a path resolved (dot segments removed) and kept relative. `None` when the resolved path
/// would start with `//`, which a browser reads as another host (`/..//evil.example`);
/// settings validation refuses such paths, so this only guards values set after it.
pub(crate) fn configured_location(configured: &str, reason: Option<&str>) -> Option<String> {
    const PLACEHOLDER: &str = "placeholder.invalid";
    let relative = configured.starts_with('/');
    let mut url = if relative {
        url::Url::parse(&format!("https://{PLACEHOLDER}"))
            .ok()?
            .join(configured)
            .ok()?
    } else {
        url::Url::parse(configured).ok()?
    };
    if let Some(reason) = reason {
        url.query_pairs_mut().append_pair("error", reason);
    }
    if !relative {
        return Some(url.into());
    }
    let location = &url[url::Position::BeforePath..];
    (url.host_str() == Some(PLACEHOLDER) && !location.starts_with("//"))
        .then(|| location.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    fn defaults(settings: OAuthSettings) -> DefaultPages {
        DefaultPages::new(Arc::new(settings))
    }

    #[test]
    fn success_url_is_a_redirect() {
        let response = defaults(OAuthSettings::new("1", "2").success_url("https://a.test/done"))
            .success(&Installation::new("U1", OffsetDateTime::UNIX_EPOCH));
        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(response.headers()["location"], "https://a.test/done");
        assert!(response.body().is_empty());
    }

    #[test]
    fn failure_page_keeps_the_suggested_status_and_escapes_once() {
        let response = defaults(OAuthSettings::new("1", "2"))
            .failure(&CallbackError::from_slack_error("<b>test</b>"));
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.body().contains(
            "(reason: &lt;b&gt;test&lt;/b&gt;: This error code is returned from Slack. \
             Refer to the documents for details.)"
        ));
        assert!(response
            .body()
            .contains("<a href=\"/slack/install\">here</a>"));
    }

    #[test]
    fn failure_url_gets_the_reason_encoded() {
        let response = defaults(OAuthSettings::new("1", "2").failure_url("https://a.test/ko"))
            .failure(&CallbackError::from_slack_error("a&b c"));
        assert_eq!(
            response.headers()["location"],
            "https://a.test/ko?error=a%26b+c"
        );
    }

    #[test]
    fn internal_error_is_a_500_page() {
        let response = defaults(OAuthSettings::new("1", "2")).internal_error();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.body().contains("storage_error: "));
    }
}
