//! The native block producer: apply an ordered list of transactions, in batches, to a copy of
//! the state; on success the new state, the header, the batches and every witness; on any
//! broken rule a typed error and the original state untouched.
//!
//! ```text
//!  txs ─▶ batches of ≤ 8 ─▶ batch rules (no dup tx/nullifier, limits) ─┐
//!                                                                      ▼
//!  state.clone() ─▶ for each tx, in order:  expiration · own rules · account chaining ·
//!                   note authentication · nullifier unspent · apply + witnesses
//!                ─▶ header (prev, number, chain root, roots, tx accumulator, time) ─▶ push
//! ```
//!
//! Notes consumed in the block they were created in stay in its note tree (no erasure): their
//! nullifiers are spent anyway, and keeping them saves the circuit a second note-tree update.

use std::collections::{HashMap, HashSet};

use crate::batch::{check_batch, BatchSummary};
use crate::chain::{BlockHeader, BlockNumber, NoteTree};
use crate::error::{BlockError, TxError};
use crate::limits::{
    MAX_BATCHES_PER_BLOCK, MAX_OUTPUT_NOTES_PER_BLOCK, MAX_TIMESTAMP_BITS, MAX_TXS_PER_BATCH,
};
use crate::notes::NoteId;
use crate::smt::EMPTY_LEAF;
use crate::state::RollupState;
use crate::transition::accumulate_tx;
use crate::tx::{NoteOrigin, Transaction};
use crate::witness::{InputNoteWitness, TreeUpdate, TxWitness};

/// A block the producer made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducedBlock {
    /// The state after the block.
    pub state: RollupState,
    /// The block's header.
    pub header: BlockHeader,
    /// Its batches, in order.
    pub batches: Vec<BatchSummary>,
    /// One witness per transaction, in block order.
    pub witnesses: Vec<TxWitness>,
}

/// Produce the block after `state`'s tip from `transactions` in this order, cut into batches of
/// at most `max_txs_per_batch`. `state` is never modified; the new state is in the result.
pub fn produce_block(
    state: &RollupState,
    transactions: &[Transaction],
    timestamp: u64,
    max_txs_per_batch: usize,
) -> Result<ProducedBlock, BlockError> {
    if max_txs_per_batch == 0 || max_txs_per_batch > MAX_TXS_PER_BATCH {
        return Err(BlockError::BatchSize(max_txs_per_batch));
    }
    let tip = state.tip();
    let number = tip.number.checked_add(1).ok_or(BlockError::ChainFull)?;
    if timestamp >> MAX_TIMESTAMP_BITS != 0 {
        return Err(BlockError::TimestampOutOfRange(timestamp));
    }
    if timestamp <= tip.timestamp {
        return Err(BlockError::TimestampNotIncreasing {
            previous: tip.timestamp,
            proposed: timestamp,
        });
    }
    let batch_count = transactions.len().div_ceil(max_txs_per_batch);
    if batch_count > MAX_BATCHES_PER_BLOCK {
        return Err(BlockError::TooManyBatches(batch_count));
    }
    let output_notes: usize = transactions
        .iter()
        .map(|tx| tx.body.output_notes.len())
        .sum();
    if output_notes > MAX_OUTPUT_NOTES_PER_BLOCK {
        return Err(BlockError::TooManyOutputNotes(output_notes));
    }

    let mut batches = Vec::with_capacity(batch_count);
    let mut block_txs = HashSet::new();
    for (index, batch) in transactions.chunks(max_txs_per_batch).enumerate() {
        let summary = check_batch(batch).map_err(|source| BlockError::Batch {
            batch: index,
            source,
        })?;
        for tx in &summary.transactions {
            if !block_txs.insert(*tx) {
                return Err(BlockError::DuplicateTransaction(*tx));
            }
        }
        batches.push(summary);
    }

    let mut next = state.clone();
    let mut block = BlockNotes {
        number,
        chain_root: next.chain_root(),
        ..BlockNotes::default()
    };
    let mut witnesses = Vec::with_capacity(transactions.len());
    for (index, tx) in transactions.iter().enumerate() {
        let witness = apply_transaction(&mut next, &mut block, tx)
            .map_err(|source| BlockError::Transaction { index, source })?;
        witnesses.push(witness);
    }

    let (chain_root, notes) = (block.chain_root, block);
    let header = BlockHeader {
        prev_block_commitment: tip.commitment(),
        number,
        chain_root,
        account_root: next.account_root(),
        nullifier_root: next.nullifier_root(),
        note_root: notes.tree.root(),
        tx_commitment: notes.tx_accumulator,
        timestamp,
    };
    next.push_block(header, notes.tree);
    Ok(ProducedBlock {
        state: next,
        header,
        batches,
        witnesses,
    })
}

impl RollupState {
    /// Produce the next block from `transactions` ([`produce_block`]) and, only if every rule
    /// held, become its state.
    pub fn apply_block(
        &mut self,
        transactions: &[Transaction],
        timestamp: u64,
        max_txs_per_batch: usize,
    ) -> Result<ProducedBlock, BlockError> {
        let produced = produce_block(self, transactions, timestamp, max_txs_per_batch)?;
        *self = produced.state.clone();
        Ok(produced)
    }
}

/// The block being produced: its number and chain root, its note tree and where each note sits
/// in it, and its transaction accumulator.
#[derive(Default)]
struct BlockNotes {
    number: BlockNumber,
    chain_root: sheaf_circuits::Digest,
    tree: NoteTree,
    index_of: HashMap<NoteId, u32>,
    tx_accumulator: sheaf_circuits::Digest,
}

/// Check one transaction at its place in the block and apply it to `state` and `notes`. Every
/// check comes before the first change, so a refused transaction leaves both as they were.
fn apply_transaction(
    state: &mut RollupState,
    notes: &mut BlockNotes,
    tx: &Transaction,
) -> Result<TxWitness, TxError> {
    let number = notes.number;
    let body = &tx.body;
    if number > body.expiration {
        return Err(TxError::Expired {
            expiration: body.expiration,
            block: number,
        });
    }
    tx.check_rules()?;
    let id = body.account.id;
    let current = state.account(id).ok_or(TxError::AccountNotFound(id))?;
    // Compared field by field, not by commitment: a nonce claimed as `p + n` hashes like `n`.
    if *current != body.account {
        return Err(TxError::StaleAccountCommitment {
            account: id,
            claimed: body.account.commitment(),
            current: current.commitment(),
        });
    }

    let mut input_notes = Vec::with_capacity(body.input_notes.len());
    for input in &body.input_notes {
        let note = input.note.id();
        let witness = match input.origin {
            NoteOrigin::Committed { block, index } => {
                let not_found = TxError::NoteNotFound { note, block, index };
                let (found, proof) = state
                    .note_inclusion(block, index)
                    .ok_or(not_found.clone())?;
                if found != note {
                    return Err(not_found);
                }
                InputNoteWitness::Committed(Box::new(proof))
            }
            NoteOrigin::Unauthenticated => {
                let index = *notes
                    .index_of
                    .get(&note)
                    .ok_or(TxError::UnauthenticatedNoteNotFound(note))?;
                InputNoteWitness::Unauthenticated {
                    index,
                    path: notes.tree.path(index as u64),
                }
            }
        };
        input_notes.push(witness);
    }
    let nullifiers = body.nullifiers();
    // Two nullifiers of this transaction may share a slot (their first limb) without being
    // equal: the second insertion would then find the slot taken, as the tx kernel does.
    let mut slots = HashSet::new();
    for nullifier in &nullifiers {
        match state.nullifier_slot(*nullifier) {
            slot if slot == EMPTY_LEAF => {}
            slot if slot == nullifier.0 => return Err(TxError::NullifierAlreadySpent(*nullifier)),
            _ => return Err(TxError::NullifierSlotTaken(*nullifier)),
        }
        if !slots.insert(nullifier.slot()) {
            return Err(TxError::NullifierSlotTaken(*nullifier));
        }
    }
    let output_ids: Vec<NoteId> = body.output_notes.iter().map(|n| n.id()).collect();
    let mut created = HashSet::new();
    for note in &output_ids {
        if notes.index_of.contains_key(note) || !created.insert(*note) {
            return Err(TxError::DuplicateOutputNote(*note));
        }
    }

    // Every rule held: apply, recording each path at the root it was taken at.
    let account_after = body.final_account();
    let account_update = {
        let root_before = state.account_root();
        let path = state.account_path(id);
        state.set_account(account_after);
        TreeUpdate {
            key: id.0 as u64,
            path,
            root_before,
            root_after: state.account_root(),
        }
    };
    let nullifier_root_before = state.nullifier_root();
    let mut nullifier_inserts = Vec::with_capacity(nullifiers.len());
    for nullifier in nullifiers {
        let root_before = state.nullifier_root();
        let path = state.nullifier_path(nullifier);
        state.spend(nullifier);
        let update = TreeUpdate {
            key: nullifier.slot(),
            path,
            root_before,
            root_after: state.nullifier_root(),
        };
        nullifier_inserts.push((nullifier, update));
    }
    let note_root_before = notes.tree.root();
    let note_count_before = notes.index_of.len() as u32;
    let mut note_inserts = Vec::with_capacity(output_ids.len());
    for note in output_ids {
        let index = notes.index_of.len() as u32;
        let root_before = notes.tree.root();
        let path = notes.tree.path(index as u64);
        notes.tree.insert(index as u64, note.0);
        notes.index_of.insert(note, index);
        let update = TreeUpdate {
            key: index as u64,
            path,
            root_before,
            root_after: notes.tree.root(),
        };
        note_inserts.push((note, update));
    }
    let tx_accumulator_before = notes.tx_accumulator;
    notes.tx_accumulator = accumulate_tx(tx_accumulator_before, tx.id());
    Ok(TxWitness {
        tx: tx.id(),
        account_before: body.account,
        account_after,
        account_update,
        input_notes,
        nullifier_inserts,
        note_inserts,
        note_root_before,
        note_root_after: notes.tree.root(),
        note_count_before,
        nullifier_root_before,
        nullifier_root_after: state.nullifier_root(),
        tx_accumulator_before,
        block: number,
        chain_root: notes.chain_root,
    })
}
