//! `GET /healthz`, `/readyz` and `/metrics` on the node's JSON-RPC port, answered by a tower
//! layer in front of the RPC service (jsonrpsee's HTTP middleware), so probes and scrapes need
//! no JSON-RPC call.
//!
//! In front of both, the [`Guard`]: a method other than `POST` (but for those `GET`s) is
//! refused 405 before any body is read, and a body is read (within its limit, the server's body
//! budget and body timeout) before the RPC service sees it, so every refusal of a request is a
//! JSON-RPC error object with its HTTP status (see [`crate::rpc`]).
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

use bytes::Bytes;

use http::{header, Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use sheaf_net::{BodyBudget, BodyError, Refusal, Shape};
use tower::{Layer, Service};

use super::codes;
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

/// Refuses what is not a JSON-RPC `POST` and reads the body for the RPC service, answering
/// every refusal as a JSON-RPC error object with its HTTP status.
#[derive(Clone)]
pub struct Guard {
    budget: BodyBudget,
    limit: usize,
}

impl Guard {
    /// Bodies up to `limit` bytes, read within `budget`.
    pub fn new(budget: BodyBudget, limit: usize) -> Self {
        Guard { budget, limit }
    }
}

impl<S> Layer<S> for Guard {
    type Service = GuardService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GuardService {
            guard: self.clone(),
            inner,
        }
    }
}

/// The service [`Guard`] wraps the node's HTTP service in.
#[derive(Clone)]
pub struct GuardService<S> {
    guard: Guard,
    inner: S,
}

impl<S, B> Service<HttpRequest<B>> for GuardService<S>
where
    S: Service<HttpRequest<Full<Bytes>>, Response = HttpResponse, Error = BoxError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequest<B>) -> Self::Future {
        // The ready clone serves this request; the fresh one waits for the next poll_ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let method = request.method().clone();
        if method == Method::GET && is_operator_path(request.uri().path()) {
            let request = request.map(|_| Full::new(Bytes::new()));
            return Box::pin(async move { inner.call(request).await });
        }
        if method != Method::POST {
            let mut refused = rpc_error(
                StatusCode::METHOD_NOT_ALLOWED,
                codes::INVALID_REQUEST,
                &format!("HTTP {method} is not served; JSON-RPC takes POST"),
            );
            refused
                .headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
            return Box::pin(async move { Ok(refused) });
        }
        let Guard { budget, limit } = self.guard.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let declared = parts
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let body = match budget.read(body, declared, limit).await {
                Ok(body) => body,
                Err(e) => return Ok(body_refusal(&e)),
            };
            let request = HttpRequest::from_parts(parts, Full::new(body.bytes().clone()));
            let response = inner.call(request).await?;
            // The body's room in the budget is held until the call is answered.
            drop(body);
            Ok(as_rpc_error(response).await)
        })
    }
}

fn is_operator_path(path: &str) -> bool {
    matches!(path, PATH_HEALTHZ | PATH_READYZ | PATH_METRICS)
}

/// A body that could not be read, as a JSON-RPC error with its HTTP status.
fn body_refusal(e: &BodyError) -> HttpResponse {
    let (status, code) = match e {
        BodyError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, codes::REQUEST_TOO_LARGE),
        BodyError::TimedOut(_) => (StatusCode::REQUEST_TIMEOUT, codes::REQUEST_TIMEOUT),
        BodyError::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, codes::OVERLOADED),
        BodyError::Read(_) => (StatusCode::BAD_REQUEST, codes::PARSE_ERROR),
    };
    rpc_error(status, code, &e.to_string())
}

/// Most bytes of jsonrpsee's plain-text refusal quoted in the JSON-RPC error that replaces it.
const PLAIN_REFUSAL_BYTES: usize = 1024;

/// jsonrpsee answers a few refusals (a body that is not JSON: 415) in plain text: rewritten as
/// a JSON-RPC error, the status kept.
async fn as_rpc_error(response: HttpResponse) -> HttpResponse {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let text = Limited::new(response.into_body(), PLAIN_REFUSAL_BYTES)
        .collect()
        .await
        .map(|body| String::from_utf8_lossy(&body.to_bytes()).trim().to_owned())
        .unwrap_or_default();
    let code = if status.is_server_error() {
        codes::INTERNAL_ERROR
    } else {
        codes::INVALID_REQUEST
    };
    rpc_error(status, code, &text)
}

/// A JSON-RPC error object (id `null`) answered with `status`.
pub fn rpc_error(status: StatusCode, code: i32, message: &str) -> HttpResponse {
    json(status, error_object(code, message))
}

fn error_object(code: i32, message: &str) -> String {
    serde_json::json!({
        "jsonrpc": "2.0",
        "error": { "code": code, "message": message },
        "id": null,
    })
    .to_string()
}

/// The serving loop's own refusals (connection cap, target and header size, a head that does
/// not parse) as JSON-RPC errors.
pub fn refusal_shape() -> Shape {
    std::sync::Arc::new(|refusal: Refusal| {
        let code = match refusal {
            Refusal::Overloaded => codes::OVERLOADED,
            Refusal::UriTooLong | Refusal::HeadersTooLarge | Refusal::Malformed => {
                codes::INVALID_REQUEST
            }
        };
        error_object(code, &refusal.message())
    })
}
