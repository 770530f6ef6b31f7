//! The `passhook` server: configuration, the HTTP router and its start-up.
//!
//! [`start`] runs the whole server on a listener until a cancellation token fires;
//! `main` and the integration tests both go through it.

#![recursion_limit = "256"]

pub mod allocator;
pub mod api;
pub mod cli;
pub mod config;
pub mod console;
pub mod export;
pub mod listeners;
pub mod live;
pub mod metrics;
pub mod middleware;
pub mod ops;
pub mod passkit;
pub mod problem;
pub mod security;
pub mod session_store;
pub mod sso;
pub mod state;
pub mod tenant_rate;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::limit::RequestBodyLimitLayer;

pub use crate::config::Config;
pub use crate::state::AppState;

/// Every route, with the layers that apply across them.
///
/// Bodies: every route takes up to [`middleware::BODY_LIMIT`] (5 MiB), and routes
/// that need less set a lower limit of their own (device logs, SFMC calls). The
/// Actito listeners are merged outside that default: they take up to
/// [`listeners::actito::BODY_LIMIT`] (32 MiB, for BULK pushes).
///
/// Sessions (a cookie read, a store behind it) belong to the console's routes only:
/// the API, the listeners, PassKit and the probes never pay for them.
pub fn router(state: AppState) -> Router {
    let console = Router::new()
        .merge(sso::router())
        .merge(export::router())
        .merge(live::router())
        .merge(console::router(&state))
        .layer(middleware::sessions(&state));
    let routes = Router::new()
        .merge(api::router())
        .merge(listeners::sfmc::router())
        .merge(passkit::router())
        .merge(ops::router())
        .merge(console)
        .layer(RequestBodyLimitLayer::new(middleware::BODY_LIMIT))
        .merge(listeners::actito::router());
    middleware::wrap(routes, &state).with_state(state)
}

/// Serves until `shutdown` is cancelled, then finishes in-flight requests and jobs.
/// The HTTP server and the workers run inside this one future, so dropping it (as a
/// crash test does) stops everything at once.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = router(state.clone());
    let stopping = state.stopping.clone();
    let streams = async {
        shutdown.cancelled().await;
        stopping.cancel();
    };
    let http = async {
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await;
        // Requests are answered; the workers stop after their current jobs.
        shutdown.cancel();
        served
    };
    let (served, (), ()) = tokio::join!(http, state.run_background(shutdown.clone()), streams);
    served
}

/// Cancels `token` on Ctrl-C or SIGTERM.
pub async fn shutdown_on_signals(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
    token.cancel();
}
