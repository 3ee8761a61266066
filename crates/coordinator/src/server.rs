//! Running the coordinator: the HTTP server, the sweeper, and a graceful shutdown.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::api::app;
use crate::coordinator::Coordinator;

/// Serve the prover API on `listener` and sweep expired leases until `shutdown` resolves; then
/// end long-polls, finish in-flight requests and return.
pub async fn serve(
    coordinator: Arc<Coordinator>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sweeper = tokio::spawn(sweep_forever(coordinator.clone()));
    let local = listener.local_addr()?;
    tracing::info!(target: "sheaf::coordinator", address = %local, "serving the prover API");
    let on_shutdown = coordinator.clone();
    let result = axum::serve(listener, app(coordinator))
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!(target: "sheaf::coordinator", "shutting down");
            on_shutdown.begin_shutdown();
        })
        .await;
    sweeper.abort();
    result
}

/// The sweeper: every `sweep_interval`, take back expired leases (a failure is logged and
/// retried on the next tick: the store may be restarting). The first sweep comes one interval
/// after the start: `Coordinator::new` has just loaded the registry, and a sweep racing the
/// first requests would only make when a registry change lands depend on scheduling.
pub async fn sweep_forever(coordinator: Arc<Coordinator>) {
    let period = coordinator.config().sweep_interval;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = coordinator.sweep().await {
            tracing::warn!(target: "sheaf::coordinator", error = %e, "sweep failed; retrying next tick");
        }
    }
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
