//! Token rotation (`slack_oauth::rotation`) over real HTTP against the emulator with rotation on
//! and no refresh grace, so that any double redemption of a refresh token fails loudly.

// `TokenRotator`: the decision, the refresh, Slack's errors, incomplete answers, bot + user.
mod rotator;

// `Rotation`: exactly once across tasks and instances, saves retried, cancellation safety.
mod exactly_once;

// `exchange_installation`: long-lived tokens made rotating, once, within the budget.
mod exchange;

// `rotate_all`: events, summary, the shared-bot dedupe, the budget, dry runs.
mod batch;

// Token custody under faults: the deadline, intents, lost answers marked once, outages.
mod custody;

// R5: a rotating process SIGKILLed at each failpoint; another instance takes over.
mod kills;

// reliability.md's rotation scenarios with trial counts (RELIABILITY.md).
mod scenarios;

// R9: seeded batches of operations by six instances, checked against a versioned-register model.
mod simulation;

// Four processes on one SQLite file, and on PostgreSQL: still one refresh per token.
mod multi_process;

// Lazy rotation through `Authorizer` with `Rotation` as its refresher.
mod authorize;

// 400,000 installations, 4 instances, 24 hours on a virtual clock, one shared budget.
mod scale;

use slack_emulator::{Emulator, Grant};
use slack_oauth::installation::{Installation, Scopes};
use slack_oauth::rotation::TokenRotator;
use slack_oauth::secret::{BotToken, RefreshToken, UserToken};
use time::OffsetDateTime;

use crate::support;

/// An emulator with rotation on and no refresh grace.
async fn rotating_emulator() -> Emulator {
    support::emulator(support::rotating_config()).await
}

/// A rotator for `emulator` with the system clock.
fn rotator(emulator: &Emulator) -> TokenRotator {
    TokenRotator::new(support::client(emulator), support::credentials())
}

/// An installation of workspace `team` by `user` holding live rotating bot and user tokens
/// issued by `emulator`, both stored as expiring at `expires_at`.
fn rotating_installation(
    emulator: &Emulator,
    team: &str,
    user: &str,
    expires_at: OffsetDateTime,
) -> Installation {
    let mut grant = Grant::for_team(team);
    grant.user_id = user.to_owned();
    let (bot, bot_refresh) = emulator.seed_refresh_token(&grant, false);
    let (user_token, user_refresh) = emulator.seed_refresh_token(&grant, true);
    let mut installation = Installation::new(user, expires_at - time::Duration::hours(12));
    installation.app_id = Some("A0EMULATOR".into());
    installation.team_id = Some(team.into());
    installation.bot_id = Some("B0EMULATOR".into());
    installation.bot_user_id = Some("U0EMULBOT".into());
    installation.bot_scopes = Scopes::parse("chat:write,commands");
    installation.bot_token = Some(BotToken::new(bot));
    installation.bot_refresh_token = Some(RefreshToken::new(bot_refresh));
    installation.bot_token_expires_at = Some(expires_at);
    installation.user_scopes = Scopes::parse("search:read");
    installation.user_token = Some(UserToken::new(user_token));
    installation.user_refresh_token = Some(RefreshToken::new(user_refresh));
    installation.user_token_expires_at = Some(expires_at);
    installation.token_type = Some("bot".to_owned());
    installation
}

/// A moment well in the past: tokens stored as expiring then are due.
fn long_ago() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_600_000_000).unwrap()
}

/// Both refresh tokens of `installation` are live: each can be redeemed once more.
async fn assert_refresh_tokens_live(emulator: &Emulator, installation: &Installation) {
    let mut due = installation.clone();
    due.bot_token_expires_at = Some(long_ago());
    due.user_token_expires_at = Some(long_ago());
    let rotated = rotator(emulator)
        .perform_token_rotation(&due, 0)
        .await
        .expect("the stored refresh tokens are live")
        .expect("both tokens were due");
    assert_ne!(rotated.bot_token, installation.bot_token);
    assert_ne!(rotated.user_token, installation.user_token);
}

/// PostgreSQL: a fresh schema per test from `TEST_DATABASE_URL`, or a loud skip.
mod postgres {
    use std::io::Write as _;

    use slack_oauth::store::PostgresStore;

    pub(super) struct Schema {
        pub(super) store: PostgresStore,
        /// The server URL (the schema is not in it).
        pub(super) url: String,
        /// `slack_oauth_rotation_<random>`.
        pub(super) name: String,
    }

    impl Schema {
        /// `None` (after a `SKIPPED` line) without `TEST_DATABASE_URL`; fails under `CI=true`.
        pub(super) async fn new() -> Option<Self> {
            let url = match std::env::var("TEST_DATABASE_URL") {
                Ok(url) if !url.is_empty() => url,
                _ => {
                    assert!(
                        std::env::var("CI").as_deref() != Ok("true"),
                        "TEST_DATABASE_URL is not set: CI must run the postgres rotation tests"
                    );
                    let _ = writeln!(
                        std::io::stderr(),
                        "SKIPPED: postgres rotation tests: TEST_DATABASE_URL is not set"
                    );
                    return None;
                }
            };
            let name = format!("slack_oauth_rotation_{:016x}", rand::random::<u64>());
            let store = PostgresStore::connect_in_schema(&url, "111.222", &name)
                .await
                .unwrap();
            Some(Self { store, url, name })
        }

        /// Drops the schema (only reached when the test passed; a failed one keeps it).
        pub(super) async fn drop(self) {
            sqlx::query(&format!("DROP SCHEMA \"{}\" CASCADE", self.name))
                .execute(self.store.pool())
                .await
                .unwrap();
            self.store.close().await;
        }
    }
}
