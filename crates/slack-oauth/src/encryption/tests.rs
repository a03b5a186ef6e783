use super::*;

const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; // fake
const K2: &str = "k2:Hx4dHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA="; // fake

const BOT_TOKEN: Field = Field {
    table: "slack_bots",
    column: "bot_token",
};

fn owner(team: &str) -> Owner<'_> {
    Owner {
        client_id: "111.222",
        enterprise_id: None,
        team_id: Some(team),
        user_id: None,
    }
}

fn cipher(keys: &str) -> TokenCipher {
    TokenCipher::new(Some(EncryptionKeys::parse(keys).unwrap()))
}

#[test]
fn seals_and_opens_and_hides_the_plaintext() {
    let cipher = cipher(K1);
    let sealed = cipher.seal(BOT_TOKEN, &owner("T1"), "xoxb-secret-1"); // fake
    assert!(sealed.starts_with("enc:v1:k1:"), "{sealed}");
    assert!(!sealed.contains("xoxb"));
    assert_eq!(
        cipher
            .open(BOT_TOKEN, &owner("T1"), sealed.clone())
            .unwrap(),
        "xoxb-secret-1" // fake
    );
    // Deterministic: the compare-and-swap finds it by value.
    assert_eq!(
        cipher.seal(BOT_TOKEN, &owner("T1"), "xoxb-secret-1"),
        sealed
    ); // fake
    assert_ne!(
        cipher.seal(BOT_TOKEN, &owner("T1"), "xoxb-secret-2"),
        sealed
    ); // fake
}

#[test]
fn an_envelope_moved_to_another_row_or_column_does_not_open() {
    let cipher = cipher(K1);
    let sealed = cipher.seal(BOT_TOKEN, &owner("T1"), "xoxb-secret-1"); // fake
    let refresh = Field {
        table: "slack_bots",
        column: "bot_refresh_token",
    };
    let installations = Field {
        table: "slack_installations",
        column: "bot_token",
    };
    let other_user = Owner {
        user_id: Some("U2"),
        ..owner("T1")
    };
    let other_app = Owner {
        client_id: "333.444",
        ..owner("T1")
    };
    for (field, owner) in [
        (BOT_TOKEN, owner("T2")),
        (refresh, owner("T1")),
        (installations, owner("T1")),
        (BOT_TOKEN, other_user),
        (BOT_TOKEN, other_app),
    ] {
        assert_eq!(
            cipher.open(field, &owner, sealed.clone()),
            Err(DecryptError::Invalid),
            "{field:?} {owner:?}"
        );
    }
}

#[test]
fn any_altered_byte_fails() {
    let cipher = cipher(K1);
    let sealed = cipher.seal(BOT_TOKEN, &owner("T1"), "xoxb-secret-1"); // fake
    let prefix = "enc:v1:k1:".len();
    for at in prefix..sealed.len() {
        let mut bytes = sealed.clone().into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(bytes).unwrap();
        assert!(
            cipher.open(BOT_TOKEN, &owner("T1"), altered).is_err(),
            "byte {at}"
        );
    }
    let truncated = sealed[..sealed.len() - 4].to_owned();
    assert!(cipher.open(BOT_TOKEN, &owner("T1"), truncated).is_err());
}

#[test]
fn old_keys_decrypt_and_plaintext_passes_through() {
    let old = cipher(K1);
    let sealed = old.seal(BOT_TOKEN, &owner("T1"), "xoxb-secret-1"); // fake
    let rotated = cipher(&format!("{K2},{K1}"));
    assert_eq!(
        rotated
            .open(BOT_TOKEN, &owner("T1"), sealed.clone())
            .unwrap(),
        "xoxb-secret-1" // fake
    );
    assert!(rotated
        .seal(BOT_TOKEN, &owner("T1"), "xoxb-secret-1") // fake
        .starts_with("enc:v1:k2:"));
    let forms = rotated.stored_forms(BOT_TOKEN, &owner("T1"), "xoxb-secret-1"); // fake
    assert_eq!(forms.len(), 3);
    assert!(forms.contains(&sealed) && forms.contains(&"xoxb-secret-1".to_owned())); // fake
    assert_eq!(
        rotated
            .open(BOT_TOKEN, &owner("T1"), "xoxb-plain".to_owned())
            .unwrap(), // fake
        "xoxb-plain" // fake
    );
    // The old key removed too soon, or no keys at all: a clear error naming the key.
    assert_eq!(
        cipher(K2).open(BOT_TOKEN, &owner("T1"), sealed.clone()),
        Err(DecryptError::MissingKey {
            key_id: "k1".to_owned()
        })
    );
    assert_eq!(
        TokenCipher::new(None).open(BOT_TOKEN, &owner("T1"), sealed),
        Err(DecryptError::NoKeys {
            key_id: "k1".to_owned()
        })
    );
}

#[test]
fn bad_key_settings_are_named_without_the_key() {
    let cases = [
        ("", KeyError::Empty),
        (" , ", KeyError::Empty),
        ("nocolon", KeyError::Malformed { position: 1 }),
        (
            &format!("{K1},:AAAA")[..],
            KeyError::InvalidKeyId { position: 2 },
        ),
        ("bad id:AAAA", KeyError::InvalidKeyId { position: 1 }),
        (
            "k1:c2hvcnQ=",
            KeyError::InvalidKey {
                key_id: "k1".to_owned(),
            },
        ),
        (
            &format!("{K1},{K1}")[..],
            KeyError::DuplicateKeyId {
                key_id: "k1".to_owned(),
            },
        ),
    ];
    for (value, expected) in cases {
        let error = EncryptionKeys::parse(value).unwrap_err();
        assert_eq!(error, expected, "{value:?}");
        assert!(!error.to_string().contains("AAEC"), "{error}");
    }
    assert!(EncryptionKeys::parse(&generate_key_entry("new")).is_ok());
}

#[test]
fn key_ids_are_bounded_and_listed_in_order() {
    let material = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; // fake
    let longest = "a".repeat(MAX_KEY_ID_LEN);
    assert!(EncryptionKeys::parse(&format!("{longest}:{material}")).is_ok());
    assert_eq!(
        EncryptionKeys::parse(&format!("{longest}b:{material}")).unwrap_err(),
        KeyError::InvalidKeyId { position: 1 }
    );
    // Each character outside letters, digits, - and _ is refused on its own.
    for bad in ["k.1", "k 1", "k/1"] {
        assert_eq!(
            EncryptionKeys::parse(&format!("{bad}:{material}")).unwrap_err(),
            KeyError::InvalidKeyId { position: 1 },
            "{bad}"
        );
    }
    assert!(EncryptionKeys::parse(&format!("k-1_a:{material}")).is_ok());
    let keys = EncryptionKeys::parse(&format!("{K2},{K1}")).unwrap();
    assert_eq!(keys.ids().collect::<Vec<_>>(), ["k2", "k1"]);
    assert_eq!(keys.primary_id(), "k2");
    // Debug names the ids and nothing else.
    assert_eq!(
        format!("{keys:?}"),
        "EncryptionKeys { ids: [\"k2\", \"k1\"] }"
    );
}

/// Envelopes whose body is shorter than a nonce and a tag are refused as invalid, without
/// reading past their end; the shortest valid envelope (an empty value) still opens.
#[test]
fn short_envelope_bodies_are_invalid_and_the_shortest_valid_one_opens() {
    use base64::Engine as _;
    let cipher = cipher(K1);
    for length in [0, 1, 10, NONCE_BYTES - 1, NONCE_BYTES, NONCE_BYTES + 15] {
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(vec![7u8; length]);
        let stored = format!("enc:v1:k1:{body}");
        assert!(
            matches!(
                cipher.open(BOT_TOKEN, &owner("T1"), stored),
                Err(DecryptError::Invalid)
            ),
            "a body of {length} bytes"
        );
    }
    let empty = cipher.seal(BOT_TOKEN, &owner("T1"), "");
    assert_eq!(cipher.open(BOT_TOKEN, &owner("T1"), empty).unwrap(), "");
}

#[test]
fn only_a_cipher_with_keys_encrypts() {
    assert!(cipher(K1).encrypts());
    assert!(!TokenCipher::new(None).encrypts());
}
