//! `ConfigError`: why settings are incomplete or wrong.

/// Where the app's credentials are shown, for error messages.
pub(super) const CREDENTIALS_HINT: &str =
    "copy them from your app's Basic Information page at https://api.slack.com/apps";

/// The settings are incomplete or wrong.
///
/// ```
/// use slack_oauth::settings::ConfigError;
/// let error = ConfigError::Missing { names: vec!["SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"] };
/// assert_eq!(
///     error.to_string(),
///     "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are not set; \
///      copy them from your app's Basic Information page at https://api.slack.com/apps",
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Required values (the client id and secret) are not set. Lists every missing one.
    #[error("{} not set; {CREDENTIALS_HINT}", names_are(names))]
    Missing {
        /// The environment variables that are missing.
        names: Vec<&'static str>,
    },
    /// A setting has a value that cannot work.
    #[error("{}{} = {value:?} {problem}", setting, env_suffix(setting))]
    Invalid {
        /// The setting's name (the field of [`OAuthSettings`](super::OAuthSettings)).
        setting: &'static str,
        /// The offending value (never a secret: secrets are only checked for presence).
        value: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
}

fn names_are(names: &[&str]) -> String {
    match names {
        [one] => format!("{one} is"),
        [init @ .., last] => format!("{} and {last} are", init.join(", ")),
        [] => "required settings are".to_owned(),
    }
}

fn env_suffix(setting: &str) -> String {
    env_name(setting).map_or_else(String::new, |env| format!(" ({env})"))
}

/// Which environment variable sets a setting, for error messages.
fn env_name(setting: &str) -> Option<&'static str> {
    Some(match setting {
        "install_path" => "SLACK_INSTALL_PATH",
        "redirect_uri_path" => "SLACK_REDIRECT_URI_PATH",
        "authorize_url" => "SLACK_AUTHORIZE_URL",
        "redirect_uri" => "SLACK_REDIRECT_URI",
        "success_url" => "SLACK_SUCCESS_URL",
        "failure_url" => "SLACK_FAILURE_URL",
        _ => return None,
    })
}
