//! `slack-oauth serve`: the install flow over HTTP, with `/healthz`, request tracing and
//! graceful shutdown.

use std::future::Future;
use std::process::ExitCode;

use anyhow::Context as _;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::Router;
use clap::Args;
use slack_oauth::flow::OAuthFlow;
use slack_oauth::store::{AnyStore, InstallationQuery, InstallationStore as _};
use tokio::net::TcpListener;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::config::{self, SettingsArgs, StoreArgs};

/// Flags of `slack-oauth serve`; each overrides its environment variable.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Where to listen [env: SLACK_OAUTH_ADDR; default 127.0.0.1:3000]
    #[arg(long)]
    addr: Option<String>,
    /// Slack's Web API base URL.
    #[arg(
        long,
        help = "Slack's Web API base URL [env: SLACK_API_URL; default https://slack.com/api/]"
    )]
    api_url: Option<String>,
    /// Hard deadline of one Slack API call (the code exchange, token refreshes), in seconds,
    /// retries and Retry-After waits included
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = config::parse_slack_timeout)]
    slack_timeout: std::time::Duration,
    #[command(flatten)]
    settings: SettingsArgs,
    #[command(flatten)]
    store: StoreArgs,
}

/// Runs the server until SIGINT or SIGTERM.
pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let settings = args.settings.settings()?;
    let (addr, source) = match (&args.addr, config::env_nonempty("SLACK_OAUTH_ADDR")) {
        (Some(addr), _) => (addr.clone(), "--addr"),
        (None, Some(addr)) => (addr, "SLACK_OAUTH_ADDR"),
        (None, None) => (config::DEFAULT_ADDR.to_owned(), "the default address"),
    };
    let addr = config::parse_addr(&addr, source)?;
    let client = config::api_client(
        args.api_url.as_deref(),
        args.slack_timeout,
        &args.settings.insecure,
    )?;
    let store = config::connect_store(&args.store.url(), settings.client_id.as_str()).await?;
    let backend = store.backend();
    let flow = OAuthFlow::new(settings, store, client)?;
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
    serve(listener, flow, crate::shutdown::signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Serves `flow` on `listener` until `shutdown` resolves, then finishes in-flight requests.
pub(crate) async fn serve(
    listener: TcpListener,
    flow: OAuthFlow<AnyStore>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = flow.store().clone();
    axum::serve(listener, app(flow))
        .with_graceful_shutdown(shutdown)
        .await
        .context("the HTTP server failed")?;
    // Requests are done: commit what the store still has queued and leave a checkpointed file.
    store.close().await.context("cannot close the store")?;
    tracing::info!("slack-oauth stopped");
    Ok(())
}

/// The routes of the flow plus `/healthz`, with request tracing.
pub(crate) fn app(flow: OAuthFlow<AnyStore>) -> Router {
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
    slack_oauth::axum::routes(&flow)
        .route("/healthz", get(healthz))
        .layer(trace)
        .with_state(flow)
}

/// `200 ok` when the store answers a query, `503` otherwise.
async fn healthz(State(flow): State<OAuthFlow<AnyStore>>) -> (StatusCode, &'static str) {
    match flow
        .store()
        .find_bot(&InstallationQuery::team("T0HEALTHZ"))
        .await
    {
        Ok(_) => (StatusCode::OK, "ok"),
        Err(error) => {
            tracing::error!(error = %error, "health check: the store is unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n")
        }
    }
}
