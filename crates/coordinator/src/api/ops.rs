//! The operator endpoints, unsigned: `/healthz` (liveness), `/readyz` (readiness, see
//! [`crate::health`]) and `/metrics` (Prometheus). They are served on the prover API's port,
//! and by [`app`] on a port of their own when metrics should not share the provers' port.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use sheaf_api::{ErrorCode, PATH_METRICS};
use tower_http::trace::TraceLayer;

use super::{answer, ApiError};
use crate::coordinator::Coordinator;
use crate::error::InternalError;

/// `GET`, unsigned: liveness.
pub const PATH_HEALTHZ: &str = "/healthz";
/// `GET`, unsigned: readiness.
pub const PATH_READYZ: &str = "/readyz";

/// Which operator endpoints a router serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoints {
    /// `/healthz` and `/readyz`.
    Health,
    /// `/healthz`, `/readyz` and `/metrics`.
    All,
}

/// The operator endpoints' routes.
pub fn routes(endpoints: Endpoints) -> Router<Arc<Coordinator>> {
    let router = Router::new()
        .route(PATH_HEALTHZ, get(healthz))
        .route(PATH_READYZ, get(readyz));
    match endpoints {
        Endpoints::Health => router,
        Endpoints::All => router.route(PATH_METRICS, get(metrics)),
    }
}

/// The operator endpoints alone (`/metrics`, `/healthz`, `/readyz`), for a port of their own.
pub fn app(coordinator: Arc<Coordinator>) -> Router {
    routes(Endpoints::All)
        .fallback(|method: Method, uri: Uri| async move {
            ApiError::new(
                ErrorCode::NotFound,
                format!(
                    "no endpoint {method} {} on the metrics port (the prover API has its own)",
                    uri.path()
                ),
            )
        })
        .layer(TraceLayer::new_for_http())
        .with_state(coordinator)
}

/// 200 `{"status":"ok"}` while the process answers.
async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// 200 with each check's verdict when ready; else 503 in the API's error shape (code
/// `unavailable`), its message naming what is not ready.
async fn readyz(State(c): State<Arc<Coordinator>>) -> Response {
    let readiness = c.readiness().await;
    if readiness.is_ready() {
        let chain = if readiness.chain_checked {
            "ok"
        } else {
            "not settling"
        };
        return (
            StatusCode::OK,
            Json(json!({
                "status": "ready",
                "checks": { "store": "ok", "circuits": "ok", "chain": chain },
            })),
        )
            .into_response();
    }
    for problem in &readiness.problems {
        let cause = std::error::Error::source(problem).map(|e| e.to_string());
        tracing::warn!(target: "sheaf::coordinator", problem = %problem, cause, "not ready");
    }
    let problems: Vec<String> = readiness.problems.iter().map(|p| p.to_string()).collect();
    ApiError::new(
        ErrorCode::Unavailable,
        format!("not ready: {}", problems.join("; ")),
    )
    .into_response()
}

async fn metrics(State(c): State<Arc<Coordinator>>) -> Response {
    answer(
        async {
            let counts = c
                .store()
                .counts_by_status()
                .await
                .map_err(InternalError::Store)?;
            let (verify_in_flight, verify_capacity) = c.verify_load();
            let sample = crate::metrics::Sample {
                counts,
                provers_live: c.provers_live(),
                verify_in_flight,
                verify_capacity,
            };
            Ok((
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                crate::metrics::render(&sample),
            ))
        }
        .await,
    )
}
