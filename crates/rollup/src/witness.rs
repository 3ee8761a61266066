//! What the circuits need to re-check one applied transaction: every Merkle path at the
//! intermediate root it was taken at, and the roots before and after.
//!
//! A tree's root after an update is the path recomputed with the new leaf: a path proves the old
//! leaf under `root_before` and, with the same siblings, defines `root_after`.

use serde::{Deserialize, Serialize};
use sheaf_circuits::Digest;

use crate::account::Account;
use crate::chain::{BlockNumber, NoteInclusionProof};
use crate::notes::{NoteId, Nullifier};
use crate::smt::MerklePath;
use crate::tx::TxId;

/// One leaf update of a tree: `leaf_before → leaf_after` at `key` along `path`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeUpdate {
    /// The leaf's key.
    pub key: u64,
    /// The siblings of the leaf, valid for both roots.
    pub path: MerklePath,
    /// The root before the update.
    pub root_before: Digest,
    /// The root after it.
    pub root_after: Digest,
}

/// How an input note was authenticated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputNoteWitness {
    /// In an earlier block: its inclusion proof under the new block's `chain_root`.
    Committed(Box<NoteInclusionProof>),
    /// Earlier in this block: its index and path in the block's note tree as it stood when the
    /// transaction ran (root: [`TxWitness::note_root_before`]).
    Unauthenticated {
        /// Its index in the block's note tree.
        index: u32,
        /// Its path.
        path: MerklePath,
    },
}

/// The witnesses of one transaction applied at its place in the block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxWitness {
    /// The transaction.
    pub tx: TxId,
    /// The account before.
    pub account_before: Account,
    /// The account after.
    pub account_after: Account,
    /// The account leaf's update (commitment before → after) in the account tree.
    pub account_update: TreeUpdate,
    /// Each input note's authentication, in input order.
    pub input_notes: Vec<InputNoteWitness>,
    /// Each nullifier's insertion (empty → nullifier) into the nullifier tree, in input order.
    pub nullifier_inserts: Vec<(Nullifier, TreeUpdate)>,
    /// Each output note's insertion (empty → id) into the block's note tree, in output order.
    pub note_inserts: Vec<(NoteId, TreeUpdate)>,
    /// The block's note root before the transaction.
    pub note_root_before: Digest,
    /// The block's note root after it.
    pub note_root_after: Digest,
    /// Notes the block had created before the transaction: its first output's index.
    pub note_count_before: u32,
    /// The nullifier root before the transaction.
    pub nullifier_root_before: Digest,
    /// The nullifier root after it.
    pub nullifier_root_after: Digest,
    /// The block's transaction accumulator before the transaction.
    pub tx_accumulator_before: Digest,
    /// The block being produced.
    pub block: BlockNumber,
    /// The chain root the block commits to (its input notes of earlier blocks are under it).
    pub chain_root: Digest,
}

impl TxWitness {
    /// The account root before the transaction.
    pub fn account_root_before(&self) -> Digest {
        self.account_update.root_before
    }

    /// The account root after it.
    pub fn account_root_after(&self) -> Digest {
        self.account_update.root_after
    }
}
