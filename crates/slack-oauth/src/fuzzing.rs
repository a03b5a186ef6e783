//! Entry points for the `cargo fuzz` targets in `fuzz/` (feature `fuzzing`, never in a
//! production build). Each one is a crate-internal decoder that the public API reaches only
//! through a network or a database; calling them directly lets the fuzzer spend its time on the
//! parsing instead of on sockets. Not part of the API: names and signatures change freely.

use time::OffsetDateTime;

use crate::api::{ApiError, OAuthV2AccessResponse};
use crate::encryption::{DecryptError, EncryptionKeys, Field, Owner, TokenCipher};
use crate::installation::Installation;
use crate::rotation::{RotationError, TokenKind};
use crate::secret::RefreshToken;

/// Decodes a 2xx `oauth.v2.access` body as the client does (`ok:false` becomes
/// [`ApiError::Slack`]).
pub fn decode_oauth_v2_access(body: &[u8]) -> Result<OAuthV2AccessResponse, ApiError> {
    crate::api::decode("oauth.v2.access", body)
}

/// The installation the install flow would save for `response` (no `auth.test` answer).
pub fn installation_from(
    response: OAuthV2AccessResponse,
    now: OffsetDateTime,
) -> Result<Installation, ApiError> {
    crate::flow::build_installation(response, None, now)
}

/// What a refresh would save for `response`: the access token, the refresh token and the expiry.
pub fn refresh_from(
    kind: TokenKind,
    response: OAuthV2AccessResponse,
    now: OffsetDateTime,
) -> Result<(String, RefreshToken, Option<OffsetDateTime>), RotationError> {
    crate::rotation::checked_refresh(kind, response, now).map(|refreshed| {
        (
            refreshed.access_token,
            refreshed.refresh_token,
            refreshed.expires_at,
        )
    })
}

/// The columns the stores encrypt, as (table, column): the stores' own list.
pub fn encrypted_fields() -> Vec<(&'static str, &'static str)> {
    crate::store::reencrypt::TOKEN_TABLES
        .iter()
        .flat_map(|table| table.columns.iter().map(|column| (table.name, column.name)))
        .collect()
}

/// Whose a value is, owned (the crate's `Owner` borrows).
#[derive(Clone, Debug, Default)]
pub struct ValueOwner {
    /// The app.
    pub client_id: String,
    /// The org, if any.
    pub enterprise_id: Option<String>,
    /// The workspace, if any.
    pub team_id: Option<String>,
    /// The user, for user columns.
    pub user_id: Option<String>,
}

impl ValueOwner {
    fn borrowed(&self) -> Owner<'_> {
        Owner {
            client_id: &self.client_id,
            enterprise_id: self.enterprise_id.as_deref(),
            team_id: self.team_id.as_deref(),
            user_id: self.user_id.as_deref(),
        }
    }
}

fn field(index: usize) -> Field {
    let fields = encrypted_fields();
    let (table, column) = fields[index % fields.len()];
    Field { table, column }
}

/// The stores' envelope codec.
#[derive(Clone, Debug)]
pub struct EnvelopeCodec {
    cipher: TokenCipher,
}

impl EnvelopeCodec {
    /// A codec with `keys` (`None`: plaintext, refusing envelopes).
    pub fn new(keys: Option<EncryptionKeys>) -> Self {
        Self {
            cipher: TokenCipher::new(keys),
        }
    }

    /// The stored form of `plaintext` in field `field_index` (modulo [`encrypted_fields`]).
    pub fn seal(&self, field_index: usize, owner: &ValueOwner, plaintext: &str) -> String {
        self.cipher
            .seal(field(field_index), &owner.borrowed(), plaintext)
    }

    /// The plaintext of a stored value, as the stores read it.
    pub fn open(
        &self,
        field_index: usize,
        owner: &ValueOwner,
        stored: String,
    ) -> Result<String, DecryptError> {
        self.cipher
            .open(field(field_index), &owner.borrowed(), stored)
    }
}
