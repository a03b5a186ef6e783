//! Per-request authorize (`slack_oauth::authorize`).
//!
//! - `resolution`: every resolution rule (Bolt's cases docs/reference-sections.md §12.6 2.1-2.7
//!   adapted, W40 both ways, org-wide, actor mode), each on `MemoryStore` and on SQLite;
//! - `refresh`: expiring tokens through a counting fake `TokenRefresher`: W2 (one refresh per
//!   token per authorize), W3 (the installer's user token survives), revoked vs transient
//!   failures, no refresher configured;
//! - `lifecycle`: `app_uninstalled` and `tokens_revoked`, org-wide included;
//! - `layer`: `AuthorizeLayer` behind `VerifySignatureLayer` with signed requests.

mod fakes;

#[cfg(feature = "axum")]
mod layer;
mod lifecycle;
mod refresh;
mod resolution;

/// Defines `$name` as two tests, `memory` and `sqlite`, each running `$body(store)`.
macro_rules! on_both_stores {
    ($($name:ident => $body:ident;)*) => {
        $(
            mod $name {
                #[tokio::test]
                async fn memory() {
                    super::$body(slack_oauth::store::MemoryStore::new()).await;
                }

                #[tokio::test]
                async fn sqlite() {
                    super::$body(slack_oauth_test::sqlite::temporary().await).await;
                }
            }
        )*
    };
}
pub(crate) use on_both_stores;
