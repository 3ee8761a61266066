//! The in-circuit forms of the rollup's hashes, trees and bounds, shared by its kernels: each
//! mirrors one native function, gate for gate.

use plonky2::field::types::Field;
use plonky2::hash::hash_types::{HashOutTarget, NUM_HASH_OUT_ELTS};
use plonky2::hash::hashing::PlonkyPermutation;
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::config::AlgebraicHasher;
use sheaf_circuits::{Digest, D, F};

use crate::hash::Domain;

/// A circuit builder of Sheaf's field.
pub type Builder = CircuitBuilder<F, D>;

/// In-circuit [`crate::hash::hash_tagged`]: `Poseidon(tag ‖ fields)`.
pub fn hash_tagged(b: &mut Builder, domain: Domain, fields: &[Target]) -> HashOutTarget {
    let mut input = Vec::with_capacity(fields.len() + 1);
    input.push(b.constant(domain.tag()));
    input.extend_from_slice(fields);
    b.hash_n_to_hash_no_pad::<PoseidonHash>(input)
}

/// The four elements of a hash, as a slice-friendly vector.
pub fn elements(hashes: &[HashOutTarget]) -> Vec<Target> {
    hashes.iter().flat_map(|h| h.elements).collect()
}

/// A constant digest.
pub fn constant_digest(b: &mut Builder, digest: Digest) -> HashOutTarget {
    b.constant_hash(digest.to_hash_out())
}

/// The root `leaf` hashes up to along `siblings`, turning right at each set bit of `index_bits`
/// (least significant first): in-circuit [`crate::smt::MerklePath::compute_root`], one Poseidon
/// row a level (the gate's own swap orders the pair).
pub fn merkle_root(
    b: &mut Builder,
    leaf: HashOutTarget,
    index_bits: &[BoolTarget],
    siblings: &[HashOutTarget],
) -> HashOutTarget {
    debug_assert_eq!(index_bits.len(), siblings.len());
    let zero = b.zero();
    let mut node = leaf;
    for (bit, sibling) in index_bits.iter().zip(siblings) {
        type Perm = <PoseidonHash as AlgebraicHasher<F>>::AlgebraicPermutation;
        let mut state = Perm::new(std::iter::repeat(zero));
        state.set_from_slice(&node.elements, 0);
        state.set_from_slice(&sibling.elements, NUM_HASH_OUT_ELTS);
        let out = PoseidonHash::permute_swapped(state, *bit, b);
        node = HashOutTarget {
            elements: std::array::from_fn(|i| out.squeeze()[i]),
        };
    }
    node
}

/// `if c { x } else { y }` on hashes.
pub fn select_hash(
    b: &mut Builder,
    c: BoolTarget,
    x: HashOutTarget,
    y: HashOutTarget,
) -> HashOutTarget {
    HashOutTarget {
        elements: std::array::from_fn(|i| b.select(c, x.elements[i], y.elements[i])),
    }
}

/// Constrain `x == y` when `c` holds.
pub fn connect_if(b: &mut Builder, c: BoolTarget, x: Target, y: Target) {
    let diff = b.sub(x, y);
    let gated = b.mul(c.target, diff);
    b.assert_zero(gated);
}

/// Constrain `x == y` (hashes) when `c` holds.
pub fn connect_hash_if(b: &mut Builder, c: BoolTarget, x: HashOutTarget, y: HashOutTarget) {
    for (x, y) in x.elements.iter().zip(y.elements) {
        connect_if(b, c, *x, y);
    }
}

/// The 64 bits of `x`, least significant first, constrained to be its canonical form (the
/// number they spell is below the field's order): otherwise a small `x` could also be spelled
/// `x + p`, another slot of a depth-64 tree.
pub fn canonical_bits(b: &mut Builder, x: Target) -> Vec<BoolTarget> {
    let bits = b.split_le(x, 64);
    // p = 2^64 − 2^32 + 1: a 64-bit number is ≥ p exactly when its high 32 bits are all set and
    // its low 32 bits are not all clear.
    let mut high_all_set = b.one();
    for bit in &bits[32..] {
        high_all_set = b.mul(high_all_set, bit.target);
    }
    let low = b.le_sum(bits[..32].iter());
    let wraps = b.mul(high_all_set, low);
    b.assert_zero(wraps);
    bits
}

/// Constrain `x ≤ y` for values below `2^32`: `y − x` is below `2^32` too.
pub fn assert_le_u32(b: &mut Builder, x: Target, y: Target) {
    let diff = b.sub(y, x);
    b.range_check(diff, 32);
}

/// Whether `x < y`, for values below `2^32`.
pub fn lt_u32(b: &mut Builder, x: Target, y: Target) -> BoolTarget {
    // y − x − 1 + 2^32 is below 2^33; its bit 32 is set exactly when x < y.
    let offset = b.constant(F::from_canonical_u64((1 << 32) - 1));
    let shifted = b.add(y, offset);
    let diff = b.sub(shifted, x);
    let bits = b.split_le(diff, 33);
    bits[32]
}

/// `min(x, y)` for values below `2^32`.
pub fn min_u32(b: &mut Builder, x: Target, y: Target) -> Target {
    let x_first = lt_u32(b, x, y);
    b.select(x_first, x, y)
}
