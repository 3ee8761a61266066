//! Sheaf's base chain for devnets and tests: a deterministic node whose contracts are native
//! Rust state machines — the Lumoz two-step verification contract with its provers' reward
//! claims ([`settlement`]) and the RLNv2 membership registry ([`membership`]) — served over HTTP
//! JSON-RPC ([`rpc`]).
//!
//! ```text
//!  ChainClient ── signed tx (ed25519, chain id, nonce) ──▶ rpc: POST / (JSON-RPC 2.0)
//!                                                           │ strict signature, nonce, funded
//!                                                           │ sender, mempool bounds checked
//!                                                           ▼
//!                                                    node: mempool
//!                                                           │ produce_block() — ticker, or by hand
//!                                                           ▼
//!             block n: each tx applied in order ──▶ accounts · settlement · membership
//!                                                           │ receipts (events or error)
//!                                                           ▼
//!                         DATA_DIR/chain.json (temp file, fsync, rename, fsync of the dir)
//!                                                           │ then, and only then
//!                                                           ▼
//!                                    the block, its receipts and its state are visible
//! ```
//!
//! Failure semantics: a refused submission changes nothing; an included transaction whose call
//! fails (or panics) uses its nonce, pays the genesis' fee and changes nothing else (its
//! receipt says why). The state is written after every block before anything of the block is
//! seen, so a node killed at any moment restarts at its last written block and no receipt a
//! client saw is lost; the mempool is not persisted. Block heights and timestamps follow from
//! the genesis alone, so a chain replays identically.

pub mod client;
pub mod membership;
pub mod node;
pub mod rpc;
pub mod settlement;
pub mod tx;

pub use client::{ChainClient, ClientError, DEFAULT_CHAIN_TIMEOUT};
pub use node::{Chain, ChainConfig, ChainError, Genesis};
pub use rpc::{rpc_module, serve, RpcError};
pub use settlement::{phase, WindowPhase};
pub use sheaf_types::{Address, Amount, SequenceId};
pub use tx::{Call, SignedTx, TxHash};

/// Serializes a map with non-string keys as a sequence of pairs.
pub(crate) mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, K, V, D>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}
