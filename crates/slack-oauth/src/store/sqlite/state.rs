//! `StateStore` for `SqliteStore` (`oauth_states`, shared with slack_sdk) and the lease table.

use std::sync::atomic::Ordering;
use std::time::Duration;

use time::OffsetDateTime;

use super::statement::{statement, Statement};
use super::SqliteStore;
use crate::secret::StateValue;
use crate::store::{new_state_value, LeaseAcquisition, StateStore, StoreError};

/// Every how many `issue` calls expired states are purged (slack_sdk never purges, W10), so
/// abandoned installs and bots hitting the install page cannot grow the table without bound.
const PURGE_EVERY: u64 = 64;

/// Unix seconds with the fraction, as slack_sdk writes `oauth_states.expire_at` (REAL).
fn unix_seconds(at: OffsetDateTime) -> f64 {
    #[allow(clippy::cast_precision_loss)] // microsecond precision survives for any real date
    let micros = (at.unix_timestamp_nanos() / 1_000) as f64;
    micros / 1e6
}

/// Leases are kept in Unix milliseconds.
fn unix_millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

impl StateStore for SqliteStore {
    async fn issue(&self, expires_at: OffsetDateTime) -> Result<StateValue, StoreError> {
        let state = new_state_value();
        if self.issued.fetch_add(1, Ordering::Relaxed) % PURGE_EVERY == PURGE_EVERY - 1 {
            self.purge_expired(self.clock.now()).await?;
        }
        self.write(vec![statement!(
            "INSERT INTO oauth_states (state, expire_at) VALUES (?, ?)",
            state.secret(),
            unix_seconds(expires_at),
        )])
        .await?;
        Ok(state)
    }

    async fn consume(&self, state: &StateValue, now: OffsetDateTime) -> Result<bool, StoreError> {
        // One statement: of two concurrent consumes, the second finds the row already deleted
        // (slack_sdk selects then deletes, so both can succeed, W20).
        let deleted = self
            .write(vec![statement!(
                "DELETE FROM oauth_states WHERE state = ? AND expire_at > ?",
                state.secret(),
                unix_seconds(now),
            )])
            .await?;
        Ok(deleted[0] > 0)
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let deleted = self
            .write(vec![statement!(
                "DELETE FROM oauth_states WHERE expire_at <= ?",
                unix_seconds(now),
            )])
            .await?;
        Ok(deleted[0])
    }

    async fn count_live(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let now = unix_seconds(now);
        self.read(move |connection| {
            let count: i64 = connection
                .prepare_cached("SELECT count(*) FROM oauth_states WHERE expire_at > ?")
                .and_then(|mut statement| statement.query_row([now], |row| row.get(0)))
                .map_err(super::reading)?;
            Ok(u64::try_from(count).unwrap_or(0))
        })
        .await
    }
}

/// `now + duration` in Unix milliseconds, saturating.
fn millis_after(now: OffsetDateTime, duration: Duration) -> i64 {
    let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
    unix_millis(now).saturating_add(millis)
}

/// Takes the lease for `ttl` if it is free, expired, or already held by `holder` (an upsert
/// whose update only happens under that condition), and reads back any intent left on it, in
/// one transaction. "Now" is the store's clock: the one machine that owns the file.
pub(super) async fn try_acquire_lease(
    store: &SqliteStore,
    name: &str,
    holder: &str,
    ttl: Duration,
) -> Result<LeaseAcquisition, StoreError> {
    let now = store.clock.now();
    let taken = store
        .write(vec![statement!(
            "INSERT INTO slack_oauth_leases (name, holder, expires_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at \
             WHERE slack_oauth_leases.expires_at <= ?4 \
             OR slack_oauth_leases.holder = excluded.holder",
            name,
            holder,
            millis_after(now, ttl),
            unix_millis(now),
        )])
        .await?;
    if taken[0] == 0 {
        return Ok(LeaseAcquisition::Busy);
    }
    // Only the holder changes the intent from here on, so this read cannot race.
    let name = name.to_owned();
    let pending_intent = store
        .read(move |connection| {
            connection
                .prepare_cached("SELECT intent FROM slack_oauth_leases WHERE name = ?")
                .and_then(|mut statement| {
                    statement.query_row([name], |row| row.get::<_, Option<String>>(0))
                })
                .map_err(super::reading)
        })
        .await?;
    Ok(LeaseAcquisition::Held { pending_intent })
}

/// Records the intent and renews the lease for `ttl` if `holder` holds it, unexpired.
pub(super) async fn record_refresh_intent(
    store: &SqliteStore,
    name: &str,
    holder: &str,
    fingerprint: &str,
    ttl: Duration,
) -> Result<bool, StoreError> {
    let now = store.clock.now();
    let recorded = store
        .write(vec![statement!(
            "UPDATE slack_oauth_leases SET intent = ?, expires_at = ? \
             WHERE name = ? AND holder = ? AND expires_at > ?",
            fingerprint,
            millis_after(now, ttl),
            name,
            holder,
            unix_millis(now),
        )])
        .await?;
    Ok(recorded[0] > 0)
}

/// Releases the lease if `holder` holds it (its intent goes with it).
pub(super) async fn release_lease(
    store: &SqliteStore,
    name: &str,
    holder: &str,
) -> Result<(), StoreError> {
    store
        .write(vec![release_lease_statement(name, holder)])
        .await?;
    Ok(())
}

/// Gives up the lease if `holder` holds it, keeping the row (expired) when it carries an intent.
pub(super) async fn abandon_lease(
    store: &SqliteStore,
    name: &str,
    holder: &str,
) -> Result<(), StoreError> {
    store
        .write(vec![
            statement!(
                "DELETE FROM slack_oauth_leases WHERE name = ? AND holder = ? AND intent IS NULL",
                name,
                holder,
            ),
            statement!(
                "UPDATE slack_oauth_leases SET expires_at = 0 WHERE name = ? AND holder = ?",
                name,
                holder,
            ),
        ])
        .await?;
    Ok(())
}

/// The release of the named lease if `holder` holds it (also run inside the save of a rotated
/// token).
pub(super) fn release_lease_statement<'a>(name: &'a str, holder: &'a str) -> Statement<'a> {
    statement!(
        "DELETE FROM slack_oauth_leases WHERE name = ? AND holder = ?",
        name,
        holder,
    )
}

/// Records one `oauth.v2.access` call if fewer than `limit` were recorded in the last minute:
/// the delete of expired rows and the conditional insert commit in one write transaction
/// (`BEGIN IMMEDIATE` across processes), so two processes cannot both take the last call. The
/// count and the wait are read afterwards (an estimate once other processes write).
pub(super) async fn spend_refresh_budget(
    store: &SqliteStore,
    limit: u32,
) -> Result<crate::store::BudgetSpend, StoreError> {
    use crate::store::budget::{retry_after, BUDGET_WINDOW};
    use crate::store::BudgetSpend;
    let now = store.clock.now();
    let horizon = unix_millis(now - BUDGET_WINDOW);
    let client_id = store.client_id.as_str().to_owned();
    let written = store
        .write(vec![
            statement!(
                "DELETE FROM slack_oauth_refresh_budget WHERE client_id = ?1 AND spent_at <= ?2",
                client_id.as_str(),
                horizon,
            ),
            statement!(
                "INSERT INTO slack_oauth_refresh_budget (client_id, spent_at) SELECT ?1, ?2 \
                 WHERE (SELECT count(*) FROM slack_oauth_refresh_budget \
                 WHERE client_id = ?1 AND spent_at > ?3) < ?4",
                client_id.as_str(),
                unix_millis(now),
                horizon,
                i64::from(limit),
            ),
        ])
        .await?;
    let spent_at = store
        .read(move |connection| {
            connection
                .prepare_cached(
                    "SELECT spent_at FROM slack_oauth_refresh_budget \
                     WHERE client_id = ? AND spent_at > ? ORDER BY spent_at",
                )
                .and_then(|mut statement| {
                    statement
                        .query_map(rusqlite::params![client_id, horizon], |row| {
                            row.get::<_, i64>(0)
                        })?
                        .collect::<Result<Vec<i64>, _>>()
                })
                .map_err(super::reading)
        })
        .await?;
    let used = u32::try_from(spent_at.len()).unwrap_or(u32::MAX);
    if written.get(1) == Some(&1) {
        return Ok(BudgetSpend::Spent { used });
    }
    let instants = spent_at
        .into_iter()
        .map(|millis| OffsetDateTime::UNIX_EPOCH + time::Duration::milliseconds(millis));
    Ok(BudgetSpend::Exhausted {
        used,
        retry_after: retry_after(instants, used, limit, now),
    })
}
