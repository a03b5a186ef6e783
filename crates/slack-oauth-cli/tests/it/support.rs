//! Helpers: spawn the binary with a clean environment, wait for `listening on`, stop it with
//! SIGTERM.

// Each test module uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Variables the binary reads; removed so the caller's environment cannot leak in.
const VARIABLES: [&str; 20] = [
    "SLACK_CLIENT_ID",
    "SLACK_CLIENT_SECRET",
    "SLACK_SCOPES",
    "SLACK_USER_SCOPES",
    "SLACK_REDIRECT_URI",
    "SLACK_API_URL",
    "SLACK_AUTHORIZE_URL",
    "DATABASE_URL",
    "SLACK_INSTALL_PATH",
    "SLACK_REDIRECT_URI_PATH",
    "SLACK_SUCCESS_URL",
    "SLACK_FAILURE_URL",
    "SLACK_OAUTH_ADDR",
    "SLACK_TOKEN_ENCRYPTION_KEYS",
    "SLACK_OAUTH_MAX_LIVE_STATES",
    "SLACK_OAUTH_ALLOW_INSECURE_SLACK_URL",
    "SLACK_OAUTH_INSTALL_RATE_PER_IP",
    "SLACK_OAUTH_CLIENT_IP_HEADER",
    "RUST_LOG",
    "NO_COLOR",
];

/// How long a spawned process may take to print `listening on` on a loaded machine.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The binary with a clean environment and `RUST_LOG=warn`.
pub fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_slack-oauth"));
    for name in VARIABLES {
        command.env_remove(name);
    }
    command.env("RUST_LOG", "warn");
    command
}

/// Runs the binary to completion with `args`.
pub fn run(command: &mut Command) -> Output {
    let output = command.stdin(Stdio::null()).output().unwrap();
    // stderr is the binary's log and errors: scanned for secrets (S7). stdout is not: it holds
    // what the user asked for (`installations show --show-tokens` prints tokens on purpose).
    slack_oauth_test::hygiene::record(&output.stderr);
    output
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running child process; killed on drop if still running.
pub struct Spawned {
    pub child: Child,
    /// The `http://ADDR` it printed.
    pub url: String,
    /// The lines it printed on stdout after `listening on`.
    pub lines: mpsc::Receiver<String>,
}

impl Spawned {
    /// Spawns `command` and waits for its `listening on http://ADDR` line. stderr is inherited
    /// unless the caller set it.
    #[track_caller]
    pub fn start(command: &mut Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let url = loop {
            match lines.recv_timeout(READY_TIMEOUT) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("listening on ") {
                        break url.trim().to_owned();
                    }
                }
                Err(error) => {
                    let _ = child.kill();
                    panic!("the process never printed `listening on`: {error}");
                }
            }
        };
        Self { child, url, lines }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success(), "kill -TERM {pid} failed");
        let deadline = std::time::Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the process did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// stdout as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
