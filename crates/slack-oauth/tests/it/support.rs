//! Shared helpers for the integration tests: an emulator with known app credentials, a client
//! pointed at it, a canned-response HTTP server that records requests, and assertions.

// Each test module uses a different subset of these helpers.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use slack_emulator::{Emulator, EmulatorConfig};
use slack_oauth::api::{AccessGrant, ApiError, Client, ClientBuilder, ClientCredentials};
use slack_oauth::secret::AuthorizationCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The app's client id, as the emulator is configured by [`config`].
pub const CLIENT_ID: &str = "111.222";
/// The app's client secret, as the emulator is configured by [`config`].
pub const CLIENT_SECRET: &str = "it-client-secret-S3NT1N3L-0123456789";
/// A redirect URI for codes issued in tests.
pub const REDIRECT_URI: &str = "https://app.test/slack/oauth_redirect";

/// An emulator configuration that accepts only [`credentials`].
pub fn config() -> EmulatorConfig {
    EmulatorConfig {
        client_id: Some(CLIENT_ID.to_owned()),
        client_secret: Some(CLIENT_SECRET.to_owned()),
        ..EmulatorConfig::default()
    }
}

/// [`config`] with token rotation on.
pub fn rotating_config() -> EmulatorConfig {
    EmulatorConfig {
        rotation: true,
        ..config()
    }
}

/// Starts an emulator on a free loopback port.
pub async fn emulator(config: EmulatorConfig) -> Emulator {
    Emulator::spawn(config).await.unwrap()
}

/// The app's credentials, as the emulator of [`config`] expects them.
pub fn credentials() -> ClientCredentials {
    ClientCredentials::new(CLIENT_ID, CLIENT_SECRET)
}

/// A client builder for `base_url` with timeouts generous enough for a loaded CI machine and
/// a short longest retry wait.
pub fn client_builder(base_url: &str) -> ClientBuilder {
    Client::builder()
        .base_url(base_url)
        .connect_timeout(Duration::from_secs(5))
        .request_timeout(Duration::from_secs(15))
        .max_retries(2)
        .max_retry_wait(Duration::from_secs(5))
}

/// A client for `emulator`'s Web API.
pub fn client(emulator: &Emulator) -> Client {
    client_builder(&emulator.api_url()).build().unwrap()
}

/// A code grant for `code`, sent with `redirect_uri`.
pub fn code_grant(code: &str, redirect_uri: Option<&str>) -> AccessGrant {
    AccessGrant::Code {
        code: AuthorizationCode::new(code),
        redirect_uri: redirect_uri.map(str::to_owned),
        code_verifier: None,
    }
}

/// A code with a PKCE S256 `challenge`, obtained the way a browser would: through the
/// emulator's authorize page with auto-approve, reading the code off the redirect.
pub async fn pkce_code(emulator: &Emulator, challenge: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = http
        .get(emulator.authorize_url())
        .query(&[
            ("client_id", CLIENT_ID),
            ("scope", "commands"),
            ("redirect_uri", REDIRECT_URI),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("auto_approve", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302, "authorize did not redirect");
    let location = response.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap();
    let location = url::Url::parse(location).unwrap();
    let code = location.query_pairs().find(|(name, _)| name == "code");
    code.map(|(_, code)| code.into_owned())
        .expect("the redirect carries a code")
}

/// Asserts that `result` is Slack's `ok:false` with `expected` as its error string.
#[track_caller]
pub fn assert_slack_error<T: std::fmt::Debug>(result: Result<T, ApiError>, expected: &str) {
    match result {
        Err(error) => assert_eq!(error.slack_error(), Some(expected), "{error:?}"),
        Ok(value) => panic!("expected Slack error {expected:?}, got {value:?}"),
    }
}

/// Every way an error can be printed: `Display`, `{:#}`-style chain, and `Debug`.
pub fn renderings(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut shown = vec![error.to_string(), format!("{error:?}")];
    let mut source = error.source();
    while let Some(cause) = source {
        shown.push(cause.to_string());
        shown.push(format!("{cause:?}"));
        source = cause.source();
    }
    shown
}

/// Asserts that no rendering of `error` contains any of `secrets`.
#[track_caller]
pub fn assert_no_secret(error: &(dyn std::error::Error + 'static), secrets: &[&str]) {
    for shown in renderings(error) {
        for secret in secrets {
            assert!(
                !shown.contains(secret),
                "an error rendering leaks {secret:?}: {shown}"
            );
        }
    }
}

/// One HTTP request as the [`CannedServer`] received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// `POST`, `GET`, ...
    pub method: String,
    /// The request target (`/api/auth.test`).
    pub path: String,
    /// Headers with lowercase names, in order.
    pub headers: Vec<(String, String)>,
    /// The body as received.
    pub body: String,
}

impl Recorded {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A tiny HTTP/1.1 server that answers every request with the same raw bytes and records what
/// it received: for request shapes and for answers the emulator cannot produce.
#[derive(Clone, Debug)]
pub struct CannedServer {
    base_url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl CannedServer {
    /// Serves `response` (a complete HTTP response, head and body) to every request.
    pub async fn spawn(response: Vec<u8>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}/api/", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        let response = Arc::new(response);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let recorded = Arc::clone(&recorded);
                let response = Arc::clone(&response);
                tokio::spawn(async move {
                    if let Some(request) = read_request(&mut stream).await {
                        recorded.lock().unwrap().push(request);
                        // The client may hang up first (a body too large, a timeout).
                        let _ = stream.write_all(&response).await;
                        let _ = stream.shutdown().await;
                    }
                });
            }
        });
        Self { base_url, requests }
    }

    /// Serves `status` with a JSON `body` and a `Content-Length`.
    pub async fn json(status: u16, body: &str) -> Self {
        Self::spawn(http_response(
            status,
            &[("content-type", "application/json")],
            body,
        ))
        .await
    }

    /// The Web API base URL (`http://127.0.0.1:PORT/api/`).
    pub fn api_url(&self) -> &str {
        &self.base_url
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

/// A complete HTTP/1.1 response with `Content-Length` and `Connection: close`.
pub fn http_response(status: u16, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} Canned\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let mut response = head.into_bytes();
    response.extend_from_slice(body.as_bytes());
    response
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Recorded> {
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 4096];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8(buffer[..head_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    Some(Recorded {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// A loopback port on which nothing listens, reserved for as long as this value lives.
///
/// The socket is bound but never listens, so connections are refused, and no other test can be
/// handed the port meanwhile (as could happen with a listener that was bound and dropped).
#[derive(Debug)]
pub struct ClosedPort {
    _socket: tokio::net::TcpSocket,
    /// `http://127.0.0.1:PORT/api/`.
    pub api_url: String,
}

/// Reserves a [`ClosedPort`].
pub fn closed_port() -> ClosedPort {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    ClosedPort {
        _socket: socket,
        api_url: format!("http://{addr}/api/"),
    }
}

/// Trials of a reliability scenario: `short` in CI, `full` (reliability.md's count) with
/// `SLACK_OAUTH_RELIABILITY=full`, or exactly `N` with `SLACK_OAUTH_RELIABILITY=N`.
pub fn trials(short: usize, full: usize) -> usize {
    match std::env::var("SLACK_OAUTH_RELIABILITY").as_deref() {
        Ok("full") => full,
        Ok(count) => count.parse().unwrap_or(short),
        Err(_) => short,
    }
}

/// Whether this is a measuring run (`SLACK_OAUTH_RELIABILITY` set): scenarios then use
/// reliability.md's magnitudes (30 s outages, 2 minutes of faults), not CI's small ones.
pub fn measuring() -> bool {
    std::env::var_os("SLACK_OAUTH_RELIABILITY").is_some()
}

/// The `p`-th percentile (0-100) of `samples`, or zero for none.
pub fn percentile(samples: &[Duration], p: usize) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    match sorted.len() {
        0 => Duration::ZERO,
        n => sorted[((n * p).div_ceil(100)).clamp(1, n) - 1],
    }
}

/// Prints one reliability figure line (`R5 [sqlite] before-send: 2 passed, 0 failed; ...`), the
/// form RELIABILITY.md quotes.
pub fn report(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "RELIABILITY {line}");
}
