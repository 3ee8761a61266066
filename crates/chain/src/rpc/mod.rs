//! The node's JSON-RPC 2.0 API over HTTP (`POST /`, positional parameters), defined once: each
//! namespace is a trait from which jsonrpsee generates the server side (implemented by
//! [`server`] on the node) and the client side ([`ChainClient`](crate::ChainClient) is built on
//! it), so a method's name, parameters and result cannot differ between the two.
//!
//! | method | params | result |
//! |---|---|---|
//! | `chain_chainId` | | chain id |
//! | `chain_height` | | blocks produced |
//! | `chain_head` | | [`Head`] |
//! | `chain_sendTransaction` | `[SignedTx]` | tx hash (hex) |
//! | `chain_getReceipt` | `[hash]` | [`Receipt`] or `null` while pending or unknown |
//! | `chain_getAccount` | `[address]` | [`AccountView`] |
//! | `chain_produceBlock` | `[admin_token]` | [`Block`] (only with manual blocks and the node's admin token) |
//! | `settlement_getSequence` | `[sequence]` | [`SequenceView`] (with its window's phase) or `null` |
//! | `settlement_status` | | [`SettlementStatus`] |
//! | `settlement_finalized` | `[sequence]` | [`FinalizedSequence`] or `null` |
//! | `settlement_proverRewards` | `[sequence]` | [`ProverRewardsView`] or `null` |
//! | `settlement_nullifiersSpent` | `[[nullifier, …]]` (at most [`MAX_NULLIFIERS_PER_QUERY`]) | `[bool, …]` in order |
//! | `membership_get` | `[id_commitment]` | [`MembershipView`] or `null` |
//! | `membership_root` | | root digest |
//! | `membership_proof` | `[index]` | [`MerkleProof`] |
//! | `membership_list` | | [`MembershipList`]: every membership, at the head |
//!
//! Every failure is a JSON-RPC error object with one of [`codes`]. A call's failure answers
//! HTTP 200; a refusal of the request itself keeps its HTTP status, with the error object
//! (id `null`) as its body: 405 for a method other than `POST` ([`codes::INVALID_REQUEST`]),
//! 408 for a body not received within the body timeout ([`codes::REQUEST_TIMEOUT`]), 413 for a
//! body above the limit ([`codes::REQUEST_TOO_LARGE`]), 414 and 431 for an over-long target or
//! headers ([`codes::INVALID_REQUEST`]), 415 for a body that is not JSON, and 503 when the
//! connection cap or the body budget is full ([`codes::OVERLOADED`]; see [`health::Guard`]).
//! Nothing a client sends reaches a panic: parameters are parsed into types, and index ranges
//! are checked before the tree is touched.

use jsonrpsee::proc_macros::rpc;
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned};
use serde::{Deserialize, Serialize};
use sheaf_circuits::Digest;

use crate::membership::MerkleProof;
use crate::node::{
    AccountView, Block, ChainError, Head, MembershipList, MembershipView, ProverRewardsView,
    Receipt, SequenceView, SettlementStatus,
};
use crate::settlement::{Address, FinalizedSequence, SequenceId};
use crate::tx::{SignedTx, TxHash};

pub mod health;
pub mod server;

pub use server::{rpc_module, serve};

/// Most nullifiers one `settlement_nullifiersSpent` asks about: 1024 are about 70 KB of
/// request, an answer in microseconds, and more claims than a prover sends in a while
/// ([`MAX_CLAIMS_PER_BATCH`](crate::settlement::MAX_CLAIMS_PER_BATCH) per transaction).
pub const MAX_NULLIFIERS_PER_QUERY: usize = 1024;

/// JSON-RPC error codes: the standard ones, then the node's (−32000 and below).
pub mod codes {
    /// The body is not JSON.
    pub const PARSE_ERROR: i32 = -32700;
    /// The body is not a JSON-RPC 2.0 request.
    pub const INVALID_REQUEST: i32 = -32600;
    /// No such method, or not enabled on this node.
    pub const METHOD_NOT_FOUND: i32 = -32601;
    /// The parameters do not parse or are out of range.
    pub const INVALID_PARAMS: i32 = -32602;
    /// The node failed (e.g. could not write its state).
    pub const INTERNAL_ERROR: i32 = -32603;
    /// The transaction's signature is not its sender's on this chain.
    pub const BAD_SIGNATURE: i32 = -32000;
    /// The nonce is used or pending: a replay.
    pub const NONCE_TOO_LOW: i32 = -32001;
    /// The nonce skips ahead of the sender's next one.
    pub const NONCE_TOO_HIGH: i32 = -32002;
    /// The mempool is full; retry after the next block.
    pub const MEMPOOL_FULL: i32 = -32003;
    /// The sender has as many transactions (or bytes) pending as one sender may; retry after
    /// the next block.
    pub const SENDER_LIMIT: i32 = -32010;
    /// The sender is not an account holding the minimum sender balance.
    pub const UNFUNDED_SENDER: i32 = -32011;
    /// An operator method called without the node's admin token, or with another.
    pub const UNAUTHORIZED: i32 = -32012;
    /// The request body is larger than the node's limit (jsonrpsee's own code for it).
    pub const REQUEST_TOO_LARGE: i32 = -32007;
    /// The node is at its connection cap or its budget of bodies in flight; retry shortly.
    pub const OVERLOADED: i32 = -32013;
    /// The request body did not arrive within the body timeout.
    pub const REQUEST_TIMEOUT: i32 = -32014;
}

/// A JSON-RPC error object, as a client receives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("JSON-RPC error {code}: {message}")]
pub struct RpcError {
    /// One of [`codes`].
    pub code: i32,
    /// What went wrong, for people.
    pub message: String,
}

impl RpcError {
    pub(crate) fn new(code: i32, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
        }
    }
}

impl From<RpcError> for ErrorObjectOwned {
    fn from(e: RpcError) -> Self {
        ErrorObject::owned(e.code, e.message, None::<()>)
    }
}

impl From<ErrorObjectOwned> for RpcError {
    fn from(e: ErrorObjectOwned) -> Self {
        RpcError::new(e.code(), e.message())
    }
}

/// The one mapping of the node's errors to JSON-RPC codes.
impl From<ChainError> for RpcError {
    fn from(e: ChainError) -> Self {
        let code = match &e {
            ChainError::BadSignature => codes::BAD_SIGNATURE,
            ChainError::NonceTooLow { .. } => codes::NONCE_TOO_LOW,
            ChainError::NonceTooHigh { .. } => codes::NONCE_TOO_HIGH,
            ChainError::MempoolFull { .. } => codes::MEMPOOL_FULL,
            ChainError::SenderLimit { .. } => codes::SENDER_LIMIT,
            ChainError::UnfundedSender { .. } => codes::UNFUNDED_SENDER,
            ChainError::InvalidConfig(_)
            | ChainError::StateIo { .. }
            | ChainError::CorruptState { .. }
            | ChainError::GenesisMismatch { .. } => {
                tracing::error!(target: "sheaf_chain::rpc", error = %e, "node failure");
                codes::INTERNAL_ERROR
            }
        };
        RpcError::new(code, e.to_string())
    }
}

/// What a method answers: its result, or the error object sent back.
pub type RpcResult<T> = Result<T, RpcError>;

/// `chain_*`: the node, its accounts and transactions.
#[rpc(server, client, namespace = "chain")]
pub trait ChainApi {
    /// The chain id transactions are signed for.
    #[method(name = "chainId")]
    fn chain_id(&self) -> RpcResult<u64>;

    /// Blocks produced.
    #[method(name = "height")]
    fn height(&self) -> RpcResult<u64>;

    /// Height, head timestamp and pending transactions.
    #[method(name = "head")]
    fn head(&self) -> RpcResult<Head>;

    /// Queue a signed transaction; its hash.
    #[method(name = "sendTransaction")]
    fn send_transaction(&self, tx: SignedTx) -> RpcResult<TxHash>;

    /// An included transaction's receipt; `null` while pending or unknown.
    #[method(name = "getReceipt")]
    fn get_receipt(&self, hash: TxHash) -> RpcResult<Option<Receipt>>;

    /// An account's balance, nonces, stake, rewards and owed deposits.
    #[method(name = "getAccount")]
    fn get_account(&self, address: Address) -> RpcResult<AccountView>;

    /// Produce the next block now (nodes with manual blocks only), given the node's admin
    /// token.
    #[method(name = "produceBlock")]
    async fn produce_block(&self, admin_token: Option<String>) -> RpcResult<Block>;
}

/// `settlement_*`: the two-step verification contract.
#[rpc(server, client, namespace = "settlement")]
pub trait SettlementApi {
    /// A registered sequence with its window's phase at the head's next block.
    #[method(name = "getSequence")]
    fn get_sequence(&self, sequence: SequenceId) -> RpcResult<Option<SequenceView>>;

    /// Where settlement stands at the head.
    #[method(name = "status")]
    fn status(&self) -> RpcResult<SettlementStatus>;

    /// The record of a finalized sequence.
    #[method(name = "finalized")]
    fn finalized(&self, sequence: SequenceId) -> RpcResult<Option<FinalizedSequence>>;

    /// What a registered sequence owes its provers, has paid and still owes.
    #[method(name = "proverRewards")]
    fn prover_rewards(&self, sequence: SequenceId) -> RpcResult<Option<ProverRewardsView>>;

    /// Whether each nullifier has been spent by a paid claim, in order (at most
    /// [`MAX_NULLIFIERS_PER_QUERY`]).
    #[method(name = "nullifiersSpent")]
    fn nullifiers_spent(&self, nullifiers: Vec<Digest>) -> RpcResult<Vec<bool>>;
}

/// `membership_*`: the RLNv2 membership registry.
#[rpc(server, client, namespace = "membership")]
pub trait MembershipApi {
    /// A membership and its state at the head.
    #[method(name = "get")]
    fn get(&self, id_commitment: Digest) -> RpcResult<Option<MembershipView>>;

    /// The membership tree's root.
    #[method(name = "root")]
    fn root(&self) -> RpcResult<Digest>;

    /// The authentication path of the leaf at `index`.
    #[method(name = "proof")]
    fn proof(&self, index: u64) -> RpcResult<MerkleProof>;

    /// Every membership, at the head.
    #[method(name = "list")]
    fn list(&self) -> RpcResult<MembershipList>;
}
