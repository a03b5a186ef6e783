//! Flags and their environment variables (clap's `env`): the flag over the variable over the
//! default, a blank variable counted as unset, errors naming where a bad value came from, and no
//! secret in `--help`.

use crate::support::{command, free_port, run, stderr, stdout, Spawned};

/// `installations list` in `dir` (where the default store, `slack-oauth.db`, would go).
fn list_in(dir: &std::path::Path) -> std::process::Command {
    let mut list = command();
    list.args(["installations", "list"]).current_dir(dir);
    list
}

#[test]
fn the_flag_wins_over_its_variable_which_wins_over_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| dir.path().join(name);
    let url = |name: &str| format!("sqlite://{}", file(name).display());

    let output = run(list_in(dir.path())
        .args(["--database-url", &url("flag.db")])
        .env("DATABASE_URL", url("variable.db")));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(file("flag.db").exists());
    assert!(!file("variable.db").exists());

    let output = run(list_in(dir.path()).env("DATABASE_URL", url("variable.db")));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(file("variable.db").exists());
    assert!(!file("slack-oauth.db").exists());

    let output = run(&mut list_in(dir.path()));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(file("slack-oauth.db").exists(), "the default store");
}

#[test]
fn blank_variables_count_as_unset() {
    // DATABASE_URL and SLACK_CLIENT_ID blank: the default store, every app in it.
    let dir = tempfile::tempdir().unwrap();
    let output = run(list_in(dir.path())
        .env("DATABASE_URL", "")
        .env("SLACK_CLIENT_ID", "  "));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).trim(), "no installations");
    assert!(
        dir.path().join("slack-oauth.db").exists(),
        "the default store"
    );

    // SLACK_API_URL and SLACK_OAUTH_ALLOW_INSECURE_SLACK_URL blank: Slack's API, not allowed
    // to be plain http; nothing to rotate in an empty store.
    let output = run(command()
        .arg("rotate")
        .env("SLACK_CLIENT_ID", "111.222")
        .env("SLACK_CLIENT_SECRET", "s3cret-value")
        .env("DATABASE_URL", "memory://")
        .env("SLACK_API_URL", "")
        .env("SLACK_OAUTH_ALLOW_INSECURE_SLACK_URL", ""));
    assert!(output.status.success(), "{}", stderr(&output));
}

#[tokio::test]
async fn serve_ignores_blank_variables() {
    let port = free_port();
    let mut serve = command();
    serve
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .env("SLACK_CLIENT_ID", "111.222")
        .env("SLACK_CLIENT_SECRET", "s3cret-value")
        .env("DATABASE_URL", "memory://");
    for name in [
        "SLACK_OAUTH_ADDR",
        "SLACK_API_URL",
        "SLACK_AUTHORIZE_URL",
        "SLACK_SCOPES",
        "SLACK_INSTALL_PATH",
        "SLACK_REDIRECT_URI_PATH",
        "SLACK_SUCCESS_URL",
        "SLACK_OAUTH_INSTALL_RATE_PER_IP",
        "SLACK_OAUTH_CLIENT_IP_HEADER",
        "SLACK_OAUTH_ALLOW_INSECURE_SLACK_URL",
    ] {
        serve.env(name, "");
    }
    let server = Spawned::start(&mut serve);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The default install path, linking to Slack's authorize page.
    let install = http
        .get(format!("{}/slack/install", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(install.status(), 200);
    let page = install.text().await.unwrap();
    assert!(
        page.contains("https://slack.com/oauth/v2/authorize?"),
        "{page}"
    );
    assert_eq!(server.terminate().code(), Some(0));
}

#[test]
fn a_bad_address_names_the_variable_it_came_from() {
    let output = run(command()
        .arg("serve")
        .env("SLACK_OAUTH_ADDR", "nowhere")
        .env("SLACK_CLIENT_ID", "111.222")
        .env("SLACK_CLIENT_SECRET", "s3cret-value")
        .env("DATABASE_URL", "memory://"));
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert_eq!(text.trim_end().lines().count(), 1, "not one line: {text}");
    assert!(text.contains("SLACK_OAUTH_ADDR = \"nowhere\""), "{text}");

    // A bad value in a variable clap parses: a usage error too.
    let output = run(command()
        .arg("serve")
        .env("SLACK_OAUTH_INSTALL_RATE_PER_IP", "many"));
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--install-rate-per-ip"));
}

#[test]
fn help_names_the_variables_but_shows_no_secret() {
    const PASSWORD: &str = "pg-password-in-help";
    const SECRET: &str = "client-secret-in-help";
    const KEYS: &str = "k1:a2V5LWluLWhlbHAta2V5LWluLWhlbHAta2V5LWluLWg=";
    for args in [
        &["serve", "--help"][..],
        &["rotate", "--help"],
        &["installations", "list", "--help"],
        &["installations", "show", "--help"],
        &["keys", "rotate", "--help"],
    ] {
        let output = run(command()
            .args(args)
            .env("SLACK_CLIENT_ID", "111.222")
            .env("SLACK_CLIENT_SECRET", SECRET)
            .env("SLACK_TOKEN_ENCRYPTION_KEYS", KEYS)
            .env("DATABASE_URL", format!("postgres://root:{PASSWORD}@db/app")));
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        let text = stdout(&output);
        for secret in [PASSWORD, SECRET, KEYS] {
            assert!(!text.contains(secret), "{args:?} --help shows a secret");
        }
        assert!(text.contains("[env: DATABASE_URL]"), "{args:?}: {text}");
    }
    let output = run(command()
        .args(["serve", "--help"])
        .env("SLACK_CLIENT_ID", "111.222"));
    let text = stdout(&output);
    for shown in [
        "[env: SLACK_CLIENT_ID=111.222]",
        "[env: SLACK_OAUTH_ADDR=]",
        "[env: SLACK_API_URL=]",
        "[env: SLACK_OAUTH_ALLOW_INSECURE_SLACK_URL=]",
    ] {
        assert!(text.contains(shown), "{shown} missing: {text}");
    }
}
