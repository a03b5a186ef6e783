//! Which apps (client ids) a store holds installations for, so that `installations` works
//! without `SLACK_CLIENT_ID`.

use anyhow::Context as _;
use slack_oauth::store::AnyStore;

use crate::config;

/// The PostgreSQL store's apps (`SqliteStore::client_ids` runs the same query).
const QUERY: &str = "SELECT client_id FROM slack_installations \
     UNION SELECT client_id FROM slack_bots ORDER BY 1";

/// The client id the store is opened with to list the apps. The listing does not depend on it
/// (the store is only opened to reach its tables), but PostgreSQL refuses an empty one: its
/// `client_id` column holds 1 to 32 characters.
const LISTING_CLIENT_ID: &str = "slack-oauth-apps";

/// The client ids with installations or bots in the store at `url`, sorted. Empty for an
/// in-memory store (a new, empty process-local store).
pub(crate) async fn client_ids(url: &str) -> anyhow::Result<Vec<String>> {
    let store = config::connect_store(url, LISTING_CLIENT_ID).await?;
    let ids: Vec<String> = match &store {
        AnyStore::Sqlite(store) => store
            .client_ids()
            .await
            .context("cannot list the apps in the store")?,
        AnyStore::Postgres(store) => sqlx::query_scalar(QUERY)
            .fetch_all(store.pool())
            .await
            .context("cannot list the apps in the store")?,
        _ => Vec::new(),
    };
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use slack_oauth::installation::Installation;
    use slack_oauth::store::InstallationStore as _;

    #[tokio::test]
    async fn client_ids_come_from_both_tables() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("apps.db").display());
        assert!(super::client_ids(&url).await.unwrap().is_empty());
        for client_id in ["2.2", "1.1", "2.2"] {
            let store = crate::config::connect_store(&url, client_id).await.unwrap();
            let mut installation = Installation::new("U1", time::OffsetDateTime::UNIX_EPOCH);
            installation.team_id = Some("T1".into());
            store.save(&installation).await.unwrap();
        }
        assert_eq!(super::client_ids(&url).await.unwrap(), ["1.1", "2.2"]);
    }
}
