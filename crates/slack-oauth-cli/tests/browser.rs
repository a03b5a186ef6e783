//! The install flow in a real browser: headless Chromium, driven through chromedriver with
//! `fantoccini`, against `slack-oauth serve` and `slack-oauth emulate` (approve page on).
//!
//! Approve: install page → "Add to Slack" → the emulator's approve page → Allow → callback →
//! "Thank you!", and the installation is stored. Cancel: → the failure page (`access_denied`),
//! and nothing is stored. Screenshots go to `target/browser-screenshots/`.
//!
//! Without Chromium or chromedriver the test prints a loud `SKIPPED:` line and passes, except
//! under `CI=true`, where it fails.

// Every log line and panic of this test process goes to the secret scan (S7).
slack_oauth_test::capture_logs!();

#[path = "it/support.rs"]
mod support;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use support::{command, free_port, run, stdout, Spawned};

const CLIENT_ID: &str = "333.444";
const CLIENT_SECRET: &str = "browser-test-secret-0123456789";
/// How long one page may take to show up on a loaded machine.
const WAIT: Duration = Duration::from_secs(30);

/// The first of `candidates` that exists.
fn find(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

/// chromedriver on a free port; killed on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start(path: &Path) -> Self {
        let port = free_port();
        let child = Command::new(path)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn screenshots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("browser-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.unwrap();
    std::fs::write(screenshots_dir().join(format!("{name}.png")), png).unwrap();
}

/// Waits until the page's text contains `needle`; returns the text.
async fn wait_for_text(browser: &Client, needle: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = match browser.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} never showed up; the page says: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn connect(driver: &Driver, chromium: &Path, profile: &Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "binary": chromium.display().to_string(),
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--window-size=1024,768",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    // Plain HTTP to chromedriver on loopback: no TLS stack needed.
    ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .unwrap()
}

fn list_installations(database_url: &str) -> serde_json::Value {
    let output = run(command()
        .args(["installations", "list", "--json"])
        .env("SLACK_CLIENT_ID", CLIENT_ID)
        .env("DATABASE_URL", database_url));
    assert!(output.status.success());
    serde_json::from_str(&stdout(&output)).unwrap()
}

/// One server with its own database, against `emulator`.
fn serve(emulator: &str, database_url: &str) -> Spawned {
    let port = free_port();
    Spawned::start(
        command()
            .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
            .env("SLACK_CLIENT_ID", CLIENT_ID)
            .env("SLACK_CLIENT_SECRET", CLIENT_SECRET)
            .env("SLACK_SCOPES", "chat:write,commands")
            .env(
                "SLACK_REDIRECT_URI",
                format!("http://127.0.0.1:{port}/slack/oauth_redirect"),
            )
            .env("SLACK_API_URL", format!("{emulator}/api/"))
            .env(
                "SLACK_AUTHORIZE_URL",
                format!("{emulator}/oauth/v2/authorize"),
            )
            .env("DATABASE_URL", database_url),
    )
}

/// The install page loaded nothing from any host (the browser's own list of what it fetched),
/// and its button is whole on screen at phone and desktop widths (screenshots of both).
async fn check_install_page(browser: &Client, server: &str, shot: &str) {
    let fetched = browser
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name)",
            vec![],
        )
        .await
        .unwrap();
    let fetched: Vec<String> = serde_json::from_value(fetched).unwrap();
    assert!(
        fetched.iter().all(|url| url.starts_with(server)),
        "the install page fetched from another host: {fetched:?}"
    );
    for (device, width, height) in [("phone", 375, 812), ("desktop", 1280, 800)] {
        browser.set_window_size(width, height).await.unwrap();
        let button = browser.find(Locator::Css("a.add-to-slack")).await.unwrap();
        let (x, y, button_width, button_height) = button.rectangle().await.unwrap();
        let viewport = browser
            .execute("return window.innerWidth", vec![])
            .await
            .unwrap()
            .as_f64()
            .unwrap();
        assert!(
            x >= 0.0 && y >= 0.0 && x + button_width <= viewport,
            "{device}: the button ({x}, {y}, {button_width} wide) is cut off at {viewport} px"
        );
        assert!(
            (40.0..=60.0).contains(&button_height) && button_width >= 150.0,
            "{device}: the button is {button_width}x{button_height}"
        );
        screenshot(browser, &format!("{shot}-1-install-page-{device}")).await;
    }
    browser.set_window_size(1024, 768).await.unwrap();
}

/// Opens the install page and clicks "Add to Slack"; returns once the approve page shows.
async fn open_approve_page(browser: &Client, server: &str, shot: &str) {
    browser
        .goto(&format!("{server}/slack/install"))
        .await
        .unwrap();
    wait_for_text(browser, "Slack App Installation").await;
    check_install_page(browser, server, shot).await;
    screenshot(browser, &format!("{shot}-1-install-page")).await;
    let link = browser
        .find(Locator::Css("a[href*='/oauth/v2/authorize']"))
        .await
        .unwrap();
    link.click().await.unwrap();
    let approve = browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Id("approve"))
        .await;
    if approve.is_err() {
        screenshot(browser, &format!("{shot}-2-no-approve-page")).await;
        let url = browser.current_url().await.unwrap();
        let source = browser.source().await.unwrap_or_default();
        panic!("no approve page after clicking Add to Slack; at {url}: {source}");
    }
    let text = wait_for_text(browser, "Install app").await;
    assert!(text.contains(CLIENT_ID), "{text}");
    screenshot(browser, &format!("{shot}-2-approve-page")).await;
}

#[tokio::test]
async fn install_in_headless_chromium_approve_and_cancel() {
    let chromium = find(&["/usr/lib/chromium/chromium", "/usr/bin/chromium"]);
    let chromedriver = find(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        slack_oauth_test::skip(
            "browser test: chromium or chromedriver is missing \
             (apt-get install chromium chromium-driver)",
        );
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "the browser test cannot be skipped under CI=true"
        );
        return;
    };

    let emulator = Spawned::start(command().args([
        "emulate",
        "--client-id",
        CLIENT_ID,
        "--client-secret",
        CLIENT_SECRET,
    ]));
    let dir = tempfile::tempdir().unwrap();
    let driver = Driver::start(&chromedriver);

    // Approve.
    let browser = connect(&driver, &chromium, &dir.path().join("approve-profile")).await;
    let approve_db = format!("sqlite://{}", dir.path().join("approve.db").display());
    let server = serve(&emulator.url, &approve_db);
    open_approve_page(&browser, &server.url, "approve").await;
    browser
        .find(Locator::Id("approve"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let text = wait_for_text(&browser, "Thank you!").await;
    assert!(text.contains("Redirecting to the Slack App"), "{text}");
    screenshot(&browser, "approve-3-success-page").await;
    let stored = list_installations(&approve_db);
    assert_eq!(stored.as_array().unwrap().len(), 1, "{stored}");
    assert_eq!(stored[0]["team_id"], "T0EMULATOR");
    assert_eq!(server.terminate().code(), Some(0));
    // The success page's refresh to slack:// leaves an external-protocol prompt behind, so
    // the cancel flow gets a fresh browser.
    browser.close().await.unwrap();

    // Cancel.
    let browser = connect(&driver, &chromium, &dir.path().join("cancel-profile")).await;
    let cancel_db = format!("sqlite://{}", dir.path().join("cancel.db").display());
    let server = serve(&emulator.url, &cancel_db);
    open_approve_page(&browser, &server.url, "cancel").await;
    browser
        .find(Locator::Id("cancel"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let text = wait_for_text(&browser, "Oops, Something Went Wrong!").await;
    assert!(text.contains("access_denied"), "{text}");
    screenshot(&browser, "cancel-3-failure-page").await;
    assert_eq!(list_installations(&cancel_db), serde_json::json!([]));
    assert_eq!(server.terminate().code(), Some(0));

    browser.close().await.unwrap();
    assert_eq!(emulator.terminate().code(), Some(0));
}
