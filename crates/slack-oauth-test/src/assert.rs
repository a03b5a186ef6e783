//! Field-by-field assertions on installations and bots, naming the field that differs.
//!
//! Tokens are compared by value but printed only in redacted form, so a failing test never puts
//! a token in CI logs. `custom_values` are not compared: the SQL stores do not persist them.

use slack_oauth::installation::{Bot, Installation};

/// Asserts that `actual` has every field of `expected` (except `custom_values`).
///
/// ```
/// let installation = slack_oauth_test::fixtures::workspace("T1", "U1").build();
/// slack_oauth_test::assert::same_installation(&installation, &installation, "itself");
/// ```
#[track_caller]
pub fn same_installation(actual: &Installation, expected: &Installation, context: &str) {
    macro_rules! field {
        ($name:ident) => {
            assert!(
                actual.$name == expected.$name,
                "{context}: installation field `{}` differs: got {:?}, expected {:?}",
                stringify!($name),
                actual.$name,
                expected.$name,
            );
        };
    }
    field!(app_id);
    field!(enterprise_id);
    field!(enterprise_name);
    field!(enterprise_url);
    field!(team_id);
    field!(team_name);
    field!(bot_token);
    field!(bot_id);
    field!(bot_user_id);
    field!(bot_scopes);
    field!(bot_refresh_token);
    field!(bot_token_expires_at);
    field!(user_id);
    field!(user_token);
    field!(user_scopes);
    field!(user_refresh_token);
    field!(user_token_expires_at);
    field!(incoming_webhook_url);
    field!(incoming_webhook_channel);
    field!(incoming_webhook_channel_id);
    field!(incoming_webhook_configuration_url);
    field!(is_enterprise_install);
    field!(token_type);
    field!(installed_at);
}

/// Asserts that `actual` has every field of `expected` (except `custom_values`).
///
/// ```
/// let bot = slack_oauth_test::fixtures::workspace("T1", "U1").build().to_bot().unwrap();
/// slack_oauth_test::assert::same_bot(&bot, &bot, "itself");
/// ```
#[track_caller]
pub fn same_bot(actual: &Bot, expected: &Bot, context: &str) {
    macro_rules! field {
        ($name:ident) => {
            assert!(
                actual.$name == expected.$name,
                "{context}: bot field `{}` differs: got {:?}, expected {:?}",
                stringify!($name),
                actual.$name,
                expected.$name,
            );
        };
    }
    field!(app_id);
    field!(enterprise_id);
    field!(enterprise_name);
    field!(team_id);
    field!(team_name);
    field!(bot_token);
    field!(bot_id);
    field!(bot_user_id);
    field!(bot_scopes);
    field!(bot_refresh_token);
    field!(bot_token_expires_at);
    field!(is_enterprise_install);
    field!(installed_at);
}

/// The bot token's value, for comparing with a fixture token.
pub fn bot_token(installation: &Installation) -> Option<&str> {
    installation.bot_token.as_ref().map(|t| t.secret())
}

/// The user token's value, for comparing with a fixture token.
pub fn user_token(installation: &Installation) -> Option<&str> {
    installation.user_token.as_ref().map(|t| t.secret())
}

/// The value of the sample `name{labels}` in a Prometheus text page (0 when absent), as a test
/// reads a `/metrics` page.
///
/// ```
/// let page = "slack_oauth_installs_total{outcome=\"success\"} 2\n";
/// assert_eq!(
///     slack_oauth_test::assert::prometheus_sample(page, r#"slack_oauth_installs_total{outcome="success"}"#),
///     2.0
/// );
/// ```
pub fn prometheus_sample(page: &str, name_and_labels: &str) -> f64 {
    page.lines()
        .filter_map(|line| line.strip_prefix(name_and_labels))
        .filter_map(|rest| rest.strip_prefix(' '))
        .find_map(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}
