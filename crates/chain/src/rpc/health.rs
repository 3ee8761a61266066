//! `GET /healthz`, `/readyz` and `/metrics` on the node's JSON-RPC port, answered by a tower
//! layer in front of the RPC service (jsonrpsee's HTTP middleware), so probes and scrapes need
//! no JSON-RPC call.
//!
//! Liveness is "the process answers HTTP". Readiness is "the state is loaded (the server starts
//! only after [`Chain::open`]) and the block producer is alive": with automatic blocks, a block
//! was produced and persisted within [`READY_MAX_BLOCK_INTERVALS`] block intervals; with manual
//! blocks there is no producer to wait for.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{header, Method, StatusCode};
use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use tower::{Layer, Service};

use crate::node::Chain;

/// `GET`: liveness.
pub const PATH_HEALTHZ: &str = "/healthz";
/// `GET`: readiness.
pub const PATH_READYZ: &str = "/readyz";
/// `GET`: Prometheus metrics.
pub const PATH_METRICS: &str = "/metrics";
/// With automatic blocks, the node is not ready when no block was produced for this many block
/// intervals: one late block is scheduling, three is a stuck or failing producer (a state file
/// that cannot be written, say).
pub const READY_MAX_BLOCK_INTERVALS: u32 = 3;

/// Answers the operator paths; passes every other request to the RPC service.
#[derive(Clone)]
pub struct HealthLayer {
    chain: Arc<Chain>,
}

impl HealthLayer {
    /// Health, readiness and metrics of `chain`.
    pub fn new(chain: Arc<Chain>) -> Self {
        HealthLayer { chain }
    }
}

impl<S> Layer<S> for HealthLayer {
    type Service = HealthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HealthService {
            chain: self.chain.clone(),
            inner,
        }
    }
}

/// The service [`HealthLayer`] wraps the RPC service in.
#[derive(Clone)]
pub struct HealthService<S> {
    chain: Arc<Chain>,
    inner: S,
}

impl<S, B> Service<HttpRequest<B>> for HealthService<S>
where
    S: Service<HttpRequest<B>, Response = HttpResponse, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequest<B>) -> Self::Future {
        if request.method() == Method::GET {
            let answer = match request.uri().path() {
                PATH_HEALTHZ => Some(json(StatusCode::OK, r#"{"status":"ok"}"#.to_owned())),
                PATH_READYZ => Some(readyz(&self.chain)),
                PATH_METRICS => Some(metrics(&self.chain)),
                _ => None,
            };
            if let Some(response) = answer {
                return Box::pin(async move { Ok(response) });
            }
        }
        Box::pin(self.inner.call(request))
    }
}

/// Why the node is not ready, if it is not.
pub fn not_ready(chain: &Chain) -> Option<String> {
    if chain.config().manual_blocks {
        return None;
    }
    let limit = readiness_limit(chain);
    let since = chain.since_last_block();
    (since > limit).then(|| {
        format!(
            "block producer: no block for {} ms (limit {} ms)",
            since.as_millis(),
            limit.as_millis()
        )
    })
}

fn readyz(chain: &Chain) -> HttpResponse {
    let height = chain.height();
    match not_ready(chain) {
        None => json(
            StatusCode::OK,
            serde_json::json!({ "status": "ready", "height": height }).to_string(),
        ),
        Some(problem) => {
            tracing::warn!(target: "sheaf_chain::rpc", %problem, "not ready");
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({
                    "error": { "code": "unavailable", "message": format!("not ready: {problem}") }
                })
                .to_string(),
            )
        }
    }
}

fn metrics(chain: &Chain) -> HttpResponse {
    let head = chain.head();
    let gauges: [(&str, &str, f64); 4] = [
        ("sheaf_chain_height", "Blocks produced.", head.height as f64),
        (
            "sheaf_chain_mempool_transactions",
            "Transactions waiting for a block.",
            head.pending as f64,
        ),
        (
            "sheaf_chain_last_block_age_seconds",
            "Seconds since the node opened or last produced and persisted a block.",
            chain.since_last_block().as_secs_f64(),
        ),
        (
            "sheaf_chain_ready",
            "1 when the node is ready (see /readyz), else 0.",
            if not_ready(chain).is_none() { 1.0 } else { 0.0 },
        ),
    ];
    let mut text = String::new();
    for (name, help, value) in gauges {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
        ));
    }
    response(StatusCode::OK, "text/plain; version=0.0.4", text)
}

fn json(status: StatusCode, body: String) -> HttpResponse {
    response(status, "application/json", body)
}

fn response(status: StatusCode, content_type: &'static str, body: String) -> HttpResponse {
    let mut response = HttpResponse::new(HttpBody::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

/// The longest time without a block that is still ready (with automatic blocks).
pub fn readiness_limit(chain: &Chain) -> Duration {
    chain.block_interval() * READY_MAX_BLOCK_INTERVALS
}
