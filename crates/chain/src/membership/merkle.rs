//! The membership set's Poseidon Merkle tree and its authentication paths.

use serde::{Deserialize, Serialize};
use sheaf_circuits::Digest;

use super::{MembershipError, Result};

/// An authentication path: the sibling of each node from the leaf up to the root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerkleProof {
    /// Siblings, leaf level first.
    pub siblings: Vec<Digest>,
}

impl MerkleProof {
    /// The root this path yields for `leaf` at `index`.
    pub fn compute_root(&self, leaf: Digest, index: u64) -> Digest {
        let mut node = leaf;
        for (level, sibling) in self.siblings.iter().enumerate() {
            node = if (index >> level) & 1 == 0 {
                Digest::two_to_one(node, *sibling)
            } else {
                Digest::two_to_one(*sibling, node)
            };
        }
        node
    }

    /// Whether `leaf` sits at `index` under `root`.
    pub fn verify(&self, root: Digest, leaf: Digest, index: u64) -> bool {
        index >> self.siblings.len() == 0 && self.compute_root(leaf, index) == root
    }
}

/// A Poseidon Merkle tree whose empty leaves are [`Digest::ZERO`]. Leaves are filled from the
/// left, so each level is stored densely up to its last non-empty node; everything right of it
/// is an empty subtree, whose hash per level is precomputed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerkleTree {
    /// `levels[0]` are leaves; `levels[depth]` holds at most the root.
    levels: Vec<Vec<Digest>>,
    /// `zeros[l]` is the root of an empty subtree of height `l`.
    zeros: Vec<Digest>,
}

impl MerkleTree {
    /// An empty tree of `depth` levels.
    pub fn new(depth: u32) -> Self {
        let mut zeros = vec![Digest::ZERO];
        for l in 0..depth as usize {
            zeros.push(Digest::two_to_one(zeros[l], zeros[l]));
        }
        MerkleTree {
            levels: vec![Vec::new(); depth as usize + 1],
            zeros,
        }
    }

    /// The tree's depth.
    pub fn depth(&self) -> u32 {
        self.levels.len() as u32 - 1
    }

    fn node(&self, level: usize, index: u64) -> Digest {
        self.levels[level]
            .get(index as usize)
            .copied()
            .unwrap_or(self.zeros[level])
    }

    /// The leaf at `index` ([`Digest::ZERO`] when empty).
    pub fn leaf(&self, index: u64) -> Digest {
        self.node(0, index)
    }

    /// Set the leaf at `index` and rehash its path.
    ///
    /// # Panics
    ///
    /// If `index` is not below `2^depth`: the registry never hands out such an index.
    pub fn set(&mut self, index: u64, leaf: Digest) {
        assert!(index >> self.depth() == 0, "leaf index outside the tree");
        let mut node = leaf;
        let mut i = index;
        for level in 0..self.levels.len() {
            let nodes = &mut self.levels[level];
            if nodes.len() <= i as usize {
                nodes.resize(i as usize + 1, self.zeros[level]);
            }
            nodes[i as usize] = node;
            if level + 1 < self.levels.len() {
                let sibling = self.node(level, i ^ 1);
                node = if i & 1 == 0 {
                    Digest::two_to_one(node, sibling)
                } else {
                    Digest::two_to_one(sibling, node)
                };
                i >>= 1;
            }
        }
    }

    /// The root.
    pub fn root(&self) -> Digest {
        self.node(self.levels.len() - 1, 0)
    }

    /// The authentication path of the leaf at `index`.
    pub fn proof(&self, index: u64) -> Result<MerkleProof> {
        if index >> self.depth() != 0 {
            return Err(MembershipError::LeafIndexOutOfRange(index));
        }
        let siblings = (0..self.depth() as usize)
            .map(|level| self.node(level, (index >> level) ^ 1))
            .collect();
        Ok(MerkleProof { siblings })
    }
}
