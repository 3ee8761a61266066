//! [`Transition`] in a circuit: its fields as targets, its digest, and setting it in a witness.

use plonky2::hash::hash_types::HashOutTarget;
use plonky2::iop::target::Target;
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use sheaf_circuits::{CircuitError, F};

use super::gadgets::{elements, hash_tagged, Builder};
use crate::hash::Domain;
use crate::transition::{StateRoots, Transition, STATE_ROOTS_LEN, TRANSITION_LEN};

/// [`StateRoots`] as targets.
#[derive(Clone, Copy, Debug)]
pub struct StateRootsTarget {
    /// Account root.
    pub account_root: HashOutTarget,
    /// Nullifier root.
    pub nullifier_root: HashOutTarget,
    /// The block's note root so far.
    pub note_root: HashOutTarget,
    /// The block's note count so far.
    pub note_count: Target,
    /// The block's transaction accumulator so far.
    pub tx_accumulator: HashOutTarget,
}

impl StateRootsTarget {
    /// Fresh targets.
    pub fn add_virtual(b: &mut Builder) -> Self {
        StateRootsTarget {
            account_root: b.add_virtual_hash(),
            nullifier_root: b.add_virtual_hash(),
            note_root: b.add_virtual_hash(),
            note_count: b.add_virtual_target(),
            tx_accumulator: b.add_virtual_hash(),
        }
    }

    /// As targets, in [`StateRoots::to_fields`] order.
    pub fn to_targets(&self) -> Vec<Target> {
        let mut out = elements(&[self.account_root, self.nullifier_root, self.note_root]);
        out.push(self.note_count);
        out.extend(self.tx_accumulator.elements);
        debug_assert_eq!(out.len(), STATE_ROOTS_LEN);
        out
    }

    /// Constrain equal to `other`.
    pub fn connect(&self, b: &mut Builder, other: &StateRootsTarget) {
        for (x, y) in self.to_targets().into_iter().zip(other.to_targets()) {
            b.connect(x, y);
        }
    }

    /// Set to `roots`.
    pub fn set(&self, pw: &mut PartialWitness<F>, roots: &StateRoots) -> Result<(), CircuitError> {
        pw.set_target_arr(&self.to_targets(), &roots.to_fields())
            .map_err(|e| CircuitError::Prove(e.to_string()))
    }
}

/// [`Transition`] as targets.
#[derive(Clone, Copy, Debug)]
pub struct TransitionTarget {
    /// State before.
    pub before: StateRootsTarget,
    /// State after.
    pub after: StateRootsTarget,
    /// The block's chain root.
    pub chain_root: HashOutTarget,
    /// The block's number.
    pub block: Target,
    /// The run's expiration.
    pub expiration: Target,
    /// Transactions in the run.
    pub tx_count: Target,
}

impl TransitionTarget {
    /// Fresh targets.
    pub fn add_virtual(b: &mut Builder) -> Self {
        TransitionTarget {
            before: StateRootsTarget::add_virtual(b),
            after: StateRootsTarget::add_virtual(b),
            chain_root: b.add_virtual_hash(),
            block: b.add_virtual_target(),
            expiration: b.add_virtual_target(),
            tx_count: b.add_virtual_target(),
        }
    }

    /// As targets, in [`Transition::to_fields`] order.
    pub fn to_targets(&self) -> Vec<Target> {
        let mut out = self.before.to_targets();
        out.extend(self.after.to_targets());
        out.extend(self.chain_root.elements);
        out.extend([self.block, self.expiration, self.tx_count]);
        debug_assert_eq!(out.len(), TRANSITION_LEN);
        out
    }

    /// In-circuit [`Transition::digest`].
    pub fn digest(&self, b: &mut Builder) -> HashOutTarget {
        hash_tagged(b, Domain::Transition, &self.to_targets())
    }

    /// Set to `transition`.
    pub fn set(
        &self,
        pw: &mut PartialWitness<F>,
        transition: &Transition,
    ) -> Result<(), CircuitError> {
        pw.set_target_arr(&self.to_targets(), &transition.to_fields())
            .map_err(|e| CircuitError::Prove(e.to_string()))
    }
}
