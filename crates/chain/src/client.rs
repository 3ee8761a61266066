//! A typed client of the node's JSON-RPC API: one method per RPC method, and [`ChainClient::send`]
//! to sign and submit a call with the account's next nonce.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use sheaf_circuits::Digest;

use crate::membership::MerkleProof;
use crate::node::{
    AccountView, Block, Head, MembershipList, MembershipView, Receipt, SettlementStatus,
};
use crate::rpc::RpcError;
use crate::settlement::{Address, FinalizedSequence, Sequence, SequenceId};
use crate::tx::{Call, SignedTx, TxHash};

/// How often [`ChainClient::wait_for_receipt`] asks for the receipt.
pub const RECEIPT_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The parameters of a method that takes none: `[]`.
const NO_PARAMS: [u8; 0] = [];

/// Why a call to the node failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request did not reach the node or its answer did not arrive.
    #[error("chain RPC transport: {0}")]
    Http(#[from] reqwest::Error),
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

/// Result alias of the client.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A client of one node.
#[derive(Debug)]
pub struct ChainClient {
    http: reqwest::Client,
    url: String,
    next_id: AtomicU64,
}

impl Clone for ChainClient {
    /// Another client of the same node, sharing the connection pool.
    fn clone(&self) -> Self {
        ChainClient {
            http: self.http.clone(),
            url: self.url.clone(),
            next_id: AtomicU64::new(self.next_id.load(Ordering::Relaxed)),
        }
    }
}

#[derive(Serialize)]
struct Request<'a, P> {
    jsonrpc: &'static str,
    method: &'a str,
    params: P,
    id: u64,
}

#[derive(Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
struct Response<T> {
    /// `Some` when the field is present, even as `null` (for optional results).
    #[serde(default, deserialize_with = "present")]
    result: Option<T>,
    #[serde(default)]
    error: Option<RpcError>,
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

impl ChainClient {
    /// A client of the node at `url` (e.g. `http://127.0.0.1:8545`).
    pub fn new(url: impl Into<String>) -> Self {
        ChainClient {
            http: reqwest::Client::new(),
            url: url.into(),
            next_id: AtomicU64::new(1),
        }
    }

    /// Call `method` with positional `params`.
    pub async fn call<P: Serialize, T: DeserializeOwned>(
        &self,
        method: &str,
        params: P,
    ) -> Result<T> {
        let request = Request {
            jsonrpc: "2.0",
            method,
            params,
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
        };
        let bytes = self
            .http
            .post(&self.url)
            .json(&request)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        let response: Response<T> =
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))?;
        match (response.result, response.error) {
            (_, Some(error)) => Err(ClientError::Rpc(error)),
            (Some(result), None) => Ok(result),
            (None, None) => Err(ClientError::Decode("neither result nor error".into())),
        }
    }

    /// `chain_chainId`.
    pub async fn chain_id(&self) -> Result<u64> {
        self.call("chain_chainId", NO_PARAMS).await
    }

    /// `chain_height`.
    pub async fn height(&self) -> Result<u64> {
        self.call("chain_height", NO_PARAMS).await
    }

    /// `chain_head`.
    pub async fn head(&self) -> Result<Head> {
        self.call("chain_head", NO_PARAMS).await
    }

    /// `chain_sendTransaction`.
    pub async fn send_transaction(&self, tx: &SignedTx) -> Result<TxHash> {
        self.call("chain_sendTransaction", (tx,)).await
    }

    /// `chain_getReceipt`: `None` while pending (or unknown).
    pub async fn receipt(&self, hash: &TxHash) -> Result<Option<Receipt>> {
        self.call("chain_getReceipt", (hash,)).await
    }

    /// `chain_getAccount`.
    pub async fn account(&self, address: &Address) -> Result<AccountView> {
        self.call("chain_getAccount", (hex::encode(address),)).await
    }

    /// `chain_produceBlock` (nodes with manual blocks only).
    pub async fn produce_block(&self) -> Result<Block> {
        self.call("chain_produceBlock", NO_PARAMS).await
    }

    /// `settlement_getSequence`.
    pub async fn sequence(&self, sequence: SequenceId) -> Result<Option<Sequence>> {
        self.call("settlement_getSequence", (sequence,)).await
    }

    /// `settlement_status`.
    pub async fn settlement_status(&self) -> Result<SettlementStatus> {
        self.call("settlement_status", NO_PARAMS).await
    }

    /// `settlement_finalized`.
    pub async fn finalized(&self, sequence: SequenceId) -> Result<Option<FinalizedSequence>> {
        self.call("settlement_finalized", (sequence,)).await
    }

    /// `membership_get`.
    pub async fn membership(&self, id_commitment: &Digest) -> Result<Option<MembershipView>> {
        self.call("membership_get", (id_commitment,)).await
    }

    /// `membership_list`: every membership, with the head it was taken at.
    pub async fn memberships(&self) -> Result<MembershipList> {
        self.call("membership_list", NO_PARAMS).await
    }

    /// `membership_root`.
    pub async fn membership_root(&self) -> Result<Digest> {
        self.call("membership_root", NO_PARAMS).await
    }

    /// `membership_proof`.
    pub async fn membership_proof(&self, index: u64) -> Result<MerkleProof> {
        self.call("membership_proof", (index,)).await
    }

    /// Sign `call` with `key` at the account's next nonce (pending transactions counted) and
    /// submit it. Concurrent sends from one key race for the nonce: serialize them.
    pub async fn send(&self, key: &SigningKey, call: Call) -> Result<TxHash> {
        let chain_id = self.chain_id().await?;
        let account = self.account(&key.verifying_key().to_bytes()).await?;
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
