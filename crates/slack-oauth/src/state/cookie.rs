//! `StateCookie`: the cookie that binds an issued state to the browser that started the install.

use std::fmt;
use std::time::Duration;

use subtle::ConstantTimeEq as _;

use crate::secret::StateValue;
use crate::settings::{
    OAuthSettings, SameSite, DEFAULT_STATE_COOKIE_NAME, DEFAULT_STATE_EXPIRATION,
};

/// Builds the state cookie's `Set-Cookie` values and checks a callback's `Cookie` header.
///
/// The attributes come in Bolt's order, `SameSite` last:
///
/// ```
/// use slack_oauth::secret::StateValue;
/// use slack_oauth::state::StateCookie;
///
/// let cookie = StateCookie::default();
/// let state = StateValue::new("state-value");
/// assert_eq!(
///     cookie.issue(&state)?,
///     "slack-app-oauth-state=state-value; Secure; HttpOnly; Path=/; Max-Age=600; SameSite=Lax",
/// );
/// assert_eq!(
///     cookie.deletion(),
///     "slack-app-oauth-state=deleted; Secure; HttpOnly; Path=/; \
///      Expires=Thu, 01 Jan 1970 00:00:00 GMT; SameSite=Lax",
/// );
/// assert!(cookie.is_valid_browser(&state, ["a=1; slack-app-oauth-state=state-value"]));
/// assert!(!cookie.is_valid_browser(&state, ["slack-app-oauth-state=other"]));
/// # Ok::<_, slack_oauth::state::UnsafeStateValue>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateCookie {
    name: String,
    max_age: Duration,
    secure: bool,
    same_site: Option<SameSite>,
}

impl Default for StateCookie {
    /// `slack-app-oauth-state`, 600 s, `Secure`, `SameSite=Lax`.
    fn default() -> Self {
        Self::new(DEFAULT_STATE_COOKIE_NAME)
    }
}

impl StateCookie {
    /// A cookie with the given name, `Max-Age=600`, `Secure` and `SameSite=Lax`.
    ///
    /// The name is not checked here; [`OAuthSettings::validate`] checks the configured one.
    ///
    /// ```
    /// let cookie = slack_oauth::state::StateCookie::new("__Host-slack-app-oauth-state");
    /// assert_eq!(cookie.name(), "__Host-slack-app-oauth-state");
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            max_age: DEFAULT_STATE_EXPIRATION,
            secure: true,
            same_site: Some(SameSite::Lax),
        }
    }

    /// The cookie the settings describe: [`resolved_state_cookie_name`](OAuthSettings::resolved_state_cookie_name), `state_expiration`,
    /// `state_cookie_secure` and `state_cookie_same_site`.
    ///
    /// ```
    /// use slack_oauth::settings::OAuthSettings;
    /// use slack_oauth::state::StateCookie;
    /// let settings = OAuthSettings::new("1", "2").state_cookie_secure(false);
    /// let cookie = StateCookie::from_settings(&settings);
    /// assert_eq!(cookie.deletion(), "slack-app-oauth-state=deleted; HttpOnly; Path=/; \
    ///     Expires=Thu, 01 Jan 1970 00:00:00 GMT; SameSite=Lax");
    /// ```
    pub fn from_settings(settings: &OAuthSettings) -> Self {
        Self {
            name: settings.resolved_state_cookie_name().to_owned(),
            max_age: settings.state_expiration,
            secure: settings.state_cookie_secure,
            same_site: Some(settings.state_cookie_same_site),
        }
    }

    /// Sets `Max-Age` (whole seconds).
    ///
    /// ```
    /// # use slack_oauth::{secret::StateValue, state::StateCookie};
    /// let cookie = StateCookie::default().max_age(std::time::Duration::from_secs(60));
    /// assert!(cookie.issue(&StateValue::new("s"))?.contains("; Max-Age=60;"));
    /// # Ok::<_, slack_oauth::state::UnsafeStateValue>(())
    /// ```
    #[must_use]
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Sets whether the cookie carries `Secure`.
    ///
    /// ```
    /// # use slack_oauth::{secret::StateValue, state::StateCookie};
    /// let cookie = StateCookie::default().secure(false);
    /// assert!(!cookie.issue(&StateValue::new("s"))?.contains("Secure"));
    /// # Ok::<_, slack_oauth::state::UnsafeStateValue>(())
    /// ```
    #[must_use]
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Sets `SameSite`, or leaves it out with `None` (exactly Bolt's cookie).
    ///
    /// ```
    /// # use slack_oauth::{secret::StateValue, state::StateCookie};
    /// let cookie = StateCookie::default().same_site(None);
    /// assert_eq!(
    ///     cookie.issue(&StateValue::new("state-value"))?,
    ///     "slack-app-oauth-state=state-value; Secure; HttpOnly; Path=/; Max-Age=600",
    /// );
    /// # Ok::<_, slack_oauth::state::UnsafeStateValue>(())
    /// ```
    #[must_use]
    pub fn same_site(mut self, same_site: Option<SameSite>) -> Self {
        self.same_site = same_site;
        self
    }

    /// The cookie's name.
    ///
    /// ```
    /// assert_eq!(slack_oauth::state::StateCookie::default().name(), "slack-app-oauth-state");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `Set-Cookie` value that hands `state` to the browser.
    ///
    /// The value is written raw, as the other SDKs do, so it must be a valid cookie value:
    /// states from this crate's stores always are; a custom store's value with a space, `"`,
    /// `,`, `;`, `\` or a control character is refused.
    ///
    /// ```
    /// # use slack_oauth::{secret::StateValue, state::StateCookie};
    /// assert!(StateCookie::default().issue(&StateValue::new("a;b")).is_err());
    /// ```
    ///
    /// # Security
    /// The returned string holds the state: send it, never log it.
    pub fn issue(&self, state: &StateValue) -> Result<String, UnsafeStateValue> {
        if !is_cookie_value(state.secret()) {
            return Err(UnsafeStateValue);
        }
        let mut cookie = format!(
            "{}={}{}; HttpOnly; Path=/; Max-Age={}",
            self.name,
            state.secret(),
            if self.secure { "; Secure" } else { "" },
            self.max_age.as_secs(),
        );
        self.push_same_site(&mut cookie);
        Ok(cookie)
    }

    /// The `Set-Cookie` value that deletes the cookie, sent with every callback outcome.
    ///
    /// ```
    /// # use slack_oauth::state::StateCookie;
    /// assert!(StateCookie::default().deletion().starts_with("slack-app-oauth-state=deleted; "));
    /// ```
    pub fn deletion(&self) -> String {
        let mut cookie = format!(
            "{}=deleted{}; HttpOnly; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            self.name,
            if self.secure { "; Secure" } else { "" },
        );
        self.push_same_site(&mut cookie);
        cookie
    }

    fn push_same_site(&self, cookie: &mut String) {
        if let Some(same_site) = self.same_site {
            cookie.push_str("; SameSite=");
            cookie.push_str(match same_site {
                SameSite::Strict => "Strict",
                SameSite::Lax => "Lax",
                SameSite::None => "None",
            });
        }
    }

    /// Whether the request's `Cookie` header values hold this cookie with exactly `state`: the
    /// callback comes from the browser the install started in.
    ///
    /// Each header value is read by the [`cookie`] crate ([`Cookie::split_parse`]): split on
    /// `;`, name and value trimmed, the value optionally in one pair of double quotes
    /// (browsers quote some values). Other cookies, malformed pieces and duplicates are
    /// ignored; a match anywhere is enough; a comma-joined list does not match. The value
    /// comparison takes constant time.
    ///
    /// [`Cookie::split_parse`]: cookie::Cookie::split_parse
    ///
    /// ```
    /// # use slack_oauth::{secret::StateValue, state::StateCookie};
    /// let cookie = StateCookie::default();
    /// let state = StateValue::new("abc");
    /// assert!(cookie.is_valid_browser(&state, ["a=1;slack-app-oauth-state=abc ; b=2"]));
    /// assert!(cookie.is_valid_browser(&state, ["x=y", "slack-app-oauth-state=\"abc\""]));
    /// assert!(!cookie.is_valid_browser(&state, ["slack-app-oauth-state=abcd"]));
    /// assert!(!cookie.is_valid_browser(&state, ["a=1, slack-app-oauth-state=abc"]));
    /// assert!(!cookie.is_valid_browser(&state, Vec::<&str>::new()));
    /// ```
    pub fn is_valid_browser<'a>(
        &self,
        state: &StateValue,
        cookie_headers: impl IntoIterator<Item = &'a str>,
    ) -> bool {
        let expected = state.secret().as_bytes();
        let mut found = false;
        for piece in cookie_headers
            .into_iter()
            .flat_map(cookie::Cookie::split_parse)
            .flatten()
        {
            if piece.name() == self.name {
                // Keep looking after a match so timing does not tell which duplicate matched.
                found |= bool::from(piece.value_trimmed().as_bytes().ct_eq(expected));
            }
        }
        found
    }
}

/// Whether `value` can go into a cookie unquoted (RFC 6265 `cookie-octet`s only).
fn is_cookie_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E))
}

/// A state value cannot go into a cookie: it holds a space, `"`, `,`, `;`, `\`, a control or a
/// non-ASCII character. Only custom state stores can produce one.
#[derive(Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the state store issued a state that is not a valid cookie value; \
     issue URL-safe states (letters, digits, '-', '_')"
)]
pub struct UnsafeStateValue;

impl fmt::Debug for UnsafeStateValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UnsafeStateValue")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(value: &str) -> StateValue {
        StateValue::new(value)
    }

    const NAME: &str = "slack-app-oauth-state";

    #[test]
    fn builders_change_only_their_attribute() {
        let cookie = StateCookie::new("c").max_age(Duration::from_secs(5));
        assert_eq!(cookie.name(), "c");
        assert_eq!(
            cookie.issue(&state("v")).unwrap(),
            "c=v; Secure; HttpOnly; Path=/; Max-Age=5; SameSite=Lax"
        );
        let plain = StateCookie::new("d").secure(false);
        assert_eq!(plain.name(), "d");
        assert_eq!(
            plain.issue(&state("v")).unwrap(),
            "d=v; HttpOnly; Path=/; Max-Age=600; SameSite=Lax"
        );
        assert_eq!(format!("{UnsafeStateValue:?}"), "UnsafeStateValue");
    }

    #[test]
    fn issue_cookie_has_bolt_attributes_and_same_site() {
        assert_eq!(
            StateCookie::default().issue(&state("state-value")).unwrap(),
            "slack-app-oauth-state=state-value; Secure; HttpOnly; Path=/; Max-Age=600; SameSite=Lax"
        );
        // Exactly Bolt's string when SameSite is left out.
        assert_eq!(
            StateCookie::default()
                .same_site(None)
                .issue(&state("state-value"))
                .unwrap(),
            "slack-app-oauth-state=state-value; Secure; HttpOnly; Path=/; Max-Age=600"
        );
    }

    #[test]
    fn deletion_cookie_is_bolts_plus_same_site() {
        assert_eq!(
            StateCookie::default().same_site(None).deletion(),
            "slack-app-oauth-state=deleted; Secure; HttpOnly; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        );
        assert_eq!(
            StateCookie::new("c").same_site(Some(SameSite::Strict)).deletion(),
            "c=deleted; Secure; HttpOnly; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; SameSite=Strict"
        );
    }

    #[test]
    fn settings_shape_the_cookie() {
        let settings = OAuthSettings::new("1", "2")
            .state_cookie_name("__Host-state")
            .state_expiration(Duration::from_secs(120))
            .state_cookie_same_site(SameSite::Strict);
        assert_eq!(
            StateCookie::from_settings(&settings)
                .issue(&state("s"))
                .unwrap(),
            "__Host-state=s; Secure; HttpOnly; Path=/; Max-Age=120; SameSite=Strict"
        );
    }

    #[test]
    fn unsafe_state_values_are_refused() {
        for bad in ["a b", "a;b", "a,b", "a\"b", "a\\b", "a\nb", "é"] {
            assert!(
                StateCookie::default().issue(&state(bad)).is_err(),
                "{bad:?}"
            );
        }
        assert!(StateCookie::default()
            .issue(&state("AZaz09-_.~!#$%&'()*+/:<=>?@[]^`{|}"))
            .is_ok());
        assert!(!format!("{UnsafeStateValue:?} {UnsafeStateValue}").contains("a;b"));
    }

    #[test]
    fn matching_cookie_passes_as_string_or_list() {
        let cookie = StateCookie::default();
        let s = state("state-value");
        assert!(cookie.is_valid_browser(&s, [format!("{NAME}=state-value").as_str()]));
        assert!(cookie.is_valid_browser(&s, ["a=b", &format!("{NAME}=state-value")]));
    }

    #[test]
    fn other_value_fails_as_string_or_list() {
        let cookie = StateCookie::default();
        let s = state("state-value");
        assert!(!cookie.is_valid_browser(&s, [format!("{NAME}=xxx").as_str()]));
        assert!(!cookie.is_valid_browser(&s, ["a=b", &format!("{NAME}=xxx")]));
        assert!(!cookie.is_valid_browser(&s, [format!("{NAME}=state-value-longer").as_str()]));
        assert!(!cookie.is_valid_browser(&s, [format!("{NAME}=state-valu").as_str()]));
    }

    #[test]
    fn missing_cookie_fails() {
        let cookie = StateCookie::default();
        let s = state("state-value");
        assert!(!cookie.is_valid_browser(&s, Vec::<&str>::new()));
        assert!(!cookie.is_valid_browser(&s, [""]));
        assert!(!cookie.is_valid_browser(&s, ["other=state-value"]));
        assert!(!cookie.is_valid_browser(&s, ["state-value"]));
        // Another cookie whose name merely ends with ours.
        assert!(!cookie.is_valid_browser(&s, [format!("x{NAME}=state-value").as_str()]));
    }

    #[test]
    fn quoted_values_pass() {
        let cookie = StateCookie::default();
        let s = state("c3RhdGU=");
        assert!(cookie.is_valid_browser(&s, [format!("{NAME}=\"c3RhdGU=\"").as_str()]));
        // An unbalanced quote is not stripped.
        assert!(!cookie.is_valid_browser(&s, [format!("{NAME}=\"c3RhdGU=").as_str()]));
    }

    #[test]
    fn extra_cookies_and_spaces_between_pieces_pass() {
        let cookie = StateCookie::default();
        assert!(cookie.is_valid_browser(&state("abc"), [format!("a=1;{NAME}=abc ; b=2").as_str()]));
        // Duplicates: any match is enough.
        assert!(
            cookie.is_valid_browser(&state("abc"), [format!("{NAME}=old; {NAME}=abc").as_str()])
        );
    }

    /// The `cookie` crate trims either side of `=`; the name and the value must still be
    /// exactly the cookie's and the state.
    #[test]
    fn spaces_around_equals_are_trimmed_and_nothing_else_is() {
        let cookie = StateCookie::default();
        for header in [
            format!("{NAME} =abc"),
            format!("{NAME}= abc"),
            format!("{NAME} = abc"),
        ] {
            assert!(
                cookie.is_valid_browser(&state("abc"), [header.as_str()]),
                "{header}"
            );
        }
        for header in [
            format!("{NAME}=a bc"),
            format!("{NAME}x=abc"),
            format!("x{NAME}=abc"),
            format!("{NAME}==abc"),
        ] {
            assert!(
                !cookie.is_valid_browser(&state("abc"), [header.as_str()]),
                "{header}"
            );
        }
    }

    #[test]
    fn comma_joined_list_fails() {
        let cookie = StateCookie::default();
        assert!(!cookie.is_valid_browser(&state("abc"), [format!("a=1, {NAME}=abc").as_str()]));
        assert!(!cookie.is_valid_browser(&state("abc"), [format!("{NAME}=abc, b=2").as_str()]));
    }

    #[test]
    fn empty_state_matches_an_empty_cookie_like_bolt() {
        // Bolt passes this pair; the state store then rejects "" (invalid_state).
        let cookie = StateCookie::default();
        assert!(cookie.is_valid_browser(&state(""), [format!("{NAME}=").as_str()]));
        assert!(!cookie.is_valid_browser(&state(""), [format!("{NAME}=abc").as_str()]));
    }
}
