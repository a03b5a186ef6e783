//! A counting fake `TokenRefresher` that persists in place like token rotation does.

use std::sync::{Arc, Mutex};

use slack_oauth::authorize::{RefreshError, TokenRefresher};
use slack_oauth::installation::{Bot, Installation};
use slack_oauth::secret::{BotToken, RefreshToken, UserToken};
use slack_oauth::store::{InstallationStore, RotatedToken, TokenUpdate};
use slack_oauth_test::fixtures::at;
use time::OffsetDateTime;

/// How the fake answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Refreshes and writes the new tokens in place.
    Refresh,
    /// Answers "reinstall needed" (`invalid_refresh_token`).
    Revoked,
    /// Answers a transient failure.
    Unavailable,
}

/// Refreshes every part of the given record that holds a refresh token and expires at or before
/// `deadline`, records each refresh token it redeems, and writes the result with
/// `update_rotated_token` (never `save`).
#[derive(Clone)]
pub struct CountingRefresher<S> {
    store: S,
    deadline: OffsetDateTime,
    mode: Mode,
    redeemed: Arc<Mutex<Vec<String>>>,
}

/// Where refreshed tokens expire.
pub fn fresh_expiry() -> OffsetDateTime {
    at(1_000_000)
}

impl<S: InstallationStore + Clone + 'static> CountingRefresher<S> {
    pub fn new(store: S, deadline: OffsetDateTime, mode: Mode) -> Self {
        Self {
            store,
            deadline,
            mode,
            redeemed: Arc::default(),
        }
    }

    /// The refresh tokens redeemed so far, in order.
    pub fn redeemed(&self) -> Vec<String> {
        self.redeemed.lock().unwrap().clone()
    }

    fn due(&self, refresh: Option<&RefreshToken>, expires_at: Option<OffsetDateTime>) -> bool {
        refresh.is_some() && expires_at.is_some_and(|at| at <= self.deadline)
    }

    fn redeem(&self, refresh: &RefreshToken) -> Result<RefreshToken, RefreshError> {
        self.redeemed
            .lock()
            .unwrap()
            .push(refresh.secret().to_owned());
        match self.mode {
            Mode::Refresh => Ok(RefreshToken::new(format!("{}-r", refresh.secret()))),
            Mode::Revoked => Err(RefreshError::ReinstallNeeded {
                reason: "invalid_refresh_token".into(),
            }),
            Mode::Unavailable => Err(RefreshError::Failed("slack unreachable".into())),
        }
    }

    async fn persist(
        &self,
        enterprise: &Option<slack_oauth::ids::EnterpriseId>,
        team: &Option<slack_oauth::ids::TeamId>,
        previous: &RefreshToken,
        token: RotatedToken,
        refresh: &RefreshToken,
    ) {
        let update = TokenUpdate {
            enterprise_id: enterprise.clone(),
            team_id: team.clone(),
            previous_refresh_token: previous.clone(),
            token,
            refresh_token: refresh.clone(),
            expires_at: Some(fresh_expiry()),
        };
        assert!(self.store.update_rotated_token(&update).await.unwrap());
    }
}

impl<S: InstallationStore + Clone + 'static> TokenRefresher for CountingRefresher<S> {
    async fn refresh_installation(&self, i: &Installation) -> Result<Installation, RefreshError> {
        let mut out = i.clone();
        if self.due(i.bot_refresh_token.as_ref(), i.bot_token_expires_at) {
            let previous = i.bot_refresh_token.clone().unwrap();
            let refresh = self.redeem(&previous)?;
            let token = BotToken::new(format!("{}-r", i.bot_token.as_ref().unwrap().secret()));
            let rotated = RotatedToken::Bot {
                token: token.clone(),
            };
            self.persist(&i.enterprise_id, &i.team_id, &previous, rotated, &refresh)
                .await;
            out.bot_token = Some(token);
            out.bot_refresh_token = Some(refresh);
            out.bot_token_expires_at = Some(fresh_expiry());
        }
        if self.due(i.user_refresh_token.as_ref(), i.user_token_expires_at) {
            let previous = i.user_refresh_token.clone().unwrap();
            let refresh = self.redeem(&previous)?;
            let token = UserToken::new(format!("{}-r", i.user_token.as_ref().unwrap().secret()));
            let rotated = RotatedToken::User {
                user_id: i.user_id.clone(),
                token: token.clone(),
            };
            self.persist(&i.enterprise_id, &i.team_id, &previous, rotated, &refresh)
                .await;
            out.user_token = Some(token);
            out.user_refresh_token = Some(refresh);
            out.user_token_expires_at = Some(fresh_expiry());
        }
        Ok(out)
    }

    async fn refresh_bot(&self, bot: &Bot) -> Result<Bot, RefreshError> {
        let mut out = bot.clone();
        if self.due(bot.bot_refresh_token.as_ref(), bot.bot_token_expires_at) {
            let previous = bot.bot_refresh_token.clone().unwrap();
            let refresh = self.redeem(&previous)?;
            let token = BotToken::new(format!("{}-r", bot.bot_token.secret()));
            let rotated = RotatedToken::Bot {
                token: token.clone(),
            };
            self.persist(
                &bot.enterprise_id,
                &bot.team_id,
                &previous,
                rotated,
                &refresh,
            )
            .await;
            out.bot_token = token;
            out.bot_refresh_token = Some(refresh);
            out.bot_token_expires_at = Some(fresh_expiry());
        }
        Ok(out)
    }
}
