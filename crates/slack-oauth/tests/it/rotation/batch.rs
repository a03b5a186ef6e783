//! `rotate_all`: events, summary, the shared-bot dedupe, the budget, dry runs.

use futures::StreamExt as _;
use slack_emulator::Emulator;
use slack_oauth::installation::Installation;
use slack_oauth::rotation::{
    rotate_all, BatchOptions, Rotation, RotationError, RotationEvent, TokenKind,
};
use slack_oauth::secret::RefreshToken;
use slack_oauth::store::{InstallationQuery, InstallationStore, MemoryStore};
use time::OffsetDateTime;

use super::{long_ago, rotating_emulator, rotating_installation, rotator};

/// T1: U1 and U2 share the workspace's bot; T2: U3; T3: nothing due; T4: a bot-only install
/// whose refresh token Slack refuses. Returns the store and the listed-due installations.
async fn workspaces(emulator: &Emulator) -> MemoryStore {
    let store = MemoryStore::new();
    let u1 = rotating_installation(emulator, "T1", "U1", long_ago());
    let other = rotating_installation(emulator, "T1", "U2", long_ago());
    let mut u2 = u1.clone();
    u2.user_id = "U2".into();
    u2.user_token = other.user_token;
    u2.user_refresh_token = other.user_refresh_token;
    u2.installed_at += time::Duration::seconds(1);
    let u3 = rotating_installation(emulator, "T2", "U3", long_ago());
    let fresh = rotating_installation(
        emulator,
        "T3",
        "U4",
        OffsetDateTime::now_utc() + time::Duration::days(1),
    );
    let mut broken: Installation = rotating_installation(emulator, "T4", "U5", long_ago());
    broken.bot_refresh_token = Some(RefreshToken::new("xoxe-1-revoked"));
    broken.user_token = None;
    broken.user_refresh_token = None;
    broken.user_token_expires_at = None;
    for installation in [&u1, &u2, &u3, &fresh, &broken] {
        store.save(installation).await.unwrap();
    }
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotates_every_due_installation_once_per_token() {
    let emulator = rotating_emulator().await;
    let store = workspaces(&emulator).await;
    let options = BatchOptions {
        concurrency: 2,
        ..BatchOptions::default()
    };
    let events: Vec<_> = rotate_all(Rotation::new(rotator(&emulator), store.clone()), options)
        .collect()
        .await;

    assert!(
        matches!(events[0], RotationEvent::Planned { total: 4 }),
        "{events:?}"
    );
    let RotationEvent::Finished { summary } = events.last().unwrap() else {
        panic!("the last event is Finished: {events:?}");
    };
    assert_eq!(summary.planned, 4);
    assert_eq!(summary.rotated, 3);
    assert_eq!(summary.bot_tokens, 2, "T1's shared bot once, T2's bot");
    assert_eq!(summary.user_tokens, 3);
    assert_eq!(summary.failed, 0);
    assert_eq!(summary.needs_reinstall, 1, "T4's refused grant");
    assert_eq!(summary.not_needed, 0);
    assert_eq!(events.len(), 6);
    let marked: Vec<_> = events
        .iter()
        .filter_map(|event| match event {
            RotationEvent::NeedsReinstall { ids, token, reason } => {
                Some((ids.clone(), *token, reason.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(marked.len(), 1);
    assert_eq!(marked[0].0.team_id.as_ref().unwrap().as_str(), "T4");
    assert_eq!(marked[0].1, TokenKind::Bot);
    assert_eq!(marked[0].2, "invalid_refresh_token");
    let counters = emulator.counters();
    assert_eq!(counters.refreshes_served, 5);
    assert_eq!(counters.spent_refresh_token_reuse, 0);
    assert!(counters.refresh_redemptions.values().all(|n| *n == 1));
    let bot = store
        .find_bot(&InstallationQuery::team("T4"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        bot.needs_reinstall.map(|flag| flag.reason).as_deref(),
        Some("invalid_refresh_token"),
        "the store holds the mark"
    );

    // The next run reports it again without sending the dead token.
    let calls = counters.calls.get("oauth.v2.access").copied();
    let again: Vec<_> = rotate_all(
        Rotation::new(rotator(&emulator), store),
        BatchOptions::default(),
    )
    .collect()
    .await;
    let RotationEvent::Finished { summary } = again.last().unwrap() else {
        panic!("the last event is Finished: {again:?}");
    };
    assert_eq!(summary.needs_reinstall, 1);
    assert_eq!(summary.rotated, 0);
    assert_eq!(
        emulator.counters().calls.get("oauth.v2.access").copied(),
        calls,
        "a marked token is never sent again"
    );
}

#[tokio::test]
async fn a_dry_run_refreshes_nothing() {
    let emulator = rotating_emulator().await;
    let store = workspaces(&emulator).await;
    let options = BatchOptions {
        dry_run: true,
        ..BatchOptions::default()
    };
    let events: Vec<_> = rotate_all(Rotation::new(rotator(&emulator), store), options)
        .collect()
        .await;
    let mut bots = 0;
    let mut users = 0;
    for event in &events {
        if let RotationEvent::WouldRotate { bot, user, .. } = event {
            bots += usize::from(*bot);
            users += usize::from(*user);
        }
    }
    assert_eq!(
        (bots, users),
        (3, 3),
        "T1's bot counted once; T2's and T4's bots"
    );
    let RotationEvent::Finished { summary } = events.last().unwrap() else {
        panic!("the last event is Finished: {events:?}");
    };
    assert_eq!(summary.would_rotate, 4);
    assert_eq!(summary.rotated, 0);
    assert_eq!(emulator.counters().calls.get("oauth.v2.access"), None);
}

/// A dry run names exactly the due tokens: a bot due beside a user token that is not, and a
/// user token due beside a bot that is not.
#[tokio::test]
async fn a_dry_run_names_only_the_due_token_of_each_installation() {
    let emulator = rotating_emulator().await;
    let store = MemoryStore::new();
    let later = OffsetDateTime::now_utc() + time::Duration::days(1);
    let mut bot_due = rotating_installation(&emulator, "T1", "U1", long_ago());
    bot_due.user_token_expires_at = Some(later);
    let mut user_due = rotating_installation(&emulator, "T2", "U2", long_ago());
    user_due.bot_token_expires_at = Some(later);
    for installation in [&bot_due, &user_due] {
        store.save(installation).await.unwrap();
    }
    let options = BatchOptions {
        dry_run: true,
        ..BatchOptions::default()
    };
    let events: Vec<_> = rotate_all(Rotation::new(rotator(&emulator), store), options)
        .collect()
        .await;
    let mut named: Vec<_> = events
        .iter()
        .filter_map(|event| match event {
            RotationEvent::WouldRotate { ids, bot, user } => {
                Some((ids.team_id.clone().unwrap().to_string(), *bot, *user))
            }
            _ => None,
        })
        .collect();
    named.sort();
    assert_eq!(
        named,
        [
            ("T1".to_owned(), true, false),
            ("T2".to_owned(), false, true)
        ],
        "{events:?}"
    );
}

/// Tokens expiring *later* but within the window are due (the window reaches ahead of now), and
/// an installation whose bot is not due has only its user token refreshed.
#[tokio::test]
async fn the_window_reaches_ahead_and_each_token_is_judged_alone() {
    let emulator = rotating_emulator().await;
    let store = MemoryStore::new();
    let soon = OffsetDateTime::now_utc() + time::Duration::minutes(60);
    let later = OffsetDateTime::now_utc() + time::Duration::days(1);
    let mut installation = rotating_installation(&emulator, "T1", "U1", soon);
    installation.bot_token_expires_at = Some(later);
    store.save(&installation).await.unwrap();
    let options = BatchOptions {
        minutes_before_expiration: 120,
        ..BatchOptions::default()
    };
    let events: Vec<_> = rotate_all(Rotation::new(rotator(&emulator), store.clone()), options)
        .collect()
        .await;
    let RotationEvent::Finished { summary } = events.last().unwrap() else {
        panic!("{events:?}");
    };
    assert_eq!((summary.planned, summary.rotated), (1, 1), "{events:?}");
    assert_eq!(
        (summary.bot_tokens, summary.user_tokens),
        (0, 1),
        "{events:?}"
    );
    let stored = store
        .find_installation(&InstallationQuery::team("T1").user("U1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.bot_token, installation.bot_token,
        "the bot was not due"
    );
    assert_ne!(stored.user_token, installation.user_token);
}

/// The store's clock on tokio's (paused) clock, so that the budget's minute passes in virtual
/// time.
#[derive(Debug)]
struct VirtualClock {
    base: OffsetDateTime,
    start: tokio::time::Instant,
}

impl slack_oauth::clock::Clock for VirtualClock {
    fn now(&self) -> OffsetDateTime {
        self.base + (tokio::time::Instant::now() - self.start)
    }
}

/// Every call counts against the budget, one-token items included: at 1 call a minute, the
/// second of two user-token refreshes waits about a minute (on a paused clock), and a batch
/// waits as long as it takes.
#[tokio::test(start_paused = true)]
async fn every_refresh_spends_the_budget() {
    let emulator = rotating_emulator().await;
    let store = MemoryStore::new().with_clock(VirtualClock {
        base: OffsetDateTime::now_utc(),
        start: tokio::time::Instant::now(),
    });
    let later = OffsetDateTime::now_utc() + time::Duration::days(1);
    for (team, user) in [("T1", "U1"), ("T2", "U2")] {
        let mut installation = rotating_installation(&emulator, team, user, long_ago());
        installation.bot_token_expires_at = Some(later);
        store.save(&installation).await.unwrap();
    }
    let options = BatchOptions {
        concurrency: 1,
        ..BatchOptions::default()
    };
    let started = tokio::time::Instant::now();
    let rotation = Rotation::new(rotator(&emulator), store).max_per_minute(1);
    let events: Vec<_> = rotate_all(rotation, options).collect().await;
    let RotationEvent::Finished { summary } = events.last().unwrap() else {
        panic!("{events:?}");
    };
    assert_eq!((summary.rotated, summary.user_tokens), (2, 2), "{events:?}");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(50),
        "the second call did not wait for the budget: {:?}",
        started.elapsed()
    );
}

/// A rotation whose user half Slack refuses while the bot half succeeds is reported as the
/// user token needing a reinstall (not as a failure), and counted once.
#[tokio::test]
async fn a_partly_refused_rotation_reports_the_refused_token() {
    let emulator = rotating_emulator().await;
    let store = MemoryStore::new();
    let mut installation = rotating_installation(&emulator, "T1", "U1", long_ago());
    installation.user_refresh_token = Some(RefreshToken::new("xoxe-1-unknown")); // fake
    store.save(&installation).await.unwrap();
    let events: Vec<_> = rotate_all(
        Rotation::new(rotator(&emulator), store.clone()),
        BatchOptions::default(),
    )
    .collect()
    .await;
    let marked = events.iter().find_map(|event| match event {
        RotationEvent::NeedsReinstall { token, reason, .. } => Some((*token, reason.clone())),
        _ => None,
    });
    assert_eq!(
        marked,
        Some((TokenKind::User, "invalid_refresh_token".to_owned())),
        "{events:?}"
    );
    let RotationEvent::Finished { summary } = events.last().unwrap() else {
        panic!("{events:?}");
    };
    assert_eq!(
        (summary.needs_reinstall, summary.failed),
        (1, 0),
        "{events:?}"
    );
}

/// A failure Slack explains is reported with Slack's error string.
#[tokio::test]
async fn a_failure_carries_slacks_error() {
    let emulator = rotating_emulator().await;
    let store = MemoryStore::new();
    store
        .save(&rotating_installation(&emulator, "T1", "U1", long_ago()))
        .await
        .unwrap();
    let wrong = slack_oauth::rotation::TokenRotator::new(
        crate::support::client(&emulator),
        slack_oauth::api::ClientCredentials::new("111.222", "not-the-secret-S3NT1N3L"),
    );
    let events: Vec<_> = rotate_all(Rotation::new(wrong, store), BatchOptions::default())
        .collect()
        .await;
    let failed: Vec<_> = events
        .iter()
        .filter_map(|event| match event {
            RotationEvent::Failed { error, .. } => Some(error.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(failed, ["bad_client_secret"], "{events:?}");
    let RotationEvent::Finished { summary } = events.last().unwrap() else {
        panic!("{events:?}");
    };
    assert_eq!(summary.failed, 1);
}

/// Authorize-time refreshes go ahead of proactive ones: with 38 of a budget of 40 spent in the
/// last minute, a request's refresh is sent at once, while a batch (which stops at 95%, 38)
/// waits for the window to move (on a paused clock).
#[tokio::test(start_paused = true)]
async fn authorize_time_refreshes_go_ahead_of_proactive_ones() {
    let emulator = rotating_emulator().await;
    let store = MemoryStore::new().with_clock(VirtualClock {
        base: OffsetDateTime::now_utc(),
        start: tokio::time::Instant::now(),
    });
    let bot_only = |team: &str, user: &str| {
        let mut installation = rotating_installation(&emulator, team, user, long_ago());
        installation.user_token = None;
        installation.user_refresh_token = None;
        installation.user_token_expires_at = None;
        installation
    };
    let (urgent, later) = (bot_only("T1", "U1"), bot_only("T2", "U2"));
    store.save(&urgent).await.unwrap();
    for _ in 0..38 {
        store.spend_refresh_budget(40).await.unwrap();
    }
    let rotation = Rotation::new(rotator(&emulator), store.clone()).max_per_minute(40);

    let started = tokio::time::Instant::now();
    let fresh = rotation.rotate_installation(&urgent).await.unwrap();
    assert_ne!(fresh.bot_token, urgent.bot_token);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "the request's refresh waited {:?}",
        started.elapsed()
    );

    store.save(&later).await.unwrap();
    let started = tokio::time::Instant::now();
    let events: Vec<_> = rotate_all(rotation, BatchOptions::default())
        .collect()
        .await;
    let RotationEvent::Finished { summary } = events.last().unwrap() else {
        panic!("{events:?}");
    };
    assert_eq!(summary.bot_tokens, 1, "{events:?}");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(50),
        "the batch took the reserve: it waited only {:?}",
        started.elapsed()
    );
}

/// A request's refresh waits for the budget only while the wait keeps it within a minute: with
/// the one call of a minute spent 30 s ago it waits about 30 s and refreshes; with it spent
/// just now it answers `BudgetExhausted` at once rather than hold the request a whole minute
/// (on a paused clock).
#[tokio::test(start_paused = true)]
async fn a_request_waits_for_the_budget_only_within_a_minute() {
    let emulator = rotating_emulator().await;
    let store = MemoryStore::new().with_clock(VirtualClock {
        base: OffsetDateTime::now_utc(),
        start: tokio::time::Instant::now(),
    });
    let installation = rotating_installation(&emulator, "T1", "U1", long_ago());
    store.save(&installation).await.unwrap();
    let rotation = Rotation::new(rotator(&emulator), store.clone()).max_per_minute(1);
    let bot = installation.to_bot().unwrap();

    store.spend_refresh_budget(1).await.unwrap();
    let started = tokio::time::Instant::now();
    let error = rotation.rotate_bot(&bot).await.unwrap_err();
    assert!(
        matches!(error, RotationError::BudgetExhausted { .. }),
        "{error:?}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    let started = tokio::time::Instant::now();
    let fresh = rotation.rotate_bot(&bot).await.unwrap();
    assert_ne!(fresh.bot_token, bot.bot_token);
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_secs(29) && waited < std::time::Duration::from_secs(40),
        "waited {waited:?}"
    );
}

/// A batch may spend up to 95% of the budget (38 of 40): with 37 spent it goes at once. A
/// budget of 0 is no limit at all: a batch never waits for it (on a paused clock).
#[tokio::test(start_paused = true)]
async fn a_batch_spends_up_to_95_percent_and_a_zero_budget_has_no_limit() {
    let emulator = rotating_emulator().await;
    let store = MemoryStore::new().with_clock(VirtualClock {
        base: OffsetDateTime::now_utc(),
        start: tokio::time::Instant::now(),
    });
    let bot_only = |team: &str| {
        let mut installation = rotating_installation(&emulator, team, "U1", long_ago());
        installation.user_token = None;
        installation.user_refresh_token = None;
        installation.user_token_expires_at = None;
        installation
    };
    for _ in 0..37 {
        store.spend_refresh_budget(40).await.unwrap();
    }
    store.save(&bot_only("T1")).await.unwrap();
    let rotation = Rotation::new(rotator(&emulator), store.clone()).max_per_minute(40);
    let started = tokio::time::Instant::now();
    let events: Vec<_> = rotate_all(rotation, BatchOptions::default())
        .collect()
        .await;
    assert!(
        matches!(events.last(), Some(RotationEvent::Finished { summary }) if summary.bot_tokens == 1),
        "{events:?}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "the 38th call of 40 waited {:?}",
        started.elapsed()
    );

    for team in ["T2", "T3", "T4"] {
        store.save(&bot_only(team)).await.unwrap();
    }
    let unlimited = Rotation::new(rotator(&emulator), store).max_per_minute(0);
    let started = tokio::time::Instant::now();
    let events = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        rotate_all(unlimited, BatchOptions::default()).collect::<Vec<_>>(),
    )
    .await
    .expect("a budget of 0 made the batch wait");
    assert!(
        matches!(events.last(), Some(RotationEvent::Finished { summary }) if summary.bot_tokens == 3),
        "{events:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}

/// Two users of one workspace share its due bot. With both user tokens due, each item reports
/// the installation as stored: the one that refreshed the bot has its new expiry, the other
/// keeps the bot expiry it was listed with (the bot was not its to refresh). With the user
/// tokens not due, the second item has nothing left and counts as not needed.
#[tokio::test]
async fn items_sharing_a_bot_report_it_once_and_count_what_was_left() {
    let emulator = rotating_emulator().await;
    let later = OffsetDateTime::now_utc() + time::Duration::days(1);
    for users_due in [true, false] {
        let store = MemoryStore::new();
        let first = rotating_installation(&emulator, "T1", "U1", long_ago());
        let other = rotating_installation(&emulator, "T1", "U2", long_ago());
        let mut second = first.clone();
        second.user_id = "U2".into();
        second.user_token = other.user_token;
        second.user_refresh_token = other.user_refresh_token;
        second.installed_at += time::Duration::seconds(1);
        let mut first = first;
        if !users_due {
            first.user_token_expires_at = Some(later);
            second.user_token_expires_at = Some(later);
        }
        store.save(&first).await.unwrap();
        store.save(&second).await.unwrap();
        let options = BatchOptions {
            concurrency: 1,
            ..BatchOptions::default()
        };
        let rotation = Rotation::new(rotator(&emulator), store.clone());
        let events: Vec<_> = rotate_all(rotation, options).collect().await;
        let RotationEvent::Finished { summary } = events.last().unwrap() else {
            panic!("{events:?}");
        };
        let rotated: Vec<_> = events
            .iter()
            .filter_map(|event| match event {
                RotationEvent::Rotated {
                    installation, bot, ..
                } => Some((*bot, installation.bot_token_expires_at)),
                _ => None,
            })
            .collect();
        let now = OffsetDateTime::now_utc();
        if users_due {
            assert_eq!((summary.rotated, summary.not_needed), (2, 0), "{events:?}");
            assert_eq!(summary.bot_tokens, 1);
            for (refreshed_bot, bot_expiry) in rotated {
                let expiry = bot_expiry.expect("every item reports a bot expiry");
                if refreshed_bot {
                    assert!(expiry > now, "the refreshing item has the new expiry");
                } else {
                    assert_eq!(expiry, long_ago(), "the other keeps the listed expiry");
                }
            }
        } else {
            assert_eq!((summary.rotated, summary.not_needed), (1, 1), "{events:?}");
            assert_eq!(summary.bot_tokens, 1);
        }
    }
}

/// The budget a rotation was given is the one it reports, and its `Debug` names its settings
/// and never the app's secret.
#[test]
fn a_rotation_reports_its_budget_and_debugs_without_secrets() {
    let credentials = slack_oauth::api::ClientCredentials::new("111.222", "rotation-S3NT1N3L");
    let rotator =
        slack_oauth::rotation::TokenRotator::new(slack_oauth::Client::new().unwrap(), credentials);
    let rotation = Rotation::new(rotator, MemoryStore::new())
        .max_per_minute(321)
        .minutes_before_expiration(45)
        .slack_timeout(std::time::Duration::from_secs(7));
    assert_eq!(rotation.budget_per_minute(), 321);
    assert_eq!(rotation.window_minutes(), 45);
    assert_eq!(rotation.slack_deadline(), std::time::Duration::from_secs(7));
    assert_eq!(rotation.clone().max_per_minute(0).budget_per_minute(), 0);
    let debug = format!("{rotation:?}");
    assert!(debug.contains("max_per_minute: 321"), "{debug}");
    assert!(!debug.contains("S3NT1N3L"), "{debug}");
}
