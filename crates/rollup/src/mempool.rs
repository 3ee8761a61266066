//! The block producer's mempool: signed transactions wait here until a block takes them, and
//! every one admitted is valid on top of the committed state and the transactions admitted
//! before it, so a block selected from the mempool is one [`crate::produce_block`] accepts.
//!
//! ```text
//!  add_transaction ─▶ queued ─select_batches─▶ batched ─select_block─▶ in flight ─commit_block─▶ gone
//!        │ refusal: a typed error,                 (every batch          │    └─▶ then expired queued
//!        │ nothing changes                          interval)            │        txs and descendants:
//!        ▼                                                               │        reverted
//!                                                   rollback_block ◀─────┘ dropped, with descendants
//!  projected state: each touched account's latest state, the nullifiers spent and the notes
//!  created by every uncommitted transaction (queued or in flight), over the committed state
//! ```
//!
//! A transaction is **queued** from [`Mempool::add_transaction`] until
//! [`Mempool::select_batches`] puts it in a **batch** (every batch interval), then waits there
//! until [`Mempool::select_block`] takes its batch, then is **in flight** until the block is
//! committed or rolled back; [`Mempool::pending`] counts the first two, [`Mempool::in_flight`]
//! the last, and all hold capacity. The
//! transactions form a DAG: a transaction's **parents** are the earlier uncommitted transaction
//! of its account (it starts from the state that one leaves, `x' → x''`) and the uncommitted
//! transaction that created each unauthenticated note it consumes. A parent always arrives
//! before its child, so arrival order is an order in which every transaction comes after its
//! parents, and the mempool keeps its transactions in that order.
//!
//! Admission checks, in this order, each refusal its own [`MempoolError`] variant: capacity;
//! the state passed is the committed tip the mempool tracks; not already in the mempool; the
//! transaction's own rules ([`Transaction::check_rules`]: limits, amounts, ownership, value,
//! signature); `expiration > tip + slack`; the account exists and the transaction starts from its
//! projected state (the committed one when no uncommitted transaction touches it); no nullifier
//! spent in the committed state or by an uncommitted transaction (or sharing a nullifier-tree slot
//! with one, which [`crate::produce_block`] would refuse); every committed input note is in the
//! committed state at the block and index it names; every unauthenticated input note is an
//! output of an uncommitted transaction; no output note created twice by the transaction or
//! already created by an uncommitted one.
//!
//! A selected block is valid for [`crate::produce_block`] (provided the producer passes the
//! committed state and an increasing timestamp): the batch rules hold because nullifiers, notes
//! and transactions are unique across the mempool and the note and account budgets of a batch
//! cannot be exceeded by [`crate::limits::MAX_TXS_PER_BATCH`] transactions (asserted at compile
//! time below); the per-transaction rules hold because each was checked against the state its
//! predecessors leave, and every expired transaction is reverted when the tip moves.
//!
//! # What follows miden-node, and what differs
//!
//! Follows miden-node's block producer (REFERENCE §4.3): the defaults (capacity `8·8·(60/3)` =
//! 1280, expiration slack 2, 8 transactions per batch, 8 batches per block, at most 64 of
//! each); the admission rules (capacity first, `expires_at ≤ tip + slack` refused, the initial
//! account state equal to the in-flight or store state, no existing nullifier, no existing output
//! note, unauthenticated input notes only from in-flight output notes); the DAG of account and
//! note dependencies; one block in flight at a time; `commit_block` advancing the tip and
//! reverting expired transactions (`expires_at ≤ tip`) with their descendants; `rollback_block`
//! dropping the block's transactions and descendants **without** requeueing them, to avoid
//! retry loops on a producer bug.
//!
//! Differs:
//! - **No batch graph.** Batches are not proven on their own before a block (the block's
//!   proving tree proves them), so there is no `commit_batch` / `rollback_batch`:
//!   [`Mempool::select_batches`] (each batch interval) cuts the queued transactions, in arrival
//!   order, into batches of up to `max_txs_per_batch`, while fewer than
//!   `max_batches_per_block` batches wait; [`Mempool::select_block`] (each block interval) takes
//!   up to `max_batches_per_block` waiting batches. Batches are a prefix of the arrival order,
//!   so a batch's parents are in earlier batches, in flight or committed. The producer cuts
//!   the block's transactions again into batches of `max_txs_per_batch` for the block kernel,
//!   so a block replays from its transaction list alone: the selected batches decide which
//!   transactions a block takes, and when, not the kernel's batch boundaries. Only the
//!   transaction count is budgeted: the note and account budgets of a batch and the note tree
//!   of a block cannot overflow at the protocol maxima.
//! - **`select_block` returns `None`** when a block is already in flight (miden-node panics). It
//!   otherwise always proposes a block, possibly empty (as miden-node); the producer builds
//!   none when no batch waits, since the block kernel proves a block's transactions.
//! - **Commit and rollback check their input** and return typed errors ([`CommitError`])
//!   instead of panicking: the produced block must be the proposed one and the state the one it
//!   leaves. They return the reverted transaction ids instead of broadcasting events.
//! - **No retention window.** The mempool reads the full committed state handed to it, so
//!   there is no stale-authentication-height check and no `state_retention`; committed input
//!   notes are checked against the state at admission, and the remaining transactions are checked
//!   again against the new state at each commit.
//! - **Unauthenticated notes must be in flight.** A note named unauthenticated whose creator is
//!   already committed is refused (the client names its block and index instead); miden-node
//!   finds it in the store. When a creator is committed while its consumer stays queued, the
//!   mempool rewrites the consumer's input to the committed origin (block and index), which
//!   [`crate::produce_block`] then authenticates through the chain tree: the origin is not
//!   signed ([`crate::tx`]), so the transaction and its id are unchanged.
//! - **A nullifier-tree slot** (a nullifier's first limb) is the unit of double-spend checking,
//!   so two different nullifiers sharing a slot are refused as [`crate::produce_block`] would.
//! - No user-submitted batches (miden-node's July 2026 `add_user_batch`), no mempool events,
//!   no fees: transactions are taken first come, first served.

use std::collections::{HashMap, HashSet};

use sheaf_circuits::Digest;

use crate::account::{Account, AccountId};
use crate::block::ProducedBlock;
use crate::chain::BlockNumber;
use crate::error::TxError;
use crate::limits::{
    DEFAULT_MAX_BATCHES_PER_BLOCK, DEFAULT_MAX_TXS_PER_BATCH, MAX_ACCOUNTS_PER_BATCH,
    MAX_BATCHES_PER_BLOCK, MAX_INPUT_NOTES_PER_BATCH, MAX_INPUT_NOTES_PER_TX,
    MAX_OUTPUT_NOTES_PER_BATCH, MAX_OUTPUT_NOTES_PER_BLOCK, MAX_OUTPUT_NOTES_PER_TX,
    MAX_TXS_PER_BATCH,
};
use crate::notes::{Note, NoteId, Nullifier};
use crate::smt::EMPTY_LEAF;
use crate::state::RollupState;
use crate::tx::{NoteOrigin, Transaction, TxId};

// The transaction count is the only budget a selection needs: at the protocol maxima a batch
// cannot exceed its note or account budget, nor a block its note tree.
const _: () = assert!(MAX_TXS_PER_BATCH * MAX_INPUT_NOTES_PER_TX <= MAX_INPUT_NOTES_PER_BATCH);
const _: () = assert!(MAX_TXS_PER_BATCH * MAX_OUTPUT_NOTES_PER_TX <= MAX_OUTPUT_NOTES_PER_BATCH);
const _: () = assert!(MAX_TXS_PER_BATCH <= MAX_ACCOUNTS_PER_BATCH);
const _: () = assert!(
    MAX_BATCHES_PER_BLOCK * MAX_TXS_PER_BATCH * MAX_OUTPUT_NOTES_PER_TX
        <= MAX_OUTPUT_NOTES_PER_BLOCK
);

/// Default capacity: miden-node's `DEFAULT_MEMPOOL_TX_CAPACITY`, a minute of full blocks
/// (8 transactions · 8 batches · 20 blocks of 3 s).
pub const DEFAULT_MEMPOOL_CAPACITY: usize =
    DEFAULT_MAX_TXS_PER_BATCH * DEFAULT_MAX_BATCHES_PER_BLOCK * (60 / 3);

/// Default expiration slack: miden-node's. A transaction must expire more than this many blocks
/// after the tip, so that it does not expire while it waits for a block.
pub const DEFAULT_EXPIRATION_SLACK: u32 = 2;

/// The mempool's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MempoolConfig {
    /// Most uncommitted transactions (queued and in flight) held at once.
    pub capacity: usize,
    /// A transaction is refused unless its expiration is past `tip + expiration_slack`. Zero is
    /// allowed: the transaction then only has to be includable in the next block.
    pub expiration_slack: u32,
    /// Transactions per batch: the batch size [`crate::produce_block`] cuts with.
    pub max_txs_per_batch: usize,
    /// Batches per block.
    pub max_batches_per_block: usize,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig {
            capacity: DEFAULT_MEMPOOL_CAPACITY,
            expiration_slack: DEFAULT_EXPIRATION_SLACK,
            max_txs_per_batch: DEFAULT_MAX_TXS_PER_BATCH,
            max_batches_per_block: DEFAULT_MAX_BATCHES_PER_BLOCK,
        }
    }
}

impl MempoolConfig {
    /// A configuration, refused when a value is out of range ([`Self::validate`]).
    pub fn new(
        capacity: usize,
        expiration_slack: u32,
        max_txs_per_batch: usize,
        max_batches_per_block: usize,
    ) -> Result<MempoolConfig, MempoolConfigError> {
        let config = MempoolConfig {
            capacity,
            expiration_slack,
            max_txs_per_batch,
            max_batches_per_block,
        };
        config.validate()?;
        Ok(config)
    }

    /// Whether every value is in range: a capacity of at least 1, 1 to
    /// [`MAX_TXS_PER_BATCH`] transactions per batch, 1 to [`MAX_BATCHES_PER_BLOCK`] batches
    /// per block. Any slack is accepted.
    pub fn validate(&self) -> Result<(), MempoolConfigError> {
        if self.capacity == 0 {
            return Err(MempoolConfigError::ZeroCapacity);
        }
        if !(1..=MAX_TXS_PER_BATCH).contains(&self.max_txs_per_batch) {
            return Err(MempoolConfigError::TxsPerBatch(self.max_txs_per_batch));
        }
        if !(1..=MAX_BATCHES_PER_BLOCK).contains(&self.max_batches_per_block) {
            return Err(MempoolConfigError::BatchesPerBlock(
                self.max_batches_per_block,
            ));
        }
        Ok(())
    }

    /// Most transactions one block takes: batches per block times transactions per batch.
    pub fn max_txs_per_block(&self) -> usize {
        self.max_txs_per_batch
            .saturating_mul(self.max_batches_per_block)
    }
}

/// Why a mempool configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolConfigError {
    /// A mempool holds at least one transaction.
    #[error("a mempool's capacity is at least one transaction")]
    ZeroCapacity,
    /// Transactions per batch out of range.
    #[error("{0} transactions per batch is not between 1 and {MAX_TXS_PER_BATCH}")]
    TxsPerBatch(usize),
    /// Batches per block out of range.
    #[error("{0} batches per block is not between 1 and {MAX_BATCHES_PER_BLOCK}")]
    BatchesPerBlock(usize),
}

/// Why a transaction is refused; the mempool is then unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    /// The mempool is full: a transient refusal (the 503 class), the others are the
    /// transaction's fault.
    #[error("the mempool is full ({capacity} transactions)")]
    CapacityExceeded {
        /// The configured capacity.
        capacity: usize,
    },
    /// The state passed is not the committed state the mempool tracks (the caller's mistake).
    #[error("the state is at block {state_tip}, the mempool's committed tip is block {tip}")]
    StateMismatch {
        /// The mempool's committed tip.
        tip: BlockNumber,
        /// The tip of the state passed (equal to `tip` when only the chain differs).
        state_tip: BlockNumber,
    },
    /// The transaction is already in the mempool.
    #[error("transaction {0:?} is already in the mempool")]
    DuplicateTransaction(TxId),
    /// The transaction breaks its own rules (limits, amounts, ownership, value, signature).
    #[error("the transaction breaks its own rules: {0}")]
    InvalidTransaction(#[from] TxError),
    /// The transaction may expire before a block includes it.
    #[error(
        "the transaction expires at block {expiration}, not after block {limit} (tip + slack)"
    )]
    ExpiresTooSoon {
        /// Its expiration.
        expiration: BlockNumber,
        /// The committed tip plus the slack: the expiration must be above it.
        limit: BlockNumber,
    },
    /// The account does not exist.
    #[error("{0} does not exist")]
    AccountNotFound(AccountId),
    /// The transaction starts from another state of the account than its projected one.
    #[error("{account}: the transaction starts from {claimed}, the account will be at {expected}")]
    StaleAccount {
        /// The account.
        account: AccountId,
        /// The commitment of the state the transaction starts from.
        claimed: Digest,
        /// The commitment of the account's projected state: after its latest uncommitted
        /// transaction, or the committed one.
        expected: Digest,
    },
    /// The note was consumed in a committed block.
    #[error("nullifier {0:?} is spent in the committed state")]
    NullifierSpent(Nullifier),
    /// An uncommitted transaction consumes the note.
    #[error("nullifier {0:?} is spent by a transaction in the mempool")]
    NullifierInFlight(Nullifier),
    /// Another nullifier holds (or will hold) this nullifier's slot in the nullifier tree.
    #[error("the slot of nullifier {0:?} holds another nullifier")]
    NullifierSlotTaken(Nullifier),
    /// A committed input note is not where it says it is.
    #[error("note {note:?} is not note {index} of committed block {block}")]
    NoteNotFound {
        /// The note.
        note: NoteId,
        /// The block it claims to be from.
        block: BlockNumber,
        /// Its claimed index in that block's note tree.
        index: u32,
    },
    /// An unauthenticated input note is not created by any uncommitted transaction.
    #[error("note {0:?} is not an output of a transaction in the mempool")]
    UnknownUnauthenticatedNote(NoteId),
    /// The note is created twice by the transaction, or already by an uncommitted one.
    #[error("note {0:?} is already created by a transaction in the mempool")]
    DuplicateOutputNote(NoteId),
}

/// Why [`Mempool::commit_block`] refuses; the mempool is then unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    /// No block was selected.
    #[error("no block is in flight")]
    NoProposedBlock,
    /// The block is not the proposed one: another number, or other transactions.
    #[error("block {0} is not the block in flight")]
    NotTheProposedBlock(BlockNumber),
    /// The state passed is not the state the block leaves.
    #[error("the state's tip is not block {0}")]
    StateNotAtBlock(BlockNumber),
}

/// The transactions of the next block, for [`crate::produce_block`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposedBlock {
    /// The transactions, in an order where each comes after its parents.
    pub transactions: Vec<Transaction>,
    /// The batch size to cut them with.
    pub batch_size: usize,
}

/// An uncommitted transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    id: TxId,
    tx: Transaction,
    /// The uncommitted transactions it depends on, all earlier in arrival order.
    parents: Vec<TxId>,
    /// The batch it was selected in, if it was; batched entries are a prefix of the queued.
    batch: Option<u64>,
}

/// The state the uncommitted transactions lead to, over the committed state (miden-node's
/// "inflight state").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Projection {
    /// The uncommitted transactions.
    txs: HashSet<TxId>,
    /// Each touched account's state after its latest uncommitted transaction, and that
    /// transaction.
    accounts: HashMap<AccountId, (Account, TxId)>,
    /// The nullifiers uncommitted transactions spend, by nullifier-tree slot.
    nullifiers: HashMap<u64, Nullifier>,
    /// The notes uncommitted transactions create, and their creator.
    notes: HashMap<NoteId, (Note, TxId)>,
}

impl Projection {
    /// Check `tx` against the committed state and this projection; on success, its parents.
    /// The transaction's own rules and its expiration are checked by the caller.
    fn check(&self, state: &RollupState, tx: &Transaction) -> Result<Vec<TxId>, MempoolError> {
        let body = &tx.body;
        let id = body.account.id;
        let mut parents = Vec::new();
        let expected = match self.accounts.get(&id) {
            Some((account, parent)) => {
                parents.push(*parent);
                *account
            }
            None => *state.account(id).ok_or(MempoolError::AccountNotFound(id))?,
        };
        // Field by field, as the producer: a nonce claimed as `p + n` hashes like `n`.
        if body.account != expected {
            return Err(MempoolError::StaleAccount {
                account: id,
                claimed: body.account.commitment(),
                expected: expected.commitment(),
            });
        }

        let mut slots = HashSet::new();
        for nullifier in body.nullifiers() {
            match state.nullifier_slot(nullifier) {
                slot if slot == EMPTY_LEAF => {}
                slot if slot == nullifier.0 => return Err(MempoolError::NullifierSpent(nullifier)),
                _ => return Err(MempoolError::NullifierSlotTaken(nullifier)),
            }
            match self.nullifiers.get(&nullifier.slot()) {
                None => {}
                Some(spent) if *spent == nullifier => {
                    return Err(MempoolError::NullifierInFlight(nullifier))
                }
                Some(_) => return Err(MempoolError::NullifierSlotTaken(nullifier)),
            }
            // Equal nullifiers are the transaction's own fault (checked by its rules); two
            // different ones in one slot would overwrite each other in the tree.
            if !slots.insert(nullifier.slot()) {
                return Err(MempoolError::NullifierSlotTaken(nullifier));
            }
        }

        for input in &body.input_notes {
            let note = input.note.id();
            match input.origin {
                NoteOrigin::Committed { block, index } => {
                    match state.note_inclusion(block, index) {
                        Some((found, _)) if found == note => {}
                        _ => return Err(MempoolError::NoteNotFound { note, block, index }),
                    }
                }
                NoteOrigin::Unauthenticated => {
                    let (_, creator) = self
                        .notes
                        .get(&note)
                        .ok_or(MempoolError::UnknownUnauthenticatedNote(note))?;
                    if !parents.contains(creator) {
                        parents.push(*creator);
                    }
                }
            }
        }

        let mut created = HashSet::new();
        for note in &body.output_notes {
            let note = note.id();
            if self.notes.contains_key(&note) || !created.insert(note) {
                return Err(MempoolError::DuplicateOutputNote(note));
            }
        }
        Ok(parents)
    }

    /// Add an admitted transaction.
    fn insert(&mut self, id: TxId, tx: &Transaction) {
        let body = &tx.body;
        self.txs.insert(id);
        self.accounts
            .insert(body.account.id, (body.final_account(), id));
        for nullifier in body.nullifiers() {
            self.nullifiers.insert(nullifier.slot(), nullifier);
        }
        for note in &body.output_notes {
            self.notes.insert(note.id(), (*note, id));
        }
    }

    /// The projection of `entries`, in arrival order.
    fn of(entries: &[Entry]) -> Projection {
        let mut projection = Projection::default();
        for entry in entries {
            projection.insert(entry.id, &entry.tx);
        }
        projection
    }
}

/// The block producer's mempool. See the [module documentation](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mempool {
    config: MempoolConfig,
    /// The committed tip's number.
    tip: BlockNumber,
    /// The committed state's chain root (it commits to every block up to the tip).
    chain_root: Digest,
    /// Every uncommitted transaction in arrival order; the first `proposed` are in flight.
    entries: Vec<Entry>,
    /// How many transactions the block in flight holds, if one is.
    proposed: Option<usize>,
    /// The number the next selected batch gets.
    next_batch: u64,
    projection: Projection,
}

impl Mempool {
    /// An empty mempool over the committed `state`, or why `config` is refused.
    pub fn new(config: MempoolConfig, state: &RollupState) -> Result<Mempool, MempoolConfigError> {
        config.validate()?;
        Ok(Mempool {
            config,
            tip: state.tip().number,
            chain_root: state.chain_root(),
            entries: Vec::new(),
            proposed: None,
            next_batch: 0,
            projection: Projection::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MempoolConfig {
        &self.config
    }

    /// The committed tip's block number.
    pub fn tip(&self) -> BlockNumber {
        self.tip
    }

    /// Admit `tx`, valid on top of the committed `state` and every uncommitted transaction,
    /// or refuse it with the first rule it breaks (the mempool is then unchanged).
    pub fn add_transaction(
        &mut self,
        tx: Transaction,
        state: &RollupState,
    ) -> Result<TxId, MempoolError> {
        if self.entries.len() >= self.config.capacity {
            return Err(MempoolError::CapacityExceeded {
                capacity: self.config.capacity,
            });
        }
        let state_tip = state.tip().number;
        if state_tip != self.tip || state.chain_root() != self.chain_root {
            return Err(MempoolError::StateMismatch {
                tip: self.tip,
                state_tip,
            });
        }
        let id = tx.id();
        if self.projection.txs.contains(&id) {
            return Err(MempoolError::DuplicateTransaction(id));
        }
        tx.check_rules()?;
        let limit = self.tip.saturating_add(self.config.expiration_slack);
        if tx.body.expiration <= limit {
            return Err(MempoolError::ExpiresTooSoon {
                expiration: tx.body.expiration,
                limit,
            });
        }
        let parents = self.projection.check(state, &tx)?;
        self.projection.insert(id, &tx);
        self.entries.push(Entry {
            id,
            tx,
            parents,
            batch: None,
        });
        Ok(id)
    }

    /// Cut the queued transactions not yet in a batch, in arrival order, into batches of up to
    /// `max_txs_per_batch`, while fewer than `max_batches_per_block` batches wait for a block
    /// (the rest stay queued: a block takes no more). Returns how many batches it selected.
    pub fn select_batches(&mut self) -> usize {
        let mut waiting = self.selected_batches();
        let mut selected = 0;
        let mut next = self.in_flight() + self.batched();
        while next < self.entries.len() && waiting < self.config.max_batches_per_block {
            let end = (next + self.config.max_txs_per_batch).min(self.entries.len());
            for entry in &mut self.entries[next..end] {
                entry.batch = Some(self.next_batch);
            }
            self.next_batch += 1;
            next = end;
            waiting += 1;
            selected += 1;
        }
        selected
    }

    /// Batches selected and waiting for a block.
    pub fn selected_batches(&self) -> usize {
        self.waiting_batches().len()
    }

    /// Take the next block's transactions: those of the first `max_batches_per_block` selected
    /// batches (possibly none), which stay in flight until [`Self::commit_block`] or
    /// [`Self::rollback_block`]. `None` while a block is already in flight.
    pub fn select_block(&mut self) -> Option<ProposedBlock> {
        if self.proposed.is_some() {
            return None;
        }
        // Batches are a prefix of the arrival order, which holds the parents of each of its
        // transactions.
        let count: usize = self
            .waiting_batches()
            .into_iter()
            .take(self.config.max_batches_per_block)
            .map(|(_, size)| size)
            .sum();
        self.proposed = Some(count);
        Some(ProposedBlock {
            transactions: self.entries[..count].iter().map(|e| e.tx.clone()).collect(),
            batch_size: self.config.max_txs_per_batch,
        })
    }

    /// The block in flight was produced and `state` is the state it leaves: drop its
    /// transactions, advance the tip, then revert every queued transaction that expired
    /// (`expiration ≤` the new tip) or no longer holds on the new state, with its descendants.
    /// Returns the reverted ids in arrival order. Queued transactions consuming a note the block
    /// created now name it by its block and index.
    pub fn commit_block(
        &mut self,
        produced: &ProducedBlock,
        state: &RollupState,
    ) -> Result<Vec<TxId>, CommitError> {
        let count = self.proposed.ok_or(CommitError::NoProposedBlock)?;
        let number = produced.header.number;
        let same_transactions = produced.witnesses.len() == count
            && produced
                .witnesses
                .iter()
                .zip(&self.entries)
                .all(|(witness, entry)| witness.tx == entry.id);
        if self.tip.checked_add(1) != Some(number) || !same_transactions {
            return Err(CommitError::NotTheProposedBlock(number));
        }
        if *state.tip() != produced.header {
            return Err(CommitError::StateNotAtBlock(number));
        }

        let created: HashMap<NoteId, u32> = produced
            .witnesses
            .iter()
            .flat_map(|w| &w.note_inserts)
            .map(|(note, update)| (*note, update.key as u32))
            .collect();
        self.proposed = None;
        self.tip = number;
        self.chain_root = state.chain_root();
        let remaining = self.entries.split_off(count);
        self.entries.clear();

        // Re-admit what stays, in arrival order, over the new state.
        let mut projection = Projection::default();
        let mut reverted = HashSet::new();
        let mut reverted_ids = Vec::new();
        for mut entry in remaining {
            let orphan = entry.parents.iter().any(|p| reverted.contains(p));
            if !orphan && entry.tx.body.expiration > number {
                authenticate(&mut entry.tx, number, &created);
                if let Ok(parents) = projection.check(state, &entry.tx) {
                    entry.parents = parents;
                    projection.insert(entry.id, &entry.tx);
                    self.entries.push(entry);
                    continue;
                }
            }
            reverted.insert(entry.id);
            reverted_ids.push(entry.id);
        }
        self.projection = projection;
        Ok(reverted_ids)
    }

    /// The block in flight failed: drop its transactions and all their descendants, without
    /// requeueing them. Returns the dropped ids in arrival order (none when no block is in
    /// flight).
    pub fn rollback_block(&mut self) -> Vec<TxId> {
        let Some(count) = self.proposed.take() else {
            return Vec::new();
        };
        let mut dropped: HashSet<TxId> = self.entries[..count].iter().map(|e| e.id).collect();
        let mut dropped_ids: Vec<TxId> = self.entries[..count].iter().map(|e| e.id).collect();
        let mut kept = Vec::with_capacity(self.entries.len() - count);
        for entry in self.entries.drain(..).skip(count) {
            if entry.parents.iter().any(|p| dropped.contains(p)) {
                dropped.insert(entry.id);
                dropped_ids.push(entry.id);
            } else {
                kept.push(entry);
            }
        }
        // What stays is closed under parents, so it is still valid as it was admitted.
        self.projection = Projection::of(&kept);
        self.entries = kept;
        dropped_ids
    }

    /// Transactions in a selected batch, waiting for a block.
    pub fn batched(&self) -> usize {
        self.entries[self.in_flight()..]
            .iter()
            .take_while(|e| e.batch.is_some())
            .count()
    }

    /// The waiting batches, in order: each one's number and size.
    fn waiting_batches(&self) -> Vec<(u64, usize)> {
        let mut batches: Vec<(u64, usize)> = Vec::new();
        for batch in self.entries[self.in_flight()..]
            .iter()
            .map_while(|e| e.batch)
        {
            match batches.last_mut() {
                Some((last, size)) if *last == batch => *size += 1,
                _ => batches.push((batch, 1)),
            }
        }
        batches
    }

    /// Queued transactions, batched or not (not in the block in flight).
    pub fn pending(&self) -> usize {
        self.entries.len() - self.in_flight()
    }

    /// Transactions in the block in flight.
    pub fn in_flight(&self) -> usize {
        self.proposed.unwrap_or(0)
    }

    /// Every uncommitted transaction, queued or in flight: what the capacity bounds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the mempool holds no transaction.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The queued transactions' ids, in arrival order.
    pub fn pending_ids(&self) -> Vec<TxId> {
        self.entries[self.in_flight()..]
            .iter()
            .map(|e| e.id)
            .collect()
    }

    /// The ids of the block in flight's transactions, in block order.
    pub fn in_flight_ids(&self) -> Vec<TxId> {
        self.entries[..self.in_flight()]
            .iter()
            .map(|e| e.id)
            .collect()
    }

    /// Whether the transaction is in the mempool (queued or in flight).
    pub fn contains(&self, id: TxId) -> bool {
        self.projection.txs.contains(&id)
    }

    /// The account's state after its latest uncommitted transaction, if it has one: what its
    /// next transaction must start from.
    pub fn projected_account(&self, id: AccountId) -> Option<&Account> {
        self.projection
            .accounts
            .get(&id)
            .map(|(account, _)| account)
    }

    /// The note, if an uncommitted transaction creates it: what a transaction may consume as
    /// unauthenticated.
    pub fn projected_note(&self, id: NoteId) -> Option<&Note> {
        self.projection.notes.get(&id).map(|(note, _)| note)
    }
}

/// Name every unauthenticated input note that block `number` created by its place there.
fn authenticate(tx: &mut Transaction, number: BlockNumber, created: &HashMap<NoteId, u32>) {
    for input in &mut tx.body.input_notes {
        if input.origin == NoteOrigin::Unauthenticated {
            if let Some(index) = created.get(&input.note.id()) {
                input.origin = NoteOrigin::Committed {
                    block: number,
                    index: *index,
                };
            }
        }
    }
}
