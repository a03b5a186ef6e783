//! axum adapter (feature `axum`): the install flow's two routes, and `IntoResponse` for its errors.
//!
//! ```
//! use axum::Router;
//! use slack_oauth::{api::Client, flow::OAuthFlow, settings::OAuthSettings, store::MemoryStore};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let flow = OAuthFlow::new(OAuthSettings::new("111.222", "secret"), MemoryStore::new(), Client::new()?)?;
//! let app: Router = Router::new()
//!     .route("/", axum::routing::get(|| async { "hello" }))
//!     .merge(slack_oauth::axum::routes(&flow))
//!     .with_state(flow);
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

mod response;
mod routes;

pub use routes::routes;
