//! `serve`'s metrics in the Prometheus text format: the library's (installs, refreshes,
//! authorize, store latency; see `slack_oauth::telemetry`), the HTTP request latency, and the
//! gauges the background rotation sets.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The time to answer one HTTP request, by route (the matched path pattern) and status.
pub(crate) const HTTP_REQUEST_DURATION_SECONDS: &str = "slack_oauth_http_request_duration_seconds";
/// Stored tokens (bot and user) expiring within a window, before each rotation pass.
pub(crate) const TOKENS_EXPIRING: &str = "slack_oauth_tokens_expiring";
/// Stored tokens marked as needing a reinstall (seen by the last rotation pass).
pub(crate) const NEEDS_REINSTALL: &str = "slack_oauth_needs_reinstall";

/// Latency buckets, in seconds: a cached store read takes microseconds, a callback that
/// calls Slack up to the request timeout.
const BUCKETS: &[f64] = &[
    0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process's recorder: the `metrics` facade takes one per process, so the first call
/// installs it and later calls (tests serving twice) share it.
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder (once per process) and returns its handle.
pub(crate) fn recorder() -> anyhow::Result<PrometheusHandle> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), BUCKETS)
        .context("metric buckets")?
        .build_recorder();
    let handle = recorder.handle();
    if HANDLE.set(handle.clone()).is_ok() {
        metrics::set_global_recorder(recorder)
            .context("another metrics recorder is already installed")?;
        describe();
        // Histograms are kept in per-thread buffers until the upkeep drains them.
        let upkeep = handle.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            loop {
                every.tick().await;
                upkeep.run_upkeep();
            }
        });
    }
    HANDLE.get().cloned().context("the metrics recorder")
}

/// `# HELP` lines.
fn describe() {
    use slack_oauth::telemetry as t;
    metrics::describe_counter!(t::INSTALLS_TOTAL, "Install callbacks, by outcome.");
    metrics::describe_counter!(
        t::TOKEN_REFRESHES_TOTAL,
        "Token refreshes sent to Slack, by token kind and outcome."
    );
    metrics::describe_counter!(
        t::AUTHORIZE_TOTAL,
        "Authorize calls, by outcome and whether the cache answered."
    );
    metrics::describe_histogram!(
        t::STORE_OPERATION_DURATION_SECONDS,
        metrics::Unit::Seconds,
        "Store operations, by operation."
    );
    metrics::describe_counter!(t::STORE_ERRORS_TOTAL, "Failed store operations.");
    metrics::describe_histogram!(
        HTTP_REQUEST_DURATION_SECONDS,
        metrics::Unit::Seconds,
        "HTTP requests, by route and status."
    );
    metrics::describe_gauge!(TOKENS_EXPIRING, "Stored tokens expiring within `within`.");
    metrics::describe_gauge!(NEEDS_REINSTALL, "Stored tokens that need a reinstall.");
}

/// `GET /metrics`, served from `handle`: on the main listener or on `--metrics-addr`.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>(
    handle: PrometheusHandle,
) -> axum::Router<S> {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || render(handle.clone())),
    )
}

/// The Prometheus text of everything recorded.
async fn render(handle: PrometheusHandle) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

/// Records each routed request's time under its route pattern (never the path itself, which
/// could be anything a client sends) and status.
pub(crate) async fn record_request(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(HTTP_REQUEST_DURATION_SECONDS, "route" => route, "status" => status)
        .record(started.elapsed().as_secs_f64());
    response
}
