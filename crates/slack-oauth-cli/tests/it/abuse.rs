//! S10: garbage at the install and callback paths as fast as the client can send it, from
//! many connections. The server must not panic, its memory must stay within 50 MB of where it
//! started, and the state table must stay under the cap on live states.
//!
//! CI runs 3 seconds; `SLACK_OAUTH_RELIABILITY` set runs reliability.md's 60 seconds. The line
//! `RELIABILITY S10 ...` reports the rate reached, the memory growth and the states left.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng as _, SeedableRng as _};

use crate::support::{command, free_port, Spawned};

/// Connections sending at once.
const SENDERS: usize = 64;
/// The cap on live states the server runs with.
const STATE_CAP: u64 = 5_000;

/// Resident memory of process `pid`, in KiB (`VmRSS` of `/proc/PID/status`).
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// One garbage request: a method, a path with query, and headers, drawn at random.
fn garbage(rng: &mut rand::rngs::StdRng) -> (reqwest::Method, String, Vec<(String, String)>) {
    let junk = |rng: &mut rand::rngs::StdRng, len: usize| -> String {
        (0..len)
            .map(|_| char::from(rng.gen_range(b'!'..=b'~')))
            .filter(|c| !matches!(c, '#' | '&' | '=' | '?'))
            .collect()
    };
    let encoded =
        |text: &str| -> String { url::form_urlencoded::byte_serialize(text.as_bytes()).collect() };
    let state: String = junk(rng, 22);
    let mut headers = Vec::new();
    let (method, path) = match rng.gen_range(0..8) {
        0 => (reqwest::Method::GET, "/slack/install".to_owned()),
        1 => {
            let team = junk(rng, 40);
            (
                reqwest::Method::GET,
                format!("/slack/install?team={}", encoded(&team)),
            )
        }
        2 => {
            headers.push((
                "cookie".to_owned(),
                format!("slack-app-oauth-state={}", encoded(&state)),
            ));
            (
                reqwest::Method::GET,
                format!(
                    "/slack/oauth_redirect?code={}&state={}",
                    junk(rng, 30),
                    encoded(&state)
                ),
            )
        }
        3 => (
            reqwest::Method::GET,
            format!("/slack/oauth_redirect?error={}", encoded(&junk(rng, 2_000))),
        ),
        4 => (
            reqwest::Method::GET,
            "/slack/oauth_redirect?%ZZ%%=&&==;state=%00%ff&code".to_owned(),
        ),
        5 => {
            headers.push(("cookie".to_owned(), junk(rng, 4_000)));
            (reqwest::Method::GET, "/slack/install".to_owned())
        }
        6 => (reqwest::Method::POST, "/slack/oauth_redirect".to_owned()),
        _ => (
            reqwest::Method::GET,
            format!("/{}", encoded(&junk(rng, 200))),
        ),
    };
    (method, path, headers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_at_install_and_callback_keeps_memory_and_states_bounded() {
    let run_for = if std::env::var_os("SLACK_OAUTH_RELIABILITY").is_some() {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(3)
    };
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("abuse.db");
    let port = free_port();
    let log_path = dir.path().join("serve.log");
    let server = Spawned::start(
        command()
            .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
            .env("SLACK_CLIENT_ID", "111.222")
            .env("SLACK_CLIENT_SECRET", "abuse-test-secret-S3NT1N3L")
            .env("SLACK_SCOPES", "chat:write")
            .env("SLACK_API_URL", "http://127.0.0.1:9/api/")
            .env(
                "SLACK_AUTHORIZE_URL",
                "http://127.0.0.1:9/oauth/v2/authorize",
            )
            .env("SLACK_OAUTH_MAX_LIVE_STATES", STATE_CAP.to_string())
            .env("DATABASE_URL", format!("sqlite://{}", database.display()))
            .env("RUST_LOG", "warn")
            .stderr(std::fs::File::create(&log_path).unwrap()),
    );
    let base = server.url.clone();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(SENDERS)
        .build()
        .unwrap();
    // Warm up (allocator arenas, connections, prepared statements), then take the baseline.
    for _ in 0..200 {
        let _ = http.get(format!("{base}/slack/install")).send().await;
    }
    let baseline = resident_kib(server.child.id());

    let stop = Arc::new(AtomicBool::new(false));
    let (sent, errors, server_errors) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let started = Instant::now();
    let senders: Vec<_> = (0..SENDERS)
        .map(|n| {
            let (http, base, stop) = (http.clone(), base.clone(), Arc::clone(&stop));
            let (sent, errors, server_errors) = (
                Arc::clone(&sent),
                Arc::clone(&errors),
                Arc::clone(&server_errors),
            );
            tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(n as u64);
                while !stop.load(Ordering::Relaxed) {
                    let (method, path, headers) = garbage(&mut rng);
                    let mut request = http.request(method, format!("{base}{path}"));
                    for (name, value) in headers {
                        request = request.header(name, value);
                    }
                    match request.body("x".repeat(rng.gen_range(0..64))).send().await {
                        Ok(response) => {
                            // 500 is the flow's storage_error page: never for garbage.
                            if response.status() == 500 {
                                server_errors.fetch_add(1, Ordering::Relaxed);
                            }
                            let _ = response.bytes().await;
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let mut peak = baseline;
    while started.elapsed() < run_for {
        tokio::time::sleep(Duration::from_millis(250)).await;
        peak = peak.max(resident_kib(server.child.id()));
    }
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.await.unwrap();
    }
    let elapsed = started.elapsed();
    let end = resident_kib(server.child.id());
    peak = peak.max(end);

    // Still serving, and no panic anywhere in its log.
    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let status = server.terminate();
    assert!(status.success(), "serve exited with {status}");
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(!log.contains("panicked"), "a panic:\n{log}");

    let connection = rusqlite::Connection::open(&database).unwrap();
    let states: u64 = connection
        .query_row("SELECT count(*) FROM oauth_states", [], |row| row.get(0))
        .unwrap();
    let sent = sent.load(Ordering::Relaxed);
    #[allow(clippy::cast_precision_loss)]
    let rate = sent as f64 / elapsed.as_secs_f64();
    let growth_mib = peak.saturating_sub(baseline) / 1024;
    eprintln!(
        "RELIABILITY S10 garbage at install and callback for {elapsed:.1?} from {SENDERS} \
         connections: {sent} requests ({rate:.0} req/s), {} client errors, {} answered 500; \
         0 panics; memory {} MiB at start, peak {} MiB (+{growth_mib} MiB); {states} states \
         stored (cap {STATE_CAP})",
        errors.load(Ordering::Relaxed),
        server_errors.load(Ordering::Relaxed),
        baseline / 1024,
        peak / 1024,
    );
    assert!(growth_mib <= 50, "memory grew by {growth_mib} MiB");
    assert!(
        states <= STATE_CAP + SENDERS as u64,
        "{states} states stored past the cap of {STATE_CAP}"
    );
    assert_eq!(server_errors.load(Ordering::Relaxed), 0, "garbage got 500s");
    assert_eq!(errors.load(Ordering::Relaxed), 0, "requests failed");
}

/// `--install-rate-per-ip` on a real `serve`: the fourth install-page load of a minute from one
/// client is answered 429 with Retry-After, while another client still gets the page. Behind a
/// proxy (`--client-ip-header X-Forwarded-For`) the client is the rightmost forwarded address,
/// so a client writing its own header does not escape the limit.
#[tokio::test]
async fn install_page_loads_past_the_per_ip_rate_are_answered_429() {
    let port = free_port();
    let server = Spawned::start(
        command()
            .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
            .args(["--install-rate-per-ip", "3"])
            .env("SLACK_OAUTH_CLIENT_IP_HEADER", "X-Forwarded-For")
            .env("SLACK_CLIENT_ID", "111.222")
            .env("SLACK_CLIENT_SECRET", "abuse-test-secret-S3NT1N3L")
            .env("SLACK_SCOPES", "chat:write")
            .env("SLACK_API_URL", "http://127.0.0.1:9/api/")
            .env("DATABASE_URL", "memory://"),
    );
    let http = reqwest::Client::new();
    let install = format!("{}/slack/install", server.url);
    let load = |forwarded: &'static str| {
        http.get(&install)
            .header("x-forwarded-for", forwarded)
            .send()
    };
    for spoof in [
        "10.9.9.1, 203.0.113.7",
        "10.9.9.2, 203.0.113.7",
        "203.0.113.7",
    ] {
        assert_eq!(load(spoof).await.unwrap().status(), 200);
    }
    let refused = load("10.9.9.3, 203.0.113.7").await.unwrap();
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert!(refused.headers().get("set-cookie").is_none());
    assert_eq!(load("203.0.113.8").await.unwrap().status(), 200);
}
