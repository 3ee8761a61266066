//! [`BlockHeader`] in a circuit: its fields as targets, its commitment, and setting it.

use plonky2::hash::hash_types::HashOutTarget;
use plonky2::iop::target::Target;
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use sheaf_circuits::{CircuitError, F};

use super::gadgets::{hash_tagged, Builder};
use crate::chain::BlockHeader;
use crate::hash::{felt, Domain};

/// A block header's fields as targets.
#[derive(Clone, Copy, Debug)]
pub struct BlockHeaderTarget {
    /// Commitment of the previous block.
    pub prev_block_commitment: HashOutTarget,
    /// The block's number.
    pub number: Target,
    /// Root of the chain tree over the blocks before it.
    pub chain_root: HashOutTarget,
    /// Account root after the block.
    pub account_root: HashOutTarget,
    /// Nullifier root after the block.
    pub nullifier_root: HashOutTarget,
    /// The block's note root.
    pub note_root: HashOutTarget,
    /// The block's transaction accumulator.
    pub tx_commitment: HashOutTarget,
    /// Unix milliseconds.
    pub timestamp: Target,
}

impl BlockHeaderTarget {
    /// Fresh targets.
    pub fn add_virtual(b: &mut Builder) -> Self {
        BlockHeaderTarget {
            prev_block_commitment: b.add_virtual_hash(),
            number: b.add_virtual_target(),
            chain_root: b.add_virtual_hash(),
            account_root: b.add_virtual_hash(),
            nullifier_root: b.add_virtual_hash(),
            note_root: b.add_virtual_hash(),
            tx_commitment: b.add_virtual_hash(),
            timestamp: b.add_virtual_target(),
        }
    }

    /// In-circuit [`BlockHeader::commitment`].
    pub fn commitment(&self, b: &mut Builder) -> HashOutTarget {
        let mut fields = self.prev_block_commitment.elements.to_vec();
        fields.push(self.number);
        for root in [
            self.chain_root,
            self.account_root,
            self.nullifier_root,
            self.note_root,
            self.tx_commitment,
        ] {
            fields.extend(root.elements);
        }
        fields.push(self.timestamp);
        hash_tagged(b, Domain::BlockHeader, &fields)
    }

    /// Set to `header`.
    pub fn set(&self, pw: &mut PartialWitness<F>, h: &BlockHeader) -> Result<(), CircuitError> {
        let err = |e: anyhow::Error| CircuitError::Prove(e.to_string());
        for (target, digest) in [
            (self.prev_block_commitment, h.prev_block_commitment),
            (self.chain_root, h.chain_root),
            (self.account_root, h.account_root),
            (self.nullifier_root, h.nullifier_root),
            (self.note_root, h.note_root),
            (self.tx_commitment, h.tx_commitment),
        ] {
            pw.set_hash_target(target, digest.to_hash_out())
                .map_err(err)?;
        }
        pw.set_target(self.number, felt(h.number as u64))
            .map_err(err)?;
        pw.set_target(self.timestamp, felt(h.timestamp))
            .map_err(err)
    }
}
