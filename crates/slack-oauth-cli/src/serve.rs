//! `slack-oauth serve`: the install flow over HTTP, with `/healthz`, `/readyz`, `/metrics`,
//! request tracing and graceful shutdown, limits on what a slow or abusive client can hold (see
//! [`Limits`]), and the background rotation of every stored token (see [`RotationLoop`]).

use std::future::Future;
use std::num::NonZeroU32;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderName, Request, StatusCode};
use axum::middleware;
use axum::routing::get;
use axum::Router;
use clap::Args;
use futures::FutureExt as _;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use metrics_exporter_prometheus::PrometheusHandle;
use slack_oauth::api::ClientCredentials;
use slack_oauth::flow::OAuthFlow;
use slack_oauth::rotation::{BatchOptions, Rotation, TokenRotator};
use slack_oauth::store::AnyStore;
use tokio::net::TcpListener;
use tower::ServiceExt as _;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::config::{self, SettingsArgs, StoreArgs};
use crate::install_rate::{self, InstallRate, PeerAddr};
use crate::rotation_loop::{RotationLoop, Stop};

/// Flags of `slack-oauth serve`; each overrides its environment variable.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Where to listen
    #[arg(long, env = "SLACK_OAUTH_ADDR", default_value = config::DEFAULT_ADDR)]
    addr: String,
    /// Whether `addr` came from `SLACK_OAUTH_ADDR` (for the error naming it); set by `main`.
    #[arg(skip)]
    pub(crate) addr_from_env: bool,
    #[command(flatten)]
    slack: config::SlackApiArgs,
    /// Seconds a client has to send a request's headers, and the longest a kept-alive
    /// connection may sit idle (slow clients cannot hold connections open)
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_seconds)]
    header_timeout: Duration,
    /// Seconds a request may take, Slack's answers included; past it the answer is 503
    #[arg(long, value_name = "SECONDS", default_value = "60", value_parser = parse_seconds)]
    request_timeout: Duration,
    /// Connections served at once; more wait in the listen queue
    #[arg(long, value_name = "N", default_value = "1024", value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// Loads of the install page per minute from one client IP (each stores a state); past
    /// it, 429 with Retry-After. 0: no limit
    #[arg(
        long,
        value_name = "N",
        env = "SLACK_OAUTH_INSTALL_RATE_PER_IP",
        default_value = "0"
    )]
    install_rate_per_ip: u32,
    /// The header your proxy puts the client's IP in (X-Forwarded-For: its rightmost address
    /// is used); without it the client is the TCP peer
    #[arg(long, value_name = "NAME", env = "SLACK_OAUTH_CLIENT_IP_HEADER", value_parser = parse_header_name)]
    client_ip_header: Option<HeaderName>,
    /// Serve `/metrics` (Prometheus) on this address instead of the main one
    #[arg(long, value_name = "ADDR", env = "SLACK_OAUTH_METRICS_ADDR")]
    metrics_addr: Option<String>,
    /// Rotate every stored token expiring within --minutes-before-expiration, one pass every
    /// DURATION (`30s`, `5m`, `1h`); `0` turns the background rotation off
    #[arg(long, value_name = "DURATION", env = "SLACK_OAUTH_ROTATE_EVERY", default_value = "5m", value_parser = crate::rotate::parse_every_or_off)]
    rotate_every: Duration,
    /// The background rotation refreshes tokens expiring within this many minutes
    #[arg(long, value_name = "MINUTES", default_value_t = 120)]
    minutes_before_expiration: u32,
    /// oauth.v2.access calls per minute, shared by every `serve` and `rotate` on the same
    /// database (Slack allows 600 per app); 0 for no limit
    #[arg(long, value_name = "N", default_value_t = 500)]
    max_per_minute: u32,
    /// Installations the background rotation refreshes at once
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    rotation_concurrency: u16,
    #[command(flatten)]
    settings: SettingsArgs,
    #[command(flatten)]
    store: StoreArgs,
}

/// Runs the server until SIGINT or SIGTERM.
pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let settings = args.settings.settings()?;
    let source = if args.addr_from_env {
        "SLACK_OAUTH_ADDR"
    } else {
        "--addr"
    };
    let addr = config::parse_addr(&args.addr, source)?;
    let client = args.slack.client(&args.settings.insecure)?;
    let store = config::connect_store(args.store.url(), settings.client_id.as_str()).await?;
    let backend = store.backend();
    let credentials =
        ClientCredentials::new(settings.client_id.clone(), settings.client_secret.clone());
    let rotation = Rotation::new(
        TokenRotator::new(client.clone(), credentials),
        store.clone(),
    )
    .minutes_before_expiration(args.minutes_before_expiration)
    .max_per_minute(args.max_per_minute)
    .slack_timeout(args.slack.slack_timeout);
    let flow = OAuthFlow::new(settings, store, client)?;
    let metrics = crate::metrics::recorder()?;
    let metrics_listener = match &args.metrics_addr {
        Some(addr) => {
            let addr = config::parse_addr(addr, "--metrics-addr")?;
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for the metrics"))?;
            Some(listener)
        }
        None => None,
    };
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener
        .local_addr()
        .context("cannot read the bound address")?;
    tracing::info!(
        %local,
        store = backend,
        install_path = %flow.settings().install_path,
        redirect_uri_path = %flow.settings().redirect_uri_path,
        "slack-oauth serving"
    );
    crate::announce(&format!("listening on http://{local}"));
    let limits = Limits {
        header_timeout: args.header_timeout,
        request_timeout: args.request_timeout,
        max_connections: args.max_connections as usize,
        install_rate_per_ip: NonZeroU32::new(args.install_rate_per_ip),
        client_ip_header: args.client_ip_header,
        metrics: Some(metrics.clone()).filter(|_| metrics_listener.is_none()),
    };
    let stop: Stop = crate::shutdown::signal().boxed().shared();
    let mut background = Vec::new();
    if let Some(listener) = metrics_listener {
        let local = listener
            .local_addr()
            .context("cannot read the metrics address")?;
        crate::announce(&format!("metrics on http://{local}/metrics"));
        let metrics_only = crate::metrics::routes(metrics);
        let stop = stop.clone();
        background.push(tokio::spawn(async move {
            let served = axum::serve(listener, metrics_only)
                .with_graceful_shutdown(stop)
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "the metrics listener failed");
            }
        }));
    }
    if args.rotate_every > Duration::ZERO {
        let every = args.rotate_every;
        let rotation_loop = RotationLoop {
            every,
            options: BatchOptions {
                minutes_before_expiration: args.minutes_before_expiration,
                concurrency: usize::from(args.rotation_concurrency),
                dry_run: false,
            },
        };
        background.push(tokio::spawn(rotation_loop.run(rotation, stop.clone())));
    }
    serve(listener, flow, limits, stop, background).await?;
    Ok(ExitCode::SUCCESS)
}

/// `--header-timeout` and `--request-timeout`: 1 to 3,600 whole seconds.
fn parse_seconds(value: &str) -> Result<Duration, String> {
    match value.trim().parse::<u64>() {
        Ok(seconds @ 1..=3_600) => Ok(Duration::from_secs(seconds)),
        Ok(_) => Err("must be 1 to 3600 seconds".to_owned()),
        Err(_) => Err(format!("{value:?} is not a whole number of seconds")),
    }
}

/// `--client-ip-header`: a valid header name.
fn parse_header_name(value: &str) -> Result<HeaderName, String> {
    HeaderName::try_from(value.trim()).map_err(|_| format!("{value:?} is not a header name"))
}

/// What one client can hold of the server.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    /// Time to send a request's headers, counted from the connection's start or its last
    /// answer: also the idle limit of a kept-alive connection (slowloris).
    pub(crate) header_timeout: Duration,
    /// Time to answer one request, Slack's calls included; past it, 503.
    pub(crate) request_timeout: Duration,
    /// Connections served at once; the next ones wait in the kernel's listen queue.
    pub(crate) max_connections: usize,
    /// Install-page loads per minute per client IP; `None`: no limit.
    pub(crate) install_rate_per_ip: Option<NonZeroU32>,
    /// Where the client IP is, behind a proxy; `None`: the TCP peer.
    pub(crate) client_ip_header: Option<HeaderName>,
    /// `GET /metrics` on the main listener, from this recorder; `None`: no such route.
    pub(crate) metrics: Option<PrometheusHandle>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_connections: 1024,
            install_rate_per_ip: None,
            client_ip_header: None,
            metrics: None,
        }
    }
}

/// Request bodies the server reads: the flow's routes are GETs, so anything bigger is abuse.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// How long shutdown waits for in-flight requests before closing their connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Serves `flow` on `listener` within `limits` until `shutdown` resolves, then finishes
/// in-flight requests (for at most 30 s), waits for the `background` tasks (which stop on the
/// same signal: the rotation finishes the refreshes it started) and closes the store.
///
/// HTTP/1.1 only: `serve` sits behind a TLS-terminating proxy or load balancer, which speaks
/// HTTP/1.1 to its upstreams, and the header timeout then covers every connection from its
/// first byte (HTTP/2 detection would wait for a preface with no limit).
pub(crate) async fn serve(
    listener: TcpListener,
    flow: OAuthFlow<AnyStore>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
    background: Vec<tokio::task::JoinHandle<()>>,
) -> anyhow::Result<()> {
    let store = flow.store().clone();
    let install_rate = limits.install_rate_per_ip.map(|per_minute| {
        Arc::new(InstallRate::new(
            per_minute,
            flow.settings().install_path.clone(),
            limits.client_ip_header.clone(),
        ))
    });
    let forgetting = install_rate.clone().map(|rate| {
        tokio::spawn(async move {
            let mut every_minute = tokio::time::interval(Duration::from_secs(60));
            loop {
                every_minute.tick().await;
                rate.forget_idle_clients();
            }
        })
    });
    let app = app(flow, &limits, install_rate);
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(64);
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // A permit first: at the limit, connections wait in the listen queue, unaccepted.
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => {
                permit.context("the connection limit closed")?
            }
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // keep serving, and give the system a moment when it is out of resources.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service =
            TowerToHyperService::new(app.clone().map_request(move |mut request: Request<_>| {
                request.extensions_mut().insert(PeerAddr(peer));
                request
            }));
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(error = %error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if let Some(forgetting) = forgetting {
        forgetting.abort();
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still running after {SHUTDOWN_GRACE:?}; closing them");
    }
    // A refresh under way saves its tokens before the store closes (bounded like requests).
    let finished = futures::future::join_all(background);
    if tokio::time::timeout(SHUTDOWN_GRACE, finished)
        .await
        .is_err()
    {
        tracing::warn!("background tasks still running after {SHUTDOWN_GRACE:?}; stopping");
    }
    // Requests are done: commit what the store still has queued and leave a checkpointed file.
    store.close().await.context("cannot close the store")?;
    tracing::info!("slack-oauth stopped");
    Ok(())
}

/// The routes of the flow plus `/healthz`, with request tracing, the request timeout and the
/// body limit.
pub(crate) fn app(
    flow: OAuthFlow<AnyStore>,
    limits: &Limits,
    install_rate: Option<Arc<InstallRate>>,
) -> Router {
    // Paths only: query strings carry authorization codes and states.
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request<Body>| {
            tracing::info_span!(
                "request",
                method = %request.method(),
                path = %request.uri().path(),
            )
        })
        .on_response(DefaultOnResponse::new().level(Level::INFO));
    let mut routes = slack_oauth::axum::routes(&flow)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if let Some(handle) = limits.metrics.clone() {
        routes = routes.merge(crate::metrics::routes(handle));
    }
    // Only routed requests: their label is the route's pattern.
    routes = routes.route_layer(middleware::from_fn(crate::metrics::record_request));
    if let Some(rate) = install_rate {
        routes = routes.layer(middleware::from_fn_with_state(rate, install_rate::limit));
    }
    routes
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout,
        ))
        .layer(trace)
        .with_state(flow)
}

/// `200 ok` while the process serves requests (liveness: a failing store does not make a
/// restart useful, so it is `/readyz`'s business).
async fn healthz() -> &'static str {
    "ok"
}

/// `200 ready` when the store answers and its schema is this build's (every migration
/// applied), `503` otherwise (readiness: route no traffic here). The cause is logged, not
/// answered.
async fn readyz(State(flow): State<OAuthFlow<AnyStore>>) -> (StatusCode, &'static str) {
    match flow.store().check().await {
        Ok(()) => (StatusCode::OK, "ready\n"),
        Err(error) => {
            tracing::error!(error = %error, "readiness check: the store is not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "store not ready\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slack_emulator::{Emulator, EmulatorConfig};
    use slack_oauth::api::Client;
    use slack_oauth::settings::OAuthSettings;
    use slack_oauth::store::MemoryStore;

    /// A callback still waiting on Slack at `request_timeout` is answered 503.
    #[tokio::test]
    async fn a_request_past_the_timeout_is_answered_503() {
        let emulator = Emulator::spawn(EmulatorConfig {
            client_id: Some("111.222".to_owned()),
            client_secret: Some("serve-test-secret".to_owned()),
            ..EmulatorConfig::default()
        })
        .await
        .unwrap();
        emulator.set_latency(Duration::from_secs(5));
        let settings = OAuthSettings::new("111.222", "serve-test-secret")
            .authorize_url(emulator.authorize_url());
        let client = Client::builder()
            .base_url(emulator.api_url())
            .build()
            .unwrap();
        let flow = OAuthFlow::new(settings, AnyStore::Memory(MemoryStore::new()), client).unwrap();
        let limits = Limits {
            request_timeout: Duration::from_millis(300),
            ..Limits::default()
        };
        let app = app(flow, &limits, None);
        let install = app
            .clone()
            .oneshot(Request::get("/slack/install").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(install.status(), StatusCode::OK);
        let cookie = install.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let state = cookie.split_once('=').unwrap().1.to_owned();
        let started = std::time::Instant::now();
        let callback = app
            .oneshot(
                Request::get(format!("/slack/oauth_redirect?code=c&state={state}"))
                    .header("cookie", cookie)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(callback.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(started.elapsed() < Duration::from_secs(4), "not cut short");
        emulator.shutdown().await;
    }

    /// Past `--install-rate-per-ip`, one client's install-page loads are answered 429 with
    /// Retry-After and store no state; another client and the callback are untouched.
    #[tokio::test]
    async fn install_page_loads_past_the_per_ip_rate_are_refused() {
        let settings = OAuthSettings::new("111.222", "serve-test-secret");
        let store = MemoryStore::new();
        let flow = OAuthFlow::new(
            settings,
            AnyStore::Memory(store.clone()),
            Client::new().unwrap(),
        )
        .unwrap();
        let rate = Arc::new(InstallRate::new(
            NonZeroU32::new(2).unwrap(),
            "/slack/install",
            None,
        ));
        let app = app(flow, &Limits::default(), Some(rate));
        let from = |path: &str, peer: &str| {
            let mut request = Request::get(path).body(Body::empty()).unwrap();
            request
                .extensions_mut()
                .insert(PeerAddr(peer.parse().unwrap()));
            request
        };
        for _ in 0..2 {
            let page = app
                .clone()
                .oneshot(from("/slack/install", "192.0.2.1:1000"))
                .await
                .unwrap();
            assert_eq!(page.status(), StatusCode::OK);
        }
        let refused = app
            .clone()
            .oneshot(from("/slack/install", "192.0.2.1:1001"))
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(
            refused.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
                >= 1
        );
        assert!(refused.headers().get("set-cookie").is_none());
        use slack_oauth::store::StateStore as _;
        assert_eq!(
            store
                .count_live(time::OffsetDateTime::now_utc())
                .await
                .unwrap(),
            2,
            "the refused load stored a state"
        );
        let other = app
            .clone()
            .oneshot(from("/slack/install", "192.0.2.2:1000"))
            .await
            .unwrap();
        assert_eq!(other.status(), StatusCode::OK);
        let callback = app
            .clone()
            .oneshot(from(
                "/slack/oauth_redirect?error=access_denied",
                "192.0.2.1:1002",
            ))
            .await
            .unwrap();
        assert_eq!(callback.status(), StatusCode::OK);
    }
}
