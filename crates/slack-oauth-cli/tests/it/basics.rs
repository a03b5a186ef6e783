//! `--help`, `--version`, and the errors that exit with code 2.

use crate::support::{command, run, stderr, stdout};

#[test]
fn help_lists_the_subcommands() {
    let output = run(command().arg("--help"));
    assert!(output.status.success());
    let text = stdout(&output);
    for name in ["serve", "demo", "installations", "emulate"] {
        assert!(text.contains(name), "{name} missing from --help:\n{text}");
    }
}

#[test]
fn version_prints_the_crate_version() {
    let output = run(command().arg("--version"));
    assert!(output.status.success());
    assert_eq!(
        stdout(&output).trim(),
        format!("slack-oauth {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn serve_without_a_secret_exits_2_naming_it() {
    let output = run(command()
        .arg("serve")
        .env("SLACK_CLIENT_ID", "111.222")
        .env("DATABASE_URL", "memory://"));
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert_eq!(text.trim_end().lines().count(), 1, "not one line: {text}");
    assert!(text.contains("SLACK_CLIENT_SECRET"), "{text}");
    assert!(!text.contains("SLACK_CLIENT_ID"), "{text}");
}

#[test]
fn serve_with_a_bad_address_exits_2() {
    let output = run(command()
        .args(["serve", "--addr", "nowhere"])
        .env("SLACK_CLIENT_ID", "111.222")
        .env("SLACK_CLIENT_SECRET", "s3cret-value")
        .env("DATABASE_URL", "memory://"));
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(text.contains("--addr = \"nowhere\""), "{text}");
    assert!(!text.contains("s3cret-value"), "{text}");
}

#[test]
fn serve_with_an_unknown_store_scheme_exits_2() {
    let output = run(command()
        .arg("serve")
        .env("SLACK_CLIENT_ID", "111.222")
        .env("SLACK_CLIENT_SECRET", "s3cret-value")
        .env("DATABASE_URL", "redis://localhost"));
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("redis"), "{}", stderr(&output));
}

#[test]
fn unknown_flags_are_usage_errors() {
    let output = run(command().args(["serve", "--no-such-flag"]));
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn installations_of_an_empty_store_are_none() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("empty.db").display());
    let output = run(command()
        .args(["installations", "list"])
        .env("DATABASE_URL", &url));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).trim(), "no installations");
    let output = run(command()
        .args(["installations", "show", "--team", "T1"])
        .env("DATABASE_URL", &url));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("no installations in sqlite://"));
}

#[test]
fn show_without_a_target_exits_2() {
    let output = run(command()
        .args(["installations", "show", "--client-id", "1.2"])
        .env("DATABASE_URL", "memory://"));
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--team"));
}

#[test]
fn plain_http_slack_urls_off_this_machine_exit_2_unless_allowed() {
    let with_credentials = |command: &mut std::process::Command| {
        command
            .env("SLACK_CLIENT_ID", "111.222")
            .env("SLACK_CLIENT_SECRET", "s3cret-value")
            .env("DATABASE_URL", "memory://")
            .env_remove("SLACK_OAUTH_ALLOW_INSECURE_SLACK_URL");
    };
    for args in [
        &["serve", "--api-url", "http://slack.test/api/"][..],
        &[
            "serve",
            "--authorize-url",
            "http://slack.test/oauth/v2/authorize",
        ],
        &["rotate", "--api-url", "http://slack.test/api/"],
    ] {
        let mut cmd = command();
        cmd.args(args);
        with_credentials(&mut cmd);
        let output = run(&mut cmd);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let text = stderr(&output);
        assert!(text.contains("--allow-insecure-slack-url"), "{text}");
        assert!(!text.contains("s3cret-value"), "{text}");
    }
    // Allowed explicitly, by the flag or its variable: rotate runs (nothing to rotate).
    let mut cmd = command();
    cmd.args([
        "rotate",
        "--api-url",
        "http://slack.test/api/",
        "--allow-insecure-slack-url",
    ]);
    with_credentials(&mut cmd);
    let output = run(&mut cmd);
    assert!(output.status.success(), "{}", stderr(&output));
    let mut cmd = command();
    cmd.args(["rotate", "--api-url", "http://slack.test/api/"]);
    with_credentials(&mut cmd);
    cmd.env("SLACK_OAUTH_ALLOW_INSECURE_SLACK_URL", "true");
    let output = run(&mut cmd);
    assert!(output.status.success(), "{}", stderr(&output));
}
