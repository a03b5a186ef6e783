//! The state cookie: any configured name, state and Cookie headers. A match needs the exact
//! state under the cookie's name; a cookie the flow issues always matches its own state and no
//! other.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use slack_oauth::secret::StateValue;
use slack_oauth::settings::OAuthSettings;
use slack_oauth::state::StateCookie;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    cookie_name: Option<&'a str>,
    state: &'a str,
    headers: Vec<&'a str>,
    https: bool,
}

fuzz_target!(|input: Input<'_>| {
    let redirect_uri = if input.https {
        "https://app.example.com/slack/oauth_redirect"
    } else {
        "http://localhost:3000/slack/oauth_redirect"
    };
    let mut settings = OAuthSettings::new("111.222", "fuzz-secret").redirect_uri(redirect_uri);
    if let Some(name) = input.cookie_name {
        settings = settings.state_cookie_name(name);
    }
    if settings.validate().is_err() {
        return;
    }
    let cookie = StateCookie::from_settings(&settings);
    let state = StateValue::new(input.state);
    if cookie.is_valid_browser(&state, input.headers.iter().copied()) {
        assert!(
            input
                .headers
                .iter()
                .any(|header| header.contains(cookie.name()) && header.contains(input.state)),
            "matched a header without the cookie's name and state"
        );
    }
    if let Ok(set_cookie) = cookie.issue(&state) {
        let pair = set_cookie.split(';').next().unwrap_or_default();
        assert!(
            cookie.is_valid_browser(&state, [pair]),
            "an issued cookie does not match its own state"
        );
        let other = StateValue::new(format!("{}0", input.state));
        assert!(
            !cookie.is_valid_browser(&other, [pair]),
            "an issued cookie matches another state"
        );
    }
    let deletion = cookie.deletion();
    assert!(deletion.starts_with(&format!("{}=", cookie.name())));
});
