//! The official Python client (`slack_sdk.WebClient` 3.43.0) against the emulator: a code
//! redemption, `auth.test`, and a bot token rotation with `TokenRotator`.
//!
//! The venv comes from `scripts/py-venv.sh` (shared with the store interop tests). When it cannot
//! be set up (no PyPI), the test prints `SKIPPED: ...` to stderr and passes, unless `CI=true`,
//! where it fails.

// Every log line and panic of this test process goes to the secret scan (S7).
slack_oauth_test::capture_logs!();

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use slack_emulator::{Emulator, EmulatorConfig, Grant};

const CLIENT_ID: &str = "111.222";
const CLIENT_SECRET: &str = "python-interop-secret";
const REDIRECT_URI: &str = "https://app.test/slack/oauth_redirect";

const SCRIPT: &str = r#"
import json, sys, time
from slack_sdk import WebClient
from slack_sdk.oauth.installation_store import Bot
from slack_sdk.oauth.token_rotation import TokenRotator

api_url, client_id, client_secret, code, redirect_uri = sys.argv[1:6]
client = WebClient(base_url=api_url)
access = client.oauth_v2_access(
    client_id=client_id, client_secret=client_secret, code=code, redirect_uri=redirect_uri
)
auth = WebClient(base_url=api_url, token=access["access_token"]).auth_test()
headers = {k.lower(): (v[0] if isinstance(v, list) else v) for k, v in auth.headers.items()}
bot = Bot(
    app_id=access["app_id"],
    team_id=access["team"]["id"],
    bot_token=access["access_token"],
    bot_id=auth["bot_id"],
    bot_user_id=access["bot_user_id"],
    bot_scopes=access["scope"],
    bot_refresh_token=access["refresh_token"],
    bot_token_expires_in=access["expires_in"],
    installed_at=time.time(),
)
rotator = TokenRotator(client_id=client_id, client_secret=client_secret, client=client)
rotated = rotator.perform_bot_token_rotation(bot=bot, minutes_before_expiration=60 * 24)
print(json.dumps({
    "access": access.data,
    "access_status": access.status_code,
    "auth_test": auth.data,
    "scopes_header": headers.get("x-oauth-scopes"),
    "rotated_token": rotated.bot_token,
    "rotated_refresh_token": rotated.bot_refresh_token,
}))
"#;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv's python, or `None` after printing why the test is skipped (outside CI).
fn python_or_skip() -> Option<PathBuf> {
    let root = workspace_root();
    let output = Command::new("bash")
        .arg(root.join("scripts/py-venv.sh"))
        .current_dir(&root)
        .output();
    let failure = match output {
        Ok(output) if output.status.success() => {
            let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            return Some(PathBuf::from(path));
        }
        Ok(output) => format!(
            "scripts/py-venv.sh failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(error) => format!("could not run bash scripts/py-venv.sh: {error}"),
    };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{failure}");
    }
    slack_oauth_test::skip(&format!(
        "python_client (slack_sdk interop) needs the Python venv: {failure}"
    ));
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_sdk_webclient_redeems_a_code_calls_auth_test_and_rotates() {
    let Some(python) = tokio::task::spawn_blocking(python_or_skip).await.unwrap() else {
        return;
    };
    let emulator = Emulator::spawn(EmulatorConfig {
        client_id: Some(CLIENT_ID.to_owned()),
        client_secret: Some(CLIENT_SECRET.to_owned()),
        rotation: true,
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let code = emulator.issue_code(Grant::default(), Some(REDIRECT_URI));
    let api_url = emulator.api_url();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .args([
                "-c",
                SCRIPT,
                &api_url,
                CLIENT_ID,
                CLIENT_SECRET,
                &code,
                REDIRECT_URI,
            ])
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();

    let access = &result["access"];
    assert_eq!(result["access_status"], 200);
    assert_eq!(access["ok"], true);
    assert_eq!(access["app_id"], "A0EMULATOR");
    assert_eq!(access["team"]["id"], "T0EMULATOR");
    assert!(access["access_token"]
        .as_str()
        .unwrap()
        .starts_with("xoxe.xoxb-1-"));

    let auth = &result["auth_test"];
    assert_eq!(auth["ok"], true);
    assert_eq!(auth["bot_id"], "B0EMULATOR");
    assert_eq!(auth["team_id"], "T0EMULATOR");
    assert_eq!(result["scopes_header"], "chat:write,commands");

    let rotated = result["rotated_token"].as_str().unwrap();
    assert!(rotated.starts_with("xoxe.xoxb-1-"));
    assert_ne!(rotated, access["access_token"].as_str().unwrap());
    assert_ne!(result["rotated_refresh_token"], access["refresh_token"]);

    let counters = emulator.counters();
    assert_eq!(counters.calls["oauth.v2.access"], 2);
    assert_eq!(counters.calls["auth.test"], 1);
    assert_eq!(counters.codes_redeemed, 1);
    assert_eq!(counters.refreshes_served, 1);
}
