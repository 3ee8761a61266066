//! Running the coordinator: the HTTP server (and the metrics port, if separate), the sweeper,
//! and a graceful shutdown.
//!
//! Both ports are served by [`sheaf_net::serve`] within the configured [`ServeLimits`]: a
//! connection cap, header and body read timeouts, refusals of its own in the API's error shape.
//!
//! [`ServeLimits`]: sheaf_net::ServeLimits

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::api::{app, error, ops, prover_app};
use crate::coordinator::Coordinator;

/// Serve the prover API (with `/metrics`, `/healthz`, `/readyz`) on `listener` and sweep
/// expired leases until `shutdown` resolves; then end long-polls, finish in-flight requests and
/// return.
pub async fn serve(
    coordinator: Arc<Coordinator>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_metrics(coordinator, listener, None, shutdown).await
}

/// As [`serve`], but with `metrics` given, `/metrics` (with `/healthz` and `/readyz`) is served
/// there instead of on the prover API's port, so scrapes need not share the provers' port.
pub async fn serve_with_metrics(
    coordinator: Arc<Coordinator>,
    listener: TcpListener,
    metrics: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Before the first request, leases that ran out while no coordinator answered get their
    // grace: the first reading of the lease clock grants it (if the store does not answer now,
    // the first heartbeat or sweep that reaches it will).
    if let Err(e) = coordinator.lease_clock_ms().await {
        tracing::warn!(target: "sheaf::coordinator", error = %e, "the store does not answer; leases get their grace once it does");
    }
    let sweeper = tokio::spawn(sweep_forever(coordinator.clone()));
    let collector = tokio::spawn(collect_forever(coordinator.clone()));
    let console = tokio::spawn(crate::console::publish_forever(coordinator.clone()));
    let local = listener.local_addr()?;
    let limits = coordinator.config().serve.clone();
    tracing::info!(
        target: "sheaf::coordinator",
        address = %local,
        max_connections = limits.max_connections,
        header_timeout_ms = limits.header_timeout.as_millis() as u64,
        body_timeout_ms = limits.body_timeout.as_millis() as u64,
        "serving the prover API"
    );
    let (stopping, stopped) = tokio::sync::watch::channel(false);
    let metrics_server = match metrics {
        Some(metrics) => {
            let address = metrics.local_addr()?;
            tracing::info!(target: "sheaf::coordinator", %address, "serving /metrics, /healthz, /readyz");
            let mut stopped = stopped.clone();
            let router = ops::app(coordinator.clone());
            let server = sheaf_net::serve(
                metrics,
                limits.clone(),
                error::refusal_shape(),
                move || router.clone(),
                async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                },
            );
            Some(tokio::spawn(server))
        }
        None => None,
    };
    let router = if metrics_server.is_some() {
        prover_app(coordinator.clone())
    } else {
        app(coordinator.clone())
    };
    let on_shutdown = coordinator.clone();
    let result = sheaf_net::serve(
        listener,
        limits,
        error::refusal_shape(),
        move || router.clone(),
        async move {
            shutdown.await;
            tracing::info!(target: "sheaf::coordinator", "shutting down");
            on_shutdown.begin_shutdown();
        },
    )
    .await;
    stopping.send_replace(true);
    drop(stopped);
    if let Some(server) = metrics_server {
        let served = server
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if let Err(e) = served {
            tracing::warn!(target: "sheaf::coordinator", error = %e, "the metrics server failed");
        }
    }
    sweeper.abort();
    collector.abort();
    console.abort();
    result
}
/// The sweeper: every `sweep_interval`, take back expired leases (a failure is logged and
/// retried on the next tick: the store may be restarting; leases get a grace for the outage
/// first, [`Coordinator::sweep`]). The first sweep comes one interval
/// after the start: `Coordinator::new` has just loaded the registry, and a sweep racing the
/// first requests would only make when a registry change lands depend on scheduling.
pub async fn sweep_forever(coordinator: Arc<Coordinator>) {
    let period = coordinator.config().sweep_interval;
    every(period, "sweep", || coordinator.sweep()).await
}

/// The proof collector: every `proof_gc_interval`, collect the proofs of sequences settled
/// longer ago than the claims window and sweep the proof store (a failure is logged and
/// retried on the next tick). The first pass comes one interval after the start.
pub async fn collect_forever(coordinator: Arc<Coordinator>) {
    let period = coordinator.config().proof_gc_interval;
    every(period, "collecting proofs", || coordinator.collect_proofs()).await
}

/// Runs `task` every `period`, the first time one period from now; a failure is logged and the
/// task tried again on the next tick.
async fn every<T, E, F>(period: std::time::Duration, name: &str, mut task: impl FnMut() -> F)
where
    E: std::fmt::Display,
    F: Future<Output = Result<T, E>>,
{
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = task().await {
            tracing::warn!(target: "sheaf::coordinator", error = %e, task = name, "failed; retrying next tick");
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
