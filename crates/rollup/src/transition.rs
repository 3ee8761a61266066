//! State transitions: what every rollup proof below the block kernel states, and how two of them
//! join.
//!
//! The block is published before it is proven, so the producer knows the order of its
//! transactions and every intermediate state. A tx kernel proves one transaction *against the
//! state it runs on*: the five parts of [`StateRoots`] before and after. A merge node joins two
//! adjacent transitions when the left one ends where the right one starts, so a subtree of merge
//! nodes proves its transactions in order from the first one's state to the last one's, and the
//! block kernel binds the whole block's transition to the previous header and the new one.
//!
//! ```text
//!  tx 1: S0 ─▶ S1    tx 2: S1 ─▶ S2    tx 3: S2 ─▶ S3
//!        └── merge: S0 ─▶ S2 ──┘            │
//!                  └──────── merge: S0 ─▶ S3 ┘ ─▶ block kernel: header n−1 ─▶ header n
//! ```
//!
//! The batch rules come out of the chaining: a transaction applied twice, or two transactions
//! of one account out of order, start from a stale account leaf; a nullifier spent twice (in one
//! transaction, one batch or two) fails its second insertion against the intermediate root; a
//! note consumed before it was created is not yet in the block's note tree. The statement of a
//! proof is `H(Transition ‖ fields)` ([`Transition::digest`]).

use plonky2::field::types::Field;
use serde::{Deserialize, Serialize};
use sheaf_circuits::{Digest, F};

use crate::chain::{BlockHeader, BlockNumber};
use crate::hash::{felt, hash_tagged, Domain};
use crate::limits::NOTE_TREE_DEPTH;
use crate::smt::empty_root;
use crate::tx::TxId;
use crate::witness::TxWitness;

/// The parts of the state a transaction changes, at one point of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRoots {
    /// Root of the account tree.
    pub account_root: Digest,
    /// Root of the nullifier tree.
    pub nullifier_root: Digest,
    /// Root of the block's note tree so far.
    pub note_root: Digest,
    /// Notes the block has created so far: the next note's index.
    pub note_count: u32,
    /// The block's transaction accumulator so far.
    pub tx_accumulator: Digest,
}

/// Field elements of [`StateRoots`].
pub const STATE_ROOTS_LEN: usize = 17;

impl StateRoots {
    /// The state at the start of a block built on `previous`: its account and nullifier roots,
    /// an empty note tree, no transaction yet.
    pub fn block_start(previous: &BlockHeader) -> StateRoots {
        StateRoots {
            account_root: previous.account_root,
            nullifier_root: previous.nullifier_root,
            note_root: empty_root(NOTE_TREE_DEPTH),
            note_count: 0,
            tx_accumulator: Digest::ZERO,
        }
    }

    /// As field elements, in declaration order.
    pub fn to_fields(&self) -> [F; STATE_ROOTS_LEN] {
        let mut out = [F::ZERO; STATE_ROOTS_LEN];
        out[0..4].copy_from_slice(&self.account_root.to_fields());
        out[4..8].copy_from_slice(&self.nullifier_root.to_fields());
        out[8..12].copy_from_slice(&self.note_root.to_fields());
        out[12] = felt(self.note_count as u64);
        out[13..17].copy_from_slice(&self.tx_accumulator.to_fields());
        out
    }
}

/// The transaction accumulator after `tx` joins `accumulator`: `H(TxAccumulator ‖ acc ‖ id)`.
/// A block header's transaction commitment is the accumulator after its last transaction.
pub fn accumulate_tx(accumulator: Digest, tx: TxId) -> Digest {
    let mut fields = accumulator.to_fields().to_vec();
    fields.extend_from_slice(&tx.0.to_fields());
    hash_tagged(Domain::TxAccumulator, &fields)
}

/// What a tx kernel or a merge node proves: a run of a block's transactions, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// The state before the first transaction.
    pub before: StateRoots,
    /// The state after the last.
    pub after: StateRoots,
    /// The chain root of the block (input notes of earlier blocks are authenticated under it).
    pub chain_root: Digest,
    /// The block the transactions are in.
    pub block: BlockNumber,
    /// The earliest expiration among the transactions: the run's expiration.
    pub expiration: BlockNumber,
    /// Transactions in the run.
    pub tx_count: u32,
}

/// Field elements of a [`Transition`] (without the tag).
pub const TRANSITION_LEN: usize = 2 * STATE_ROOTS_LEN + 4 + 3;

/// Why two transitions do not join.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// The right one does not start where the left one ends.
    #[error("the right transition does not start from the state the left one ends in")]
    StateDoesNotChain,
    /// They are of different blocks (number or chain root).
    #[error("the transitions are of different blocks")]
    OtherBlock,
}

impl Transition {
    /// The transition of one applied transaction.
    pub fn of_tx(witness: &TxWitness, expiration: BlockNumber) -> Transition {
        let outputs = witness.note_inserts.len() as u32;
        Transition {
            before: StateRoots {
                account_root: witness.account_update.root_before,
                nullifier_root: witness.nullifier_root_before,
                note_root: witness.note_root_before,
                note_count: witness.note_count_before,
                tx_accumulator: witness.tx_accumulator_before,
            },
            after: StateRoots {
                account_root: witness.account_update.root_after,
                nullifier_root: witness.nullifier_root_after,
                note_root: witness.note_root_after,
                // Wrapping, so that a hostile witness cannot panic: a real count stays below
                // 2^16 (the note tree's slots), where the kernel puts every created note.
                note_count: witness.note_count_before.wrapping_add(outputs),
                tx_accumulator: accumulate_tx(witness.tx_accumulator_before, witness.tx),
            },
            chain_root: witness.chain_root,
            block: witness.block,
            expiration,
            tx_count: 1,
        }
    }

    /// `self` then `next`: the merge node's rule.
    pub fn join(&self, next: &Transition) -> Result<Transition, JoinError> {
        if self.block != next.block || self.chain_root != next.chain_root {
            return Err(JoinError::OtherBlock);
        }
        if self.after != next.before {
            return Err(JoinError::StateDoesNotChain);
        }
        Ok(Transition {
            before: self.before,
            after: next.after,
            chain_root: self.chain_root,
            block: self.block,
            expiration: self.expiration.min(next.expiration),
            tx_count: self.tx_count + next.tx_count,
        })
    }

    /// As field elements: before, after, chain root, block, expiration, transaction count.
    pub fn to_fields(&self) -> [F; TRANSITION_LEN] {
        let mut out = [F::ZERO; TRANSITION_LEN];
        out[0..STATE_ROOTS_LEN].copy_from_slice(&self.before.to_fields());
        out[STATE_ROOTS_LEN..2 * STATE_ROOTS_LEN].copy_from_slice(&self.after.to_fields());
        let at = 2 * STATE_ROOTS_LEN;
        out[at..at + 4].copy_from_slice(&self.chain_root.to_fields());
        out[at + 4] = felt(self.block as u64);
        out[at + 5] = felt(self.expiration as u64);
        out[at + 6] = felt(self.tx_count as u64);
        out
    }

    /// The statement of a proof of this transition: `H(Transition ‖ fields)`.
    pub fn digest(&self) -> Digest {
        hash_tagged(Domain::Transition, &self.to_fields())
    }

    /// The header of the block this transition makes of the block after `previous`, at
    /// `timestamp`; the block kernel's rule.
    pub fn header(&self, previous: &BlockHeader, timestamp: u64) -> BlockHeader {
        BlockHeader {
            prev_block_commitment: previous.commitment(),
            number: self.block,
            chain_root: self.chain_root,
            account_root: self.after.account_root,
            nullifier_root: self.after.nullifier_root,
            note_root: self.after.note_root,
            tx_commitment: self.after.tx_accumulator,
            timestamp,
        }
    }
}

/// The block kernel's statement: `H(BlockStatement ‖ previous commitment ‖ new commitment)`.
pub fn block_statement(previous: &BlockHeader, header: &BlockHeader) -> Digest {
    let mut fields = previous.commitment().to_fields().to_vec();
    fields.extend_from_slice(&header.commitment().to_fields());
    hash_tagged(Domain::BlockStatement, &fields)
}

/// The statement of a local transaction's signed half, as its client proves it:
/// `H(LocalTx ‖ tx id)`. The id binds every field of the transaction (its accounts before and
/// after, its notes, its expiration), so this says: the transaction with this id is signed by its
/// account and conserves value.
pub fn local_tx_statement(tx: TxId) -> Digest {
    hash_tagged(Domain::LocalTx, &tx.0.to_fields())
}

/// The statement of a transaction applied to the state without its signature, the network's
/// half of a local transaction: `H(AppliedTx ‖ transition digest ‖ tx id)`. Alone it is worth
/// nothing; the pair rule joins it to the client's [`local_tx_statement`] of the same id.
pub fn applied_tx_statement(transition: &Transition, tx: TxId) -> Digest {
    let mut fields = transition.digest().to_fields().to_vec();
    fields.extend_from_slice(&tx.0.to_fields());
    hash_tagged(Domain::AppliedTx, &fields)
}
