//! `Installation` (one workspace's, org's or user's install of the app) and `Bot` (its bot part).
//!
//! Field names match slack_sdk's `Installation.to_dict()`, so JSON output and database columns
//! line up with the Python libraries. Tokens are [`secret`](crate::secret) types: `Debug` redacts
//! them and `Display` shows only ids.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{AppId, BotId, EnterpriseId, TeamId, UserId};
use crate::secret::{redacted_token, BotToken, RefreshToken, UserToken};

/// OAuth scopes, parsed from Slack's comma-separated form (`"chat:write,commands"`).
///
/// Parsing trims spaces and drops empty items, so `""` is the empty set and `"a,,b"` is `[a, b]`.
/// `Display` joins with `,` and no spaces, which is what slack_sdk writes to its databases.
///
/// ```
/// use slack_oauth::installation::Scopes;
/// let scopes = Scopes::parse("chat:write,commands");
/// assert!(scopes.contains("commands"));
/// assert_eq!(scopes.to_string(), "chat:write,commands");
/// assert!(Scopes::parse("").is_empty());
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Scopes(Arc<[String]>);

impl Scopes {
    /// Parses a comma-separated scope string.
    pub fn parse(value: &str) -> Self {
        Self(
            value
                .split(',')
                .map(str::trim)
                .filter(|scope| !scope.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    /// Whether the set holds `scope`.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    /// Whether there are no scopes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes in the order Slack gave them.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// The comma-joined form, or `None` when empty (how SQL columns and `to_dict()` store it).
    pub fn to_optional_string(&self) -> Option<String> {
        (!self.is_empty()).then(|| self.to_string())
    }
}

impl<S: Into<String>> FromIterator<S> for Scopes {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(Into::into)
                .filter(|s: &String| !s.trim().is_empty())
                .collect(),
        )
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

impl Serialize for Scopes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // slack_sdk's to_dict(): comma-joined, None when empty.
        self.to_optional_string().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Joined(String),
            List(Vec<String>),
        }
        Ok(match Option::<Wire>::deserialize(deserializer)? {
            None => Scopes::default(),
            Some(Wire::Joined(joined)) => Scopes::parse(&joined),
            Some(Wire::List(list)) => list.into_iter().collect(),
        })
    }
}

/// One installation of the app: a workspace, an Enterprise Grid org (org-wide install), or a
/// single user (user-token-only install).
///
/// Stores keep every saved version; the latest one (newest `installed_at`) is current.
///
/// ```
/// use slack_oauth::installation::Installation;
/// use slack_oauth::secret::BotToken;
///
/// let mut installation = Installation::new("U1234", time::OffsetDateTime::UNIX_EPOCH);
/// installation.team_id = Some("T1".into());
/// installation.bot_token = Some(BotToken::new("xoxb-1-2-secret"));
/// assert!(!format!("{installation:?}").contains("secret"));
/// assert_eq!(installation.to_bot().unwrap().bot_token.secret(), "xoxb-1-2-secret");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Installation {
    /// The app's id (`A…`).
    pub app_id: Option<AppId>,
    /// The org's id, for Enterprise Grid installs.
    pub enterprise_id: Option<EnterpriseId>,
    /// The org's name.
    pub enterprise_name: Option<String>,
    /// The org's URL (from `auth.test`), set for org-wide installs only.
    pub enterprise_url: Option<String>,
    /// The workspace's id; absent for org-wide installs.
    pub team_id: Option<TeamId>,
    /// The workspace's name.
    pub team_name: Option<String>,
    /// The bot token; absent for user-token-only installs.
    pub bot_token: Option<BotToken>,
    /// The bot's id (`B…`), from `auth.test`.
    pub bot_id: Option<BotId>,
    /// The bot's user id.
    pub bot_user_id: Option<UserId>,
    /// The bot token's scopes.
    pub bot_scopes: Scopes,
    /// The bot token's refresh token, when token rotation is on.
    pub bot_refresh_token: Option<RefreshToken>,
    /// When the bot token expires (whole seconds), when token rotation is on.
    #[serde(with = "time::serde::timestamp::option")]
    pub bot_token_expires_at: Option<OffsetDateTime>,
    /// The installing user.
    pub user_id: UserId,
    /// The installing user's token, when user scopes were requested.
    pub user_token: Option<UserToken>,
    /// The user token's scopes.
    pub user_scopes: Scopes,
    /// The user token's refresh token, when token rotation is on.
    pub user_refresh_token: Option<RefreshToken>,
    /// When the user token expires (whole seconds), when token rotation is on.
    #[serde(with = "time::serde::timestamp::option")]
    pub user_token_expires_at: Option<OffsetDateTime>,
    /// The incoming webhook URL, when the `incoming-webhook` scope was granted. It is a credential.
    pub incoming_webhook_url: Option<String>,
    /// The incoming webhook's channel name (`#general`).
    pub incoming_webhook_channel: Option<String>,
    /// The incoming webhook's channel id.
    pub incoming_webhook_channel_id: Option<String>,
    /// The incoming webhook's configuration URL.
    pub incoming_webhook_configuration_url: Option<String>,
    /// Whether this is an org-wide install (Enterprise Grid).
    pub is_enterprise_install: bool,
    /// The top-level `token_type` of the `oauth.v2.access` response (normally `bot`).
    pub token_type: Option<String>,
    /// When the installation was saved.
    #[serde(with = "unix_seconds_f64")]
    pub installed_at: OffsetDateTime,
    /// Free-form extra data. Kept in memory; the SQL stores do not persist it (as in slack_sdk).
    #[serde(default)]
    pub custom_values: serde_json::Map<String, serde_json::Value>,
    /// Set by the store when the bot token's grant was lost or revoked: the bot token is never
    /// sent to Slack again and the workspace must reinstall the app. Saving a new install
    /// clears it; `save` never writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_needs_reinstall: Option<ReinstallFlag>,
    /// Like [`bot_needs_reinstall`](Self::bot_needs_reinstall), for the user token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_needs_reinstall: Option<ReinstallFlag>,
}

/// Why and when a token was marked as needing a reinstall: its refresh token was spent without
/// the new tokens being saved (the answer was lost), or Slack revoked the grant.
///
/// Set once per lost grant by [`Rotation`](crate::rotation::Rotation), in the store, so that
/// every instance sees it; cleared by the next install of the workspace (a new stored version
/// starts without it, whoever saves it, Python included).
///
/// ```
/// use slack_oauth::installation::ReinstallFlag;
/// let flag = ReinstallFlag::new("invalid_refresh_token", time::OffsetDateTime::UNIX_EPOCH);
/// assert_eq!(flag.reason, "invalid_refresh_token");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReinstallFlag {
    /// Slack's error string (`invalid_refresh_token`, `token_revoked`...) or a short
    /// description such as `answer_lost`; never a token.
    pub reason: String,
    /// When the flag was set.
    #[serde(with = "time::serde::timestamp")]
    pub flagged_at: OffsetDateTime,
}

impl ReinstallFlag {
    /// A flag for `reason`, set at `flagged_at`.
    pub fn new(reason: impl Into<String>, flagged_at: OffsetDateTime) -> Self {
        Self {
            reason: reason.into(),
            flagged_at,
        }
    }
}

impl Installation {
    /// An installation by `user_id` at `installed_at`, every other field empty.
    pub fn new(user_id: impl Into<UserId>, installed_at: OffsetDateTime) -> Self {
        Self {
            app_id: None,
            enterprise_id: None,
            enterprise_name: None,
            enterprise_url: None,
            team_id: None,
            team_name: None,
            bot_token: None,
            bot_id: None,
            bot_user_id: None,
            bot_scopes: Scopes::default(),
            bot_refresh_token: None,
            bot_token_expires_at: None,
            user_id: user_id.into(),
            user_token: None,
            user_scopes: Scopes::default(),
            user_refresh_token: None,
            user_token_expires_at: None,
            incoming_webhook_url: None,
            incoming_webhook_channel: None,
            incoming_webhook_channel_id: None,
            incoming_webhook_configuration_url: None,
            is_enterprise_install: false,
            token_type: None,
            installed_at,
            custom_values: serde_json::Map::new(),
            bot_needs_reinstall: None,
            user_needs_reinstall: None,
        }
    }

    /// Whether any token of this installation is marked as needing a reinstall.
    pub fn needs_reinstall(&self) -> bool {
        self.bot_needs_reinstall.is_some() || self.user_needs_reinstall.is_some()
    }

    /// The bot part of this installation, or `None` for a user-token-only install.
    pub fn to_bot(&self) -> Option<Bot> {
        let bot_token = self.bot_token.clone()?;
        Some(Bot {
            app_id: self.app_id.clone(),
            enterprise_id: self.enterprise_id.clone(),
            enterprise_name: self.enterprise_name.clone(),
            team_id: self.team_id.clone(),
            team_name: self.team_name.clone(),
            bot_token,
            bot_id: self.bot_id.clone(),
            bot_user_id: self.bot_user_id.clone(),
            bot_scopes: self.bot_scopes.clone(),
            bot_refresh_token: self.bot_refresh_token.clone(),
            bot_token_expires_at: self.bot_token_expires_at,
            is_enterprise_install: self.is_enterprise_install,
            installed_at: self.installed_at,
            custom_values: self.custom_values.clone(),
            needs_reinstall: self.bot_needs_reinstall.clone(),
        })
    }

    /// Copies the bot fields of `bot` onto this installation (the store's "bot merge": a
    /// user-level record carries the workspace's current bot token).
    pub fn merge_bot(&mut self, bot: &Bot) {
        self.bot_token = Some(bot.bot_token.clone());
        self.bot_id = bot.bot_id.clone();
        self.bot_user_id = bot.bot_user_id.clone();
        self.bot_scopes = bot.bot_scopes.clone();
        self.bot_refresh_token = bot.bot_refresh_token.clone();
        self.bot_token_expires_at = bot.bot_token_expires_at;
        self.bot_needs_reinstall = bot.needs_reinstall.clone();
    }

    /// A copy with every token, refresh token and the webhook URL replaced by a redacted form,
    /// for printing (`slack-oauth installations show` without `--show-tokens`).
    pub fn redacted(&self) -> Self {
        let mut copy = self.clone();
        copy.bot_token = copy
            .bot_token
            .map(|t| BotToken::new(redacted_token(t.secret())));
        copy.user_token = copy
            .user_token
            .map(|t| UserToken::new(redacted_token(t.secret())));
        copy.bot_refresh_token = copy
            .bot_refresh_token
            .map(|t| RefreshToken::new(redacted_token(t.secret())));
        copy.user_refresh_token = copy
            .user_refresh_token
            .map(|t| RefreshToken::new(redacted_token(t.secret())));
        copy.incoming_webhook_url = copy.incoming_webhook_url.map(|_| "[redacted]".to_owned());
        copy
    }

    /// Reads a custom value.
    pub fn custom_value(&self, name: &str) -> Option<&serde_json::Value> {
        self.custom_values.get(name)
    }

    /// Sets a custom value.
    pub fn set_custom_value(&mut self, name: impl Into<String>, value: serde_json::Value) {
        self.custom_values.insert(name.into(), value);
    }
}

impl fmt::Display for Installation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "installation of app {}", display_opt(&self.app_id))?;
        if self.is_enterprise_install {
            write!(f, " org-wide in {}", display_opt(&self.enterprise_id))?;
        } else {
            write!(f, " in team {}", display_opt(&self.team_id))?;
            if let Some(enterprise_id) = &self.enterprise_id {
                write!(f, " (org {enterprise_id})")?;
            }
        }
        write!(f, " by user {}", self.user_id)?;
        let kinds = match (self.bot_token.is_some(), self.user_token.is_some()) {
            (true, true) => "bot and user tokens",
            (true, false) => "bot token",
            (false, true) => "user token",
            (false, false) => "no token",
        };
        write!(f, " with {kinds}")
    }
}

/// The bot part of an installation: what a workspace's (or org's) bot token needs.
///
/// ```
/// use slack_oauth::installation::{Bot, Scopes};
/// use slack_oauth::secret::BotToken;
///
/// let bot = Bot::new(BotToken::new("xoxb-1-2-secret"), time::OffsetDateTime::UNIX_EPOCH);
/// assert!(!format!("{bot:?} {bot}").contains("secret"));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Bot {
    /// The app's id.
    pub app_id: Option<AppId>,
    /// The org's id.
    pub enterprise_id: Option<EnterpriseId>,
    /// The org's name.
    pub enterprise_name: Option<String>,
    /// The workspace's id; absent for org-wide installs.
    pub team_id: Option<TeamId>,
    /// The workspace's name.
    pub team_name: Option<String>,
    /// The bot token.
    pub bot_token: BotToken,
    /// The bot's id (`B…`).
    pub bot_id: Option<BotId>,
    /// The bot's user id.
    pub bot_user_id: Option<UserId>,
    /// The bot token's scopes.
    pub bot_scopes: Scopes,
    /// The refresh token, when token rotation is on.
    pub bot_refresh_token: Option<RefreshToken>,
    /// When the bot token expires, when token rotation is on.
    #[serde(with = "time::serde::timestamp::option")]
    pub bot_token_expires_at: Option<OffsetDateTime>,
    /// Whether this is an org-wide install.
    pub is_enterprise_install: bool,
    /// When it was saved.
    #[serde(with = "unix_seconds_f64")]
    pub installed_at: OffsetDateTime,
    /// Free-form extra data (not persisted by the SQL stores).
    #[serde(default)]
    pub custom_values: serde_json::Map<String, serde_json::Value>,
    /// Set by the store when this bot token's grant was lost or revoked (see
    /// [`ReinstallFlag`]); `save_bot` never writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_reinstall: Option<ReinstallFlag>,
}

impl Bot {
    /// A bot with the given token and save time, every other field empty.
    pub fn new(bot_token: BotToken, installed_at: OffsetDateTime) -> Self {
        Self {
            app_id: None,
            enterprise_id: None,
            enterprise_name: None,
            team_id: None,
            team_name: None,
            bot_token,
            bot_id: None,
            bot_user_id: None,
            bot_scopes: Scopes::default(),
            bot_refresh_token: None,
            bot_token_expires_at: None,
            is_enterprise_install: false,
            installed_at,
            custom_values: serde_json::Map::new(),
            needs_reinstall: None,
        }
    }
}

impl fmt::Display for Bot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bot {}", display_opt(&self.bot_id))?;
        if self.is_enterprise_install {
            write!(f, " org-wide in {}", display_opt(&self.enterprise_id))
        } else {
            write!(f, " in team {}", display_opt(&self.team_id))
        }
    }
}

fn display_opt<T: fmt::Display>(value: &Option<T>) -> String {
    value
        .as_ref()
        .map_or_else(|| "-".to_owned(), ToString::to_string)
}

/// `installed_at` as fractional Unix seconds, the way slack_sdk's JSON stores write it.
mod unix_seconds_f64 {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    pub(super) fn serialize<S: Serializer>(at: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        let micros = at.unix_timestamp_nanos() / 1_000;
        #[allow(clippy::cast_precision_loss)] // microseconds fit in f64 for any real date
        s.serialize_f64(micros as f64 / 1_000_000.0)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let seconds = f64::deserialize(d)?;
        super::from_unix_seconds_f64(seconds)
            .ok_or_else(|| serde::de::Error::custom("installed_at is not a Unix time in seconds"))
    }
}

/// Fractional Unix seconds (as Python's `time()` gives them) to a time, rounded to the
/// microsecond Python keeps (rounding removes float noise such as `…0.2499999`); `None` for
/// NaN, infinities and times out of range. Found by fuzzing: a huge value once saturated the
/// integer cast and overflowed the product.
pub(crate) fn from_unix_seconds_f64(seconds: f64) -> Option<OffsetDateTime> {
    if !seconds.is_finite() {
        return None;
    }
    #[allow(clippy::cast_possible_truncation)] // a saturated cast fails the checked product
    let micros = (seconds * 1e6).round() as i128;
    let nanos = micros.checked_mul(1_000)?;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_installation() -> Installation {
        let mut i = Installation::new("U1", OffsetDateTime::UNIX_EPOCH);
        i.team_id = Some("T1".into());
        i.bot_token = Some(BotToken::new("xoxb-111-222-BOTSECRET"));
        i.bot_refresh_token = Some(RefreshToken::new("xoxe-1-BOTREFRESH"));
        i.user_token = Some(UserToken::new("xoxp-111-222-USERSECRET")); // fake: a sentinel
        i.user_refresh_token = Some(RefreshToken::new("xoxe-1-USERREFRESH"));
        i.bot_scopes = Scopes::parse("chat:write,commands");
        i
    }

    #[test]
    fn debug_and_display_show_no_token() {
        let i = full_installation();
        for shown in [
            format!("{i:?}"),
            format!("{i}"),
            format!("{:?}", i.to_bot()),
        ] {
            for secret in ["BOTSECRET", "BOTREFRESH", "USERSECRET", "USERREFRESH"] {
                assert!(!shown.contains(secret), "{secret} leaked in {shown}");
            }
        }
        assert!(format!("{i:?}").contains("xoxb-…(redacted)"));
    }

    #[test]
    fn redacted_copy_has_no_secret_in_json() {
        let json = serde_json::to_string(&full_installation().redacted()).unwrap();
        assert!(
            !json.contains("SECRET") && !json.contains("REFRESH"),
            "{json}"
        );
        assert!(
            json.contains("\"bot_scopes\":\"chat:write,commands\""),
            "{json}"
        );
    }

    #[test]
    fn to_bot_is_none_for_user_only_installs() {
        let mut i = full_installation();
        i.bot_token = None;
        assert!(i.to_bot().is_none());
    }

    #[test]
    fn scopes_parse_like_slack_sends_them() {
        assert_eq!(Scopes::parse("a,b").as_slice(), ["a", "b"]);
        assert!(Scopes::parse("").is_empty());
        assert_eq!(Scopes::parse(" a , ,b").to_string(), "a,b");
        assert_eq!(Scopes::parse("").to_optional_string(), None);
    }

    #[test]
    fn json_round_trip_keeps_every_field() {
        let mut i = full_installation();
        i.installed_at =
            OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_250_000_000).unwrap();
        i.bot_token_expires_at = Some(OffsetDateTime::from_unix_timestamp(1_700_043_200).unwrap());
        let json = serde_json::to_value(&i).unwrap();
        assert_eq!(json["installed_at"], serde_json::json!(1_700_000_000.25));
        let back: Installation = serde_json::from_value(json).unwrap();
        assert_eq!(back, i);
    }

    #[test]
    fn installed_at_out_of_range_is_an_error_not_a_panic() {
        let mut json = serde_json::to_value(full_installation()).unwrap();
        for huge in [1e300, -1e300, 1.7e32] {
            json["installed_at"] = serde_json::json!(huge);
            let error = serde_json::from_value::<Installation>(json.clone()).unwrap_err();
            assert!(error.to_string().contains("installed_at"), "{error}");
        }
    }
}
