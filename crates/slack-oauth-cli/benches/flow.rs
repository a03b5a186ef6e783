//! Install-flow benchmark: complete OAuth installs per second over HTTP against the release
//! `slack-oauth serve` binary (SQLite store) and an in-process emulator with 0 ms latency.
//!
//! One flow = `GET /slack/install` (state issued, cookie set) + `GET /slack/oauth_redirect` with
//! a code from the emulator (state consumed, `oauth.v2.access`, `auth.test`, store write).
//! `serve` runs pinned to core 1 (`taskset -c 1`); this process (load generator and emulator)
//! pins itself to core 0. Reports flows/s, p50/p99 latency, server CPU per flow (utime+stime
//! from `/proc/PID/stat`) and the server's peak RSS (`VmHWM`).
//!
//! ```text
//! cargo bench -p slack-oauth-cli --bench flow
//! FLOW_BENCH_SECONDS=20 FLOW_BENCH_CONCURRENCY=32 cargo bench -p slack-oauth-cli --bench flow
//! ```

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use slack_emulator::{Emulator, EmulatorConfig, Grant};

const CLIENT_ID: &str = "555.666";
const CLIENT_SECRET: &str = "bench-secret-0123456789";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Pins every thread of this process to `cpus` (threads started later inherit it).
fn pin_self(cpus: &str) -> bool {
    Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the `(comm)`; utime and stime are fields 14 and 15 (1-based).
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// `VmHWM` of `pid`, in kB.
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `state` of the install page's authorize link.
fn state_of(page: &str) -> Option<String> {
    let start = page.find("state=")? + 6;
    let end = start + page[start..].find(['&', '"'])?;
    Some(page[start..end].to_owned())
}

/// One complete flow; `Ok` when the callback answered the success page.
async fn flow(
    http: &reqwest::Client,
    emulator: &Emulator,
    base: &str,
    redirect_uri: &str,
    team: u64,
) -> Result<(), String> {
    let install = http
        .get(format!("{base}/slack/install"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let cookie = install
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or("no state cookie")?
        .to_owned();
    let page = install.text().await.map_err(|e| e.to_string())?;
    let state = state_of(&page).ok_or("no state in the install page")?;
    let code = emulator.issue_code(Grant::for_team(format!("T{team:08}")), Some(redirect_uri));
    let done = http
        .get(format!(
            "{base}/slack/oauth_redirect?code={code}&state={state}"
        ))
        .header("cookie", cookie)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if done.status() == 200 {
        Ok(())
    } else {
        Err(format!("callback answered {}", done.status()))
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let seconds = env_u64("FLOW_BENCH_SECONDS", 10);
    let warmup = env_u64("FLOW_BENCH_WARMUP_SECONDS", 2);
    let concurrency = env_u64("FLOW_BENCH_CONCURRENCY", 32);
    let pinned = pin_self("0");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(seconds, warmup, concurrency, pinned));
}

async fn run(seconds: u64, warmup: u64, concurrency: u64, pinned: bool) {
    let emulator = Emulator::spawn(EmulatorConfig {
        client_id: Some(CLIENT_ID.to_owned()),
        client_secret: Some(CLIENT_SECRET.to_owned()),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("flow.db").display());
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let redirect_uri = format!("{base}/slack/oauth_redirect");
    let binary = env!("CARGO_BIN_EXE_slack-oauth");
    let mut command = if pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", "1", binary]);
        c
    } else {
        Command::new(binary)
    };
    let mut child = command
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .env("SLACK_CLIENT_ID", CLIENT_ID)
        .env("SLACK_CLIENT_SECRET", CLIENT_SECRET)
        .env("SLACK_SCOPES", "chat:write,commands")
        .env("SLACK_REDIRECT_URI", &redirect_uri)
        .env("SLACK_API_URL", emulator.api_url())
        .env("SLACK_AUTHORIZE_URL", emulator.authorize_url())
        .env("DATABASE_URL", &database_url)
        .env(
            "RUST_LOG",
            std::env::var("FLOW_BENCH_RUST_LOG").unwrap_or_else(|_| "warn".to_owned()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let pid = server.0.id();
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines.next().expect("serve exited").unwrap();
        if line.starts_with("listening on ") {
            break;
        }
    }

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(usize::try_from(concurrency).unwrap())
        .build()
        .unwrap();
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let teams = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (http, emulator, base, redirect_uri) = (
            http.clone(),
            emulator.clone(),
            base.clone(),
            redirect_uri.clone(),
        );
        let (measuring, stop, failures, teams) = (
            Arc::clone(&measuring),
            Arc::clone(&stop),
            Arc::clone(&failures),
            Arc::clone(&teams),
        );
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut first_error = None;
            while !stop.load(Ordering::Relaxed) {
                let team = teams.fetch_add(1, Ordering::Relaxed) % 10_000;
                let started = Instant::now();
                let result = flow(&http, &emulator, &base, &redirect_uri, team).await;
                let took = started.elapsed();
                if measuring.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                    match result {
                        Ok(()) => latencies.push(took),
                        Err(error) => {
                            failures.fetch_add(1, Ordering::Relaxed);
                            first_error.get_or_insert(error);
                        }
                    }
                }
            }
            (latencies, first_error)
        }));
    }

    tokio::time::sleep(Duration::from_secs(warmup)).await;
    let ticks_before = cpu_ticks(pid);
    let own_before = cpu_ticks(std::process::id());
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let ticks_after = cpu_ticks(pid);
    let own_after = cpu_ticks(std::process::id());

    let mut latencies = Vec::new();
    let mut first_error = None;
    for worker in workers {
        let (mut l, e) = worker.await.unwrap();
        latencies.append(&mut l);
        if first_error.is_none() {
            first_error = e;
        }
    }
    latencies.sort_unstable();
    let flows = latencies.len() as f64;
    let rate = flows / elapsed.as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let cpu_seconds = (ticks_after - ticks_before) as f64 / clock_ticks_per_second() as f64;
    let cpu_per_flow_ms = if flows > 0.0 {
        cpu_seconds * 1000.0 / flows
    } else {
        0.0
    };
    let rss = peak_rss_kb(pid);
    #[allow(clippy::cast_precision_loss)]
    let own_seconds = (own_after - own_before) as f64 / clock_ticks_per_second() as f64;

    println!("install flow benchmark (serve: release build, SQLite, emulator 0 ms latency)");
    println!(
        "  pinned:          {}",
        if pinned {
            "serve on core 1, load generator + emulator on core 0"
        } else {
            "NO (taskset failed)"
        }
    );
    println!("  concurrency:     {concurrency}");
    println!(
        "  duration:        {:.1} s after {warmup} s warm-up",
        elapsed.as_secs_f64()
    );
    println!("  flows:           {}", latencies.len());
    println!(
        "  failures:        {}{}",
        failures.load(Ordering::Relaxed),
        first_error.map_or_else(String::new, |e| format!(" (first: {e})"))
    );
    println!("  flows/s:         {rate:.0}");
    println!(
        "  latency p50:     {:.2} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1000.0
    );
    println!(
        "  latency p99:     {:.2} ms",
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0
    );
    println!("  server CPU/flow: {cpu_per_flow_ms:.3} ms ({cpu_seconds:.2} s CPU)");
    println!(
        "  load generator + emulator CPU: {own_seconds:.2} s ({:.0}% of core 0)",
        own_seconds * 100.0 / elapsed.as_secs_f64()
    );
    #[allow(clippy::cast_precision_loss)]
    let rss_mb = rss as f64 / 1024.0;
    println!("  server peak RSS: {rss_mb:.1} MB");
    drop(server);
    emulator.shutdown().await;
}
