//! The store the conformance suite runs on (`postgres::suite::*`, and `postgres::encrypted::*`
//! with tokens encrypted at rest): a `PostgresStore` in a fresh schema per case, dropped when
//! the case passes and kept when it fails.

use std::sync::Arc;

use slack_oauth::installation::{Bot, Installation};
use slack_oauth::secret::StateValue;
use slack_oauth::store::{
    InstallationQuery, InstallationStore, LeaseAcquisition, LostGrant, PostgresStore, StateStore,
    StoreError, TokenUpdate,
};
use time::OffsetDateTime;

use super::support::TestSchema;

/// A `PostgresStore` that owns its schema: the schema goes when the last clone does.
#[derive(Clone)]
pub(super) struct SuiteStore {
    store: PostgresStore,
    _schema: Arc<TestSchema>,
}

/// A store in a fresh schema, or `None` when `TEST_DATABASE_URL` is not set.
pub(super) async fn fresh() -> Option<SuiteStore> {
    let schema = TestSchema::new()?;
    let store = schema.store().await;
    Some(SuiteStore {
        store,
        _schema: Arc::new(schema),
    })
}

/// [`fresh`], with every token encrypted at rest.
pub(super) async fn fresh_encrypted() -> Option<SuiteStore> {
    let schema = TestSchema::new()?;
    let keys = slack_oauth::encryption::EncryptionKeys::parse(
        "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", // fake
    )
    .expect("a key");
    let store = schema
        .encrypted_store(Some(keys))
        .await
        .expect("an encrypted store");
    Some(SuiteStore {
        store,
        _schema: Arc::new(schema),
    })
}

impl InstallationStore for SuiteStore {
    async fn save(&self, installation: &Installation) -> Result<(), StoreError> {
        self.store.save(installation).await
    }

    async fn save_bot(&self, bot: &Bot) -> Result<(), StoreError> {
        self.store.save_bot(bot).await
    }

    async fn find_bot(&self, query: &InstallationQuery) -> Result<Option<Bot>, StoreError> {
        self.store.find_bot(query).await
    }

    async fn find_installation(
        &self,
        query: &InstallationQuery,
    ) -> Result<Option<Installation>, StoreError> {
        self.store.find_installation(query).await
    }

    async fn delete_bot(&self, query: &InstallationQuery) -> Result<(), StoreError> {
        self.store.delete_bot(query).await
    }

    async fn delete_installation(&self, query: &InstallationQuery) -> Result<(), StoreError> {
        self.store.delete_installation(query).await
    }

    async fn delete_all(&self, query: &InstallationQuery) -> Result<(), StoreError> {
        self.store.delete_all(query).await
    }

    async fn list_installations(&self) -> Result<Vec<Installation>, StoreError> {
        self.store.list_installations().await
    }

    async fn list_expiring(
        &self,
        deadline: OffsetDateTime,
    ) -> Result<Vec<Installation>, StoreError> {
        self.store.list_expiring(deadline).await
    }

    async fn update_rotated_token(&self, update: &TokenUpdate) -> Result<bool, StoreError> {
        self.store.update_rotated_token(update).await
    }

    async fn update_rotated_token_and_release_lease(
        &self,
        update: &TokenUpdate,
        name: &str,
        holder: &str,
    ) -> Result<bool, StoreError> {
        self.store
            .update_rotated_token_and_release_lease(update, name, holder)
            .await
    }

    async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<LeaseAcquisition, StoreError> {
        self.store.try_acquire_lease(name, holder, ttl).await
    }

    async fn record_refresh_intent(
        &self,
        name: &str,
        holder: &str,
        fingerprint: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        self.store
            .record_refresh_intent(name, holder, fingerprint, ttl)
            .await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.store.release_lease(name, holder).await
    }

    async fn abandon_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.store.abandon_lease(name, holder).await
    }

    async fn spend_refresh_budget(
        &self,
        limit: u32,
    ) -> Result<slack_oauth::store::BudgetSpend, StoreError> {
        self.store.spend_refresh_budget(limit).await
    }

    async fn flag_reinstall(&self, grant: &LostGrant) -> Result<bool, StoreError> {
        self.store.flag_reinstall(grant).await
    }
}

impl StateStore for SuiteStore {
    async fn issue(&self, expires_at: OffsetDateTime) -> Result<StateValue, StoreError> {
        self.store.issue(expires_at).await
    }

    async fn consume(&self, state: &StateValue, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.store.consume(state, now).await
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.store.purge_expired(now).await
    }

    async fn count_live(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.store.count_live(now).await
    }
}
