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

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use sheaf_chain::settlement::{proof_hash, Address, Sequence, SequenceId, SettlementEvent};
use sheaf_chain::{node::SettlementStatus, Call, ChainClient, ClientError, SignedTx};
use sheaf_circuits::{CircuitError, CircuitSet, Digest};
use sheaf_store::{NewOutboxTx, OutboxKind, OutboxStatus, OutboxTx, RoleFence, Store, StoreError};
use tokio::sync::{Mutex, Notify};
use tokio::task::JoinHandle;

use crate::config::{
    DEFAULT_SENDER_POLL_INTERVAL, DEFAULT_SENDER_RESEND_AFTER, DEFAULT_SENDER_ROLE_TTL,
};
use crate::metrics::{SENDER_ROLE_HELD, SETTLEMENT_FINALIZED, SETTLEMENT_TXS};

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
    /// The sequence's statement could not be computed.
    #[error(transparent)]
    Circuit(#[from] CircuitError),
    /// This replica does not hold the sender role (another one sends for the key).
    #[error("this replica does not hold the sender role {0:?}")]
    Standby(String),
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

/// A cache of one stage: sorted by sequence, deduplicated, with a wake-up for its task.
struct Cache<T> {
    items: std::sync::Mutex<BTreeMap<SequenceId, T>>,
    wake: Notify,
}

impl<T: Clone> Cache<T> {
    fn new() -> Self {
        Cache {
            items: std::sync::Mutex::new(BTreeMap::new()),
            wake: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<SequenceId, T>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `sequence` unless it is there already.
    fn push(&self, sequence: SequenceId, item: T) {
        self.lock().entry(sequence).or_insert(item);
        self.wake.notify_one();
    }

    fn remove(&self, sequence: SequenceId) {
        self.lock().remove(&sequence);
    }

    fn clear(&self) {
        self.lock().clear();
    }

    /// The entries, lowest sequence first.
    fn snapshot(&self) -> Vec<(SequenceId, T)> {
        self.lock().iter().map(|(s, t)| (*s, t.clone())).collect()
    }

    fn contains(&self, sequence: SequenceId) -> bool {
        self.lock().contains_key(&sequence)
    }
}

/// A committed hash to watch: the attempt whose transaction it is.
#[derive(Clone, Copy, Debug)]
struct Watch {
    attempt: i64,
}

/// A proof to reveal: the attempt of its hash and the block that opened its window.
#[derive(Clone, Copy, Debug)]
struct Reveal {
    attempt: i64,
    opened_at: u64,
}

/// What became of a stored transaction.
enum Outcome {
    /// Not yet in a block.
    InFlight,
    /// In block `height`, and its call succeeded.
    Included(u64),
    /// Refused, or included with a failed call.
    Failed,
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
    /// The next sequence the manager fetches.
    next_fetch: std::sync::Mutex<SequenceId>,
    final_proofs: Cache<()>,
    hashes: Cache<Watch>,
    reveals: Cache<Reveal>,
}

impl std::fmt::Debug for ProofSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProofSender")
            .field("address", &hex::encode(self.address))
            .field("chain_id", &self.chain_id)
            .finish()
    }
}

/// Tasks aborted when dropped.
#[derive(Debug, Default)]
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// The running sender; dropping it stops its tasks (the outbox keeps their state) and gives
/// the sender role up in the background.
#[derive(Debug)]
pub struct SenderHandle {
    sender: Arc<ProofSender>,
    tasks: Tasks,
}

impl SenderHandle {
    /// Stop the tasks now and give the sender role up, so a standby replica takes it at once.
    /// Whatever was stored is picked up by whoever sends next.
    pub async fn stop(mut self) {
        self.tasks = Tasks::default();
        self.sender.resign().await;
    }

    /// Whether this sender holds the role and works, rather than standing by.
    pub fn is_sending(&self) -> bool {
        self.sender.current_fence().is_some()
    }
}

impl Drop for SenderHandle {
    fn drop(&mut self) {
        self.tasks = Tasks::default();
        if self.sender.current_fence().is_some() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let sender = self.sender.clone();
                runtime.spawn(async move { sender.resign().await });
            }
        }
    }
}

impl ProofSender {
    /// A sender that settles the sequences of `store` on the chain behind `chain`, signing with
    /// `key` (the chain's coordinator key, which registers sequences, with stake deposited).
    pub async fn connect(
        store: Store,
        circuits: Arc<CircuitSet>,
        chain: ChainClient,
        key: SigningKey,
        config: SenderConfig,
    ) -> Result<Arc<Self>> {
        let chain_id = chain.chain_id().await?;
        let address = key.verifying_key().to_bytes();
        let status = chain.settlement_status().await?;
        if status.coordinator != address {
            tracing::warn!(target: TARGET, key = %hex::encode(address),
                coordinator = %hex::encode(status.coordinator),
                "this key is not the chain's coordinator: it cannot register sequences");
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
            role: format!("sender:{}", hex::encode(address)),
            holder: holder_name(),
            fence: std::sync::Mutex::new(None),
            signer: Mutex::new(None),
            last_sent: std::sync::Mutex::new(HashMap::new()),
            next_fetch: std::sync::Mutex::new(status.next_to_finalize),
            final_proofs: Cache::new(),
            hashes: Cache::new(),
            reveals: Cache::new(),
        }))
    }

    /// The sender's chain address (its ed25519 key).
    pub fn address(&self) -> Address {
        self.address
    }

    /// Take the sender role (or stand by until it is free), resend what was in flight at the
    /// last stop, then run the manager and the three cache tasks while the role is held,
    /// until the handle is dropped.
    pub fn spawn(self: &Arc<Self>) -> SenderHandle {
        let sender = self.clone();
        SenderHandle {
            sender: self.clone(),
            tasks: Tasks(vec![tokio::spawn(async move { sender.lead().await })]),
        }
    }

    /// Hold the sender role: renew it every third of its lease and run the stages while it is
    /// held; stop them when it is lost (taken over, or not renewed within the lease).
    async fn lead(self: Arc<Self>) {
        let ttl = self.config.role_ttl;
        let mut stages: Option<Tasks> = None;
        let mut renewed = Instant::now();
        loop {
            let acquired = self
                .store
                .role_acquire(&self.role, &self.holder, now_ms(), ttl.as_millis() as i64)
                .await;
            match acquired {
                Ok(Some(fence)) => {
                    renewed = Instant::now();
                    let token = self.current_fence().map(|f| f.token);
                    if stages.is_some() && token != Some(fence.token) {
                        // Lost and retaken while this replica stalled: start afresh.
                        stages = None;
                    }
                    if stages.is_none() {
                        tracing::info!(target: TARGET, role = %self.role, holder = %self.holder,
                            token = fence.token, "took the sender role: sending");
                        self.begin_term(fence);
                        stages = Some(self.spawn_stages());
                    }
                }
                Ok(None) => {
                    if stages.take().is_some() {
                        tracing::warn!(target: TARGET, role = %self.role,
                            "another replica took the sender role over: standing by");
                        self.end_term();
                    } else {
                        tracing::debug!(target: TARGET, role = %self.role, "standing by");
                    }
                }
                Err(e) => {
                    tracing::warn!(target: TARGET, role = %self.role, error = %e,
                        "renewing the sender role failed");
                    if stages.is_some() && renewed.elapsed() >= ttl {
                        tracing::warn!(target: TARGET, role = %self.role,
                            "the sender role's lease ran out: standing by");
                        stages = None;
                        self.end_term();
                    }
                }
            }
            tokio::time::sleep(ttl / 3).await;
        }
    }

    /// Start working under `fence`, from what the store and the chain say: nothing of an
    /// earlier term (this sender's or another replica's) is trusted from memory.
    fn begin_term(&self, fence: RoleFence) {
        self.final_proofs.clear();
        self.hashes.clear();
        self.reveals.clear();
        self.last_sent_lock().clear();
        *self.lock_next_fetch() = 0;
        *self.fence_lock() = Some(fence);
        metrics::gauge!(SENDER_ROLE_HELD).set(1.0);
    }

    fn end_term(&self) {
        *self.fence_lock() = None;
        metrics::gauge!(SENDER_ROLE_HELD).set(0.0);
    }

    /// Give the role up if held, so a standby replica takes it without waiting for the lease.
    async fn resign(&self) {
        if self.fence_lock().take().is_none() {
            return;
        }
        metrics::gauge!(SENDER_ROLE_HELD).set(0.0);
        match self.store.role_release(&self.role, &self.holder).await {
            Ok(_) => tracing::info!(target: TARGET, role = %self.role, "gave the sender role up"),
            Err(e) => tracing::warn!(target: TARGET, role = %self.role, error = %e,
                "giving the sender role up failed: a standby takes it when its lease runs out"),
        }
    }

    fn fence_lock(&self) -> std::sync::MutexGuard<'_, Option<RoleFence>> {
        self.fence.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn current_fence(&self) -> Option<RoleFence> {
        self.fence_lock().clone()
    }

    fn spawn_stages(self: &Arc<Self>) -> Tasks {
        Tasks(
            [
                Stage::Manager,
                Stage::Hashes,
                Stage::Monitor,
                Stage::Reveals,
            ]
            .into_iter()
            .map(|stage| {
                let sender = self.clone();
                tokio::spawn(async move { sender.run(stage).await })
            })
            .collect(),
        )
    }

    /// Run passes of `stage` every poll interval (or sooner when its cache is fed).
    async fn run(&self, stage: Stage) {
        if stage == Stage::Manager {
            while let Err(e) = self.resend_in_flight().await {
                tracing::warn!(target: TARGET, error = %e, "resending in-flight transactions failed; retrying");
                tokio::time::sleep(self.config.poll_interval).await;
            }
        }
        loop {
            let pass = match stage {
                Stage::Manager => self.manage().await,
                Stage::Hashes => self.send_hashes().await,
                Stage::Monitor => self.monitor_hashes().await,
                Stage::Reveals => self.reveal_proofs().await,
            };
            if let Err(e) = pass {
                tracing::warn!(target: TARGET, stage = ?stage, error = %e, "pass failed; retrying");
            }
            let fed = match stage {
                Stage::Manager => None,
                Stage::Hashes => Some(&self.final_proofs.wake),
                Stage::Monitor => Some(&self.hashes.wake),
                Stage::Reveals => Some(&self.reveals.wake),
            };
            match fed {
                Some(wake) => {
                    let _ = tokio::time::timeout(self.config.poll_interval, wake.notified()).await;
                }
                None => tokio::time::sleep(self.config.poll_interval).await,
            }
        }
    }

    // ---- the proof manager ----

    /// Register planned sequences in order, then queue proved roots from the chain's next
    /// sequence to finalize, in order.
    async fn manage(&self) -> Result<()> {
        let status = self.chain.settlement_status().await?;
        self.register(&status).await?;
        let status = self.chain.settlement_status().await?;
        let mut next = {
            let next = *self.lock_next_fetch();
            next.max(status.next_to_finalize)
        };
        while next < status.next_sequence {
            let Some(sequence) = self
                .store
                .get_sequence(sheaf_store::SequenceId(next))
                .await?
            else {
                break;
            };
            if sequence.proved_ms.is_none() {
                break;
            }
            let Some(on_chain) = self.chain.sequence(next).await? else {
                break;
            };
            let ours = self.statement(next).await?;
            if on_chain.statement != ours {
                tracing::error!(target: TARGET, sequence = next, chain = %on_chain.statement, ours = %ours,
                    "the chain registered another statement for this sequence: not settling it");
                break;
            }
            if on_chain.finalized.is_none() {
                tracing::debug!(target: TARGET, sequence = next, "root proof fetched");
                self.final_proofs.push(next, ());
            }
            next += 1;
        }
        *self.lock_next_fetch() = next;
        Ok(())
    }

    fn lock_next_fetch(&self) -> std::sync::MutexGuard<'_, SequenceId> {
        self.next_fetch.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The statement sequence `id` of the store proves.
    async fn statement(&self, id: SequenceId) -> Result<Digest> {
        let sequence = self
            .store
            .get_sequence(sheaf_store::SequenceId(id))
            .await?
            .ok_or(StoreError::UnknownSequence(sheaf_store::SequenceId(id)))?;
        Ok(self
            .circuits
            .sequence_statement(sequence.leaves as usize, id)?)
    }

    /// Register the store's sequences the chain does not have yet, in order, without gaps.
    async fn register(&self, status: &SettlementStatus) -> Result<()> {
        // Record the fate of registrations in flight (also those the chain already applied).
        for tx in self.store.outbox_open().await? {
            if tx.kind == OutboxKind::Register {
                self.outcome(&tx).await?;
            }
        }
        if status.coordinator != self.address {
            // Only the chain's coordinator key registers: sending would only burn nonces.
            return Ok(());
        }
        let empty = status.next_sequence == status.first_sequence;
        let sequences = self.store.list_sequences().await?;
        let mut expected = (!empty).then_some(status.next_sequence);
        for sequence in sequences {
            let id: SequenceId = sequence.id.get();
            match expected {
                Some(next) if id < next => continue,
                Some(next) if id > next => {
                    tracing::warn!(target: TARGET, sequence = id, expected = next,
                        "sequence numbers skip ahead of the chain's: not registering further");
                    break;
                }
                _ => {}
            }
            let statement = self
                .circuits
                .sequence_statement(sequence.leaves as usize, id)?;
            let tx = self
                .step(
                    id,
                    OutboxKind::Register,
                    Call::RegisterSequence {
                        sequence: id,
                        statement,
                    },
                )
                .await?;
            if let Outcome::Failed = self.outcome(&tx).await? {
                // The chain refused it: the next pass signs the step's next attempt.
                break;
            }
            expected = Some(id + 1);
        }
        Ok(())
    }

    // ---- stage 1: hashes ----

    /// Commit hashes for the queued root proofs, lowest first, strictly in order: a sequence
    /// that cannot be committed now holds back those above it.
    async fn send_hashes(&self) -> Result<()> {
        let queued = self.final_proofs.snapshot();
        if queued.is_empty() {
            return Ok(());
        }
        // One look at the head per pass: a pass takes well under a block, and the chain
        // itself refuses a hash outside its phase.
        let status = self.chain.settlement_status().await?;
        for (sequence, ()) in queued {
            let Some(on_chain) = self.chain.sequence(sequence).await? else {
                return Ok(());
            };
            let latest = self
                .store
                .outbox_latest(sheaf_store::SequenceId(sequence), OutboxKind::ProofHash)
                .await?;
            // A hash already committed in the running window (also after a restart) is
            // watched, not sent again.
            let attempt = match &latest {
                Some(tx) if matches!(tx.status, OutboxStatus::Pending | OutboxStatus::Sent) => {
                    self.watch(sequence, tx.attempt);
                    continue;
                }
                Some(tx) if tx.status == OutboxStatus::Included => {
                    let block = tx.included_height.unwrap_or_default() as u64;
                    if self.committed_in_running_window(&on_chain, &status, block) {
                        self.watch(sequence, tx.attempt);
                        continue;
                    }
                    tx.attempt + 1
                }
                Some(tx) => tx.attempt + 1,
                None => 0,
            };
            if on_chain.finalized.is_some() {
                self.final_proofs.remove(sequence);
                continue;
            }
            // A window in its proof phase must close before a hash can reopen it.
            let next_block = status.height + 1;
            let in_proof_phase = on_chain.window.as_ref().is_some_and(|w| {
                next_block >= w.opened_at + status.params.hash_window_blocks
                    && next_block < w.opened_at + status.params.window_blocks()
            });
            if in_proof_phase {
                return Ok(());
            }
            let stake = self.chain.account(&self.address).await?.stake;
            if stake < status.params.min_stake {
                // The chain would refuse the hash: wait for stake rather than burn attempts.
                tracing::debug!(target: TARGET, sequence, stake = %stake, "waiting for stake");
                return Ok(());
            }
            let proof = self.root_proof(sequence).await?;
            let hash = proof_hash(&proof, &self.address);
            let call = Call::SubmitProofHash { sequence, hash };
            let tx = self
                .step_attempt(sequence, OutboxKind::ProofHash, attempt, call)
                .await?;
            tracing::info!(target: TARGET, sequence, attempt, tx = %tx.tx_hash, "proof hash sent");
            self.watch(sequence, attempt);
        }
        Ok(())
    }

    fn watch(&self, sequence: SequenceId, attempt: i64) {
        self.final_proofs.remove(sequence);
        self.hashes.push(sequence, Watch { attempt });
    }

    /// Whether this sender's hash included in `block` is in the sequence's running window.
    fn committed_in_running_window(
        &self,
        sequence: &Sequence,
        status: &SettlementStatus,
        block: u64,
    ) -> bool {
        sequence.window.as_ref().is_some_and(|w| {
            status.height + 1 < w.opened_at + status.params.window_blocks()
                && w.commitment(&self.address)
                    .is_some_and(|c| c.block == block)
        })
    }

    async fn root_proof(&self, sequence: SequenceId) -> Result<Vec<u8>> {
        let stored = self
            .store
            .get_sequence(sheaf_store::SequenceId(sequence))
            .await?
            .ok_or(StoreError::UnknownSequence(sheaf_store::SequenceId(
                sequence,
            )))?;
        Ok(self
            .store
            .proof_of(stored.root)
            .await?
            .ok_or(StoreError::UnknownJob(stored.root))?)
    }

    // ---- stage 2: watching hashes ----

    /// Follow each committed hash to its block, then hand it to the reveal stage once the
    /// window's proof phase is open; a hash that failed goes back for its next attempt.
    async fn monitor_hashes(&self) -> Result<()> {
        for (sequence, watch) in self.hashes.snapshot() {
            let Some(tx) = self
                .store
                .outbox_get(
                    sheaf_store::SequenceId(sequence),
                    OutboxKind::ProofHash,
                    watch.attempt,
                )
                .await?
            else {
                self.hashes.remove(sequence);
                continue;
            };
            let block = match self.outcome(&tx).await? {
                Outcome::InFlight => continue,
                Outcome::Failed => {
                    self.hashes.remove(sequence);
                    self.final_proofs.push(sequence, ());
                    continue;
                }
                Outcome::Included(block) => block,
            };
            let status = self.chain.settlement_status().await?;
            let on_chain = self.chain.sequence(sequence).await?;
            let window = on_chain
                .as_ref()
                .and_then(|s| s.window.as_ref())
                .filter(|w| {
                    w.commitment(&self.address)
                        .is_some_and(|c| c.block == block)
                });
            match window {
                Some(w) if status.height + 1 >= w.opened_at + status.params.hash_window_blocks => {
                    self.hashes.remove(sequence);
                    self.reveals.push(
                        sequence,
                        Reveal {
                            attempt: watch.attempt,
                            opened_at: w.opened_at,
                        },
                    );
                }
                Some(_) => {} // still in the hash phase
                None => {
                    // The window moved on without this hash: commit again.
                    self.hashes.remove(sequence);
                    self.final_proofs.push(sequence, ());
                }
            }
        }
        Ok(())
    }

    // ---- stage 3: reveals ----

    /// Reveal proofs lowest first, each once its predecessor is finalized and while its proof
    /// phase runs; a reveal that missed its window goes back for a new hash.
    async fn reveal_proofs(&self) -> Result<()> {
        for (sequence, reveal) in self.reveals.snapshot() {
            let stored = self
                .store
                .outbox_get(
                    sheaf_store::SequenceId(sequence),
                    OutboxKind::Proof,
                    reveal.attempt,
                )
                .await?;
            if let Some(tx) = stored {
                match self.outcome(&tx).await? {
                    Outcome::InFlight => return Ok(()),
                    Outcome::Included(block) => {
                        self.reveals.remove(sequence);
                        self.report_reveal(sequence, &tx, block).await?;
                        continue;
                    }
                    Outcome::Failed => {
                        self.reveals.remove(sequence);
                        self.resend_unless_finalized(sequence).await?;
                        continue;
                    }
                }
            }
            let status = self.chain.settlement_status().await?;
            let next_block = status.height + 1;
            if next_block >= reveal.opened_at + status.params.window_blocks() {
                tracing::warn!(target: TARGET, sequence, attempt = reveal.attempt,
                    "the proof phase closed before the reveal: committing again");
                self.reveals.remove(sequence);
                self.resend_unless_finalized(sequence).await?;
                continue;
            }
            if sequence > status.next_to_finalize
                || next_block < reveal.opened_at + status.params.hash_window_blocks
            {
                return Ok(()); // strictly in order, and only in the proof phase
            }
            let proof = self.root_proof(sequence).await?;
            let call = Call::SubmitProof { sequence, proof };
            let tx = self
                .step_attempt(sequence, OutboxKind::Proof, reveal.attempt, call)
                .await?;
            tracing::info!(target: TARGET, sequence, attempt = reveal.attempt, tx = %tx.tx_hash, "proof revealed");
            return Ok(());
        }
        Ok(())
    }

    async fn resend_unless_finalized(&self, sequence: SequenceId) -> Result<()> {
        let finalized = self.chain.finalized(sequence).await?.is_some();
        if !finalized && !self.final_proofs.contains(sequence) {
            self.final_proofs.push(sequence, ());
        }
        Ok(())
    }

    async fn report_reveal(&self, sequence: SequenceId, tx: &OutboxTx, block: u64) -> Result<()> {
        let receipt = self.chain.receipt(&parse_hash(tx)?).await?;
        for event in receipt.iter().flat_map(|r| r.events.iter()) {
            match event {
                sheaf_chain::node::Event::Settlement(SettlementEvent::SequenceFinalized {
                    sender,
                    ..
                }) if *sender == self.address => {
                    metrics::counter!(SETTLEMENT_FINALIZED).increment(1);
                    tracing::info!(target: TARGET, sequence, block, "sequence finalized on chain");
                }
                sheaf_chain::node::Event::Settlement(SettlementEvent::SenderPaid {
                    sender,
                    amount,
                    ..
                }) if *sender == self.address => {
                    tracing::info!(target: TARGET, sequence, amount = %amount, "sender paid");
                }
                sheaf_chain::node::Event::Settlement(SettlementEvent::SenderPenalized {
                    sender,
                    reason,
                    ..
                }) if *sender == self.address => {
                    tracing::error!(target: TARGET, sequence, reason = ?reason, "sender penalized");
                }
                _ => {}
            }
        }
        Ok(())
    }

    // ---- the outbox ----

    /// The transaction of step `(sequence, kind)` at its current attempt: the stored one if in
    /// flight or included, else a new attempt after a failed one.
    async fn step(&self, sequence: SequenceId, kind: OutboxKind, call: Call) -> Result<OutboxTx> {
        let attempt = match self
            .store
            .outbox_latest(sheaf_store::SequenceId(sequence), kind)
            .await?
        {
            Some(tx) if tx.status == OutboxStatus::Failed => tx.attempt + 1,
            Some(tx) => return Ok(tx),
            None => 0,
        };
        self.step_attempt(sequence, kind, attempt, call).await
    }

    /// The transaction of one step: the stored one, or `call` signed at the next nonce, stored,
    /// then sent (a send that fails is resent by [`Self::outcome`]).
    async fn step_attempt(
        &self,
        sequence: SequenceId,
        kind: OutboxKind,
        attempt: i64,
        call: Call,
    ) -> Result<OutboxTx> {
        let fence = self
            .current_fence()
            .ok_or_else(|| SenderError::Standby(self.role.clone()))?;
        let mut next_nonce = self.signer.lock().await;
        if let Some(stored) = self
            .store
            .outbox_get(sheaf_store::SequenceId(sequence), kind, attempt)
            .await?
        {
            return Ok(stored);
        }
        let account = self.chain.account(&self.address).await?;
        let local = match *next_nonce {
            Some((token, nonce)) if token == fence.token => nonce,
            _ => self.highest_in_flight_nonce().await?.map_or(0, |n| n + 1),
        };
        let nonce = account.next_nonce.max(local);
        let signed = SignedTx::sign(&self.key, self.chain_id, nonce, call);
        let new = NewOutboxTx {
            sequence: sheaf_store::SequenceId(sequence),
            kind,
            attempt,
            tx_hash: signed.hash(self.chain_id).to_string(),
            tx: serde_json::to_vec(&signed).expect("a transaction serializes"),
        };
        let stored = self.store.outbox_add_fenced(&new, now_ms(), &fence).await?;
        *next_nonce = Some((fence.token, nonce + 1));
        drop(next_nonce);
        metrics::counter!(SETTLEMENT_TXS, "kind" => kind.as_str()).increment(1);
        self.send(&stored, &signed).await?;
        Ok(stored)
    }

    async fn highest_in_flight_nonce(&self) -> Result<Option<u64>> {
        let mut highest = None;
        for tx in self.store.outbox_open().await? {
            highest = highest.max(Some(decode(&tx)?.nonce));
        }
        Ok(highest)
    }

    /// Send a stored transaction; the node refusing it is logged (the outcome decides).
    async fn send(&self, stored: &OutboxTx, signed: &SignedTx) -> Result<()> {
        self.last_sent_lock().insert(stored.id, Instant::now());
        match self.chain.send_transaction(signed).await {
            Ok(_) => {
                self.store.outbox_mark_sent(stored.id, now_ms()).await?;
            }
            Err(ClientError::Rpc(e)) => {
                tracing::debug!(target: TARGET, tx = %stored.tx_hash, error = %e, "node refused the transaction for now");
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    fn last_sent_lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Instant>> {
        self.last_sent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// At start: send again, in nonce order, every transaction stored but not known included.
    async fn resend_in_flight(&self) -> Result<()> {
        let mut open = Vec::new();
        for tx in self.store.outbox_open().await? {
            let signed = decode(&tx)?;
            open.push((signed.nonce, tx, signed));
        }
        open.sort_by_key(|(nonce, _, _)| *nonce);
        if !open.is_empty() {
            tracing::info!(target: TARGET, transactions = open.len(), "resending what was in flight");
        }
        for (_, tx, signed) in open {
            self.send(&tx, &signed).await?;
        }
        Ok(())
    }

    /// Where a stored transaction stands, recording news in the outbox; one without a receipt
    /// for `resend_after` is sent again, and one whose nonce the chain used for another
    /// transaction has failed.
    async fn outcome(&self, tx: &OutboxTx) -> Result<Outcome> {
        match tx.status {
            OutboxStatus::Included => {
                return Ok(Outcome::Included(
                    tx.included_height.unwrap_or_default() as u64
                ))
            }
            OutboxStatus::Failed => return Ok(Outcome::Failed),
            OutboxStatus::Pending | OutboxStatus::Sent => {}
        }
        let hash = parse_hash(tx)?;
        if let Some(receipt) = self.chain.receipt(&hash).await? {
            return self.record(tx, receipt).await;
        }
        let signed = decode(tx)?;
        let account = self.chain.account(&self.address).await?;
        if account.nonce > signed.nonce {
            // Its nonce is used. It may have been included since the receipt was asked for;
            // if it still has no receipt, another transaction took the nonce.
            if let Some(receipt) = self.chain.receipt(&hash).await? {
                return self.record(tx, receipt).await;
            }
            let error = "its nonce was used by another transaction of this key";
            tracing::warn!(target: TARGET, sequence = %tx.sequence, kind = %tx.kind, error, "transaction dropped");
            self.store.outbox_mark_failed(tx.id, error).await?;
            return Ok(Outcome::Failed);
        }
        let due = self
            .last_sent_lock()
            .get(&tx.id)
            .is_none_or(|sent| sent.elapsed() >= self.config.resend_after);
        if due {
            self.send(tx, &signed).await?;
        }
        Ok(Outcome::InFlight)
    }

    /// Record a transaction's receipt in the outbox.
    async fn record(&self, tx: &OutboxTx, receipt: sheaf_chain::node::Receipt) -> Result<Outcome> {
        self.last_sent_lock().remove(&tx.id);
        Ok(match receipt.error {
            None => {
                self.store
                    .outbox_mark_included(tx.id, receipt.block as i64)
                    .await?;
                Outcome::Included(receipt.block)
            }
            Some(error) => {
                tracing::warn!(target: TARGET, sequence = %tx.sequence, kind = %tx.kind,
                        attempt = tx.attempt, error = %error, "transaction failed on chain");
                self.store.outbox_mark_failed(tx.id, &error).await?;
                Outcome::Failed
            }
        })
    }
}

/// The sender's tasks: the manager and one per cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Manager,
    Hashes,
    Monitor,
    Reveals,
}

fn decode(tx: &OutboxTx) -> Result<SignedTx> {
    serde_json::from_slice(&tx.tx).map_err(|e| SenderError::CorruptOutbox {
        id: tx.id,
        reason: e.to_string(),
    })
}

fn parse_hash(tx: &OutboxTx) -> Result<sheaf_chain::TxHash> {
    tx.tx_hash
        .parse()
        .map_err(|e: hex::FromHexError| SenderError::CorruptOutbox {
            id: tx.id,
            reason: e.to_string(),
        })
}

/// A holder name unique to this sender: host, process id, start time and a counter (several
/// senders may run in one process, as in tests). Readable in the store's `roles` table.
fn holder_name() -> String {
    static SENDERS: AtomicU64 = AtomicU64::new(0);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".to_owned());
    format!(
        "{host}/{}/{}/{}",
        std::process::id(),
        now_ms(),
        SENDERS.fetch_add(1, Ordering::Relaxed)
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
