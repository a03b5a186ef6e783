//! Tokens encrypted at rest: the keys (`SLACK_TOKEN_ENCRYPTION_KEYS`) and the envelope every
//! token, refresh token and incoming-webhook URL is stored as when they are set.
//!
//! **Keys.** One or more `KEY_ID:BASE64_32_BYTES` entries separated by commas: the first
//! encrypts, all decrypt, so a key is rotated by putting a new one first and re-encrypting (then
//! removing the old one). Key material is zeroized on drop and never shown by `Debug`.
//!
//! **Envelope.** `enc:v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>` in the token's own
//! column: XChaCha20-Poly1305 with a 192-bit nonce. The associated data binds the envelope to
//! its table, its column, the app (client id), the org and workspace, and for user columns the
//! user: an envelope copied into another workspace's row or into another column fails to
//! decrypt. Rows of one workspace's history share that identity, so a stored token is found by
//! value (the compare-and-swap of a rotation): the nonce is synthetic (an HMAC of the associated
//! data and the plaintext, as in SIV), so one plaintext in one place always seals to one
//! envelope per key. It reveals only that two rows of one column of one workspace hold the same
//! token, which their history shows anyway.
//!
//! **Compatibility.** Without keys nothing is encrypted and the tables stay the ones Python's
//! slack_sdk reads. With keys, values written before keys were set stay readable (plaintext is
//! recognised) until re-encrypted; Python can no longer read the encrypted ones.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// The environment variable holding the keys.
pub const ENCRYPTION_KEYS_ENV: &str = "SLACK_TOKEN_ENCRYPTION_KEYS";

/// What every envelope starts with. No Slack token or URL does.
pub(crate) const ENVELOPE_PREFIX: &str = "enc:v1:";

const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;
const MAX_KEY_ID_LEN: usize = 32;

/// Why `SLACK_TOKEN_ENCRYPTION_KEYS` could not be used. Never holds key material.
///
/// ```
/// use slack_oauth::encryption::{EncryptionKeys, KeyError};
/// assert_eq!(
///     EncryptionKeys::parse("k1:not-a-key").unwrap_err(),
///     KeyError::InvalidKey { key_id: "k1".into() },
/// );
/// ```
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The variable is set but holds no entry.
    #[error("{ENCRYPTION_KEYS_ENV} holds no key: set it to KEY_ID:BASE64_32_BYTES[,...] (slack-oauth keys generate prints one)")]
    Empty,
    /// An entry is not `KEY_ID:BASE64`.
    #[error("{ENCRYPTION_KEYS_ENV} entry {position} is not KEY_ID:BASE64_32_BYTES")]
    Malformed {
        /// 1-based position of the entry.
        position: usize,
    },
    /// A key id is empty, too long, or not letters, digits, `-` and `_`.
    #[error("{ENCRYPTION_KEYS_ENV} entry {position}: the key id must be 1 to 32 letters, digits, - or _")]
    InvalidKeyId {
        /// 1-based position of the entry.
        position: usize,
    },
    /// The key is not 32 bytes of standard or URL-safe base64.
    #[error("{ENCRYPTION_KEYS_ENV} key {key_id:?} is not 32 bytes of base64 (slack-oauth keys generate prints a valid one)")]
    InvalidKey {
        /// The entry's key id.
        key_id: String,
    },
    /// Two entries have the same key id.
    #[error("{ENCRYPTION_KEYS_ENV} names key {key_id:?} twice")]
    DuplicateKeyId {
        /// The repeated key id.
        key_id: String,
    },
}

/// Why a stored value could not be decrypted. The message names the key to add.
///
/// ```
/// use slack_oauth::encryption::DecryptError;
/// let error = DecryptError::MissingKey { key_id: "k1".into() };
/// assert!(error.to_string().contains(r#"key "k1""#));
/// ```
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecryptError {
    /// The value is encrypted with a key this process was not given.
    #[error("a value is encrypted with key {key_id:?}, which {ENCRYPTION_KEYS_ENV} does not hold; add that key (after the current one)")]
    MissingKey {
        /// The key id the envelope names.
        key_id: String,
    },
    /// The value is encrypted but no keys are configured at all.
    #[error("the store holds values encrypted with key {key_id:?} but {ENCRYPTION_KEYS_ENV} is not set; set it (the key must be among its entries)")]
    NoKeys {
        /// The key id the envelope names.
        key_id: String,
    },
    /// The envelope is malformed, or its tag does not verify: tampered, truncated, or moved
    /// from another row or column.
    #[error(
        "an encrypted value does not decrypt: it was altered, or moved from another row or column"
    )]
    Invalid,
}

struct Key {
    id: String,
    cipher: XChaCha20Poly1305,
    nonce_key: Zeroizing<[u8; KEY_BYTES]>,
}

/// The keys from `SLACK_TOKEN_ENCRYPTION_KEYS`: the first encrypts, all decrypt.
///
/// Cheap to clone. `Debug` shows the key ids only.
///
/// ```
/// use slack_oauth::encryption::EncryptionKeys;
/// let keys = EncryptionKeys::parse(
///     "k2:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,k1:Hx4dHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=", // fake
/// )?;
/// assert_eq!(keys.primary_id(), "k2");
/// assert_eq!(keys.ids().collect::<Vec<_>>(), ["k2", "k1"]);
/// assert!(!format!("{keys:?}").contains("AAEC"));
/// # Ok::<_, slack_oauth::encryption::KeyError>(())
/// ```
#[derive(Clone)]
pub struct EncryptionKeys {
    keys: Arc<Vec<Key>>,
}

impl fmt::Debug for EncryptionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionKeys")
            .field("ids", &self.ids().collect::<Vec<_>>())
            .finish()
    }
}

impl EncryptionKeys {
    /// Parses `KEY_ID:BASE64_32_BYTES[,KEY_ID:BASE64_32_BYTES...]`; blanks around entries are
    /// ignored.
    ///
    /// # Errors
    /// [`KeyError`] naming the entry at fault (never its key).
    pub fn parse(value: &str) -> Result<Self, KeyError> {
        let mut keys: Vec<Key> = Vec::new();
        for (index, entry) in value
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .enumerate()
        {
            let position = index + 1;
            let (id, encoded) = entry
                .split_once(':')
                .ok_or(KeyError::Malformed { position })?;
            let id = id.trim();
            if id.is_empty()
                || id.len() > MAX_KEY_ID_LEN
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(KeyError::InvalidKeyId { position });
            }
            if keys.iter().any(|key| key.id == id) {
                return Err(KeyError::DuplicateKeyId {
                    key_id: id.to_owned(),
                });
            }
            let encoded = encoded.trim();
            let decoded = Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(encoded))
                    .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded))
                    .map_err(|_| KeyError::InvalidKey {
                        key_id: id.to_owned(),
                    })?,
            );
            let master: &[u8; KEY_BYTES] =
                decoded
                    .as_slice()
                    .try_into()
                    .map_err(|_| KeyError::InvalidKey {
                        key_id: id.to_owned(),
                    })?;
            keys.push(Key::derive(id, master));
        }
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(Self {
            keys: Arc::new(keys),
        })
    }

    /// The id of the key that encrypts (the first entry).
    pub fn primary_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Every key id, the encrypting one first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|key| key.id.as_str())
    }

    fn key(&self, id: &str) -> Option<&Key> {
        self.keys.iter().find(|key| key.id == id)
    }
}

impl Key {
    /// Separate keys for the cipher and the synthetic nonce, derived from the master key with
    /// HMAC-SHA256 under fixed labels (a key is never used for two purposes).
    fn derive(id: &str, master: &[u8; KEY_BYTES]) -> Self {
        let derive = |label: &[u8]| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(master)
                .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
            mac.update(label);
            let mut out = Zeroizing::new([0u8; KEY_BYTES]);
            out.copy_from_slice(&mac.finalize().into_bytes());
            out
        };
        let cipher_key = derive(b"slack-oauth/v1/token-cipher");
        Self {
            id: id.to_owned(),
            cipher: XChaCha20Poly1305::new(cipher_key.as_slice().into()),
            nonce_key: derive(b"slack-oauth/v1/synthetic-nonce"),
        }
    }

    fn seal(&self, aad: &[u8], plaintext: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.nonce_key.as_slice())
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(&(aad.len() as u64).to_be_bytes());
        mac.update(aad);
        mac.update(plaintext.as_bytes());
        let digest = mac.finalize().into_bytes();
        let nonce = XNonce::from_slice(&digest[..NONCE_BYTES]);
        let sealed = self
            .cipher
            .encrypt(
                nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad,
                },
            )
            .unwrap_or_else(|_| {
                unreachable!("XChaCha20-Poly1305 encrypts any message under 256 GiB")
            });
        let mut body = Vec::with_capacity(NONCE_BYTES + sealed.len());
        body.extend_from_slice(nonce);
        body.extend_from_slice(&sealed);
        format!(
            "{ENVELOPE_PREFIX}{}:{}",
            self.id,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(body)
        )
    }
}

/// Where a value is stored: its table and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) table: &'static str,
    pub(crate) column: &'static str,
}

/// Whose a value is: the app, org, workspace and (user columns) user, as stored (`None` and
/// `""` are the same: org-wide rows have no team).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Owner<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) enterprise_id: Option<&'a str>,
    pub(crate) team_id: Option<&'a str>,
    pub(crate) user_id: Option<&'a str>,
}

/// The associated data: length-prefixed, so no two identities serialize alike.
fn associated_data(field: Field, owner: &Owner<'_>) -> Vec<u8> {
    let mut aad = Vec::with_capacity(128);
    for part in [
        "slack-oauth/v1",
        field.table,
        field.column,
        owner.client_id,
        owner.enterprise_id.unwrap_or(""),
        owner.team_id.unwrap_or(""),
        owner.user_id.unwrap_or(""),
    ] {
        aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

/// Seals and opens stored values; `None` keys mean plaintext (and refuse envelopes).
#[derive(Clone, Debug, Default)]
pub(crate) struct TokenCipher {
    keys: Option<EncryptionKeys>,
}

impl TokenCipher {
    // The SQL stores' (and the fuzzing entry points'); unused in a build without them.
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "postgres", feature = "fuzzing")),
        allow(dead_code)
    )]
    pub(crate) fn new(keys: Option<EncryptionKeys>) -> Self {
        Self { keys }
    }

    /// Whether values are encrypted on write.
    pub(crate) fn encrypts(&self) -> bool {
        self.keys.is_some()
    }

    /// Whether `stored` is not (yet) an envelope under the first key: plaintext, or another
    /// key's envelope. Always `false` without keys.
    pub(crate) fn needs_reseal(&self, stored: &str) -> bool {
        let Some(keys) = &self.keys else {
            return false;
        };
        let current = stored
            .strip_prefix(ENVELOPE_PREFIX)
            .and_then(|rest| rest.split_once(':'))
            .is_some_and(|(key_id, _)| key_id == keys.primary_id());
        !current
    }

    /// Whether envelopes naming `key_id` can be opened: the refusal a store opening gives
    /// when they cannot.
    pub(crate) fn check_key_id(&self, key_id: &str) -> Result<(), DecryptError> {
        match &self.keys {
            None => Err(DecryptError::NoKeys {
                key_id: key_id.to_owned(),
            }),
            Some(keys) if keys.key(key_id).is_none() => Err(DecryptError::MissingKey {
                key_id: key_id.to_owned(),
            }),
            Some(_) => Ok(()),
        }
    }

    /// The value to store for `plaintext`: its envelope under the primary key, or the
    /// plaintext itself without keys.
    pub(crate) fn seal(&self, field: Field, owner: &Owner<'_>, plaintext: &str) -> String {
        match &self.keys {
            Some(keys) => keys.keys[0].seal(&associated_data(field, owner), plaintext),
            None => plaintext.to_owned(),
        }
    }

    /// Every form `plaintext` may be stored in at `field` of `owner`: as is (written before
    /// keys were set, or without keys) and sealed under each key. A compare-and-swap matches a
    /// stored value against these.
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn stored_forms(
        &self,
        field: Field,
        owner: &Owner<'_>,
        plaintext: &str,
    ) -> Vec<String> {
        let mut forms = vec![plaintext.to_owned()];
        if let Some(keys) = &self.keys {
            let aad = associated_data(field, owner);
            forms.extend(keys.keys.iter().map(|key| key.seal(&aad, plaintext)));
        }
        forms
    }

    /// The plaintext of a stored value: an envelope is opened, anything else is returned as is.
    pub(crate) fn open(
        &self,
        field: Field,
        owner: &Owner<'_>,
        stored: String,
    ) -> Result<String, DecryptError> {
        let Some(rest) = stored.strip_prefix(ENVELOPE_PREFIX) else {
            return Ok(stored);
        };
        let (key_id, body) = rest.split_once(':').ok_or(DecryptError::Invalid)?;
        let Some(keys) = &self.keys else {
            return Err(DecryptError::NoKeys {
                key_id: key_id.to_owned(),
            });
        };
        let key = keys.key(key_id).ok_or_else(|| DecryptError::MissingKey {
            key_id: key_id.to_owned(),
        })?;
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| DecryptError::Invalid)?;
        if body.len() < NONCE_BYTES + 16 {
            return Err(DecryptError::Invalid);
        }
        let (nonce, sealed) = body.split_at(NONCE_BYTES);
        let aad = associated_data(field, owner);
        let plaintext = key
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| DecryptError::Invalid)?;
        String::from_utf8(plaintext).map_err(|_| DecryptError::Invalid)
    }
}

/// A new key entry, `KEY_ID:BASE64_32_BYTES`, from the OS CSPRNG.
///
/// ```
/// let entry = slack_oauth::encryption::generate_key_entry("k2026");
/// assert!(entry.starts_with("k2026:"));
/// assert!(slack_oauth::encryption::EncryptionKeys::parse(&entry).is_ok());
/// ```
pub fn generate_key_entry(key_id: &str) -> String {
    use rand::RngCore as _;
    let mut key = Zeroizing::new([0u8; KEY_BYTES]);
    rand::rngs::OsRng.fill_bytes(key.as_mut_slice());
    format!(
        "{key_id}:{}",
        base64::engine::general_purpose::STANDARD.encode(key.as_slice())
    )
}

#[cfg(test)]
mod tests;
