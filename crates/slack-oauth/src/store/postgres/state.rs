//! `StateStore` for [`PostgresStore`]: OAuth states in slack_sdk's `slack_oauth_states` table.
//!
//! States are not scoped by client id: the table has no such column (as in slack_sdk), and a
//! state is a 128-bit random value that only its browser knows.

use std::sync::atomic::Ordering;

use time::OffsetDateTime;

use super::{to_db_time, PostgresStore};
use crate::secret::StateValue;
use crate::store::{new_state_value, StateStore, StoreError};

/// Every how many `issue` calls expired states are purged (slack_sdk never purges, W10), so
/// abandoned installs and bots hitting the install page cannot grow the table without bound.
const PURGE_EVERY: u64 = 64;

impl StateStore for PostgresStore {
    async fn issue(&self, expires_at: OffsetDateTime) -> Result<StateValue, StoreError> {
        let state = new_state_value();
        if self.issued.fetch_add(1, Ordering::Relaxed) % PURGE_EVERY == PURGE_EVERY - 1 {
            self.purge_expired(self.clock.now()).await?;
        }
        self.execute(
            sqlx::query("INSERT INTO slack_oauth_states (state, expire_at) VALUES ($1, $2)")
                .bind(state.secret())
                .bind(to_db_time(expires_at)),
        )
        .await?;
        Ok(state)
    }

    async fn consume(&self, state: &StateValue, now: OffsetDateTime) -> Result<bool, StoreError> {
        // Check and delete in one statement: of two racing callbacks, the second finds the row
        // gone (slack_sdk selects, then deletes, so both can succeed: W20). An expired state is
        // left for `purge_expired`.
        let deleted = self
            .execute(
                sqlx::query("DELETE FROM slack_oauth_states WHERE state = $1 AND expire_at > $2")
                    .bind(state.secret())
                    .bind(to_db_time(now)),
            )
            .await?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let purged = self
            .execute(
                sqlx::query("DELETE FROM slack_oauth_states WHERE expire_at <= $1")
                    .bind(to_db_time(now)),
            )
            .await?;
        Ok(purged.rows_affected())
    }

    async fn count_live(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let mut conn = self.conn().await?;
        let counted = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM slack_oauth_states WHERE expire_at > $1",
        )
        .bind(to_db_time(now))
        .fetch_one(conn.busy())
        .await;
        Ok(u64::try_from(conn.settle(counted)?).unwrap_or(0))
    }
}
