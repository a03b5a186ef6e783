//! `AuthorizeUrl`: builds the URL of Slack's consent screen, every value percent-encoded.

use url::Url;

use crate::ids::ClientId;
use crate::installation::Scopes;
use crate::settings::{ConfigError, OAuthSettings};

/// Builds authorize URLs: `{authorize_url}?state=…&client_id=…&scope=…&user_scope=…`, then
/// `&redirect_uri=…` when configured and `&team=…` when given.
///
/// Parameters come in Bolt's order, but unlike Bolt (W26) every value is form-encoded, so a
/// `redirect_uri` with its own query or an odd `team` cannot break the URL. A query already on
/// the configured authorize URL is kept in front. `scope` and `user_scope` are always present,
/// empty when no scope is configured, as in Bolt.
///
/// ```
/// use slack_oauth::flow::AuthorizeUrl;
/// use slack_oauth::settings::OAuthSettings;
///
/// let settings = OAuthSettings::new("111.222", "secret")
///     .scopes(["chat:write", "commands"])
///     .user_scopes(["search:read"]);
/// let urls = AuthorizeUrl::from_settings(&settings)?;
/// assert_eq!(
///     urls.generate("state-value", Some("T12345")).as_str(),
///     "https://slack.com/oauth/v2/authorize?state=state-value&client_id=111.222\
///      &scope=chat%3Awrite%2Ccommands&user_scope=search%3Aread&team=T12345",
/// );
/// # Ok::<_, slack_oauth::settings::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizeUrl {
    base: Url,
    client_id: ClientId,
    scopes: String,
    user_scopes: String,
    redirect_uri: Option<String>,
}

impl AuthorizeUrl {
    /// A generator for the settings' authorize URL, client id, scopes and redirect URI.
    ///
    /// Fails with [`ConfigError::Invalid`] when `authorize_url` is not an absolute `http(s)` URL.
    ///
    /// ```
    /// use slack_oauth::flow::AuthorizeUrl;
    /// use slack_oauth::settings::OAuthSettings;
    /// let settings = OAuthSettings::new("1", "2").authorize_url("not a url");
    /// assert!(AuthorizeUrl::from_settings(&settings).is_err());
    /// ```
    pub fn from_settings(settings: &OAuthSettings) -> Result<Self, ConfigError> {
        let invalid = |problem: &str| ConfigError::Invalid {
            setting: "authorize_url",
            value: settings.authorize_url.clone(),
            problem: problem.to_owned(),
        };
        let base = Url::parse(&settings.authorize_url)
            .map_err(|error| invalid(&format!("is not an absolute URL ({error})")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("must be an http:// or https:// URL"));
        }
        Ok(Self::new(
            base,
            settings.client_id.clone(),
            &settings.scopes,
            &settings.user_scopes,
            settings.redirect_uri.clone(),
        ))
    }

    /// A generator from its parts.
    ///
    /// ```
    /// use slack_oauth::flow::AuthorizeUrl;
    /// use slack_oauth::installation::Scopes;
    ///
    /// let base = url::Url::parse("https://emulator.test/oauth/v2/authorize?tenant=x").unwrap();
    /// let urls = AuthorizeUrl::new(
    ///     base,
    ///     "111.222".into(),
    ///     &Scopes::parse("commands"),
    ///     &Scopes::default(),
    ///     Some("https://app.test/cb?a=1&b=2".to_owned()),
    /// );
    /// assert_eq!(
    ///     urls.generate("s", None).as_str(),
    ///     "https://emulator.test/oauth/v2/authorize?tenant=x&state=s&client_id=111.222\
    ///      &scope=commands&user_scope=&redirect_uri=https%3A%2F%2Fapp.test%2Fcb%3Fa%3D1%26b%3D2",
    /// );
    /// ```
    pub fn new(
        base: Url,
        client_id: ClientId,
        scopes: &Scopes,
        user_scopes: &Scopes,
        redirect_uri: Option<String>,
    ) -> Self {
        let mut base = base;
        base.set_fragment(None);
        Self {
            base,
            client_id,
            scopes: scopes.to_string(),
            user_scopes: user_scopes.to_string(),
            redirect_uri,
        }
    }

    /// The URL for `state` (empty when state validation is off) and an optional `team` that
    /// preselects the workspace.
    ///
    /// ```
    /// use slack_oauth::flow::AuthorizeUrl;
    /// use slack_oauth::settings::OAuthSettings;
    /// let urls = AuthorizeUrl::from_settings(&OAuthSettings::new("1", "2"))?;
    /// assert_eq!(
    ///     urls.generate("", Some("T 1")).as_str(),
    ///     "https://slack.com/oauth/v2/authorize?state=&client_id=1&scope=&user_scope=&team=T+1",
    /// );
    /// # Ok::<_, slack_oauth::settings::ConfigError>(())
    /// ```
    ///
    /// # Security
    /// The URL holds the state: send it to the browser, never log it.
    pub fn generate(&self, state: &str, team: Option<&str>) -> Url {
        let mut url = self.base.clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("state", state)
                .append_pair("client_id", self.client_id.as_str())
                .append_pair("scope", &self.scopes)
                .append_pair("user_scope", &self.user_scopes);
            if let Some(redirect_uri) = &self.redirect_uri {
                query.append_pair("redirect_uri", redirect_uri);
            }
            if let Some(team) = team {
                query.append_pair("team", team);
            }
        }
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> OAuthSettings {
        OAuthSettings::new("111.222", "secret")
            .scopes(["chat:write", "commands"])
            .user_scopes(["search:read"])
    }

    /// The query's decoded pairs, to compare with Bolt's unencoded URLs.
    fn pairs(url: &Url) -> Vec<(String, String)> {
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn default_url_has_bolts_parameters_in_order() {
        let url = AuthorizeUrl::from_settings(&settings())
            .unwrap()
            .generate("state-value", None);
        assert_eq!(
            url.as_str(),
            "https://slack.com/oauth/v2/authorize?state=state-value&client_id=111.222\
             &scope=chat%3Awrite%2Ccommands&user_scope=search%3Aread"
        );
        assert_eq!(
            pairs(&url),
            owned(&[
                ("state", "state-value"),
                ("client_id", "111.222"),
                ("scope", "chat:write,commands"),
                ("user_scope", "search:read"),
            ])
        );
    }

    #[test]
    fn team_comes_last_and_is_encoded() {
        let urls =
            AuthorizeUrl::from_settings(&settings().redirect_uri("https://a.test/cb")).unwrap();
        let url = urls.generate("s", Some("T1&x=y #"));
        assert!(url.as_str().ends_with("&team=T1%26x%3Dy+%23"), "{url}");
        assert_eq!(
            pairs(&url).last().unwrap(),
            &("team".to_owned(), "T1&x=y #".to_owned())
        );
        assert_eq!(
            pairs(&url)[4],
            ("redirect_uri".to_owned(), "https://a.test/cb".to_owned())
        );
    }

    #[test]
    fn custom_base_keeps_its_query_and_drops_a_fragment() {
        let settings = settings().authorize_url("http://127.0.0.1:9/oauth/v2/authorize?x=1");
        let url = AuthorizeUrl::from_settings(&settings)
            .unwrap()
            .generate("s", None);
        assert!(
            url.as_str()
                .starts_with("http://127.0.0.1:9/oauth/v2/authorize?x=1&state=s&client_id="),
            "{url}"
        );
        let base = Url::parse("https://a.test/authorize#frag").unwrap();
        let url = AuthorizeUrl::new(
            base,
            "1".into(),
            &Scopes::default(),
            &Scopes::default(),
            None,
        )
        .generate("s", None);
        assert_eq!(url.fragment(), None);
    }

    #[test]
    fn empty_state_and_scopes_stay_present() {
        let url = AuthorizeUrl::from_settings(&OAuthSettings::new("1", "2"))
            .unwrap()
            .generate("", None);
        assert_eq!(
            url.as_str(),
            "https://slack.com/oauth/v2/authorize?state=&client_id=1&scope=&user_scope="
        );
    }

    #[test]
    fn redirect_uri_with_a_query_survives_a_round_trip() {
        let redirect = "https://a.test/cb?tenant=1&next=/x y";
        let url = AuthorizeUrl::from_settings(&settings().redirect_uri(redirect))
            .unwrap()
            .generate("s", None);
        let found = pairs(&url)
            .into_iter()
            .find(|(k, _)| k == "redirect_uri")
            .unwrap();
        assert_eq!(found.1, redirect);
        assert_eq!(pairs(&url).len(), 5);
    }

    #[test]
    fn non_http_base_is_refused() {
        let error = AuthorizeUrl::from_settings(&settings().authorize_url("ftp://x/")).unwrap_err();
        assert!(error.to_string().starts_with("authorize_url"), "{error}");
    }
}
