//! Token rotation: refresh expiring bot and user tokens, exactly once across instances.
//!
//! - [`TokenRotator`]: the refresh itself (`oauth.v2.access` with `grant_type=refresh_token`),
//!   like slack_sdk's `TokenRotator` but strict: a wrong `token_type` or an incomplete answer
//!   is an error, and bot and user tokens are refreshed concurrently without losing one when
//!   the other fails.
//! - [`Rotation`]: rotation of stored installations. Each token is refreshed at most once even
//!   with many tasks and many processes asking at the same moment (an in-process single-flight,
//!   a store lease decided by the store's clock, a re-read under the lease and a compare-and-swap
//!   save), a refresh is sent only after a durable intent and under a lease that outlives its
//!   deadline, a refreshed token is never dropped on the floor (the save is retried for 60 s,
//!   and runs to completion even if the caller gives up), and a grant that is lost anyway is
//!   detected, marked as needing a reinstall and announced once ([`ReinstallNeeded`]).
//! - [`rotate_all`]: every expiring stored installation, as a stream of [`RotationEvent`]s, with
//!   bounded concurrency, within a budget of `oauth.v2.access` calls per minute that every
//!   instance on the store shares ([`Rotation::max_per_minute`]).
//!
//! Refresh tokens are single use: redeeming one twice fails (after Slack's grace period) and
//! can lock the installation out, which is why every refresh goes through [`Rotation`] in an
//! app that stores its installations.

use std::time::Duration;

use time::OffsetDateTime;

use crate::ids::{ClientId, EnterpriseId, TeamId, UserId};
use crate::installation::ReinstallFlag;

mod batch;
mod coordinator;
mod current;
mod error;
mod exchange;
mod flight;
mod rotator;
#[cfg(feature = "fuzzing")]
pub(crate) use rotator::checked_refresh;

pub use batch::{
    rotate_all, rotate_all_until, BatchOptions, BatchSummary, InstallationIds, RotationEvent,
};
pub use coordinator::{Rotation, REINSTALL_EVENT_TARGET};
pub use error::{RotationError, TokenKind};
pub use exchange::{long_lived_bot, long_lived_user, Exchanged};
pub use rotator::TokenRotator;

/// The event raised, once across every instance, when a token is marked as needing a
/// reinstall: a `tracing` warning with target [`REINSTALL_EVENT_TARGET`], and the
/// [`Rotation::on_reinstall_needed`] hook. It carries ids and the reason, never a token.
///
/// ```
/// use slack_oauth::installation::ReinstallFlag;
/// use slack_oauth::rotation::{ReinstallNeeded, TokenKind};
///
/// let event = ReinstallNeeded::new(
///     "111.222".into(),
///     TokenKind::Bot,
///     ReinstallFlag::new("invalid_refresh_token", time::OffsetDateTime::UNIX_EPOCH),
/// );
/// assert_eq!(
///     event.to_string(),
///     "the bot token of app 111.222 in team - (org -) needs the app to be reinstalled: \
///      invalid_refresh_token"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReinstallNeeded {
    /// The app.
    pub client_id: ClientId,
    /// The org, for Enterprise Grid.
    pub enterprise_id: Option<EnterpriseId>,
    /// The workspace; `None` for org-wide installs.
    pub team_id: Option<TeamId>,
    /// The user, for a user token.
    pub user_id: Option<UserId>,
    /// Which token.
    pub token: TokenKind,
    /// Why and when.
    pub flag: ReinstallFlag,
}

impl ReinstallNeeded {
    /// An event about `token` of `client_id`, with no org, team or user.
    pub fn new(client_id: ClientId, token: TokenKind, flag: ReinstallFlag) -> Self {
        Self {
            client_id,
            enterprise_id: None,
            team_id: None,
            user_id: None,
            token,
            flag,
        }
    }
}

impl std::fmt::Display for ReinstallNeeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = |value: Option<&str>| value.unwrap_or("-").to_owned();
        write!(f, "the {} token", self.token)?;
        if let Some(user) = &self.user_id {
            write!(f, " of user {user}")?;
        }
        write!(
            f,
            " of app {} in team {} (org {}) needs the app to be reinstalled: {}",
            self.client_id,
            id(self.team_id.as_ref().map(|t| t.as_str())),
            id(self.enterprise_id.as_ref().map(|e| e.as_str())),
            self.flag.reason
        )
    }
}

/// Whether a token expiring at `expires_at` must be refreshed at `now` with a `window` of
/// advance: `expires_at <= now + window`. A token without an expiry never is.
///
/// ```
/// use std::time::Duration;
/// use slack_oauth::rotation::needs_rotation;
/// use time::OffsetDateTime;
///
/// let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
/// let window = Duration::from_secs(7_200);
/// let at = |seconds| Some(now + time::Duration::seconds(seconds));
/// assert!(needs_rotation(at(7_200), now, window)); // exactly at the window's edge
/// assert!(!needs_rotation(at(7_201), now, window));
/// assert!(needs_rotation(at(-60), now, window)); // already expired
/// assert!(!needs_rotation(None, now, window)); // never expires
/// ```
pub fn needs_rotation(
    expires_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
    window: Duration,
) -> bool {
    let Some(expires_at) = expires_at else {
        return false;
    };
    // A window too large to represent covers every expiry.
    match time::Duration::try_from(window)
        .ok()
        .and_then(|window| now.checked_add(window))
    {
        Some(deadline) => expires_at <= deadline,
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::installation::ReinstallFlag;

    #[test]
    fn the_reinstall_event_names_ids_and_reason() {
        let mut event = ReinstallNeeded::new(
            "111.222".into(),
            TokenKind::User,
            ReinstallFlag::new("token_revoked", time::OffsetDateTime::UNIX_EPOCH),
        );
        event.team_id = Some("T1".into());
        event.enterprise_id = Some("E1".into());
        event.user_id = Some("U1".into());
        assert_eq!(
            event.to_string(),
            "the user token of user U1 of app 111.222 in team T1 (org E1) needs the app to be \
             reinstalled: token_revoked"
        );
    }
}
