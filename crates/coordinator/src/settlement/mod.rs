//! The proof manager and the two-step proof sender: from root proofs in the store to sequences
//! finalized on the base chain (REFERENCE §1.4, adapted to Sheaf).
//!
//! ```text
//!  manager  ── registers planned sequences on chain (statement fixed before any proof),
//!     │        then fetches proved roots in sequence order from the chain's next to finalize
//!     ▼
//!  final proofs ──(hash task: lowest first, strictly in order, only in a hash phase)──▶
//!     submit_proof_hash(H(H(proof) ‖ sender))
//!     ▼
//!  hashes to monitor ──(monitor task: receipt, then wait for the proof phase [f+T1, f+T1+T2))──▶
//!     ▼
//!  proofs to reveal ──(reveal task: lowest first, once its predecessor is finalized)──▶
//!     submit_proof(proof)
//! ```
//!
//! Each cache is sorted by sequence number (a sequence's start) and deduplicated, and has one
//! task. A step whose window passes (a hash refused or included too late, a reveal too late)
//! goes back to the first cache as the step's next attempt: its next hash reopens the window.
//!
//! Crash safety: every transaction is signed, stored in the store's outbox, and only then sent.
//! A step `(sequence, kind, attempt)` is signed once: a restarted sender finds the stored
//! transaction and resends the same bytes (the chain's account nonce makes that idempotent),
//! and rebuilds its caches from the outbox and the chain, so a kill at any moment neither loses
//! nor duplicates a submission. Nonces come from one lock: the next nonce is the larger of the
//! chain's and one past the highest nonce still in flight, so a transaction the chain's
//! mempool lost (a chain restart) is resent, never overwritten.
//!
//! One sender per key: replicas of the coordinator on one database each run a sender, but only
//! the holder of the store's role `sender:<address>` works; the others stand by and take the
//! role over when its lease runs out ([`SenderConfig::role_ttl`] after the holder stopped
//! renewing) or at once when the holder stops cleanly. Every transaction is stored under the
//! role's fencing token, so a holder that stalled past its lease cannot sign next to its
//! successor: the account has one nonce sequence and one signer.
//!
//! One file per stage: `role` holds the sender role and starts the stages,
//! `manager` registers, fetches and records in the store what the chain finalized (`statement`
//! computes what a sequence's root proves from its stored tree, work or rollup block alike),
//! `hash` commits, `monitor` watches the commitments, `reveal`
//! reveals, and `outbox` signs, stores, sends and follows every transaction. When a window is in
//! its hash or proof phase is never computed here: it is [`sheaf_chain::phase`], the rule the
//! contract enforces, asked about the block a transaction would land in.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use sheaf_chain::settlement::{Address, SequenceId};
use sheaf_chain::{ChainClient, ClientError};
use sheaf_circuits::{CircuitError, CircuitSet};
use sheaf_store::{RoleFence, Store, StoreError};
use tokio::sync::Mutex;

use crate::config::{
    DEFAULT_SENDER_POLL_INTERVAL, DEFAULT_SENDER_RESEND_AFTER, DEFAULT_SENDER_ROLE_TTL,
};
use crate::health::ChainContact;

mod cache;
mod hash;
mod manager;
mod monitor;
mod outbox;
mod reveal;
mod role;
mod statement;

use cache::{Cache, Reveal, Watch};
pub use role::SenderHandle;
pub use statement::{tree_plan, SequencePlan};

/// Log target of the sender.
const TARGET: &str = "sheaf::sender";

/// Why a pass of a sender task failed; it is logged and the pass retried on the next tick.
#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    /// The chain's node could not be reached or refused a query.
    #[error(transparent)]
    Chain(#[from] ClientError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A job's expected header could not be computed (inputs its circuit set refuses).
    #[error(transparent)]
    Circuit(#[from] CircuitError),
    /// The sender key is not the chain's coordinator key, so it could register no sequence and
    /// settle nothing: the sender refuses to start.
    #[error(
        "the sender key {key} is not the chain's coordinator key {coordinator}: only the \
         coordinator key registers and settles sequences"
    )]
    NotCoordinator {
        /// The sender key's address.
        key: Address,
        /// The chain's coordinator key.
        coordinator: Address,
    },
    /// This replica does not hold the sender role (another one sends for the key).
    #[error("this replica does not hold the sender role {0:?}")]
    Standby(String),
    /// A sequence's stored job tree does not make one tree, so its statement is unknown.
    #[error("the statement of sequence {sequence} cannot be computed: {reason}")]
    Statement {
        /// The sequence.
        sequence: SequenceId,
        /// Why.
        reason: String,
    },
    /// A stored transaction does not decode.
    #[error("outbox transaction {id} does not decode: {reason}")]
    CorruptOutbox {
        /// The outbox row.
        id: i64,
        /// Why.
        reason: String,
    },
}

type Result<T, E = SenderError> = std::result::Result<T, E>;

/// The sender's knobs.
#[derive(Clone, Debug)]
pub struct SenderConfig {
    /// How often each task looks at the chain.
    pub poll_interval: Duration,
    /// A sent transaction without a receipt after this long is sent again (same bytes).
    pub resend_after: Duration,
    /// The lease on the sender role: renewed every third of it, taken over by a standby
    /// replica this long after the holder stopped renewing.
    pub role_ttl: Duration,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            poll_interval: DEFAULT_SENDER_POLL_INTERVAL,
            resend_after: DEFAULT_SENDER_RESEND_AFTER,
            role_ttl: DEFAULT_SENDER_ROLE_TTL,
        }
    }
}

/// The proof manager and sender of one coordinator key.
pub struct ProofSender {
    store: Store,
    circuits: Arc<CircuitSet>,
    chain: ChainClient,
    chain_id: u64,
    key: SigningKey,
    address: Address,
    config: SenderConfig,
    /// The store's role only one replica's sender plays: `sender:<address>`.
    role: String,
    /// This sender's name as the role's holder: host, process and start time.
    holder: String,
    /// The role's fence while this sender holds it; writes to the outbox present it.
    fence: std::sync::Mutex<Option<RoleFence>>,
    /// The next nonce to sign with, once known, and the role token it was learned under (a
    /// new holder may have signed since another token); held while signing and storing.
    signer: Mutex<Option<(i64, u64)>>,
    /// When each in-flight transaction was last sent, to pace resends.
    last_sent: std::sync::Mutex<HashMap<i64, Instant>>,
    /// When the chain last answered (the role's renewal asks it every third of the lease).
    chain_contact: ChainContact,
    /// The next sequence the manager fetches.
    next_fetch: std::sync::Mutex<SequenceId>,
    /// The chain's next sequence to finalize as last recorded in the store (every sequence
    /// below it is marked settled there).
    settled_below: std::sync::Mutex<SequenceId>,
    /// Plans computed from the store's trees, by sequence (a stored tree never changes).
    plans: std::sync::Mutex<HashMap<SequenceId, SequencePlan>>,
    final_proofs: Cache<()>,
    hashes: Cache<Watch>,
    reveals: Cache<Reveal>,
    /// Whether the last look found the stake below the chain's minimum (logged once a change).
    short_of_stake: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for ProofSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProofSender")
            .field("address", &self.address)
            .field("chain_id", &self.chain_id)
            .finish()
    }
}

impl ProofSender {
    /// A sender that settles the sequences of `store` on the chain behind `chain`, signing with
    /// `key` (the chain's coordinator key, which registers sequences, with stake deposited).
    /// Refuses ([`SenderError::NotCoordinator`]) a key that is not the chain's coordinator key.
    pub async fn connect(
        store: Store,
        circuits: Arc<CircuitSet>,
        chain: ChainClient,
        key: SigningKey,
        config: SenderConfig,
    ) -> Result<Arc<Self>> {
        let chain_id = chain.chain_id().await?;
        let address = Address(key.verifying_key().to_bytes());
        let status = chain.settlement_status().await?;
        if status.coordinator != address {
            return Err(SenderError::NotCoordinator {
                key: address,
                coordinator: status.coordinator,
            });
        }
        let account = chain.account(&address).await?;
        if account.stake < status.params.min_stake {
            tracing::warn!(target: TARGET, stake = %account.stake, min_stake = %status.params.min_stake,
                "stake below the minimum: hashes will be refused until stake is deposited");
        }
        Ok(Arc::new(ProofSender {
            store,
            circuits,
            chain,
            chain_id,
            key,
            address,
            config,
            role: format!("sender:{address}"),
            holder: role::holder_name(),
            chain_contact: ChainContact::now(),
            fence: std::sync::Mutex::new(None),
            signer: Mutex::new(None),
            last_sent: std::sync::Mutex::new(HashMap::new()),
            next_fetch: std::sync::Mutex::new(status.next_to_finalize),
            settled_below: std::sync::Mutex::new(SequenceId(0)),
            plans: std::sync::Mutex::new(HashMap::new()),
            final_proofs: Cache::new(),
            hashes: Cache::new(),
            reveals: Cache::new(),
            short_of_stake: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// The sender's chain address (its ed25519 key).
    pub fn address(&self) -> Address {
        self.address
    }

    /// When the chain last answered this sender, for readiness.
    pub fn chain_contact(&self) -> ChainContact {
        self.chain_contact.clone()
    }
}
