//! `slack-oauth`: serve the OAuth install flow, inspect stored installations, run a demo or a
//! local Slack emulator.
//!
//! Exit codes: `0` success, `1` a failure while running (a store that cannot be reached, a port
//! already in use), `2` a usage or configuration error (a missing `SLACK_CLIENT_SECRET`, a bad
//! flag or URL). Errors print as one line, `error: ` followed by the cause chain.
//! `rotate` exits with `1` when any token could not be refreshed, `exchange` when any could not
//! be exchanged.
#![cfg_attr(not(test), forbid(unsafe_code))]

use std::io::Write as _;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

/// jemalloc instead of glibc's allocator (where it builds): a request allocates many small,
/// short-lived buffers, and glibc's free-list upkeep (`malloc_consolidate`) took about 5% of
/// `serve`'s CPU per install flow (see BENCHMARKS.md). The default `jemalloc` feature; without
/// it, the system allocator.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod apps;
mod config;
mod demo;
mod emulate;
mod exchange;
mod install_rate;
mod installations;
mod keys;
mod metrics;
mod rotate;
mod rotation_loop;
mod serve;
mod shutdown;
mod table;

/// Everything a multi-workspace Slack app needs between "Add to Slack" and a valid token.
#[derive(Debug, Parser)]
#[command(name = "slack-oauth", version, propagate_version = true)]
struct Cli {
    /// Log lines as `text` (for people) or `json` (one object per line, for log pipelines);
    /// filtered by RUST_LOG (default `info`)
    #[arg(
        long,
        global = true,
        value_enum,
        env = "SLACK_OAUTH_LOG_FORMAT",
        default_value_t = LogFormat::Text
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields` (the message and the
    /// event's fields) and `spans` (the request's method and path).
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the install flow (`/slack/install`, `/slack/oauth_redirect`, `/healthz`).
    ///
    /// Configured from the environment (SLACK_CLIENT_ID, SLACK_CLIENT_SECRET, SLACK_SCOPES,
    /// DATABASE_URL, ...); flags override it. See the README for every variable.
    Serve(Box<serve::ServeArgs>),
    /// Run a local demo: a Slack emulator and the install flow, ready to click through.
    Demo(demo::DemoArgs),
    /// List, show or delete stored installations.
    #[command(subcommand)]
    Installations(installations::InstallationsCommand),
    /// Run the local Slack emulator (OAuth authorize page and token methods).
    Emulate(emulate::EmulateArgs),
    /// Manage the keys that encrypt tokens at rest (SLACK_TOKEN_ENCRYPTION_KEYS).
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Turn every stored long-lived token into a rotating one (oauth.v2.exchange; exit status
    /// 1 if any failed).
    ///
    /// Reads SLACK_CLIENT_ID, SLACK_CLIENT_SECRET, SLACK_API_URL and DATABASE_URL like serve.
    Exchange(exchange::ExchangeArgs),
    /// Refresh every stored bot and user token expiring soon (exit status 1 if any failed).
    ///
    /// Reads SLACK_CLIENT_ID, SLACK_CLIENT_SECRET, SLACK_API_URL and DATABASE_URL like serve.
    Rotate(rotate::RotateArgs),
}

/// A usage or configuration error found by the binary itself: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub(crate) String);

fn main() -> ExitCode {
    let cli = parse_command_line();
    init_tracing(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            let _ = std::io::stdout().flush();
            eprintln!("error: {error:#}");
            ExitCode::from(exit_code(&error))
        }
    }
}

/// The command line: each flag, else its environment variable (a blank one counts as unset),
/// else its default. Exits with code 2 on a usage error, 0 after `--help` or `--version`.
fn parse_command_line() -> Cli {
    let mut command = config::blank_env_is_unset(Cli::command());
    let matches = command.get_matches_mut();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| {
        error.format(&mut command).exit();
    });
    if let (Command::Serve(args), Some(("serve", serve))) = (&mut cli.command, matches.subcommand())
    {
        args.addr_from_env = serve.value_source("addr") == Some(ValueSource::EnvVariable);
    }
    cli
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve::run(*args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Installations(command) => installations::run(command).await,
        Command::Emulate(args) => emulate::run(args).await,
        Command::Rotate(args) => rotate::run(args).await,
        Command::Exchange(args) => exchange::run(args).await,
        Command::Keys(command) => keys::run(command).await,
    }
}

/// `2` for configuration and usage errors anywhere in the chain, `1` for everything else.
fn exit_code(error: &anyhow::Error) -> u8 {
    let usage = error.chain().any(|cause| {
        cause.is::<UsageError>()
            || cause.is::<slack_oauth::settings::ConfigError>()
            || cause
                .downcast_ref::<slack_oauth::store::StoreError>()
                .is_some_and(|e| e.kind() == slack_oauth::store::StoreErrorKind::Config)
    });
    if usage {
        2
    } else {
        1
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), as text or JSON lines.
fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().with_current_span(false).try_init(),
    };
}

/// Prints a line to stdout and flushes it, so a parent process reading a pipe sees it at once.
pub(crate) fn announce(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }

    #[test]
    fn config_errors_exit_with_2_and_others_with_1() {
        let missing = slack_oauth::settings::OAuthSettings::from_lookup(|_| None).unwrap_err();
        assert_eq!(exit_code(&anyhow::Error::new(missing).context("serve")), 2);
        assert_eq!(exit_code(&UsageError("bad".to_owned()).into()), 2);
        assert_eq!(exit_code(&anyhow::anyhow!("port in use")), 1);
    }
}

// Every log line and panic of the unit tests goes to the secret scan (S7).
#[cfg(test)]
slack_oauth_test::capture_logs!();
