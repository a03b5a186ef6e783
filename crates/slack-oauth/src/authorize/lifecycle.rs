//! Lifecycle events: delete what Slack says is gone (`app_uninstalled`, `tokens_revoked`).
//!
//! Slack sends these Events API events when a workspace (or an org, for org-wide installs)
//! uninstalls the app or revokes tokens. The stored tokens no longer work, so they are deleted.
//! These events need no authorize (their tokens are already dead) and never trigger a refresh.
//! Deleting through an [`InstallationStore`] that caches (the authorize cache wrapper)
//! invalidates its entries too.
//!
//! ```
//! use slack_oauth::authorize::lifecycle::{self, LifecycleEvent};
//! use slack_oauth::store::{InstallationQuery, MemoryStore};
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let event = serde_json::json!({"type": "app_uninstalled"});
//! let event = LifecycleEvent::from_event(&event).unwrap();
//! lifecycle::apply(&MemoryStore::new(), &InstallationQuery::team("T1"), &event).await?;
//! # Ok::<_, slack_oauth::store::StoreError>(())
//! # }).unwrap();
//! ```

use serde::Deserialize;

use crate::ids::UserId;
use crate::store::{InstallationQuery, InstallationStore, StoreError};

/// A lifecycle event the app must act on.
///
/// ```
/// use slack_oauth::authorize::lifecycle::LifecycleEvent;
/// let event = serde_json::json!({"type": "app_uninstalled"});
/// assert_eq!(LifecycleEvent::from_event(&event), Some(LifecycleEvent::AppUninstalled));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LifecycleEvent {
    /// The app was uninstalled from the workspace (or the org, for an org-wide install).
    AppUninstalled,
    /// Some tokens were revoked.
    TokensRevoked {
        /// Users whose user tokens were revoked (`tokens.oauth`).
        oauth: Vec<UserId>,
        /// Bot user ids whose bot tokens were revoked (`tokens.bot`); non-empty means the
        /// workspace's bot token is gone.
        bot: Vec<UserId>,
    },
}

#[derive(Deserialize)]
struct RawTokens {
    #[serde(default)]
    oauth: Vec<UserId>,
    #[serde(default)]
    bot: Vec<UserId>,
}

impl LifecycleEvent {
    /// Reads the inner `event` object of an Events API payload. `None` when it is not a lifecycle
    /// event (or a `tokens_revoked` without a readable `tokens` object).
    ///
    /// ```
    /// use slack_oauth::authorize::lifecycle::LifecycleEvent;
    /// let event = serde_json::json!({
    ///     "type": "tokens_revoked",
    ///     "tokens": {"oauth": ["U1"], "bot": []}
    /// });
    /// assert_eq!(
    ///     LifecycleEvent::from_event(&event),
    ///     Some(LifecycleEvent::TokensRevoked { oauth: vec!["U1".into()], bot: vec![] }),
    /// );
    /// assert_eq!(LifecycleEvent::from_event(&serde_json::json!({"type": "message"})), None);
    /// ```
    pub fn from_event(event: &serde_json::Value) -> Option<Self> {
        match event.get("type")?.as_str()? {
            "app_uninstalled" => Some(Self::AppUninstalled),
            "tokens_revoked" => {
                let tokens = RawTokens::deserialize(event.get("tokens")?).ok()?;
                Some(Self::TokensRevoked {
                    oauth: tokens.oauth,
                    bot: tokens.bot,
                })
            }
            _ => None,
        }
    }

    /// Whether `event_type` (an inner event's `type`) names a lifecycle event.
    pub fn is_lifecycle_type(event_type: &str) -> bool {
        matches!(event_type, "app_uninstalled" | "tokens_revoked")
    }
}

/// Applies `event` to `store` for the workspace or org `workspace` (the request's ids; org-wide
/// when `workspace.is_enterprise_install`):
///
/// - `app_uninstalled`: [`delete_all`](InstallationStore::delete_all) of the workspace or org,
///   org-wide installs included;
/// - `tokens_revoked`: each listed user's installations, then the bot when `tokens.bot` is not
///   empty (and the bot part of the latest installation, saved again without it, so that the
///   revoked bot token is no longer returned).
///
/// # Errors
/// The store's error; the event should then be answered with a 5xx so that Slack retries it.
pub async fn apply<S: InstallationStore>(
    store: &S,
    workspace: &InstallationQuery,
    event: &LifecycleEvent,
) -> Result<(), StoreError> {
    let workspace = workspace.without_user();
    match event {
        LifecycleEvent::AppUninstalled => {
            tracing::info!(target: "slack_oauth::authorize", enterprise_id = ?workspace.enterprise_id, team_id = ?workspace.team_id, "app uninstalled: deleting its installations");
            store.delete_all(&workspace).await
        }
        LifecycleEvent::TokensRevoked { oauth, bot } => {
            for user_id in oauth {
                store
                    .delete_installation(&workspace.clone().user(user_id.clone()))
                    .await?;
            }
            if !bot.is_empty() {
                store.delete_bot(&workspace).await?;
                forget_bot_token(store, &workspace).await?;
            }
            tracing::info!(target: "slack_oauth::authorize", users = oauth.len(), bot = !bot.is_empty(), "tokens revoked: deleted them");
            Ok(())
        }
    }
}

/// After `delete_bot`, the latest installation row may still hold the revoked bot token (stores
/// return a workspace's latest installation with its own bot fields). A new version without the
/// bot part is saved so that authorize stops returning it; its user token is kept (only the bot
/// fields are removed, unlike W3).
async fn forget_bot_token<S: InstallationStore>(
    store: &S,
    workspace: &InstallationQuery,
) -> Result<(), StoreError> {
    let Some(mut latest) = store.find_installation(workspace).await? else {
        return Ok(());
    };
    if latest.bot_token.is_none() {
        return Ok(());
    }
    latest.bot_token = None;
    latest.bot_refresh_token = None;
    latest.bot_token_expires_at = None;
    latest.bot_id = None;
    latest.bot_user_id = None;
    latest.bot_scopes = crate::installation::Scopes::default();
    store.save(&latest).await
}
