//! The circuit whitelist: a Poseidon Merkle tree of the verifier keys that aggregation nodes
//! accept as children.
//!
//! A leaf is `H(circuit_digest ‖ constants_sigmas_cap)`: both parts, because the recursive
//! verifier uses the cap to check openings and the digest to seed Fiat–Shamir, and does not tie
//! them together itself. Empty slots hold [`Digest::ZERO`].

use plonky2::hash::hash_types::HashOutTarget;
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{VerifierCircuitTarget, VerifierOnlyCircuitData};

use crate::digest::Digest;
use crate::error::{CircuitError, Result};
use crate::{C, D, F};

/// Depth of the whitelist tree: room for `2^WHITELIST_DEPTH` circuits.
pub const WHITELIST_DEPTH: usize = 4;

/// The whitelist leaf of a verifier key.
pub fn key_digest(vk: &VerifierOnlyCircuitData<C, D>) -> Digest {
    let mut fields = vk.circuit_digest.elements.to_vec();
    for h in &vk.constants_sigmas_cap.0 {
        fields.extend(h.elements);
    }
    Digest::hash(&fields)
}

/// In-circuit [`key_digest`].
pub fn key_digest_target(
    builder: &mut CircuitBuilder<F, D>,
    vk: &VerifierCircuitTarget,
) -> HashOutTarget {
    let mut fields = vk.circuit_digest.elements.to_vec();
    for h in &vk.constants_sigmas_cap.0 {
        fields.extend(h.elements);
    }
    builder.hash_n_to_hash_no_pad::<PoseidonHash>(fields)
}

/// A whitelist of circuit keys with its Merkle tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Whitelist {
    leaves: Vec<Digest>,
    /// `levels[0]` are the leaves (padded), the last level is the root.
    levels: Vec<Vec<Digest>>,
}

impl Whitelist {
    /// A whitelist of these key digests, in this order.
    pub fn new(keys: Vec<Digest>) -> Result<Self> {
        let capacity = 1 << WHITELIST_DEPTH;
        if keys.is_empty() || keys.len() > capacity {
            return Err(CircuitError::InvalidArgument(format!(
                "a whitelist holds 1 to {capacity} circuits, got {}",
                keys.len()
            )));
        }
        let mut level = keys.clone();
        level.resize(capacity, Digest::ZERO);
        let mut levels = vec![level];
        while levels.last().map_or(0, Vec::len) > 1 {
            let next = levels
                .last()
                .expect("levels is never empty")
                .chunks(2)
                .map(|pair| Digest::two_to_one(pair[0], pair[1]))
                .collect();
            levels.push(next);
        }
        Ok(Whitelist {
            leaves: keys,
            levels,
        })
    }

    /// The root committed to by every aggregation proof.
    pub fn root(&self) -> Digest {
        self.levels.last().expect("levels is never empty")[0]
    }

    /// The whitelisted key digests.
    pub fn keys(&self) -> &[Digest] {
        &self.leaves
    }

    /// Position of a key, if whitelisted.
    pub fn position(&self, key: &Digest) -> Option<usize> {
        self.leaves.iter().position(|k| k == key)
    }

    /// Sibling path of the leaf at `index`.
    pub fn path(&self, index: usize) -> Vec<Digest> {
        (0..WHITELIST_DEPTH)
            .map(|level| self.levels[level][(index >> level) ^ 1])
            .collect()
    }
}

/// In-circuit membership proof of a key in the whitelist.
#[derive(Clone, Debug)]
pub struct MembershipTarget {
    index_bits: Vec<BoolTarget>,
    siblings: Vec<HashOutTarget>,
}

impl MembershipTarget {
    /// When `enabled`, constrain `leaf` to be in the tree with root `root`.
    pub fn build(
        builder: &mut CircuitBuilder<F, D>,
        leaf: HashOutTarget,
        root: HashOutTarget,
        enabled: BoolTarget,
    ) -> Self {
        let index_bits: Vec<BoolTarget> = (0..WHITELIST_DEPTH)
            .map(|_| builder.add_virtual_bool_target_safe())
            .collect();
        let siblings = builder.add_virtual_hashes(WHITELIST_DEPTH);
        let mut node = leaf;
        for (bit, sibling) in index_bits.iter().zip(&siblings) {
            let left = select_hash(builder, *bit, *sibling, node);
            let right = select_hash(builder, *bit, node, *sibling);
            node = builder
                .hash_n_to_hash_no_pad::<PoseidonHash>([left.elements, right.elements].concat());
        }
        for (computed, expected) in node.elements.iter().zip(root.elements) {
            assert_equal_if(builder, enabled, *computed, expected);
        }
        MembershipTarget {
            index_bits,
            siblings,
        }
    }

    /// The position the path's bits spell (least significant first).
    pub fn position(&self, builder: &mut CircuitBuilder<F, D>) -> Target {
        builder.le_sum(self.index_bits.iter())
    }

    /// Set the path of leaf `index` of `whitelist`.
    pub fn set(
        &self,
        pw: &mut PartialWitness<F>,
        whitelist: &Whitelist,
        index: usize,
    ) -> Result<()> {
        let path = whitelist.path(index);
        for (level, (bit, sibling)) in self.index_bits.iter().zip(&self.siblings).enumerate() {
            pw.set_bool_target(*bit, (index >> level) & 1 == 1)
                .and_then(|()| pw.set_hash_target(*sibling, path[level].to_hash_out()))
                .map_err(|e| CircuitError::Prove(e.to_string()))?;
        }
        Ok(())
    }
}

/// `if b { x } else { y }` on hashes.
pub(crate) fn select_hash(
    builder: &mut CircuitBuilder<F, D>,
    b: BoolTarget,
    x: HashOutTarget,
    y: HashOutTarget,
) -> HashOutTarget {
    HashOutTarget {
        elements: std::array::from_fn(|i| builder.select(b, x.elements[i], y.elements[i])),
    }
}

/// Constrain `a == b` when `condition` holds.
pub(crate) fn assert_equal_if(
    builder: &mut CircuitBuilder<F, D>,
    condition: BoolTarget,
    a: Target,
    b: Target,
) {
    let diff = builder.sub(a, b);
    let gated = builder.mul(condition.target, diff);
    builder.assert_zero(gated);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_recompute_the_root() {
        let keys: Vec<Digest> = (0..5).map(|i| Digest([i, 0, 0, 1])).collect();
        let wl = Whitelist::new(keys.clone()).unwrap();
        for (index, key) in keys.iter().enumerate() {
            let mut node = *key;
            for (level, sibling) in wl.path(index).into_iter().enumerate() {
                node = if (index >> level) & 1 == 1 {
                    Digest::two_to_one(sibling, node)
                } else {
                    Digest::two_to_one(node, sibling)
                };
            }
            assert_eq!(node, wl.root());
        }
        assert_eq!(wl.position(&keys[3]), Some(3));
        assert_eq!(wl.position(&Digest([9, 9, 9, 9])), None);
    }

    #[test]
    fn whitelist_rejects_empty_and_oversized_lists() {
        assert!(Whitelist::new(vec![]).is_err());
        assert!(Whitelist::new(vec![Digest::ZERO; (1 << WHITELIST_DEPTH) + 1]).is_err());
    }
}
