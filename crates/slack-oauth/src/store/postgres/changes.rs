//! `PostgresStore::changes`: the `slack_oauth_changes` notifications, as a stream.

use std::time::Duration;

use futures::Stream;
use sqlx::postgres::{PgListener, PgNotification};

use super::PostgresStore;
use crate::ids::ClientId;
use crate::store::{InstallationQuery, StoreChange, StoreError};

/// The channel the migration's triggers notify.
const CHANNEL: &str = "slack_oauth_changes";
/// The wait between reconnection attempts while the database is unreachable.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

/// A notification's payload, written by `slack_oauth_notify_change()`.
#[derive(serde::Deserialize)]
struct Payload {
    client_id: String,
    enterprise_id: Option<String>,
    team_id: Option<String>,
    is_enterprise_install: Option<bool>,
}

impl PostgresStore {
    /// Every change to this app's installations and bots, by any writer on the database
    /// (another instance, a `slack-oauth` command, a Python slack_sdk app): one
    /// [`StoreChange::Workspace`] per changed workspace or org and transaction, delivered when
    /// the transaction commits, on a connection of its own (`LISTEN slack_oauth_changes`).
    /// When that connection drops, the stream yields [`StoreChange::Missed`] (notifications may
    /// have been lost) and reconnects, every second while the database is unreachable. It never
    /// ends.
    ///
    /// A `PostgresStore` notifies its own writes right after each commits, in a transaction of
    /// its own that does not wait for a disk flush (a `NOTIFY` inside the write would hold
    /// PostgreSQL's notification lock through the write's durable commit and serialize all
    /// concurrent saves); the schema's triggers notify the writes of every other session (a
    /// Python slack_sdk app, psql, a store on the app's pool from
    /// [`from_pool`](Self::from_pool)). A process killed between a write and its notification,
    /// or a notification that fails, leaves other caches on their TTL for that workspace.
    ///
    /// [`CachedStore::follow_changes`](crate::CachedStore::follow_changes) applies it to an
    /// authorize cache, which [`SlackApp`](crate::SlackApp) does on PostgreSQL.
    ///
    /// # Errors
    /// A database error when the first connection cannot be made or `LISTEN` fails.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), slack_oauth::store::StoreError> {
    /// use futures::StreamExt as _;
    /// let store = slack_oauth::PostgresStore::connect("postgres://localhost/app", "111.222").await?;
    /// let mut changes = std::pin::pin!(store.changes().await?);
    /// while let Some(change) = changes.next().await {
    ///     println!("{change:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn changes(
        &self,
    ) -> Result<impl Stream<Item = StoreChange> + Send + 'static, StoreError> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANNEL).await?;
        let client_id = self.client_id.clone();
        Ok(futures::stream::unfold(
            (listener, client_id, true),
            |(mut listener, client_id, connected)| async move {
                loop {
                    match listener.try_recv().await {
                        Ok(Some(notification)) => {
                            let change = workspace_change(&notification, &client_id);
                            if !connected {
                                // Back after errors: what was notified meanwhile is lost (this
                                // change included, which forgetting everything covers).
                                return Some((StoreChange::Missed, (listener, client_id, true)));
                            }
                            if let Some(change) = change {
                                return Some((change, (listener, client_id, connected)));
                            }
                        }
                        // The connection dropped; the next call reconnects.
                        Ok(None) => {
                            return Some((StoreChange::Missed, (listener, client_id, connected)))
                        }
                        Err(error) => {
                            let first = connected;
                            if first {
                                tracing::warn!(%error, "the change notifications stopped; caches fall back to their TTL until they resume");
                            }
                            tokio::time::sleep(RECONNECT_EVERY).await;
                            if first {
                                return Some((StoreChange::Missed, (listener, client_id, false)));
                            }
                        }
                    }
                }
            },
        ))
    }
}

/// The workspace a notification is about, if it is this app's and well formed.
fn workspace_change(notification: &PgNotification, client_id: &ClientId) -> Option<StoreChange> {
    let payload: Payload = match serde_json::from_str(notification.payload()) {
        Ok(payload) => payload,
        Err(error) => {
            tracing::warn!(%error, "an unreadable change notification; ignored");
            return None;
        }
    };
    if payload.client_id != client_id.as_str() {
        return None;
    }
    let is_enterprise_install = payload.is_enterprise_install.unwrap_or(false);
    Some(StoreChange::Workspace(InstallationQuery {
        enterprise_id: payload.enterprise_id.map(Into::into),
        team_id: payload.team_id.map(Into::into),
        user_id: None,
        is_enterprise_install,
    }))
}
