//! A typed client of one node, built on the client side jsonrpsee generates from the API's
//! traits ([`crate::rpc`]): one method per RPC method, every call bounded by a timeout, and
//! [`ChainClient::send`] to sign and submit a call with the account's next nonce.

use std::future::Future;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use jsonrpsee::core::client::{ClientT, Error as JsonRpcError};
use jsonrpsee::core::traits::ToRpcParams;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::value::RawValue;
use sheaf_circuits::Digest;

use crate::membership::MerkleProof;
use crate::node::{
    AccountView, Block, Head, MembershipList, MembershipView, ProverRewardsView, Receipt,
    SequenceView, SettlementStatus, DEFAULT_MAX_BODY_BYTES,
};
use crate::rpc::{ChainApiClient, MembershipApiClient, RpcError, SettlementApiClient};
use crate::settlement::{Address, FinalizedSequence, SequenceId};
use crate::tx::{Call, SignedTx, TxHash};

/// How often [`ChainClient::wait_for_receipt`] asks for the receipt.
pub const RECEIPT_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// How long one call may take, connection included, before it fails with
/// [`ClientError::TimedOut`]. A node answers in milliseconds; ten seconds rides out a busy node
/// (a block verifying root proofs holds its lock) while a hung one is noticed well within a
/// sender role's lease.
pub const DEFAULT_CHAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a call to the node failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not an HTTP(S) URL the client can use.
    #[error("chain RPC URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The request did not reach the node or its answer did not arrive.
    #[error("{0}")]
    Transport(String),
    /// The call took longer than the client's timeout (a hung or overloaded node).
    #[error("chain RPC call took longer than {0:?}")]
    TimedOut(Duration),
    /// The node answered with a JSON-RPC error.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The node's answer is not the JSON-RPC response expected.
    #[error("chain RPC answer does not parse: {0}")]
    Decode(String),
    /// The transaction had no receipt before the deadline.
    #[error("no receipt for {0} before the deadline")]
    Timeout(TxHash),
}

/// `e`'s message and, when it has sources, the innermost one: the transport's own message
/// ("client error (Connect)") names no cause, its last source does ("Connection refused").
fn with_root_cause(e: &dyn std::error::Error) -> String {
    let message = e.to_string();
    let mut root = e.source();
    while let Some(next) = root.and_then(|r| r.source()) {
        root = Some(next);
    }
    match root.map(|r| r.to_string()) {
        Some(cause) if !message.contains(&cause) => format!("{message}: {cause}"),
        _ => message,
    }
}

/// Result alias of the client.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A client of one node; clones share the connection pool.
#[derive(Clone, Debug)]
pub struct ChainClient {
    rpc: HttpClient,
    url: String,
    timeout: Duration,
}

/// Positional parameters of [`ChainClient::call`]: any value that serializes to a JSON array.
struct Positional<P>(P);

impl<P: Serialize> ToRpcParams for Positional<P> {
    fn to_rpc_params(self) -> Result<Option<Box<RawValue>>, serde_json::Error> {
        serde_json::value::to_raw_value(&self.0).map(Some)
    }
}

impl ChainClient {
    /// A client of the node at `url` (e.g. `http://127.0.0.1:8545`) with the default timeout,
    /// [`DEFAULT_CHAIN_TIMEOUT`]; a `url` that is not HTTP(S) is [`ClientError::InvalidUrl`].
    pub fn new(url: impl Into<String>) -> Result<Self> {
        Self::with_timeout(url, DEFAULT_CHAIN_TIMEOUT)
    }

    /// A client of the node at `url` whose every call fails after `timeout`.
    pub fn with_timeout(url: impl Into<String>, timeout: Duration) -> Result<Self> {
        let url = url.into();
        let rpc = HttpClientBuilder::default()
            .request_timeout(timeout)
            .connect_timeout(timeout)
            // Room for a root proof in a transaction, as the node accepts by default.
            .max_request_size(u32::try_from(DEFAULT_MAX_BODY_BYTES).unwrap_or(u32::MAX))
            .build(&url)
            .map_err(|e| ClientError::InvalidUrl {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        Ok(ChainClient { rpc, url, timeout })
    }

    /// The node's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound on each call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Awaits a call of the generated client, its failure mapped to a [`ClientError`].
    async fn ask<T>(&self, call: impl Future<Output = Result<T, JsonRpcError>>) -> Result<T> {
        call.await.map_err(|e| self.error(e))
    }

    fn error(&self, e: JsonRpcError) -> ClientError {
        match e {
            JsonRpcError::Call(e) => ClientError::Rpc(e.into()),
            JsonRpcError::RequestTimeout => ClientError::TimedOut(self.timeout),
            JsonRpcError::ParseError(e) => ClientError::Decode(e.to_string()),
            e @ JsonRpcError::InvalidRequestId(_) => ClientError::Decode(e.to_string()),
            e => ClientError::Transport(with_root_cause(&e)),
        }
    }

    /// Call `method` with positional `params` (a tuple, array or slice), for methods the typed
    /// ones below do not cover.
    pub async fn call<P: Serialize + Send, T: DeserializeOwned>(
        &self,
        method: &str,
        params: P,
    ) -> Result<T> {
        self.ask(self.rpc.request(method, Positional(params))).await
    }

    /// `chain_chainId`.
    pub async fn chain_id(&self) -> Result<u64> {
        self.ask(ChainApiClient::chain_id(&self.rpc)).await
    }

    /// `chain_height`.
    pub async fn height(&self) -> Result<u64> {
        self.ask(ChainApiClient::height(&self.rpc)).await
    }

    /// `chain_head`.
    pub async fn head(&self) -> Result<Head> {
        self.ask(ChainApiClient::head(&self.rpc)).await
    }

    /// `chain_sendTransaction`.
    pub async fn send_transaction(&self, tx: &SignedTx) -> Result<TxHash> {
        ChainApiClient::send_transaction(&self.rpc, tx.clone())
            .await
            .map_err(|e| self.error(e))
    }

    /// `chain_getReceipt`: `None` while pending (or unknown).
    pub async fn receipt(&self, hash: &TxHash) -> Result<Option<Receipt>> {
        self.ask(ChainApiClient::get_receipt(&self.rpc, *hash))
            .await
    }

    /// `chain_getAccount`.
    pub async fn account(&self, address: &Address) -> Result<AccountView> {
        self.ask(ChainApiClient::get_account(&self.rpc, *address))
            .await
    }

    /// `chain_produceBlock` with the node's admin token (nodes with manual blocks only).
    pub async fn produce_block(&self, admin_token: &str) -> Result<Block> {
        self.ask(ChainApiClient::produce_block(
            &self.rpc,
            Some(admin_token.to_owned()),
        ))
        .await
    }

    /// `settlement_getSequence`: the sequence with its window's phase at the head's next block.
    pub async fn sequence(&self, sequence: SequenceId) -> Result<Option<SequenceView>> {
        self.ask(SettlementApiClient::get_sequence(&self.rpc, sequence))
            .await
    }

    /// `settlement_status`.
    pub async fn settlement_status(&self) -> Result<SettlementStatus> {
        self.ask(SettlementApiClient::status(&self.rpc)).await
    }

    /// `settlement_finalized`.
    pub async fn finalized(&self, sequence: SequenceId) -> Result<Option<FinalizedSequence>> {
        self.ask(SettlementApiClient::finalized(&self.rpc, sequence))
            .await
    }

    /// `settlement_proverRewards`: what a sequence owes its provers, has paid and still owes.
    pub async fn prover_rewards(&self, sequence: SequenceId) -> Result<Option<ProverRewardsView>> {
        self.ask(SettlementApiClient::prover_rewards(&self.rpc, sequence))
            .await
    }

    /// `settlement_nullifiersSpent`: whether each nullifier is spent, in order (at most
    /// [`MAX_NULLIFIERS_PER_QUERY`](crate::rpc::MAX_NULLIFIERS_PER_QUERY) per call).
    pub async fn nullifiers_spent(&self, nullifiers: &[Digest]) -> Result<Vec<bool>> {
        self.ask(SettlementApiClient::nullifiers_spent(
            &self.rpc,
            nullifiers.to_vec(),
        ))
        .await
    }

    /// `membership_get`.
    pub async fn membership(&self, id_commitment: &Digest) -> Result<Option<MembershipView>> {
        self.ask(MembershipApiClient::get(&self.rpc, *id_commitment))
            .await
    }

    /// `membership_list`: every membership, with the head it was taken at.
    pub async fn memberships(&self) -> Result<MembershipList> {
        self.ask(MembershipApiClient::list(&self.rpc)).await
    }

    /// `membership_root`.
    pub async fn membership_root(&self) -> Result<Digest> {
        self.ask(MembershipApiClient::root(&self.rpc)).await
    }

    /// `membership_proof`.
    pub async fn membership_proof(&self, index: u64) -> Result<MerkleProof> {
        self.ask(MembershipApiClient::proof(&self.rpc, index)).await
    }

    /// Sign `call` with `key` at the account's next nonce (pending transactions counted) and
    /// submit it. Concurrent sends from one key race for the nonce: serialize them.
    pub async fn send(&self, key: &SigningKey, call: Call) -> Result<TxHash> {
        let chain_id = self.chain_id().await?;
        let account = self
            .account(&Address(key.verifying_key().to_bytes()))
            .await?;
        let tx = SignedTx::sign(key, chain_id, account.next_nonce, call);
        self.send_transaction(&tx).await
    }

    /// Poll for `hash`'s receipt until it is included or `timeout` passes.
    pub async fn wait_for_receipt(&self, hash: &TxHash, timeout: Duration) -> Result<Receipt> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(receipt) = self.receipt(hash).await? {
                return Ok(receipt);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClientError::Timeout(*hash));
            }
            tokio::time::sleep(RECEIPT_POLL_INTERVAL).await;
        }
    }
}
