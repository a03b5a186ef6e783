//! Tokens encrypted at rest on PostgreSQL (`connect_encrypted`): what reaches the tables, who
//! can read it back, and re-encryption under a new key while the store is in use. The twin of
//! the SQLite tests in `sqlite.rs`; the conformance suite runs encrypted too (`postgres.rs`).

use slack_oauth::encryption::EncryptionKeys;
use slack_oauth::installation::ReinstallFlag;
use slack_oauth::secret::{BotToken, RefreshToken};
use slack_oauth::store::{
    AnyStore, InstallationQuery, InstallationStore, LostGrant, PostgresStore, ReencryptCursor,
    ReencryptProgress, RotatedToken, StoreErrorKind, TokenUpdate,
};
use slack_oauth_test::fixtures::{self, now};

use super::support::{TestSchema, CLIENT_ID};

const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; // fake
const K2: &str = "k2:Hx4dHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA="; // fake

/// Every sealed column, as `(table, column)`.
const SEALED: [(&str, &str); 7] = [
    ("slack_installations", "bot_token"),
    ("slack_installations", "bot_refresh_token"),
    ("slack_installations", "user_token"),
    ("slack_installations", "user_refresh_token"),
    ("slack_installations", "incoming_webhook_url"),
    ("slack_bots", "bot_token"),
    ("slack_bots", "bot_refresh_token"),
];

fn keys(value: &str) -> Option<EncryptionKeys> {
    Some(EncryptionKeys::parse(value).unwrap())
}

/// Every row of both tables, each as PostgreSQL prints a whole row (`SELECT t::text`).
async fn dump(store: &PostgresStore) -> String {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT t::text FROM slack_installations t UNION ALL SELECT t::text FROM slack_bots t",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    rows.join("\n")
}

/// Runs re-encryption from the start to the end in batches of `batch`.
async fn reencrypt_all(store: &PostgresStore, batch: u32) -> ReencryptProgress {
    let mut cursor = Some(ReencryptCursor::start());
    let mut total = ReencryptProgress::default();
    while let Some(from) = cursor {
        let (next, done) = store.reencrypt_batch(from, batch).await.unwrap();
        total += done;
        cursor = next;
    }
    total
}

/// How many non-empty values of the sealed columns are not envelopes under `key_id`.
async fn not_under(
    store: &PostgresStore,
    key_id: &str,
) -> Vec<((&'static str, &'static str), i64)> {
    let mut stale = Vec::new();
    for (table, column) in SEALED {
        let count: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {table} WHERE {column} <> '' AND {column} NOT LIKE $1"
        ))
        .bind(format!("enc:v1:{key_id}:%"))
        .fetch_one(store.pool())
        .await
        .unwrap();
        stale.push(((table, column), count));
    }
    stale.retain(|(_, count)| *count > 0);
    stale
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tables_hold_no_token_and_only_the_right_keys_read_them() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let mut installation = fixtures::workspace("T1", "U1")
        .with_rotation(now() + time::Duration::hours(12))
        .with_webhook()
        .build();
    // As long as a token can be: its envelope is longer than slack_sdk's VARCHAR(200).
    installation.bot_refresh_token = Some(RefreshToken::new(format!("xoxe-1-{}", "a".repeat(193)))); // fake
    let store = schema.encrypted_store(keys(K1)).await.unwrap();
    store.save(&installation).await.unwrap();
    store
        .save(&fixtures::org_wide("E1", "U2").build())
        .await
        .unwrap();

    let text = dump(&store).await;
    for secret in ["xoxb-", "xoxp-", "xoxe", "hooks.slack.com", "secret0"] {
        assert!(!text.contains(secret), "{secret} is in the tables:\n{text}");
    }
    assert!(text.contains("enc:v1:k1:"));
    store.close().await;

    // The right key reads every token back.
    let store = schema.encrypted_store(keys(K1)).await.unwrap();
    let found = store
        .find_installation(&InstallationQuery::team("T1"))
        .await
        .unwrap()
        .unwrap();
    slack_oauth_test::assert::same_installation(&found, &installation, "read back");
    let org = store
        .find_installation(&InstallationQuery::org("E1").user("U2"))
        .await
        .unwrap()
        .unwrap();
    assert!(org.bot_token.is_some() && org.user_token.is_some());
    store.close().await;

    // No key, or the wrong one: the store refuses to open, naming the key it needs.
    for wrong in [None, keys(K2)] {
        let error = schema.encrypted_store(wrong).await.unwrap_err();
        assert_eq!(error.kind(), StoreErrorKind::Config);
        let message = error.to_string();
        assert!(message.contains("\"k1\""), "{message}");
        assert!(!message.contains("AAEC"), "{message}");
    }
    // Nor does any other way of opening it (they have no keys).
    let error = PostgresStore::connect_in_schema(schema.url(), CLIENT_ID, &schema.name)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("\"k1\""), "{error}");
    // Another app's rows are not this app's business.
    PostgresStore::connect_in_schema(schema.url(), "333.444", &schema.name)
        .await
        .unwrap()
        .close()
        .await;

    // A new key first, the old one after (through AnyStore, as the CLI opens it): old rows
    // read, new writes use the new key.
    let any = AnyStore::connect_encrypted(
        &schema.url_in_schema(),
        CLIENT_ID,
        keys(&format!("{K2},{K1}")),
    )
    .await
    .unwrap();
    assert_eq!(any.backend(), "postgres");
    let bot = any
        .find_bot(&InstallationQuery::team("T1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(Some(bot.bot_token), installation.bot_token);
    any.save(&fixtures::workspace("T2", "U2").build())
        .await
        .unwrap();
    any.close().await.unwrap();
    let store = schema
        .encrypted_store(keys(&format!("{K2},{K1}")))
        .await
        .unwrap();
    assert!(dump(&store).await.contains("enc:v1:k2:"));
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_moved_to_another_workspace_does_not_decrypt() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.encrypted_store(keys(K1)).await.unwrap();
    for team in ["T1", "T2"] {
        store
            .save(&fixtures::workspace(team, "U1").build())
            .await
            .unwrap();
    }
    sqlx::query(
        "UPDATE slack_bots SET bot_token = \
         (SELECT bot_token FROM slack_bots WHERE team_id = 'T1') WHERE team_id = 'T2'",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let error = store
        .find_bot(&InstallationQuery::team("T2"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Corrupt, "{error}");
    assert!(!error.to_string().contains("xoxb-"), "{error}");
    assert!(store
        .find_bot(&InstallationQuery::team("T1"))
        .await
        .unwrap()
        .is_some());
    // Into another column of the same row: the same.
    sqlx::query("UPDATE slack_installations SET user_token = bot_token WHERE team_id = 'T1'")
        .execute(store.pool())
        .await
        .unwrap();
    let error = store
        .find_installation(&InstallationQuery::team("T1"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Corrupt, "{error}");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_rows_stay_readable_and_rotate_once_keys_are_set() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let installation = fixtures::workspace("T1", "U1")
        .with_rotation(now() + time::Duration::hours(1))
        .with_webhook()
        .build();
    let plain = schema.encrypted_store(None).await.unwrap();
    plain.save(&installation).await.unwrap();
    plain
        .save(
            &fixtures::workspace("T2", "U2")
                .with_rotation(now() + time::Duration::hours(1))
                .build(),
        )
        .await
        .unwrap();
    assert!(dump(&plain).await.contains("xoxe.xoxb-T1-U1")); // fake
    plain.close().await;

    let store = schema.encrypted_store(keys(K1)).await.unwrap();
    let found = store
        .find_installation(&InstallationQuery::team("T1"))
        .await
        .unwrap()
        .unwrap();
    slack_oauth_test::assert::same_installation(&found, &installation, "plaintext, read with keys");
    // The compare-and-swap finds the plaintext refresh token and writes envelopes.
    let update = TokenUpdate {
        enterprise_id: None,
        team_id: Some("T1".into()),
        previous_refresh_token: found.bot_refresh_token.clone().unwrap(),
        token: RotatedToken::Bot {
            token: BotToken::new("xoxe.xoxb-rotated"), // fake
        },
        refresh_token: RefreshToken::new("xoxe-1-rotated"), // fake
        expires_at: Some(now() + time::Duration::hours(12)),
    };
    assert!(store.update_rotated_token(&update).await.unwrap());
    assert!(!store.update_rotated_token(&update).await.unwrap(), "spent");
    let rotated = store
        .find_installation(&InstallationQuery::team("T1").user("U1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rotated.bot_token.unwrap().secret(), "xoxe.xoxb-rotated"); // fake
                                                                          // The rotation sealed what it wrote; what it did not touch is still plaintext.
    let text = dump(&store).await;
    assert!(!text.contains("xoxe.xoxb-rotated"), "{text}"); // fake
    assert!(text.contains("xoxe.xoxp-T1-U1"), "{text}"); // fake

    // The reinstall mark finds a plaintext refresh token and a sealed one alike.
    let flag = ReinstallFlag::new("invalid_refresh_token", now());
    let user_grant = LostGrant {
        enterprise_id: None,
        team_id: Some("T1".into()),
        user_id: Some("U1".into()),
        refresh_token: found.user_refresh_token.clone().unwrap(),
        flag: flag.clone(),
    };
    assert!(store.flag_reinstall(&user_grant).await.unwrap());
    let bot_grant = LostGrant {
        user_id: None,
        refresh_token: RefreshToken::new("xoxe-1-rotated"), // fake
        ..user_grant.clone()
    };
    assert!(store.flag_reinstall(&bot_grant).await.unwrap());
    assert!(
        !store.flag_reinstall(&bot_grant).await.unwrap(),
        "only once"
    );
    let flagged = store
        .find_installation(&InstallationQuery::team("T1").user("U1"))
        .await
        .unwrap()
        .unwrap();
    assert!(flagged.bot_needs_reinstall.is_some() && flagged.user_needs_reinstall.is_some());

    // Re-encryption seals the rest; every value then opens with the key alone.
    let total = reencrypt_all(&store, 1).await;
    assert_eq!(total.rows, 4, "two installations, two bots");
    assert!(total.rewritten >= 8, "{total:?}");
    assert!(not_under(&store, "k1").await.is_empty());
    let found = store
        .find_installation(&InstallationQuery::team("T2"))
        .await
        .unwrap()
        .unwrap();
    assert!(found.user_refresh_token.is_some());
    store.close().await;
}

/// S6 on PostgreSQL: re-encrypting under a new key while saves, lookups and rotations go on:
/// every row ends on the new key, no save, lookup or rotation fails or is lost, the old key can
/// go. 300 installations in CI; 100,000 with `SLACK_OAUTH_RELIABILITY` set (the line
/// `RELIABILITY S6 [postgres] ...` reports the run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reencrypting_moves_every_row_to_the_new_key_while_saves_and_rotations_go_on() {
    use futures::StreamExt as _;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    /// Workspaces whose bot and user tokens keep being rotated.
    const ROTATED: usize = 40;
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let rows: usize = if std::env::var_os("SLACK_OAUTH_RELIABILITY").is_some() {
        100_000
    } else {
        300
    };
    let store = schema.encrypted_store(keys(K1)).await.unwrap();
    let seeding = std::time::Instant::now();
    futures::stream::iter(0..rows)
        .map(|n| {
            let store = store.clone();
            async move {
                let installation = fixtures::workspace(&format!("T{n}"), "U1")
                    .with_rotation(now() + time::Duration::hours(12))
                    .with_webhook()
                    .build();
                store.save(&installation).await.unwrap();
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
    let seeded = seeding.elapsed();
    store.close().await;

    let store = schema
        .encrypted_store(keys(&format!("{K2},{K1}")))
        .await
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let (operations, failures) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    // Saves and lookups keep coming while the rows are re-encrypted.
    let load = tokio::spawn({
        let (store, done) = (store.clone(), Arc::clone(&done));
        let (operations, failures) = (Arc::clone(&operations), Arc::clone(&failures));
        async move {
            let mut n = 0_usize;
            while !done.load(Ordering::Relaxed) {
                let installation = fixtures::workspace(&format!("N{n}"), "U1").build();
                let saved = store.save(&installation).await.is_ok();
                let query = InstallationQuery::team(format!("T{}", (n * 7919) % rows));
                let found = matches!(store.find_installation(&query).await, Ok(Some(_)));
                operations.fetch_add(2, Ordering::Relaxed);
                failures.fetch_add(u64::from(!saved) + u64::from(!found), Ordering::Relaxed);
                n += 1;
            }
            n
        }
    });
    // And rotations of the first workspaces' bot and user tokens, one after the other: each
    // compare-and-swap must find the refresh token the previous one wrote.
    let rotations = tokio::spawn({
        let (store, done) = (store.clone(), Arc::clone(&done));
        let (operations, failures) = (Arc::clone(&operations), Arc::clone(&failures));
        async move {
            let mut generation = vec![0_u32; ROTATED];
            let mut round = 0_usize;
            while !done.load(Ordering::Relaxed) {
                let workspace = round % ROTATED;
                let team = format!("T{workspace}");
                let (old, new) = (generation[workspace], generation[workspace] + 1);
                for user in [false, true] {
                    let refresh = |generation: u32| {
                        let who = if user { "user" } else { "bot" };
                        // The fixture's first refresh tokens, then this task's.
                        let suffix = if generation == 0 {
                            "U1-0".to_owned()
                        } else {
                            format!("r{generation}")
                        };
                        let token = format!("xoxe-1-{who}-{team}-{suffix}"); // fake
                        RefreshToken::new(token)
                    };
                    let token = if user {
                        RotatedToken::User {
                            user_id: "U1".into(),
                            token: format!("xoxe.xoxp-{team}-r{new}").into(), // fake
                        }
                    } else {
                        RotatedToken::Bot {
                            token: format!("xoxe.xoxb-{team}-r{new}").into(), // fake
                        }
                    };
                    let update = TokenUpdate {
                        enterprise_id: None,
                        team_id: Some(team.as_str().into()),
                        previous_refresh_token: refresh(old),
                        token,
                        refresh_token: refresh(new),
                        expires_at: Some(now() + time::Duration::hours(12)),
                    };
                    let swapped = matches!(store.update_rotated_token(&update).await, Ok(true));
                    operations.fetch_add(1, Ordering::Relaxed);
                    failures.fetch_add(u64::from(!swapped), Ordering::Relaxed);
                }
                generation[workspace] = new;
                round += 1;
            }
            generation
        }
    });
    let started = std::time::Instant::now();
    let total = reencrypt_all(&store, 500).await;
    let took = started.elapsed();
    // Let the load and the rotations go on a little past the end.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    done.store(true, Ordering::Relaxed);
    let saved = load.await.unwrap();
    let generations = rotations.await.unwrap();
    let rotated: u32 = generations.iter().sum();
    eprintln!(
        "RELIABILITY S6 [postgres] key rotation over {rows} installations (and their bots, \
         seeded in {seeded:.1?}) in {took:.1?} while saves, lookups and rotations went on: {} \
         values re-encrypted, {} operations alongside ({rotated} bot and as many user token \
         rotations), {} failed; every value on the new key, the old key removed afterwards",
        total.rewritten,
        operations.load(Ordering::Relaxed),
        failures.load(Ordering::Relaxed),
    );
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "saves, lookups or rotations failed"
    );
    assert!(rotated > 0, "no rotation ran during the re-encryption");
    assert!(total.rewritten >= rows as u64 * 5, "{total:?}");
    assert_eq!(not_under(&store, "k2").await, []);

    // A second run has nothing to do.
    let again = reencrypt_all(&store, 10_000).await;
    assert_eq!(again.rewritten, 0);
    assert_eq!(
        again.rows,
        (rows + saved) as u64 * 2,
        "every installation and bot row visited"
    );
    store.close().await;

    // The old key can go, and no rotation was lost.
    let store = schema.encrypted_store(keys(K2)).await.unwrap();
    for (workspace, generation) in generations.iter().enumerate() {
        let found = store
            .find_installation(&InstallationQuery::team(format!("T{workspace}")).user("U1"))
            .await
            .unwrap()
            .unwrap();
        if *generation > 0 {
            assert_eq!(
                found.bot_token.unwrap().secret(),
                format!("xoxe.xoxb-T{workspace}-r{generation}") // fake
            );
            assert_eq!(
                found.user_refresh_token.unwrap().secret(),
                format!("xoxe-1-user-T{workspace}-r{generation}") // fake
            );
        }
        assert!(found.incoming_webhook_url.is_some());
    }
    let found = store
        .find_installation(&InstallationQuery::team("N0"))
        .await
        .unwrap();
    assert!(found.is_some() || saved == 0);
    store.close().await;
}

/// A row another transaction holds (a rotation in flight, an app's own transaction) does not
/// stop the batch: the other rows are rewritten at once, then that row once it is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reencryption_waits_only_for_the_rows_another_transaction_holds() {
    use sqlx::Connection as _;
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.encrypted_store(keys(K1)).await.unwrap();
    for team in ["T1", "T2", "T3"] {
        store
            .save(&fixtures::workspace(team, "U1").build())
            .await
            .unwrap();
    }
    store.close().await;
    let store = schema
        .encrypted_store(keys(&format!("{K2},{K1}")))
        .await
        .unwrap();
    let mut holder = schema.connection().await;
    let mut transaction = holder.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM slack_installations WHERE team_id = 'T2' FOR UPDATE")
        .execute(&mut *transaction)
        .await
        .unwrap();
    let batch = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .reencrypt_batch(ReencryptCursor::start(), 500)
                .await
                .unwrap()
        }
    });
    // The batch's statement is seen waiting on a lock by the server itself.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline && !batch.is_finished(),
            "the batch never waited for the held row"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!batch.is_finished(), "the batch waits for the held row");
    let moved: Vec<String> = sqlx::query_scalar(
        "SELECT team_id FROM slack_installations WHERE bot_token LIKE 'enc:v1:k2:%' ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(moved, ["T1", "T3"], "the rows nobody held are done already");
    transaction.commit().await.unwrap();
    let (next, done) = batch.await.unwrap();
    assert_eq!(done.rows, 3);
    assert_eq!(done.rewritten, 6, "bot and user token of each installation");
    let (_, bots) = store.reencrypt_batch(next.unwrap(), 500).await.unwrap();
    assert_eq!(bots.rewritten, 3);
    assert_eq!(not_under(&store, "k2").await, []);
    store.close().await;
}
