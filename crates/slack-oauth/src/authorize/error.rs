//! `AuthorizeError`: why a request could not be authorized for a reason worth retrying.

use super::RefreshError;
use crate::store::StoreError;

/// Authorize failed for a reason that is not "this workspace is not installed".
///
/// "Not installed" and "the install was revoked" are not errors: [`authorize`] returns
/// `Ok(None)` for them. An `AuthorizeError` means the answer is unknown right now; answer the
/// request with a 5xx so that Slack retries it.
///
/// [`authorize`]: super::Authorizer::authorize
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizeError {
    /// The installation store failed (database down, unreadable row).
    #[error("cannot look up the installation: {0}")]
    Store(#[from] StoreError),
    /// The installation store failed on a lookup that served this request and others asking
    /// for the same installation at the same moment (one read serves them all).
    #[error("cannot look up the installation: {0}")]
    SharedStore(#[source] std::sync::Arc<StoreError>),
    /// Refreshing an expiring token failed for a transient reason (Slack unreachable, rate
    /// limited, store failure while saving); a later attempt may succeed.
    #[error("cannot refresh an expiring token: {0}")]
    Refresh(#[source] RefreshError),
}
