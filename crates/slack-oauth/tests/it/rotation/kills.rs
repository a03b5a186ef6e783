//! R5: a rotating process SIGKILLed at each failpoint and at random moments, then another
//! instance takes over. Checked against the emulator: no refresh token redeemed twice, every
//! token either live or marked as needing a reinstall, every loss marked with one event, a
//! marked token never sent again, and no loss at all when the kill came before Slack rotated.
//!
//! The rotating process is this test binary, run as
//! `it --exact rotation::kills::worker --nocapture --include-ignored` with `KILL_WORKER_*` set;
//! the failpoints (the `failpoints` feature, on in `scripts/test.sh`) kill it with SIGKILL from
//! inside. `SLACK_OAUTH_RELIABILITY=full` runs 200 trials per kill point instead of 2.

use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use slack_emulator::{Emulator, EmulatorConfig, Fault, RefreshTokenStatus};
use slack_oauth::installation::Installation;
use slack_oauth::rotation::{rotate_all, BatchOptions, Rotation, RotationError, TokenRotator};
use slack_oauth::store::{AnyStore, InstallationQuery, InstallationStore};

use super::{long_ago, rotating_installation};
use crate::support;

const WORKER_TEST: &str = "rotation::kills::worker";
/// The lease of the workers and of the instance that takes over.
const LEASE: Duration = Duration::from_millis(700);
/// Their Slack deadline.
const DEADLINE: Duration = Duration::from_millis(300);

/// Where a worker dies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KillPoint {
    /// Intent recorded, nothing sent.
    BeforeSend,
    /// The request reached Slack, which rotated; the answer is still on its way.
    RequestSent,
    /// Slack's answer is in memory, not saved.
    AnswerReceived,
    /// The save's transaction is written, not committed (SQLite only).
    MidCommit,
    /// The save is committed.
    AfterCommit,
    /// A random moment around the refresh (0-20 ms after Slack first sees it).
    Random,
}

impl KillPoint {
    const ALL: [Self; 6] = [
        Self::BeforeSend,
        Self::RequestSent,
        Self::AnswerReceived,
        Self::MidCommit,
        Self::AfterCommit,
        Self::Random,
    ];

    /// Whether the moment exists on this store. PostgreSQL saves rotated tokens in one
    /// statement (its CTEs are atomic), so no moment has the rows written and not committed: a
    /// kill while the statement is in flight is PostgreSQL's own all-or-nothing, and the
    /// client side of it is `answer-received` (before) or `after-commit` (after).
    fn exists_on(self, postgres: bool) -> bool {
        !(postgres && self == Self::MidCommit)
    }

    fn name(self) -> &'static str {
        match self {
            Self::BeforeSend => "before-send",
            Self::RequestSent => "request-sent",
            Self::AnswerReceived => "answer-received",
            Self::MidCommit => "mid-commit",
            Self::AfterCommit => "after-commit",
            Self::Random => "random",
        }
    }

    /// The failpoint the worker kills itself at (`None`: the test kills it from outside).
    fn failpoint(self, postgres: bool) -> Option<&'static str> {
        match self {
            Self::BeforeSend => Some("rotation::before-send"),
            Self::AnswerReceived => Some("rotation::answer-received"),
            Self::MidCommit => {
                assert!(!postgres, "PostgreSQL has no mid-commit moment");
                Some("sqlite::before-commit")
            }
            Self::AfterCommit => Some("rotation::after-commit"),
            Self::RequestSent | Self::Random => None,
        }
    }
}

/// What the trials of one kill point found.
#[derive(Default)]
struct Tally {
    passed: usize,
    failed: Vec<String>,
    /// Tokens lost although the kill came before Slack rotated anything.
    losses_before_rotation: usize,
    /// Tokens lost after Slack rotated (the answer died with the process): all must be marked.
    losses_after_rotation: usize,
    /// Losses marked as needing a reinstall (with one event each).
    detected: usize,
    /// Kill to "every token settled" by the instance that took over.
    recovery: Vec<Duration>,
}

/// A store of the kind under test, fresh.
enum Backend {
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
    Postgres(super::postgres::Schema),
}

impl Backend {
    async fn store(&self) -> AnyStore {
        match self {
            Self::Sqlite { url, .. } => AnyStore::connect(url, support::CLIENT_ID).await.unwrap(),
            Self::Postgres(schema) => AnyStore::Postgres(
                slack_oauth::store::PostgresStore::connect_in_schema(
                    &schema.url,
                    support::CLIENT_ID,
                    &schema.name,
                )
                .await
                .unwrap(),
            ),
        }
    }

    fn env(&self) -> (String, String) {
        match self {
            Self::Sqlite { url, .. } => (url.clone(), String::new()),
            Self::Postgres(schema) => (schema.url.clone(), schema.name.clone()),
        }
    }
}

fn instance(emulator: &Emulator, store: AnyStore, events: &Arc<AtomicU32>) -> Rotation<AnyStore> {
    let rotator = TokenRotator::new(support::client(emulator), support::credentials());
    let events = Arc::clone(events);
    Rotation::new(rotator, store)
        .lease_ttl(LEASE)
        .slack_timeout(DEADLINE)
        .on_reinstall_needed(move |_| {
            events.fetch_add(1, Ordering::SeqCst);
        })
}

/// One trial: a worker rotates `installation` and dies at `point`; this process takes over.
async fn trial(backend: &Backend, point: KillPoint, tally: &mut Tally) -> Result<(), String> {
    let emulator = support::emulator(EmulatorConfig {
        reuse_revokes_family: true,
        ..support::rotating_config()
    })
    .await;
    let store = backend.store().await;
    let installation = rotating_installation(&emulator, "T1", "U1", long_ago());
    store.save(&installation).await.map_err(|e| e.to_string())?;
    let postgres = matches!(backend, Backend::Postgres(_));
    match point {
        KillPoint::RequestSent => {
            emulator.inject(
                "oauth.v2.access",
                Fault::SlowResponse(Duration::from_secs(5)),
                1,
            );
        }
        KillPoint::Random => emulator.set_latency(Duration::from_millis(10)),
        _ => {}
    }
    let (url, schema) = backend.env();
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", WORKER_TEST, "--nocapture", "--include-ignored"])
        .env("KILL_WORKER_STORE", url)
        .env("KILL_WORKER_SCHEMA", schema)
        .env("KILL_WORKER_API", emulator.api_url())
        .env(
            "KILL_WORKER_INSTALLATION",
            serde_json::to_string(&installation).unwrap(),
        )
        .env(
            "KILL_WORKER_AT",
            point.failpoint(postgres).unwrap_or("none"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| e.to_string())?;
    if point.failpoint(postgres).is_none() {
        let waited = Instant::now();
        while !emulator.counters().calls.contains_key("oauth.v2.access") {
            if waited.elapsed() > Duration::from_secs(20) {
                return Err("the worker never called Slack".to_owned());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if point == KillPoint::Random {
            tokio::time::sleep(Duration::from_micros(rand::random::<u64>() % 20_000)).await;
        } else {
            // Slack rotated; its answer is on the way.
            while emulator.counters().refreshes_served < 1 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        child.start_kill().map_err(|e| e.to_string())?;
    }
    let output = child.wait_with_output().await.map_err(|e| e.to_string())?;
    let killed_at = Instant::now();
    let killed = {
        use std::os::unix::process::ExitStatusExt as _;
        output.status.signal() == Some(9) // SIGKILL
    };
    if !killed && point != KillPoint::Random {
        return Err(format!(
            "the worker was not killed at {}: {}\n{}",
            point.name(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let rotated_before_takeover = emulator.counters().refreshes_served;

    // Another instance takes over: the dead worker's lease expires, its intent is settled.
    let events = Arc::new(AtomicU32::new(0));
    let takeover = instance(&emulator, store.clone(), &events);
    let query = InstallationQuery::for_installation(&installation);
    let settled = loop {
        let current = store
            .find_installation(&query)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the installation is gone")?;
        let mut due = current.clone();
        // Settle both tokens now, whatever the worker left (due or not).
        due.bot_token_expires_at = Some(long_ago());
        due.user_token_expires_at = Some(long_ago());
        match takeover.rotate_installation(&due).await {
            Err(RotationError::LeaseTimeout { .. }) => continue,
            Err(RotationError::Partial { .. } | RotationError::NeedsReinstall { .. }) | Ok(_) => {
                break store
                    .find_installation(&query)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("the installation is gone")?
            }
            Err(error) if error.is_transient() => continue,
            Err(error) => return Err(format!("takeover failed: {error}")),
        }
    };
    tally.recovery.push(killed_at.elapsed());

    // Every token is live at Slack or marked; every marked one was announced once.
    let mut lost = 0;
    for (kind, refresh, flag) in [
        (
            "bot",
            &settled.bot_refresh_token,
            &settled.bot_needs_reinstall,
        ),
        (
            "user",
            &settled.user_refresh_token,
            &settled.user_needs_reinstall,
        ),
    ] {
        let refresh = refresh.as_ref().ok_or("a refresh token disappeared")?;
        let status = emulator.refresh_token_status(refresh.secret());
        match (status, flag) {
            (RefreshTokenStatus::Live, None) => {}
            (_, Some(_)) => lost += 1,
            (status, None) => {
                return Err(format!(
                    "the {kind} refresh token is {status:?} and not marked"
                ))
            }
        }
    }
    let announced = events.load(Ordering::SeqCst) as usize;
    if announced != lost {
        return Err(format!("{lost} tokens marked but {announced} events"));
    }
    tally.detected += lost;
    if rotated_before_takeover == 0 {
        tally.losses_before_rotation += lost;
    } else {
        tally.losses_after_rotation += lost;
    }
    let counters = emulator.counters();
    if let Some((key, n)) = counters.refresh_redemptions.iter().find(|(_, n)| **n > 1) {
        return Err(format!("refresh token {key} redeemed {n} times"));
    }

    // Marked tokens are never sent again: neither by authorize-time rotation nor by a batch.
    let presented = counters.refresh_presented_at.clone();
    let _ = takeover.rotate_installation(&settled).await;
    let _: Vec<_> = futures::StreamExt::collect::<Vec<_>>(rotate_all(
        takeover.clone(),
        BatchOptions::default(),
    ))
    .await;
    let after = emulator.counters().refresh_presented_at;
    for (refresh, flag) in [
        (&settled.bot_refresh_token, &settled.bot_needs_reinstall),
        (&settled.user_refresh_token, &settled.user_needs_reinstall),
    ] {
        if let (Some(refresh), Some(_)) = (refresh, flag) {
            let key = slack_emulator::refresh_token_key(refresh.secret());
            if presented.get(&key).map(Vec::len) != after.get(&key).map(Vec::len) {
                return Err("a marked token was sent again".to_owned());
            }
        }
    }
    store.close().await.map_err(|e| e.to_string())?;
    emulator.shutdown().await;
    Ok(())
}

async fn kills_at_every_point(backend: &Backend, label: &str) {
    let trials = support::trials(2, 200);
    let mut failures = Vec::new();
    let postgres = matches!(backend, Backend::Postgres(_));
    for point in KillPoint::ALL
        .into_iter()
        .filter(|point| point.exists_on(postgres))
    {
        let mut tally = Tally::default();
        for _ in 0..trials {
            match trial(backend, point, &mut tally).await {
                Ok(()) => tally.passed += 1,
                Err(error) => tally.failed.push(error),
            }
        }
        support::report(&format!(
            "R5 [{label}] {}: {} passed, {} failed; losses before Slack rotated {}, after {} \
             ({} detected and marked); takeover p50 {:?} p99 {:?} (lease {LEASE:?})",
            point.name(),
            tally.passed,
            tally.failed.len(),
            tally.losses_before_rotation,
            tally.losses_after_rotation,
            tally.detected,
            support::percentile(&tally.recovery, 50),
            support::percentile(&tally.recovery, 99),
        ));
        if tally.losses_before_rotation > 0 {
            failures.push(format!(
                "{}: tokens lost before Slack rotated",
                point.name()
            ));
        }
        if matches!(point, KillPoint::BeforeSend | KillPoint::AfterCommit) && tally.detected > 0 {
            failures.push(format!("{}: no token may be lost here", point.name()));
        }
        failures.extend(
            tally
                .failed
                .into_iter()
                .map(|error| format!("{}: {error}", point.name())),
        );
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

fn failpoints_or_skip(name: &str) -> bool {
    if cfg!(feature = "failpoints") {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI must build the tests with --all-features (failpoints)"
    );
    slack_oauth_test::skip(&format!("{name}: built without the `failpoints` feature"));
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_every_point_sqlite() {
    if !failpoints_or_skip("killed_at_every_point_sqlite") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("kills.db").display());
    kills_at_every_point(&Backend::Sqlite { _dir: dir, url }, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_every_point_postgres() {
    if !failpoints_or_skip("killed_at_every_point_postgres") {
        return;
    }
    let Some(schema) = super::postgres::Schema::new().await else {
        return;
    };
    kills_at_every_point(&Backend::Postgres(schema), "postgres").await;
}

/// The worker: acts only when run by a trial above. Kills itself with SIGKILL at the failpoint
/// `KILL_WORKER_AT` (for the commit failpoints, the first commit after Slack's answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a worker process of the kill trials; does nothing on its own"]
async fn worker() {
    let Ok(store_url) = std::env::var("KILL_WORKER_STORE") else {
        return;
    };
    let schema = std::env::var("KILL_WORKER_SCHEMA").unwrap();
    let api = std::env::var("KILL_WORKER_API").unwrap();
    let installation: Installation =
        serde_json::from_str(&std::env::var("KILL_WORKER_INSTALLATION").unwrap()).unwrap();
    let kill_at = std::env::var("KILL_WORKER_AT").unwrap();
    arm(&kill_at);
    let store = if schema.is_empty() {
        AnyStore::connect(&store_url, support::CLIENT_ID)
            .await
            .unwrap()
    } else {
        AnyStore::Postgres(
            slack_oauth::store::PostgresStore::connect_in_schema(
                &store_url,
                support::CLIENT_ID,
                &schema,
            )
            .await
            .unwrap(),
        )
    };
    let rotator = TokenRotator::new(
        support::client_builder(&api).build().unwrap(),
        support::credentials(),
    );
    let rotation = Rotation::new(rotator, store.clone())
        .lease_ttl(LEASE)
        .slack_timeout(DEADLINE);
    // The bot token only, so that each kill point is one moment of one refresh.
    let _ = rotation.rotate_bot(&installation.to_bot().unwrap()).await;
    store.close().await.unwrap();
}

#[cfg(feature = "failpoints")]
fn arm(kill_at: &str) {
    use std::sync::atomic::AtomicBool;
    static ANSWERED: AtomicBool = AtomicBool::new(false);
    fn kill() {
        // kill(1) rather than kill(2): the crate forbids `unsafe`. The calling thread waits
        // here, so the code after the failpoint never runs; SIGKILL cannot be caught.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &std::process::id().to_string()])
            .status();
        std::thread::sleep(Duration::from_secs(60));
    }
    match kill_at {
        "none" => {}
        "sqlite::before-commit" => {
            fail::cfg_callback("rotation::answer-received", || {
                ANSWERED.store(true, Ordering::SeqCst)
            })
            .unwrap();
            fail::cfg_callback(kill_at, || {
                if ANSWERED.load(Ordering::SeqCst) {
                    kill();
                }
            })
            .unwrap();
        }
        name => fail::cfg_callback(name, kill).unwrap(),
    }
}

#[cfg(not(feature = "failpoints"))]
fn arm(_kill_at: &str) {}

/// The time from Slack's answer in memory to the durable commit of the new tokens: the window
/// in which a kill loses them (R5's loss window). Measured with failpoint callbacks.
#[cfg(feature = "failpoints")]
async fn loss_window(store: AnyStore, label: &str) {
    use std::sync::Mutex;
    static ANSWERED: Mutex<Option<Instant>> = Mutex::new(None);
    static WINDOWS: Mutex<Vec<Duration>> = Mutex::new(Vec::new());
    fail::cfg_callback("rotation::answer-received", || {
        *ANSWERED.lock().unwrap() = Some(Instant::now());
    })
    .unwrap();
    fail::cfg_callback("rotation::after-commit", || {
        if let Some(answered) = ANSWERED.lock().unwrap().take() {
            WINDOWS.lock().unwrap().push(answered.elapsed());
        }
    })
    .unwrap();
    let emulator = super::rotating_emulator().await;
    let events = Arc::new(AtomicU32::new(0));
    let rotation = instance(&emulator, store.clone(), &events);
    let trials = support::trials(20, 1_000);
    for n in 0..trials {
        let installation = rotating_installation(&emulator, &format!("T{n}"), "U1", long_ago());
        store.save(&installation).await.unwrap();
        rotation
            .rotate_bot(&installation.to_bot().unwrap())
            .await
            .unwrap();
    }
    fail::remove("rotation::answer-received");
    fail::remove("rotation::after-commit");
    let windows = std::mem::take(&mut *WINDOWS.lock().unwrap());
    assert_eq!(windows.len(), trials, "every rotation measured");
    support::report(&format!(
        "R5 loss window [{label}]: {trials} rotations, answer to durable commit p50 {:?} p99 {:?} \
         max {:?}",
        support::percentile(&windows, 50),
        support::percentile(&windows, 99),
        windows.iter().max().copied().unwrap_or_default(),
    ));
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_window_sqlite() {
    if !failpoints_or_skip("loss_window_sqlite") {
        return;
    }
    #[cfg(feature = "failpoints")]
    {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("window.db").display());
        loss_window(
            AnyStore::connect(&url, support::CLIENT_ID).await.unwrap(),
            "sqlite",
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_window_postgres() {
    if !failpoints_or_skip("loss_window_postgres") {
        return;
    }
    let Some(schema) = super::postgres::Schema::new().await else {
        return;
    };
    #[cfg(feature = "failpoints")]
    {
        let store = slack_oauth::store::PostgresStore::connect_in_schema(
            &schema.url,
            support::CLIENT_ID,
            &schema.name,
        )
        .await
        .unwrap();
        loss_window(AnyStore::Postgres(store), "postgres").await;
    }
    schema.drop().await;
}

/// R14: a process SIGKILLed at random moments while it saves installations, one after the
/// other, printing each acknowledged save: the file passes `PRAGMA integrity_check` and holds
/// every acknowledged save, whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_writing_sqlite_keeps_every_acknowledged_write() {
    // A fresh file every this many kills, so that the integrity check after each kill stays
    // quick (it reads the whole file) in the 10,000-kill run.
    const KILLS_PER_FILE: usize = 500;
    let trials = support::trials(10, 10_000);
    let dir = tempfile::tempdir().unwrap();
    let url_of = |file: usize| {
        format!(
            "sqlite://{}",
            dir.path().join(format!("writes-{file}.db")).display()
        )
    };
    // (file, team) of every save the worker acknowledged.
    let mut acknowledged: Vec<(usize, String)> = Vec::new();
    let (mut failed, mut kills) = (Vec::new(), 0);
    for trial in 0..trials {
        let file = trial / KILLS_PER_FILE;
        let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", WRITER_TEST, "--nocapture", "--include-ignored"])
            .env("WRITE_WORKER_STORE", url_of(file))
            .env("WRITE_WORKER_PREFIX", format!("T{trial}-"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = tokio::spawn(async move {
            use tokio::io::AsyncBufReadExt as _;
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            let mut acks = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(team) = line.strip_prefix("ACK ") {
                    acks.push(team.to_owned());
                }
            }
            acks
        });
        // Startup takes tens of milliseconds; the kill lands anywhere in the writes after it.
        tokio::time::sleep(Duration::from_millis(60 + rand::random::<u64>() % 120)).await;
        child.start_kill().unwrap();
        let status = child.wait().await.unwrap();
        {
            use std::os::unix::process::ExitStatusExt as _;
            kills += usize::from(status.signal() == Some(9));
        }
        acknowledged.extend(reader.await.unwrap().into_iter().map(|team| (file, team)));

        let connection =
            rusqlite::Connection::open(dir.path().join(format!("writes-{file}.db"))).unwrap();
        let check: String = connection
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        if check != "ok" {
            failed.push(format!("trial {trial}: integrity_check {check}"));
        }
    }
    let mut missing = 0;
    for file in 0..trials.div_ceil(KILLS_PER_FILE) {
        let store = AnyStore::connect(&url_of(file), support::CLIENT_ID)
            .await
            .unwrap();
        for (_, team) in acknowledged.iter().filter(|(f, _)| *f == file) {
            match store
                .find_installation(&InstallationQuery::team(team.as_str()))
                .await
            {
                Ok(Some(found)) if found.bot_token.is_some() && found.user_token.is_some() => {}
                _ => missing += 1,
            }
        }
        store.close().await.unwrap();
    }
    support::report(&format!(
        "R14 [sqlite]: {} passed, {} failed; {kills} SIGKILLs during writes, {} acknowledged \
         writes, {missing} missing or torn",
        trials - failed.len(),
        failed.len(),
        acknowledged.len(),
    ));
    assert!(kills > 0, "no worker was killed while writing");
    assert_eq!(missing, 0, "acknowledged writes lost");
    assert!(failed.is_empty(), "{failed:#?}");
}

const WRITER_TEST: &str = "rotation::kills::writer_worker";

/// The writer of the R14 trials: saves installations until killed, printing `ACK <team>`
/// after each save returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a worker process of killed_while_writing_sqlite_keeps_every_acknowledged_write"]
async fn writer_worker() {
    use std::io::Write as _;
    let Ok(url) = std::env::var("WRITE_WORKER_STORE") else {
        return;
    };
    let prefix = std::env::var("WRITE_WORKER_PREFIX").unwrap();
    let store = AnyStore::connect(&url, support::CLIENT_ID).await.unwrap();
    let emulator = super::rotating_emulator().await;
    for n in 0.. {
        let team = format!("{prefix}{n}");
        let installation = rotating_installation(&emulator, &team, "U1", long_ago());
        store.save(&installation).await.unwrap();
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "ACK {team}").unwrap();
        stdout.flush().unwrap();
    }
}

/// R14: a process killed in the middle of a schema migration (all statements run, not
/// committed): the next open migrates completely and every row is still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_migration_sqlite_migrates_on_restart() {
    if !failpoints_or_skip("killed_mid_migration_sqlite_migrates_on_restart") {
        return;
    }
    let url = slack_oauth_test::sqlite::earlier_release_database(true).await;
    let status = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", MIGRATE_TEST, "--nocapture", "--include-ignored"])
        .env("MIGRATE_WORKER_STORE", &url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .unwrap();
    {
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(
            status.signal(),
            Some(9),
            "killed in the migration: {status}"
        );
    }
    let path = url.trim_start_matches("sqlite://");
    let rows = |path: &str| -> (i64, i64) {
        let connection = rusqlite::Connection::open(path).unwrap();
        let version = connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        let rows = connection
            .query_row("SELECT count(*) FROM slack_installations", [], |row| {
                row.get(0)
            })
            .unwrap();
        (version, rows)
    };
    let (version, before) = rows(path);
    assert_eq!(version, 0, "the killed migration left nothing committed");
    assert!(before > 0, "the fixture has rows");
    let store = AnyStore::connect(&url, support::CLIENT_ID).await.unwrap();
    store.close().await.unwrap();
    let (version, after) = rows(path);
    assert_eq!(version, 3, "migrated completely on restart");
    assert_eq!(after, before, "no row lost");
    support::report(&format!(
        "R14 [sqlite] migration killed before commit: 1 passed, 0 failed; restart migrated to \
         version {version}, {after}/{before} rows kept"
    ));
}

const MIGRATE_TEST: &str = "rotation::kills::migrate_worker";

/// Opens the store with a kill armed at the migration's commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a worker process of killed_mid_migration_sqlite_migrates_on_restart"]
async fn migrate_worker() {
    let Ok(url) = std::env::var("MIGRATE_WORKER_STORE") else {
        return;
    };
    arm("sqlite::migrate-before-commit");
    let _ = AnyStore::connect(&url, support::CLIENT_ID).await;
}
