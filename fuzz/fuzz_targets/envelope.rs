//! The envelope codec of encryption at rest: any stored string, plaintext, column and owner.
//! Sealing round-trips; a value opens only in the column and row it was sealed for; an envelope
//! opens only if it is exactly what sealing its plaintext gives (nothing forged or altered opens
//! to a token); without keys an envelope is refused, never returned as plaintext.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use slack_oauth::encryption::EncryptionKeys;
use slack_oauth::fuzzing::{encrypted_fields, EnvelopeCodec, ValueOwner};

/// Two keys: k1 encrypts, k0 still decrypts.
const KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,k0:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="; // fake
/// k0 alone first, to reseal what k0 sealed.
const OLD_KEY: &str = "k0:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="; // fake

struct Codecs {
    current: EnvelopeCodec,
    old: EnvelopeCodec,
    none: EnvelopeCodec,
}

fn codecs() -> &'static Codecs {
    static CODECS: OnceLock<Codecs> = OnceLock::new();
    CODECS.get_or_init(|| Codecs {
        current: EnvelopeCodec::new(Some(EncryptionKeys::parse(KEYS).expect("valid keys"))),
        old: EnvelopeCodec::new(Some(EncryptionKeys::parse(OLD_KEY).expect("valid key"))),
        none: EnvelopeCodec::new(None),
    })
}

#[derive(Arbitrary, Debug)]
struct Owner {
    client_id: String,
    enterprise_id: Option<String>,
    team_id: Option<String>,
    user_id: Option<String>,
}

impl Owner {
    fn owned(&self) -> ValueOwner {
        ValueOwner {
            client_id: self.client_id.clone(),
            enterprise_id: self.enterprise_id.clone(),
            team_id: self.team_id.clone(),
            user_id: self.user_id.clone(),
        }
    }

    /// What the associated data holds: `None` and `""` are the same.
    fn identity(&self) -> [&str; 4] {
        [
            &self.client_id,
            self.enterprise_id.as_deref().unwrap_or(""),
            self.team_id.as_deref().unwrap_or(""),
            self.user_id.as_deref().unwrap_or(""),
        ]
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    stored: String,
    plaintext: String,
    field: u8,
    other_field: u8,
    owner: Owner,
    other_owner: Owner,
    flip_at: usize,
    flip_bits: u8,
}

fuzz_target!(|input: Input| {
    let codecs = codecs();
    let field = usize::from(input.field);
    let owner = input.owner.owned();

    // Any stored string: opened, refused or read as plaintext, never forged.
    if let Ok(plaintext) = codecs.current.open(field, &owner, input.stored.clone()) {
        if let Some(rest) = input.stored.strip_prefix("enc:v1:") {
            let resealed = if rest.starts_with("k1:") {
                codecs.current.seal(field, &owner, &plaintext)
            } else {
                codecs.old.seal(field, &owner, &plaintext)
            };
            assert_eq!(
                resealed, input.stored,
                "an envelope not sealed by a key opened"
            );
        } else {
            assert_eq!(plaintext, input.stored, "plaintext not returned as stored");
        }
    }
    if input.stored.starts_with("enc:v1:") {
        assert!(
            codecs
                .none
                .open(field, &owner, input.stored.clone())
                .is_err(),
            "an envelope read as plaintext without keys"
        );
    }

    // Round trip.
    let sealed = codecs.current.seal(field, &owner, &input.plaintext);
    assert!(sealed.starts_with("enc:v1:k1:"));
    let opened = codecs.current.open(field, &owner, sealed.clone());
    assert_eq!(opened.as_deref(), Ok(input.plaintext.as_str()));

    // Moved to another column or row: refused.
    let other_field = usize::from(input.other_field);
    let fields = encrypted_fields();
    let same_field = fields[field % fields.len()] == fields[other_field % fields.len()];
    let same_owner = input.owner.identity() == input.other_owner.identity();
    let moved = codecs
        .current
        .open(other_field, &input.other_owner.owned(), sealed.clone());
    if same_field && same_owner {
        assert_eq!(moved.as_deref(), Ok(input.plaintext.as_str()));
    } else {
        assert!(
            moved.is_err(),
            "an envelope opened in another column or row"
        );
    }

    // Altered: never opens to the original plaintext.
    if input.flip_bits != 0 {
        let mut bytes = sealed.clone().into_bytes();
        let at = input.flip_at % bytes.len();
        bytes[at] ^= input.flip_bits;
        if let Ok(altered) = String::from_utf8(bytes) {
            if let Ok(plaintext) = codecs.current.open(field, &owner, altered.clone()) {
                assert!(
                    plaintext != input.plaintext || altered == sealed,
                    "an altered envelope opened to the original plaintext"
                );
            }
        }
    }
});
