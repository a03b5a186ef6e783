//! `slack-oauth serve` against a spawned emulator: `/healthz`, a full install over HTTP, then
//! `installations list | show | delete` on the same store, and a graceful shutdown.

use std::process::Command;

use crate::support::{command, free_port, run, stderr, stdout, Spawned};

pub(crate) const CLIENT_ID: &str = "111.222";
pub(crate) const CLIENT_SECRET: &str = "cli-test-secret-S3NT1N3L-0123456789";

/// `installations …` against `database_url`.
fn installations(database_url: &str, args: &[&str]) -> std::process::Output {
    run(command()
        .arg("installations")
        .args(args)
        .env("SLACK_CLIENT_ID", CLIENT_ID)
        .env("DATABASE_URL", database_url))
}

/// `serve` on `port` for this file's app, with Slack at `emulator` (its root URL).
pub(crate) fn serve_command(emulator: &str, port: u16, database_url: &str) -> Command {
    let emulator = emulator.trim_end_matches('/');
    let mut serve = command();
    serve
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
        .env("DATABASE_URL", database_url);
    serve
}

/// The values of a query string (codes and states are URL-safe, so no decoding is needed).
fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// The `href` of the install page's "Add to Slack" link, unescaped.
fn add_to_slack_href(page: &str) -> String {
    let start = page
        .find(" href=\"http")
        .expect("no link on the install page")
        + 7;
    let end = start + page[start..].find('"').unwrap();
    page[start..end].replace("&amp;", "&")
}

/// `slack-oauth emulate` for this file's app, approving every install at once.
fn approving_emulator() -> Spawned {
    Spawned::start(command().args([
        "emulate",
        "--auto-approve",
        "--client-id",
        CLIENT_ID,
        "--client-secret",
        CLIENT_SECRET,
    ]))
}

/// Starts an install on `server` and has the emulator approve it at once: the state cookie
/// (`name=value`) and the callback URL Slack sends the browser to.
pub(crate) async fn approved_install(http: &reqwest::Client, server: &str) -> (String, String) {
    let install = http
        .get(format!("{server}/slack/install"))
        .send()
        .await
        .unwrap();
    let set_cookie = install.headers()["set-cookie"].to_str().unwrap().to_owned();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let authorize = add_to_slack_href(&install.text().await.unwrap());
    let approved = http
        .get(format!("{authorize}&auto_approve=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 302);
    let callback = approved.headers()["location"].to_str().unwrap().to_owned();
    (cookie, callback)
}

/// A whole install through `server`'s flow: approved at once, the callback answered 200.
pub(crate) async fn install(http: &reqwest::Client, server: &str) {
    let (cookie, callback) = approved_install(http, server).await;
    let done = http
        .get(&callback)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200, "{}", done.text().await.unwrap());
}

#[tokio::test]
async fn full_install_then_installations_commands_then_sigterm() {
    let emulator = Spawned::start(command().args([
        "emulate",
        "--client-id",
        CLIENT_ID,
        "--client-secret",
        CLIENT_SECRET,
    ]));
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("cli.db").display());
    let port = free_port();
    let log_path = dir.path().join("serve.log");
    let server = Spawned::start(
        serve_command(&emulator.url, port, &database_url)
            .env("RUST_LOG", "info")
            .stderr(std::fs::File::create(&log_path).unwrap()),
    );
    assert_eq!(server.url, format!("http://127.0.0.1:{port}"));

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Health.
    let health = http
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");

    // The install page sets the state cookie and links to the emulator's authorize page.
    let install = http
        .get(format!("{}/slack/install", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(install.status(), 200);
    let set_cookie = install.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("Secure"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let authorize = add_to_slack_href(&install.text().await.unwrap());
    assert!(authorize.starts_with(&format!("{}/oauth/v2/authorize?", emulator.url)));

    // The emulator approves at once (auto_approve=1) and redirects back with a code.
    let approved = http
        .get(format!("{authorize}&auto_approve=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 302);
    let callback = approved.headers()["location"].to_str().unwrap().to_owned();
    assert!(callback.starts_with(&format!("{}/slack/oauth_redirect?code=", server.url)));

    // The callback with the state cookie completes the install.
    let done = http
        .get(&callback)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("Thank you!"));

    // list --json: one installation, tokens redacted.
    let listed = installations(&database_url, &["list", "--json"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let list: serde_json::Value = serde_json::from_str(&stdout(&listed)).unwrap();
    let items = list.as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["team_id"], "T0EMULATOR");
    assert_eq!(items[0]["user_id"], "U0EMULATOR");
    assert_eq!(items[0]["bot_scopes"], "chat:write,commands");
    assert_eq!(items[0]["bot_token"], "xoxb-…(redacted)");
    assert!(items[0].get("custom_values").is_none());

    // Without SLACK_CLIENT_ID, list finds every app in the store (here, one).
    let any_app = run(command()
        .args(["installations", "list", "--json"])
        .env("DATABASE_URL", &database_url));
    assert!(any_app.status.success(), "{}", stderr(&any_app));
    let any_app: serde_json::Value = serde_json::from_str(&stdout(&any_app)).unwrap();
    assert_eq!(any_app, list);

    // --show-tokens prints the real token.
    let shown = installations(&database_url, &["list", "--json", "--show-tokens"]);
    let list: serde_json::Value = serde_json::from_str(&stdout(&shown)).unwrap();
    let token = list[0]["bot_token"].as_str().unwrap();
    assert!(
        token.starts_with("xoxb-") && !token.contains("redacted"),
        "{token}"
    );

    // The human table never shows a token.
    let table = installations(&database_url, &["list"]);
    let text = stdout(&table);
    assert!(text.starts_with("CLIENT ID"), "{text}");
    assert!(text.contains(CLIENT_ID), "{text}");
    assert!(text.contains("T0EMULATOR"), "{text}");
    assert!(!text.contains(token), "{text}");

    // show --team.
    let one = installations(&database_url, &["show", "--team", "T0EMULATOR", "--json"]);
    assert!(one.status.success(), "{}", stderr(&one));
    let one: serde_json::Value = serde_json::from_str(&stdout(&one)).unwrap();
    assert_eq!(one["team_name"], "Emulated Workspace");
    assert_eq!(one["bot_user_id"], "U0EMULBOT");
    let missing = installations(&database_url, &["show", "--team", "T0NOBODY"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("T0NOBODY"));

    // delete, then the list is empty.
    let deleted = installations(&database_url, &["delete", "--team", "T0EMULATOR"]);
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    assert!(stdout(&deleted).contains("deleted"), "{}", stdout(&deleted));
    assert!(stdout(&deleted).contains("T0EMULATOR"));
    let after = installations(&database_url, &["list", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&stdout(&after)).unwrap();
    assert_eq!(list, serde_json::json!([]));

    // Graceful shutdown on SIGTERM, exit 0.
    assert_eq!(server.terminate().code(), Some(0));

    // Requests are logged by path; no code, state, token or secret reaches the log.
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("/slack/oauth_redirect"), "{log}");
    assert!(log.contains("received SIGTERM"), "{log}");
    let query = callback.split_once('?').unwrap().1;
    for (_, value) in url_pairs(query) {
        assert!(!log.contains(&value), "the log holds a query value: {log}");
    }
    assert!(!log.contains(token), "{log}");
    assert!(!log.contains(CLIENT_SECRET), "{log}");
    assert_eq!(emulator.terminate().code(), Some(0));
}

#[tokio::test]
async fn a_callback_without_the_state_cookie_fails_and_stores_nothing() {
    let emulator = Spawned::start(command().args(["emulate", "--auto-approve"]));
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("cli.db").display());
    let port = free_port();
    let server = Spawned::start(&mut serve_command(&emulator.url, port, &database_url));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let install = http
        .get(format!("{}/slack/install", server.url))
        .send()
        .await
        .unwrap();
    let authorize = add_to_slack_href(&install.text().await.unwrap());
    let approved = http.get(&authorize).send().await.unwrap();
    assert_eq!(approved.status(), 302);
    let callback = approved.headers()["location"].to_str().unwrap().to_owned();
    let failed = http.get(&callback).send().await.unwrap();
    assert_eq!(failed.status(), 400);
    assert!(failed.text().await.unwrap().contains("invalid_browser"));
    let listed = installations(&database_url, &["list", "--json"]);
    assert_eq!(stdout(&listed).trim(), "[]");
    assert_eq!(server.terminate().code(), Some(0));
}

/// `serve` with the emulator-free settings and `extra` flags, on a fresh port.
fn limited_server(extra: &[&str]) -> Spawned {
    let port = free_port();
    let mut serve = serve_command("http://127.0.0.1:9", port, "memory://");
    serve.args(extra);
    Spawned::start(&mut serve)
}

fn connect(server: &Spawned) -> std::net::TcpStream {
    let addr = server.url.trim_start_matches("http://");
    let stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    stream
}

/// Reads until the server closes the connection; the time it took and what was read.
fn read_to_close(stream: &mut std::net::TcpStream) -> (std::time::Duration, String) {
    use std::io::Read as _;
    let started = std::time::Instant::now();
    let mut text = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buffer[..n]),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(error) => panic!("the server kept the connection open: {error}"),
        }
    }
    (
        started.elapsed(),
        String::from_utf8_lossy(&text).into_owned(),
    )
}

/// Slowloris: a client that sends its headers slowly, or nothing at all, is disconnected after
/// `--header-timeout`; so is a kept-alive connection left idle.
#[test]
fn slow_and_idle_clients_are_disconnected_after_the_header_timeout() {
    use std::io::Write as _;
    let server = limited_server(&["--header-timeout", "1"]);
    let mut silent = connect(&server);
    let mut slow = connect(&server);
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    for stream in [&mut silent, &mut slow] {
        let (waited, _) = read_to_close(stream);
        assert!(waited < std::time::Duration::from_secs(15), "{waited:?}");
    }
    let mut idle = connect(&server);
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (_, answered) = read_to_close(&mut idle);
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
}

/// `--max-connections`: past the limit a connection waits, unanswered, until one closes.
#[test]
fn connections_past_the_limit_wait_until_one_closes() {
    use std::io::{Read as _, Write as _};
    let server = limited_server(&["--max-connections", "2", "--header-timeout", "30"]);
    // The listen queue is first come, first served: these two take the limit.
    let held: Vec<_> = (0..2).map(|_| connect(&server)).collect();
    let mut third = connect(&server);
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    third
        .set_read_timeout(Some(std::time::Duration::from_millis(700)))
        .unwrap();
    let mut byte = [0u8; 1];
    let early = third.read(&mut byte);
    assert!(
        early.is_err(),
        "answered while two connections held the limit: {early:?}"
    );
    drop(held);
    third
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let (_, answered) = read_to_close(&mut third);
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
}

/// A request body over 64 KiB is refused with 413 without being read.
#[test]
fn large_bodies_are_refused() {
    use std::io::Write as _;
    let server = limited_server(&[]);
    let mut stream = connect(&server);
    stream
        .write_all(
            b"POST /slack/oauth_redirect HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\
              Connection: close\r\n\r\n",
        )
        .unwrap();
    let (_, answered) = read_to_close(&mut stream);
    assert!(answered.starts_with("HTTP/1.1 413"), "{answered}");
}

/// With `SLACK_TOKEN_ENCRYPTION_KEYS` set: 50 installs through `serve` leave no token and no
/// client secret in the database files; `installations show --show-tokens` with the key still
/// shows them; without it, or with another key, `serve` and `installations` refuse to start.
#[tokio::test]
async fn tokens_are_encrypted_at_rest_with_keys_set() {
    const KEY: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; // fake
    const OTHER_KEY: &str = "k2:Hx4dHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA="; // fake
    let emulator = approving_emulator();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("encrypted.db");
    let database_url = format!("sqlite://{}", path.display());
    let port = free_port();
    let server = Spawned::start(
        serve_command(&emulator.url, port, &database_url).env("SLACK_TOKEN_ENCRYPTION_KEYS", KEY),
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for _ in 0..50 {
        let (cookie, callback) = approved_install(&http, &server.url).await;
        let done = http
            .get(&callback)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), 200);
    }
    assert_eq!(server.terminate().code(), Some(0));

    let mut bytes = std::fs::read(&path).unwrap();
    for suffix in ["-wal", "-shm"] {
        if let Ok(more) = std::fs::read(format!("{}{suffix}", path.display())) {
            bytes.extend(more);
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    for secret in ["xoxb-", "xoxp-", "xoxe", CLIENT_SECRET] {
        assert!(!text.contains(secret), "{secret} is in the database file");
    }

    let show = |keys: Option<&str>| {
        let mut show = command();
        show.args([
            "installations",
            "show",
            "--team",
            "T0EMULATOR",
            "--show-tokens",
        ])
        .env("SLACK_CLIENT_ID", CLIENT_ID)
        .env("DATABASE_URL", &database_url);
        if let Some(keys) = keys {
            show.env("SLACK_TOKEN_ENCRYPTION_KEYS", keys);
        }
        run(&mut show)
    };
    let shown = show(Some(KEY));
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert!(stdout(&shown).contains("xoxb-"), "{}", stdout(&shown));
    for wrong in [None, Some(OTHER_KEY)] {
        let refused = show(wrong);
        assert_ne!(refused.status.code(), Some(0));
        let message = stderr(&refused);
        assert_eq!(message.trim_end().lines().count(), 1, "{message}");
        assert!(message.contains("\"k1\""), "{message}");
        assert!(!message.contains("AAEC"), "{message}");
    }
    let refused = run(serve_command(&emulator.url, free_port(), &database_url)
        .env("SLACK_TOKEN_ENCRYPTION_KEYS", OTHER_KEY));
    assert_ne!(
        refused.status.code(),
        Some(0),
        "serve started with the wrong key"
    );
    assert!(stderr(&refused).contains("\"k1\""), "{}", stderr(&refused));

    // keys rotate: the new key first, the old after; then the old one can go.
    let rotated = run(command()
        .args(["keys", "rotate", "--json", "--batch-size", "7"])
        .env("DATABASE_URL", &database_url)
        .env("SLACK_TOKEN_ENCRYPTION_KEYS", format!("{OTHER_KEY},{KEY}")));
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    let summary: serde_json::Value = serde_json::from_str(stdout(&rotated).trim()).unwrap();
    assert_eq!(summary["key_id"], "k2");
    assert_eq!(summary["apps"], 1);
    assert_eq!(
        summary["rows"], 100,
        "50 installations and 50 bots: {summary}"
    );
    // One bot token per installation row and per bot row (the app asks no user scopes).
    assert_eq!(summary["rewritten"], 100, "{summary}");
    assert_eq!(summary["already_current"], 0);
    let shown = show(Some(OTHER_KEY));
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert!(stdout(&shown).contains("xoxb-"), "{}", stdout(&shown));
    assert_ne!(
        show(Some(KEY)).status.code(),
        Some(0),
        "k1 no longer opens it"
    );
    assert_eq!(emulator.terminate().code(), Some(0));
}

/// A fresh database on the server of `TEST_DATABASE_URL`, dropped with this value; `None`
/// (after a loud `SKIPPED`, a failure under `CI=true`) when the variable is not set.
pub(crate) struct FreshDatabase {
    admin_url: String,
    name: String,
    /// A URL of the database itself.
    pub(crate) url: String,
}

impl FreshDatabase {
    pub(crate) async fn create() -> Option<Self> {
        use sqlx::Connection as _;
        let Some(admin_url) = std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|url| !url.is_empty())
        else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "TEST_DATABASE_URL is not set: CI must run the postgres tests"
            );
            slack_oauth_test::skip("postgres CLI test: TEST_DATABASE_URL is not set");
            return None;
        };
        let name = format!("slack_oauth_cli_{:016x}", rand::random::<u64>());
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        let mut url = url::Url::parse(&admin_url).unwrap();
        url.set_path(&name);
        Some(Self {
            admin_url,
            name,
            url: url.into(),
        })
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept postgres test database {} for inspection", self.name);
            return;
        }
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // A runtime of its own: drop runs inside the test's.
        let _ = std::thread::spawn(move || {
            use sqlx::Connection as _;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .unwrap();
            });
        })
        .join();
    }
}

/// The PostgreSQL twin of [`tokens_are_encrypted_at_rest_with_keys_set`]: installs through
/// `serve` with keys leave no token or client secret in the tables; `installations` reads them
/// with the key and refuses without it (exit 2, one line naming the key); `keys rotate` moves
/// every value to the new key, after which the old one no longer opens the store.
#[tokio::test]
async fn tokens_are_encrypted_at_rest_on_postgres_and_keys_rotate_there() {
    const KEY: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; // fake
    const OTHER_KEY: &str = "k2:Hx4dHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA="; // fake
    const INSTALLS: u32 = 20;
    let Some(database) = FreshDatabase::create().await else {
        return;
    };
    let emulator = approving_emulator();
    let server = Spawned::start(
        serve_command(&emulator.url, free_port(), &database.url)
            .env("SLACK_TOKEN_ENCRYPTION_KEYS", KEY),
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for _ in 0..INSTALLS {
        let (cookie, callback) = approved_install(&http, &server.url).await;
        let done = http
            .get(&callback)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), 200);
    }
    assert_eq!(server.terminate().code(), Some(0));

    let dump = {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&database.url).await.unwrap();
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT t::text FROM slack_installations t UNION ALL SELECT t::text FROM slack_bots t",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        rows.join("\n")
    };
    for secret in ["xoxb-", "xoxp-", "xoxe", CLIENT_SECRET] {
        assert!(!dump.contains(secret), "{secret} is in the tables");
    }
    assert!(dump.contains("enc:v1:k1:"));

    let show = |keys: Option<&str>| {
        let mut show = command();
        show.args([
            "installations",
            "show",
            "--team",
            "T0EMULATOR",
            "--show-tokens",
        ])
        .env("SLACK_CLIENT_ID", CLIENT_ID)
        .env("DATABASE_URL", &database.url);
        if let Some(keys) = keys {
            show.env("SLACK_TOKEN_ENCRYPTION_KEYS", keys);
        }
        run(&mut show)
    };
    let shown = show(Some(KEY));
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert!(stdout(&shown).contains("xoxb-"), "{}", stdout(&shown));
    for wrong in [None, Some(OTHER_KEY)] {
        let refused = show(wrong);
        assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
        let message = stderr(&refused);
        assert_eq!(message.trim_end().lines().count(), 1, "{message}");
        assert!(message.contains("\"k1\""), "{message}");
        assert!(!message.contains("AAEC"), "{message}");
    }

    // keys rotate: the new key first, the old after; then the old one can go.
    let rotated = run(command()
        .args(["keys", "rotate", "--json", "--batch-size", "7"])
        .env("DATABASE_URL", &database.url)
        .env("SLACK_TOKEN_ENCRYPTION_KEYS", format!("{OTHER_KEY},{KEY}")));
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    let summary: serde_json::Value = serde_json::from_str(stdout(&rotated).trim()).unwrap();
    assert_eq!(summary["key_id"], "k2");
    assert_eq!(summary["apps"], 1);
    assert_eq!(
        summary["rows"],
        2 * INSTALLS,
        "as many installations as bots: {summary}"
    );
    // One bot token per installation row and per bot row (the app asks no user scopes).
    assert_eq!(summary["rewritten"], 2 * INSTALLS, "{summary}");
    assert_eq!(summary["already_current"], 0);
    // Again: nothing left to do.
    let again = run(command()
        .args(["keys", "rotate", "--json"])
        .env("DATABASE_URL", &database.url)
        .env("SLACK_TOKEN_ENCRYPTION_KEYS", OTHER_KEY));
    assert!(again.status.success(), "{}", stderr(&again));
    let summary: serde_json::Value = serde_json::from_str(stdout(&again).trim()).unwrap();
    assert_eq!(summary["rewritten"], 0, "{summary}");
    assert_eq!(summary["already_current"], 2 * INSTALLS, "{summary}");
    let shown = show(Some(OTHER_KEY));
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert!(stdout(&shown).contains("xoxb-"), "{}", stdout(&shown));
    assert_eq!(
        show(Some(KEY)).status.code(),
        Some(2),
        "k1 no longer opens it"
    );
    assert_eq!(emulator.terminate().code(), Some(0));
}

/// S7, for `serve`: with every log at `trace`, successful installs, every kind of failed
/// callback and a refused install page leave no secret in the logs or the answers: not the
/// client secret, not the encryption key, not a token, a code or a state.
#[tokio::test]
async fn no_secret_reaches_the_logs_or_the_answers() {
    const KEY: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; // fake
    let emulator = approving_emulator();
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("hygiene.db").display());
    let log_path = dir.path().join("serve.log");
    let server = Spawned::start(
        serve_command(&emulator.url, free_port(), &database_url)
            .env("SLACK_TOKEN_ENCRYPTION_KEYS", KEY)
            .env("RUST_LOG", "trace")
            .stderr(std::fs::File::create(&log_path).unwrap()),
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut answers = String::new();
    let mut secrets: Vec<String> = vec![
        CLIENT_SECRET.to_owned(),
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8".to_owned(),
        "xoxb-".to_owned(),
        "xoxp-".to_owned(),
        "xoxe".to_owned(),
    ];
    for round in 0..4 {
        let (cookie, callback) = approved_install(&http, &server.url).await;
        secrets.push(cookie.split_once('=').unwrap().1.to_owned());
        let code = callback
            .split("code=")
            .nth(1)
            .and_then(|rest| rest.split('&').next())
            .unwrap()
            .to_owned();
        secrets.push(code.clone());
        let request = match round {
            // Success, then a replay of it, a missing cookie, a code Slack refuses.
            0 | 1 => http.get(&callback).header("cookie", &cookie),
            2 => http.get(&callback),
            _ => http
                .get(callback.replace(&code, "bogus-code-value"))
                .header("cookie", &cookie),
        };
        let answer = request.send().await.unwrap();
        answers.push_str(&format!("{:?}\n", answer.headers()));
        answers.push_str(&answer.text().await.unwrap());
        if round == 0 {
            let replay = http
                .get(&callback)
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            answers.push_str(&replay.text().await.unwrap());
        }
    }
    assert_eq!(server.terminate().code(), Some(0));
    assert_eq!(emulator.terminate().code(), Some(0));
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.lines().count() > 20,
        "trace logging produced little: {log}"
    );
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "{secret:?} is in the log");
        assert!(
            !answers.contains(secret.as_str()),
            "{secret:?} is in an answer"
        );
    }
}
