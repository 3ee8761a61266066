//! Sparse Merkle trees of fixed depth over Poseidon, and the pure path verifier circuits mirror.
//!
//! ```text
//!  root                      level DEPTH
//!   ├── H(l, r) …            a node is `two_to_one(left, right)`
//!   └── leaves               level 0: a Digest per key, `EMPTY_LEAF` (zero) when unset
//! ```
//!
//! A key is a leaf index below `2^DEPTH`; its bits, least significant first, say at each level
//! whether the running hash is the left (0) or the right (1) child. An empty subtree of height
//! `h` has the precomputed hash [`empty_root`]`(h)`, so only nodes on a set leaf's path are
//! stored: a tree of `n` set leaves holds at most `n · DEPTH` nodes whatever its depth.
//!
//! Membership of `(key, leaf)` and non-membership of `key` (its leaf is [`EMPTY_LEAF`]) are the
//! same check, [`verify_path`]: the root recomputed from the leaf and `DEPTH` siblings. A circuit
//! does exactly that: `DEPTH` two-to-one Poseidon permutations and one conditional swap per level.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use sheaf_circuits::Digest;

/// The deepest tree supported (the nullifier tree's depth).
pub const MAX_DEPTH: usize = 64;

/// The value of an unset leaf.
pub const EMPTY_LEAF: Digest = Digest::ZERO;

/// The root of an empty subtree of height `height` (`0`: an empty leaf).
pub fn empty_root(height: usize) -> Digest {
    static EMPTY: OnceLock<Vec<Digest>> = OnceLock::new();
    EMPTY.get_or_init(|| {
        let mut hashes = vec![EMPTY_LEAF];
        for h in 0..MAX_DEPTH {
            hashes.push(Digest::two_to_one(hashes[h], hashes[h]));
        }
        hashes
    })[height]
}

/// The siblings from a leaf up to the root, leaf level first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerklePath {
    /// One sibling per level, `siblings[0]` next to the leaf.
    pub siblings: Vec<Digest>,
}

impl MerklePath {
    /// The root that `leaf` at `key` hashes up to along this path.
    pub fn compute_root(&self, key: u64, leaf: Digest) -> Digest {
        self.siblings
            .iter()
            .enumerate()
            .fold(leaf, |node, (level, sibling)| {
                if (key >> level) & 1 == 0 {
                    Digest::two_to_one(node, *sibling)
                } else {
                    Digest::two_to_one(*sibling, node)
                }
            })
    }
}

/// Whether `leaf` sits at `key` under `root` in a tree of depth `DEPTH`: the path has exactly
/// `DEPTH` siblings, the key fits in `DEPTH` bits, and the recomputed root is `root`.
/// With `leaf = EMPTY_LEAF` this is the non-membership check.
pub fn verify_path<const DEPTH: usize>(
    root: Digest,
    key: u64,
    leaf: Digest,
    path: &MerklePath,
) -> bool {
    path.siblings.len() == DEPTH && key_fits(key, DEPTH) && path.compute_root(key, leaf) == root
}

fn key_fits(key: u64, depth: usize) -> bool {
    depth >= 64 || key >> depth == 0
}

/// A sparse Merkle tree of depth `DEPTH` (at most [`MAX_DEPTH`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SparseMerkleTree<const DEPTH: usize> {
    /// Non-empty nodes by `(level, index)`; level 0 holds the leaves, level `DEPTH` the root.
    nodes: HashMap<(u8, u64), Digest>,
}

impl<const DEPTH: usize> Default for SparseMerkleTree<DEPTH> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const DEPTH: usize> SparseMerkleTree<DEPTH> {
    /// The tree's depth.
    pub const DEPTH: usize = DEPTH;

    /// An empty tree.
    pub fn new() -> Self {
        const { assert!(DEPTH >= 1 && DEPTH <= MAX_DEPTH) };
        SparseMerkleTree {
            nodes: HashMap::new(),
        }
    }

    /// Whether `key` is a slot of this tree.
    pub fn contains_key(key: u64) -> bool {
        key_fits(key, DEPTH)
    }

    /// The root.
    pub fn root(&self) -> Digest {
        self.node(DEPTH, 0)
    }

    /// The leaf at `key` ([`EMPTY_LEAF`] when unset or out of range).
    pub fn get(&self, key: u64) -> Digest {
        if Self::contains_key(key) {
            self.node(0, key)
        } else {
            EMPTY_LEAF
        }
    }

    /// The path from `key`'s leaf to the root.
    ///
    /// Panics when `key` is not a slot ([`Self::contains_key`]); callers check keys at the edge.
    pub fn path(&self, key: u64) -> MerklePath {
        assert!(Self::contains_key(key), "key outside the tree");
        MerklePath {
            siblings: (0..DEPTH)
                .map(|level| self.node(level, (key >> level) ^ 1))
                .collect(),
        }
    }

    /// Set the leaf at `key` (to [`EMPTY_LEAF`] to clear it) and rehash its path.
    ///
    /// Panics when `key` is not a slot ([`Self::contains_key`]).
    pub fn insert(&mut self, key: u64, leaf: Digest) {
        assert!(Self::contains_key(key), "key outside the tree");
        let mut node = leaf;
        for level in 0..DEPTH {
            let index = key >> level;
            self.store(level, index, node);
            let sibling = self.node(level, index ^ 1);
            node = if index & 1 == 0 {
                Digest::two_to_one(node, sibling)
            } else {
                Digest::two_to_one(sibling, node)
            };
        }
        self.store(DEPTH, 0, node);
    }

    fn node(&self, level: usize, index: u64) -> Digest {
        self.nodes
            .get(&(level as u8, index))
            .copied()
            .unwrap_or_else(|| empty_root(level))
    }

    fn store(&mut self, level: usize, index: u64, node: Digest) {
        if node == empty_root(level) {
            self.nodes.remove(&(level as u8, index));
        } else {
            self.nodes.insert((level as u8, index), node);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_tree_root_is_the_precomputed_empty_root() {
        assert_eq!(SparseMerkleTree::<32>::new().root(), empty_root(32));
    }

    #[test]
    fn clearing_every_leaf_returns_to_the_empty_tree() {
        let mut tree = SparseMerkleTree::<16>::new();
        tree.insert(5, Digest([1, 2, 3, 4]));
        tree.insert(6, Digest([5, 6, 7, 8]));
        tree.insert(5, EMPTY_LEAF);
        tree.insert(6, EMPTY_LEAF);
        assert_eq!(tree, SparseMerkleTree::<16>::new());
    }

    #[test]
    fn a_small_tree_matches_a_dense_computation() {
        let leaves = [Digest([1; 4]), Digest([2; 4]), EMPTY_LEAF, Digest([4; 4])];
        let mut tree = SparseMerkleTree::<2>::new();
        for (i, leaf) in leaves.iter().enumerate() {
            tree.insert(i as u64, *leaf);
        }
        let dense = Digest::two_to_one(
            Digest::two_to_one(leaves[0], leaves[1]),
            Digest::two_to_one(leaves[2], leaves[3]),
        );
        assert_eq!(tree.root(), dense);
    }
}
