//! The slack-oauth integration tests: one binary, one module per area.

// Every log line and panic of this test process goes to the secret scan (S7).
slack_oauth_test::capture_logs!();

// Shared helpers: emulator and client set-up, a canned HTTP server, assertions.
mod support;

// The Web API client (`slack_oauth::api`) over real HTTP against the emulator: every method,
// Slack's errors, 429 retries, 5xx, timeouts, connection failures, decoding, request shapes.
mod api;

// The install flow: router-level branches and end-to-end installs against the emulator.
mod flow;

// Token rotation: the rotator against the emulator, exactly-once rotation of stored tokens.
mod rotation;

// Per-request authorize: resolution rules, token refresh through a fake refresher, lifecycle.
mod authorize;

// Property tests (proptest) of what reads input from outside: request signatures (S8), the
// state cookie and the callback query.
mod properties;

// S4: fuzzed success, failure and org redirect targets never leave the allowed hosts; the
// redirect_uri sent to Slack is the configured one, byte for byte.
mod redirects;

// `SlackApp`: the common case wired (settings, store, flow, authorize, layers), end to end.
mod app;

// The metrics the library records, read back through a Prometheus recorder.
mod telemetry;
