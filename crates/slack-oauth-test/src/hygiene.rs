//! Secret hygiene across a whole test run (reliability.md S7): every log event and panic
//! message a test process produces is captured to a file, and `scripts/secret-scan.sh` searches
//! those files for the suite's sentinel secrets and for anything token-shaped.
//!
//! A test binary opts in with one line, [`capture_logs!`](crate::capture_logs); capturing
//! happens only when [`CAPTURE_DIR_ENV`] is set (`scripts/test.sh` sets it), so running one test
//! by hand is unchanged.
//!
//! ```
//! // Secrets built on the sentinel are found by the scan wherever they leak.
//! let secret = slack_oauth_test::hygiene::sentinel("client-secret");
//! assert!(secret.contains(slack_oauth_test::hygiene::SENTINEL));
//! ```

use std::fs::File;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The marker every test secret carries (client secrets, signing secrets), so that the scan
/// finds any of them by one string.
pub const SENTINEL: &str = "S3NT1N3L";

/// The directory the captures go to: one file per test process.
pub const CAPTURE_DIR_ENV: &str = "SLACK_OAUTH_CAPTURE_DIR";

/// Everything at TRACE, except the model checker's own bookkeeping (shuttle traces every
/// scheduling step: gigabytes per run, none of it ours).
const CAPTURE_FILTER: &str = "trace,shuttle=warn";

/// A secret for tests: `name` with the sentinel in it.
pub fn sentinel(name: &str) -> String {
    format!("{name}-{SENTINEL}-0123456789")
}

/// Installs the capture for this process when [`CAPTURE_DIR_ENV`] is set: a global `tracing`
/// subscriber at TRACE writing every event of every crate (but the model checker's own) to
/// `$SLACK_OAUTH_CAPTURE_DIR/<binary>-<pid>.log`, and a panic hook appending each panic
/// message there before the usual report. Tests that install their own subscriber for a scope
/// (`with_default`) still see their events; events outside such scopes are captured.
///
/// Called before `main` by [`capture_logs!`](crate::capture_logs); safe to call more than
/// once (the first call wins).
pub fn capture() {
    let Some(dir) = std::env::var_os(CAPTURE_DIR_ENV).map(PathBuf::from) else {
        return;
    };
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let binary = std::env::current_exe()
        .ok()
        .and_then(|path| {
            path.file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let path = dir.join(format!("{binary}-{}.log", std::process::id()));
    let Ok(file) = File::options().create(true).append(true).open(&path) else {
        return;
    };
    let file = Arc::new(Mutex::new(file));
    let writer = Arc::clone(&file);
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(CAPTURE_FILTER))
        .with_ansi(false)
        .with_writer(move || SharedFile(Arc::clone(&writer)))
        .finish();
    if tracing::subscriber::set_global_default(subscriber).is_err() {
        return;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Ok(mut file) = file.lock() {
            let _ = writeln!(file, "PANIC {info}");
        }
        previous(info);
    }));
}

/// A `Write` onto the shared capture file.
struct SharedFile(Arc<Mutex<File>>);

impl std::io::Write for SharedFile {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match self.0.lock() {
            Ok(mut file) => file.write(bytes),
            Err(_) => Ok(bytes.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.lock() {
            Ok(mut file) => file.flush(),
            Err(_) => Ok(()),
        }
    }
}

/// Appends `text` (a child process's stderr, say) to this process's capture, when capturing.
pub fn record(text: &[u8]) {
    let Some(dir) = std::env::var_os(CAPTURE_DIR_ENV).map(PathBuf::from) else {
        return;
    };
    let path = dir.join(format!("children-{}.log", std::process::id()));
    if let Ok(mut file) = File::options().create(true).append(true).open(path) {
        let _ = file.write_all(text);
        let _ = file.write_all(b"\n");
    }
}

/// Captures this test binary's logs and panics for the secret scan (see the
/// [module](crate::hygiene)). Put it once at the top level of a test binary.
///
/// ```
/// slack_oauth_test::capture_logs!();
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! capture_logs {
    () => {
        #[$crate::hygiene::ctor(unsafe, crate_path = $crate::hygiene::ctor_crate)]
        fn capture_logs_for_the_secret_scan() {
            $crate::hygiene::capture();
        }
    };
}

#[doc(hidden)]
pub use ctor as ctor_crate;
#[doc(hidden)]
pub use ctor::ctor;
