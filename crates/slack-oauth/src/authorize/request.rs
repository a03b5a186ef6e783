//! `AuthorizeRequest` (who is asking) and `AuthorizeResult` (the tokens to answer with).

use crate::ids::{BotId, EnterpriseId, TeamId, UserId};
use crate::installation::Scopes;
use crate::secret::{AccessToken, BotToken, UserToken};
use crate::store::InstallationQuery;

/// The ids of an incoming Slack request that authorize needs.
///
/// Build one with [`team`](Self::team) or [`org`](Self::org) and the chained setters, or take
/// it from a request body with the request-id extraction of this module.
///
/// ```
/// use slack_oauth::authorize::AuthorizeRequest;
/// let request = AuthorizeRequest::team("T1").enterprise("E1").user("U1");
/// assert_eq!(request.team_id.as_ref().unwrap().as_str(), "T1");
/// assert!(!AuthorizeRequest::org("E1").user("U1").team_id.is_some());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct AuthorizeRequest {
    /// The org, for Enterprise Grid.
    pub enterprise_id: Option<EnterpriseId>,
    /// The workspace.
    pub team_id: Option<TeamId>,
    /// The user who triggered the request, when there is one (many events have none).
    pub user_id: Option<UserId>,
    /// Whether the app is installed org-wide in the request's org.
    pub is_enterprise_install: bool,
    /// The acting user's org (Slack Connect: may differ from the app's); used in
    /// [`UserTokenResolution::Actor`](super::UserTokenResolution::Actor) mode.
    pub actor_enterprise_id: Option<EnterpriseId>,
    /// The acting user's workspace; used in actor mode.
    pub actor_team_id: Option<TeamId>,
    /// The acting user; used in actor mode.
    pub actor_user_id: Option<UserId>,
}

impl AuthorizeRequest {
    /// A request from workspace `team_id`.
    pub fn team(team_id: impl Into<TeamId>) -> Self {
        Self {
            team_id: Some(team_id.into()),
            ..Self::default()
        }
    }

    /// A request through the org-wide install of `enterprise_id`.
    pub fn org(enterprise_id: impl Into<EnterpriseId>) -> Self {
        Self {
            enterprise_id: Some(enterprise_id.into()),
            is_enterprise_install: true,
            ..Self::default()
        }
    }

    /// Sets the org.
    #[must_use]
    pub fn enterprise(mut self, enterprise_id: impl Into<EnterpriseId>) -> Self {
        self.enterprise_id = Some(enterprise_id.into());
        self
    }

    /// Sets the workspace (also for org-wide requests, which come from one of the org's
    /// workspaces).
    #[must_use]
    pub fn in_team(mut self, team_id: impl Into<TeamId>) -> Self {
        self.team_id = Some(team_id.into());
        self
    }

    /// Sets the requesting user.
    #[must_use]
    pub fn user(mut self, user_id: impl Into<UserId>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// Sets the acting user and their org and workspace (actor mode).
    #[must_use]
    pub fn actor(
        mut self,
        enterprise_id: Option<EnterpriseId>,
        team_id: Option<TeamId>,
        user_id: impl Into<UserId>,
    ) -> Self {
        self.actor_enterprise_id = enterprise_id;
        self.actor_team_id = team_id;
        self.actor_user_id = Some(user_id.into());
        self
    }

    /// The store query for the request's workspace or org, without a user.
    pub fn workspace_query(&self) -> InstallationQuery {
        InstallationQuery {
            enterprise_id: self.enterprise_id.clone(),
            team_id: self.team_id.clone(),
            user_id: None,
            is_enterprise_install: self.is_enterprise_install,
        }
    }
}

/// What a request is authorized with: the workspace's bot token and, when the requesting user
/// installed the app with user scopes, their user token.
///
/// `Debug` redacts the tokens.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct AuthorizeResult {
    /// The org, for Enterprise Grid.
    pub enterprise_id: Option<EnterpriseId>,
    /// The workspace; absent for org-wide installs.
    pub team_id: Option<TeamId>,
    /// Whether the tokens come from an org-wide install.
    pub is_enterprise_install: bool,
    /// The bot token; absent for user-token-only installs.
    pub bot_token: Option<BotToken>,
    /// The bot's id.
    pub bot_id: Option<BotId>,
    /// The bot's user id.
    pub bot_user_id: Option<UserId>,
    /// The bot token's scopes.
    pub bot_scopes: Scopes,
    /// The user the user token belongs to, when there is a user token.
    pub user_id: Option<UserId>,
    /// The requesting user's own token, when they installed the app with user scopes.
    pub user_token: Option<UserToken>,
    /// The user token's scopes.
    pub user_scopes: Scopes,
}

impl AuthorizeResult {
    /// The token to call the Web API with: the bot token, or else the user token (Bolt's
    /// `context.token`), typed so that it reaches the API client without passing through a
    /// `&str` anyone could log.
    pub fn token(&self) -> Option<AccessToken> {
        self.bot_token
            .as_ref()
            .map(AccessToken::from)
            .or_else(|| self.user_token.as_ref().map(AccessToken::from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_token() {
        let result = AuthorizeResult {
            enterprise_id: None,
            team_id: Some("T1".into()),
            is_enterprise_install: false,
            bot_token: Some(BotToken::new("xoxb-1-BOTSECRET")),
            bot_id: None,
            bot_user_id: None,
            bot_scopes: Scopes::default(),
            user_id: Some("U1".into()),
            user_token: Some(UserToken::new("xoxp-1-USERSECRET")),
            user_scopes: Scopes::default(),
        };
        let shown = format!("{result:?}");
        assert!(
            !shown.contains("BOTSECRET") && !shown.contains("USERSECRET"),
            "{shown}"
        );
        assert!(shown.contains("T1"), "{shown}");
        assert_eq!(result.token().unwrap().secret(), "xoxb-1-BOTSECRET");
    }

    #[test]
    fn user_token_is_the_token_without_a_bot() {
        let mut result = AuthorizeResult {
            enterprise_id: None,
            team_id: None,
            is_enterprise_install: false,
            bot_token: None,
            bot_id: None,
            bot_user_id: None,
            bot_scopes: Scopes::default(),
            user_id: None,
            user_token: None,
            user_scopes: Scopes::default(),
        };
        assert!(result.token().is_none());
        result.user_token = Some(UserToken::new("xoxp-1"));
        assert_eq!(result.token().unwrap().secret(), "xoxp-1");
    }
}
