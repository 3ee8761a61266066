//! The prover API over HTTP: routes, request authentication, and the one error shape.
//!
//! Every `POST` goes through [`Signed`]. Before any of the body is read, the signature headers
//! are parsed, the timestamp must be within [`sheaf_api::MAX_CLOCK_SKEW_MS`] of the
//! coordinator's clock ([`sheaf_api::check_skew`]; the refusal tells the coordinator's clock)
//! and the key must be a registered prover: a stranger's upload is refused unread. Then the
//! body is read up to the size limit (413 beyond) within the server's body budget
//! ([`BodyBudget`]: 503 `overloaded` when bodies in flight fill it) and body timeout (408), the
//! signature is checked over method, path, body hash, timestamp and nonce, and the nonce must
//! be new. Only then does the handler run. Unsigned bodies (rollup transactions) are read
//! within the same budget ([`Unsigned`]).
//!
//! A failure the framework answers itself (a path that does not decode, an empty 405) is
//! rewritten into the one error shape by [`error::json_errors`].
//!
//! Handlers call the service ([`Coordinator`]) and answer its typed errors through [`error`],
//! the one place they become the API's codes.
//!
//! Unsigned and read-only, `GET /v1/claims/{worker_pk}` serves a prover's claimable jobs
//! ([`crate::claims`]) and `GET /v1/circuits` the circuits their claims are proved with (what
//! the hello answers, for a claimant that is no registered prover: a client whose local proofs
//! earned rewards).
//!
//! The live console ([`crate::console`]) is served under `/ui`, unsigned and read-only.
//!
//! Beside the prover API, unsigned, the operator endpoints of [`ops`]: `/healthz`, `/readyz`
//! and `/metrics`, served on the API's port or (metrics too) on a port of their own.

pub mod error;
pub mod ops;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Extension, FromRequest, Path, Request, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use sheaf_api::{
    check_skew, ErrorCode, HeartbeatRequest, HeartbeatResponse, LeaseRequest, SignedHeaders,
    PATH_HELLO, PATH_LEASE, PATH_STATUS,
};
use sheaf_net::{BodyBudget, BudgetedBytes, BODY_BUDGET_WAIT};
use sheaf_store::Prover;
use sheaf_types::clock::now_ms;
use sheaf_types::{InvalidJobId, JobId};
use tower_http::trace::TraceLayer;

pub use self::error::{ApiError, Result};
use crate::claims::ClaimsQuery;
use crate::coordinator::Coordinator;
use crate::metrics::{REQUESTS_REJECTED, SUBMISSIONS_REJECTED};

/// The coordinator's HTTP app: the prover API with `/healthz`, `/readyz` and `/metrics`.
/// Tests drive it over a loopback socket; `serve` runs it.
pub fn app(coordinator: Arc<Coordinator>) -> Router {
    with_budget(router(ops::Endpoints::All), &coordinator).with_state(coordinator)
}

/// Filled by [`Signed`] once a request authenticates: whose request it is, so that its refusal
/// can be charged to that key ([`charge_refusals`]).
#[derive(Clone, Default)]
struct SignedBy(Arc<std::sync::OnceLock<[u8; 32]>>);

/// Charge the refusal of an authenticated request (a 4xx other than 429: a heartbeat of a job
/// not held, an invalid proof, a body that does not parse) to the key that signed it, as
/// [`Coordinator::charge_refusal`] says. Honest provers are rarely refused; a client that sends
/// what is refused is slowed down to a fraction of its rate.
async fn charge_refusals(
    State(coordinator): State<Arc<Coordinator>>,
    mut request: Request,
    next: axum::middleware::Next,
) -> Response {
    let signed_by = SignedBy::default();
    request.extensions_mut().insert(signed_by.clone());
    let response = next.run(request).await;
    let status = response.status();
    if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
        if let Some(key) = signed_by.0.get() {
            coordinator.charge_refusal(key);
        }
    }
    response
}

/// The prover API with `/healthz` and `/readyz` but without `/metrics`, for a coordinator that
/// serves its metrics on a port of their own ([`ops::app`]).
pub fn prover_app(coordinator: Arc<Coordinator>) -> Router {
    with_budget(router(ops::Endpoints::Health), &coordinator).with_state(coordinator)
}

/// The router with one [`BodyBudget`] of the configured size for all its requests.
fn with_budget(
    router: Router<Arc<Coordinator>>,
    coordinator: &Arc<Coordinator>,
) -> Router<Arc<Coordinator>> {
    let config = coordinator.config();
    let total = config.body_budget_bytes.max(config.max_body_bytes);
    router
        .layer(axum::middleware::from_fn_with_state(
            coordinator.clone(),
            charge_refusals,
        ))
        .layer(Extension(BodyBudget::new(total, BODY_BUDGET_WAIT)))
}

fn router(endpoints: ops::Endpoints) -> Router<Arc<Coordinator>> {
    Router::new()
        .merge(crate::console::routes())
        .route(PATH_HELLO, post(hello))
        .route(PATH_LEASE, post(lease))
        .route("/v1/jobs/{job}/heartbeat", post(heartbeat))
        .route("/v1/jobs/{job}/proof", post(submit))
        .route(PATH_STATUS, get(status))
        .route("/v1/rollup/transactions", post(rollup_submit))
        .route("/v1/rollup/transactions/local", post(rollup_submit_local))
        .route("/v1/rollup/status", get(rollup_status))
        .route("/v1/rollup/blocks/{number}", get(rollup_block))
        .route("/v1/rollup/genesis", get(rollup_genesis))
        .route(PATH_CLAIMS, get(claims))
        .route(PATH_CIRCUITS, get(circuits))
        .merge(ops::routes(endpoints))
        .fallback(|method: Method, uri: Uri| async move {
            ApiError::new(
                ErrorCode::NotFound,
                format!("no endpoint {method} {}", uri.path()),
            )
        })
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                format!("{} does not take {method}", uri.path()),
            )
        })
        .layer(axum::middleware::map_response(error::json_errors))
        .layer(TraceLayer::new_for_http())
}

/// An authenticated request: the registered prover that signed it, and its body.
pub struct Signed {
    /// The prover.
    pub prover: Prover,
    /// The raw body, holding its room in the body budget.
    pub body: BudgetedBytes,
    /// The query string, if any.
    pub query: Option<String>,
}

impl Signed {
    fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("request body: {e}")))
    }
}

impl FromRequest<Arc<Coordinator>> for Signed {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &Arc<Coordinator>) -> Result<Self> {
        let result = authenticate(request, state).await;
        match &result {
            Ok(signed) => state.note_seen(&signed.prover.id),
            Err(e) => count_refusal(e),
        }
        result
    }
}

async fn authenticate(request: Request, coordinator: &Coordinator) -> Result<Signed> {
    let (parts, body) = request.into_parts();
    // Everything that needs no body first: a stranger's upload is refused unread.
    let signed = SignedHeaders::parse(|name| parts.headers.get(name)?.to_str().ok())?;
    coordinator
        .check_request_rate_early(signed.key.as_bytes())
        .await?;
    let now = now_ms();
    check_skew(signed.timestamp_ms, now)?;
    let prover = coordinator.prover_by_key(signed.key.as_bytes()).await?;
    let body = read_body(&parts, body, coordinator).await?;
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    signed.verify(parts.method.as_str(), path, &body)?;
    coordinator.check_request_rate(signed.key.as_bytes())?;
    coordinator
        .check_nonce(signed.key.as_bytes(), &signed.nonce, now)
        .await?;
    if let Some(signed_by) = parts.extensions.get::<SignedBy>() {
        let _ = signed_by.0.set(*signed.key.as_bytes());
    }
    Ok(Signed {
        prover,
        body,
        query: parts.uri.query().map(str::to_owned),
    })
}

/// Read a request's body up to the size limit, within the server's body budget.
async fn read_body(
    parts: &axum::http::request::Parts,
    body: axum::body::Body,
    coordinator: &Coordinator,
) -> Result<BudgetedBytes> {
    let limit = coordinator.config().max_body_bytes;
    let budget = parts
        .extensions
        .get::<BodyBudget>()
        .cloned()
        // Only a router built without `app` lacks one: give it a budget of one body.
        .unwrap_or_else(|| BodyBudget::new(limit, BODY_BUDGET_WAIT));
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    Ok(budget.read(body, declared, limit).await?)
}

/// An unsigned request's body, read within the size limit and the body budget.
pub struct Unsigned(pub BudgetedBytes);

impl FromRequest<Arc<Coordinator>> for Unsigned {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &Arc<Coordinator>) -> Result<Self> {
        let (parts, body) = request.into_parts();
        let read = read_body(&parts, body, state).await;
        if let Err(e) = &read {
            count_refusal(e);
        }
        read.map(Unsigned)
    }
}

/// Counts a refused request by its reason and logs it.
fn count_refusal(e: &ApiError) {
    metrics::counter!(REQUESTS_REJECTED, "reason" => e.reason()).increment(1);
    tracing::info!(target: "sheaf::coordinator", code = %e.code, message = %e.message, "request refused");
}

/// The response to a handler's result: the success, or the refusal (counted) in the one error
/// shape.
fn answer<T: IntoResponse>(result: Result<T>) -> Response {
    match result {
        Ok(ok) => ok.into_response(),
        Err(e) => {
            count_refusal(&e);
            e.into_response()
        }
    }
}

fn job_id(text: &str) -> Result<JobId> {
    text.parse()
        .map_err(|e: InvalidJobId| ApiError::new(ErrorCode::BadRequest, e.to_string()))
}

async fn hello(State(c): State<Arc<Coordinator>>, signed: Signed) -> Response {
    answer((|| Ok(Json(c.hello(&signed.prover, &signed.json()?)?)))())
}

async fn lease(State(c): State<Arc<Coordinator>>, signed: Signed) -> Response {
    let result = async {
        let request: LeaseRequest = signed.json()?;
        Ok(
            c.lease(&signed.prover, Duration::from_millis(request.wait_ms))
                .await?,
        )
    }
    .await;
    match result {
        Ok(Some(assignment)) => Json(assignment).into_response(),
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => answer::<()>(Err(e)),
    }
}

async fn heartbeat(
    State(c): State<Arc<Coordinator>>,
    Path(job): Path<String>,
    signed: Signed,
) -> Response {
    answer(
        async {
            let request: HeartbeatRequest = signed.json()?;
            let expires_ms = c
                .heartbeat(&signed.prover, job_id(&job)?, request.token)
                .await?;
            Ok(Json(HeartbeatResponse { expires_ms }))
        }
        .await,
    )
}

/// `token` (required) and `prove_ms` (optional) from the submission's query string.
fn submit_query(query: Option<&str>) -> Result<(i64, Option<i64>)> {
    let mut token = None;
    let mut prove_ms = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let number = || {
            value.parse::<i64>().map_err(|_| {
                ApiError::new(
                    ErrorCode::BadRequest,
                    format!("query {key}={value:?} is not a number"),
                )
            })
        };
        match key {
            "token" => token = Some(number()?),
            "prove_ms" => {
                let ms = number()?;
                if ms < 0 {
                    return Err(ApiError::new(
                        ErrorCode::BadRequest,
                        format!("query prove_ms={ms} is negative"),
                    ));
                }
                prove_ms = Some(ms);
            }
            _ => {}
        }
    }
    let token = token
        .ok_or_else(|| ApiError::new(ErrorCode::BadRequest, "query parameter token is required"))?;
    Ok((token, prove_ms))
}

async fn submit(
    State(c): State<Arc<Coordinator>>,
    Path(job): Path<String>,
    signed: Signed,
) -> Response {
    let result = async {
        let (token, prove_ms) = submit_query(signed.query.as_deref())?;
        let job = job_id(&job)?;
        let accepted = c
            .submit(&signed.prover, job, token, prove_ms, signed.body.to_vec())
            .await?;
        Ok::<_, ApiError>(Json(accepted))
    }
    .await;
    if let Err(e) = &result {
        count_rejected_submission(&c, &signed.prover.id, e.code).await;
    }
    answer(result)
}

/// Counts a refused submission against its prover when the prover caused it (a proof that
/// does not verify, a stale lease, …), in the metrics and in the store (`sheaf provers list`);
/// an overloaded or failing coordinator (a retryable code) is not the prover's fault.
async fn count_rejected_submission(c: &Coordinator, prover: &str, code: ErrorCode) {
    if code.is_retryable() {
        return;
    }
    metrics::counter!(SUBMISSIONS_REJECTED, "prover" => prover.to_owned()).increment(1);
    if let Err(e) = c
        .store()
        .record_rejection(prover, code.as_str(), now_ms())
        .await
    {
        // The refusal itself is answered either way; only the operator's tally misses it.
        tracing::warn!(target: "sheaf::coordinator", prover, error = %e, "could not record a rejected submission");
    }
}

async fn status(State(c): State<Arc<Coordinator>>) -> Response {
    answer(c.status().await.map(Json).map_err(ApiError::from))
}

/// Where a prover's claimable jobs are served: `GET`, unsigned, read-only.
pub const PATH_CLAIMS: &str = "/v1/claims/{worker_pk}";

/// `GET /v1/claims/{worker_pk}?after={job id}&limit={n}`: a page of the jobs `worker_pk` proved
/// in sequences finalized on chain, each with what its claim proves ([`crate::claims`]).
async fn claims(
    State(c): State<Arc<Coordinator>>,
    Path(worker_pk): Path<String>,
    uri: Uri,
) -> Response {
    let page = async {
        let query = ClaimsQuery::parse(&worker_pk, uri.query())?;
        Ok(Json(c.claimable(query).await?))
    };
    answer(page.await)
}

/// Where the network's circuit spec is served: `GET`, unsigned, read-only.
pub const PATH_CIRCUITS: &str = "/v1/circuits";

/// `GET /v1/circuits`: the circuit spec every proof of this network is made with.
async fn circuits(State(c): State<Arc<Coordinator>>) -> Response {
    Json(c.spec().clone()).into_response()
}

/// The rollup node, or `not_found` on a coordinator without one.
fn rollup_node(c: &Coordinator) -> Result<&Arc<crate::rollup::RollupNode>> {
    c.rollup().ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            "this coordinator runs no rollup (start it with a rollup genesis)",
        )
    })
}

/// `POST /v1/rollup/transactions`: a signed rollup transaction (JSON), unauthenticated at the
/// HTTP level (its account's one-time signature authorizes it). Answers its id.
async fn rollup_submit(State(c): State<Arc<Coordinator>>, Unsigned(body): Unsigned) -> Response {
    let submitted = async {
        let id = rollup_node(&c)?.submit(&body).await?;
        Ok(Json(serde_json::json!({ "id": id })))
    };
    answer(submitted.await)
}

/// `POST /v1/rollup/transactions/local`: a local transaction ([`LocalTransaction`], JSON): the
/// transaction with the proof of its signed half that its client made. The proof is checked as
/// any proof (size, decoding, circuit, the header the transaction gives for the declared worker
/// key, verification) before the mempool sees the transaction; no prover is asked for that half.
///
/// [`LocalTransaction`]: crate::rollup::LocalTransaction
async fn rollup_submit_local(
    State(c): State<Arc<Coordinator>>,
    Unsigned(body): Unsigned,
) -> Response {
    use crate::rollup::{LocalTransaction, RollupNode};
    let submitted = async {
        let node = rollup_node(&c)?;
        let local = RollupNode::read_local(&body)?;
        let inputs = LocalTransaction::inputs(&local.transaction)?;
        let header = c
            .verify_client_leaf(
                &LocalTransaction::circuit(),
                &inputs,
                local.proof.clone(),
                local.prover,
            )
            .await?;
        let id = node.submit_local(local, header.stats.work_units).await?;
        Ok(Json(serde_json::json!({ "id": id })))
    };
    answer(submitted.await)
}

/// `GET /v1/rollup/blocks/{number}`: a published block's header, transactions, created notes
/// and spent nullifiers, and whether it is proved.
async fn rollup_block(State(c): State<Arc<Coordinator>>, Path(number): Path<String>) -> Response {
    let block = async {
        let node = rollup_node(&c)?;
        let number: i64 = number.parse().map_err(|_| {
            ApiError::new(
                ErrorCode::BadRequest,
                format!("{number:?} is not a block number"),
            )
        })?;
        match node.block(number).await? {
            Some(block) => Ok(Json(block)),
            None => Err(ApiError::new(
                ErrorCode::NotFound,
                format!("block {number} is not published"),
            )),
        }
    };
    answer(block.await)
}

/// `GET /v1/rollup/genesis`: the genesis document the node started from (its timestamp and
/// funded accounts).
async fn rollup_genesis(State(c): State<Arc<Coordinator>>) -> Response {
    answer(rollup_node(&c).map(|node| Json(node.genesis())))
}

/// `GET /v1/rollup/status`: the published, proven and settled tips and the transactions
/// waiting.
async fn rollup_status(State(c): State<Arc<Coordinator>>) -> Response {
    let status = async {
        let node = rollup_node(&c)?;
        Ok(Json(node.status().await?))
    };
    answer(status.await)
}
