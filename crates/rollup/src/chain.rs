//! Block headers and the chain commitment: how a note of any earlier block is authenticated.
//!
//! ```text
//!  chain tree (depth 32): leaf n = commitment of block n
//!        ▲ path at index m                       header n.chain_root = root over blocks 0 … n−1
//!  header m ──H──▶ commitment(m)
//!        │ note_root
//!        ▼ path at index i
//!  note tree of block m (depth 16): leaf i = note id
//! ```
//!
//! A fixed-depth incremental Merkle tree rather than Miden's MMR: a circuit checks a fixed
//! number of levels (32 permutations) with no peak bookkeeping, and a block's slot never moves.
//! Header `n` commits to the chain of all blocks before it, so a transaction in block `n`
//! authenticates a note of block `m < n` with `(header m, chain path m, note path)`.

use serde::{Deserialize, Serialize};
use sheaf_circuits::Digest;

use crate::hash::{felt, hash_tagged, Domain};
use crate::limits::{CHAIN_TREE_DEPTH, NOTE_TREE_DEPTH};
use crate::smt::SparseMerkleTree;

/// A block's number: genesis is 0.
pub type BlockNumber = u32;

/// The Merkle tree of block commitments, leaf `n` for block `n`.
pub type ChainTree = SparseMerkleTree<CHAIN_TREE_DEPTH>;

/// A block's note tree: leaf `i` is the id of the block's `i`-th created note.
pub type NoteTree = SparseMerkleTree<NOTE_TREE_DEPTH>;

/// A block header, in the spirit of Miden's (REFERENCE §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockHeader {
    /// Commitment of the previous block (zero for genesis).
    pub prev_block_commitment: Digest,
    /// This block's number.
    pub number: BlockNumber,
    /// Root of the chain tree over blocks `0 … number − 1`.
    pub chain_root: Digest,
    /// Root of the account tree after this block.
    pub account_root: Digest,
    /// Root of the nullifier tree after this block.
    pub nullifier_root: Digest,
    /// Root of this block's note tree.
    pub note_root: Digest,
    /// The transaction accumulator after the block's last transaction ([`crate::accumulate_tx`]).
    pub tx_commitment: Digest,
    /// Unix milliseconds; strictly increasing from block to block.
    pub timestamp: u64,
}

impl BlockHeader {
    /// `H(BlockHeader ‖ every field in declaration order)`: 27 elements, four permutations.
    pub fn commitment(&self) -> Digest {
        let mut fields = self.prev_block_commitment.to_fields().to_vec();
        fields.push(felt(self.number as u64));
        for root in [
            self.chain_root,
            self.account_root,
            self.nullifier_root,
            self.note_root,
            self.tx_commitment,
        ] {
            fields.extend_from_slice(&root.to_fields());
        }
        fields.push(felt(self.timestamp));
        hash_tagged(Domain::BlockHeader, &fields)
    }
}

/// The proof that a note was created in an earlier block: the block's header, its path in the
/// chain tree, and the note's path in the block's note tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteInclusionProof {
    /// The header of the block that created the note.
    pub header: BlockHeader,
    /// The header commitment's path in the chain tree (index `header.number`).
    pub chain_path: crate::smt::MerklePath,
    /// The note's index in the block's note tree.
    pub index: u32,
    /// The note id's path in the block's note tree.
    pub note_path: crate::smt::MerklePath,
}

impl NoteInclusionProof {
    /// Whether `note` is note `index` of a block committed under `chain_root`. The pure check
    /// the tx kernel mirrors: 4 permutations for the header, 32 + 16 for the two paths.
    pub fn verify(&self, chain_root: Digest, note: crate::notes::NoteId) -> bool {
        crate::smt::verify_path::<CHAIN_TREE_DEPTH>(
            chain_root,
            self.header.number as u64,
            self.header.commitment(),
            &self.chain_path,
        ) && crate::smt::verify_path::<NOTE_TREE_DEPTH>(
            self.header.note_root,
            self.index as u64,
            note.0,
            &self.note_path,
        )
    }
}
