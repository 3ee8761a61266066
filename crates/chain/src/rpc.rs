//! The node's JSON-RPC 2.0 server over HTTP: `POST /` with
//! `{"jsonrpc":"2.0","method":…,"params":[…],"id":…}`. Parameters are positional (an array).
//!
//! | method | params | result |
//! |---|---|---|
//! | `chain_chainId` | | chain id |
//! | `chain_height` | | blocks produced |
//! | `chain_head` | | [`Head`] |
//! | `chain_sendTransaction` | `[SignedTx]` | tx hash (hex) |
//! | `chain_getReceipt` | `[hash]` | [`Receipt`] or `null` while pending or unknown |
//! | `chain_getAccount` | `[address]` | [`AccountView`] |
//! | `chain_produceBlock` | | [`Block`] (only with manual blocks) |
//! | `settlement_getSequence` | `[sequence]` | [`Sequence`] or `null` |
//! | `settlement_status` | | [`SettlementStatus`] |
//! | `settlement_finalized` | `[sequence]` | [`FinalizedSequence`] or `null` |
//! | `membership_get` | `[id_commitment]` | [`MembershipView`] or `null` |
//! | `membership_root` | | root digest |
//! | `membership_proof` | `[index]` | [`MerkleProof`] |
//! | `membership_list` | | [`MembershipList`]: every membership, at the head |
//!
//! Every failure is a JSON-RPC error object with one of [`codes`]; HTTP answers 200 for all of
//! them (413 only for a body above the limit). Batches are not supported. Nothing a client
//! sends reaches a panic: parameters are parsed into types, and index ranges are checked before
//! the tree is touched.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sheaf_circuits::Digest;
use tokio::net::TcpListener;

#[cfg(doc)]
use crate::membership::MerkleProof;
#[cfg(doc)]
use crate::node::{
    AccountView, Block, Head, MembershipList, MembershipView, Receipt, SettlementStatus,
};
#[cfg(doc)]
use crate::settlement::{FinalizedSequence, Sequence};

use crate::node::{Chain, ChainError};
use crate::settlement::SequenceId;
use crate::tx::{hex_array, SignedTx, TxHash};

/// JSON-RPC error codes: the standard ones, then the node's (−32000 and below).
pub mod codes {
    /// The body is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// The body is not a JSON-RPC 2.0 request.
    pub const INVALID_REQUEST: i64 = -32600;
    /// No such method, or not enabled on this node.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// The parameters do not parse or are out of range.
    pub const INVALID_PARAMS: i64 = -32602;
    /// The node failed (e.g. could not write its state).
    pub const INTERNAL_ERROR: i64 = -32603;
    /// The transaction's signature is not its sender's on this chain.
    pub const BAD_SIGNATURE: i64 = -32000;
    /// The nonce is used or pending: a replay.
    pub const NONCE_TOO_LOW: i64 = -32001;
    /// The nonce skips ahead of the sender's next one.
    pub const NONCE_TOO_HIGH: i64 = -32002;
    /// The mempool is full; retry after the next block.
    pub const MEMPOOL_FULL: i64 = -32003;
}

/// A JSON-RPC error object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("JSON-RPC error {code}: {message}")]
pub struct RpcError {
    /// One of [`codes`].
    pub code: i64,
    /// What went wrong, for people.
    pub message: String,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
        }
    }
}

impl From<ChainError> for RpcError {
    fn from(e: ChainError) -> Self {
        let code = match &e {
            ChainError::BadSignature => codes::BAD_SIGNATURE,
            ChainError::NonceTooLow { .. } => codes::NONCE_TOO_LOW,
            ChainError::NonceTooHigh { .. } => codes::NONCE_TOO_HIGH,
            ChainError::MempoolFull(_) => codes::MEMPOOL_FULL,
            ChainError::InvalidConfig(_)
            | ChainError::StateIo { .. }
            | ChainError::CorruptState { .. } => {
                tracing::error!(target: "sheaf_chain::rpc", error = %e, "node failure");
                codes::INTERNAL_ERROR
            }
        };
        RpcError::new(code, e.to_string())
    }
}

/// The node's HTTP app: JSON-RPC on `POST /`, bodies up to the configured limit.
pub fn app(chain: Arc<Chain>) -> Router {
    let limit = chain.config().max_body_bytes;
    Router::new()
        .route("/", post(handle))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(chain)
}

/// Serve the JSON-RPC app on `listener` and, unless blocks are manual, produce a block every
/// block interval, until `shutdown` resolves; then finish in-flight requests and return.
pub async fn serve(
    chain: Arc<Chain>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let ticker =
        (!chain.config().manual_blocks).then(|| tokio::spawn(chain.clone().produce_blocks()));
    tracing::info!(
        target: "sheaf_chain::rpc",
        address = %listener.local_addr()?, manual_blocks = ticker.is_none(), "serving JSON-RPC"
    );
    let result = axum::serve(listener, app(chain))
        .with_graceful_shutdown(shutdown)
        .await;
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    result
}

#[derive(Deserialize)]
struct Envelope {
    jsonrpc: Option<String>,
    method: Option<String>,
    #[serde(default)]
    id: Value,
}

#[derive(Deserialize)]
struct Params<P> {
    params: P,
}

#[derive(Serialize)]
struct Success<'a, T> {
    jsonrpc: &'static str,
    result: T,
    id: &'a Value,
}

#[derive(Serialize)]
struct Failure<'a> {
    jsonrpc: &'static str,
    error: RpcError,
    id: &'a Value,
}

/// A hex address as a parameter.
#[derive(Deserialize)]
struct HexAddress(#[serde(with = "hex_array")] [u8; 32]);

async fn handle(State(chain): State<Arc<Chain>>, body: Bytes) -> Response {
    let envelope: Envelope = match serde_json::from_slice(&body) {
        Ok(envelope) => envelope,
        Err(e) if e.is_syntax() || e.is_eof() => {
            return failure(
                &Value::Null,
                RpcError::new(codes::PARSE_ERROR, e.to_string()),
            )
        }
        Err(e) => {
            return failure(
                &Value::Null,
                RpcError::new(codes::INVALID_REQUEST, e.to_string()),
            )
        }
    };
    let id = &envelope.id;
    let method = match (&envelope.jsonrpc, &envelope.method) {
        (Some(version), Some(method)) if version == "2.0" => method.as_str(),
        _ => {
            return failure(
                id,
                RpcError::new(
                    codes::INVALID_REQUEST,
                    "expected {\"jsonrpc\":\"2.0\",\"method\":…}",
                ),
            )
        }
    };
    match dispatch(&chain, method, &body, id).await {
        Ok(json) => respond(json),
        Err(error) => failure(id, error),
    }
}

/// The response to a successful call, serialized straight from `value` (not through
/// [`Value`], which cannot hold amounts above `u64::MAX`).
fn success<T: Serialize>(id: &Value, value: T) -> Result<Vec<u8>, RpcError> {
    serde_json::to_vec(&Success {
        jsonrpc: "2.0",
        result: value,
        id,
    })
    .map_err(|e| RpcError::new(codes::INTERNAL_ERROR, e.to_string()))
}

fn params<P: DeserializeOwned>(body: &[u8]) -> Result<P, RpcError> {
    serde_json::from_slice::<Params<P>>(body)
        .map(|p| p.params)
        .map_err(|e| RpcError::new(codes::INVALID_PARAMS, format!("params: {e}")))
}

async fn dispatch(
    chain: &Arc<Chain>,
    method: &str,
    body: &[u8],
    id: &Value,
) -> Result<Vec<u8>, RpcError> {
    match method {
        "chain_chainId" => success(id, chain.chain_id()),
        "chain_height" => success(id, chain.height()),
        "chain_head" => success(id, chain.head()),
        "chain_sendTransaction" => {
            let (tx,): (SignedTx,) = params(body)?;
            success(id, chain.submit(tx)?)
        }
        "chain_getReceipt" => {
            let (hash,): (TxHash,) = params(body)?;
            success(id, chain.receipt(&hash))
        }
        "chain_getAccount" => {
            let (HexAddress(address),) = params(body)?;
            success(id, chain.account(&address))
        }
        "chain_produceBlock" if chain.config().manual_blocks => {
            let chain = chain.clone();
            let block = tokio::task::spawn_blocking(move || chain.produce_block())
                .await
                .map_err(|e| RpcError::new(codes::INTERNAL_ERROR, e.to_string()))??;
            success(id, block)
        }
        "settlement_getSequence" => {
            let (sequence,): (SequenceId,) = params(body)?;
            success(id, chain.sequence(sequence))
        }
        "settlement_status" => success(id, chain.settlement_status()),
        "settlement_finalized" => {
            let (sequence,): (SequenceId,) = params(body)?;
            success(id, chain.finalized(sequence))
        }
        "membership_get" => {
            let (id_commitment,): (Digest,) = params(body)?;
            success(id, chain.membership(&id_commitment))
        }
        "membership_root" => success(id, chain.membership_root()),
        "membership_list" => success(id, chain.memberships()),
        "membership_proof" => {
            let (index,): (u64,) = params(body)?;
            let proof = chain
                .membership_proof(index)
                .map_err(|e| RpcError::new(codes::INVALID_PARAMS, e.to_string()))?;
            success(id, proof)
        }
        "chain_produceBlock" => Err(RpcError::new(
            codes::METHOD_NOT_FOUND,
            "chain_produceBlock is enabled only with manual blocks",
        )),
        other => Err(RpcError::new(
            codes::METHOD_NOT_FOUND,
            format!("no method {other:?}"),
        )),
    }
}

fn respond(json: Vec<u8>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        json,
    )
        .into_response()
}

fn failure(id: &Value, error: RpcError) -> Response {
    Json(Failure {
        jsonrpc: "2.0",
        error,
        id,
    })
    .into_response()
}
