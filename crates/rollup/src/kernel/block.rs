//! The block rule: the top of the block kernel.
//!
//! A `kernel:block` node verifies one child, a tx leaf node or a merge node whose transition
//! covers the whole block, and binds it to the previous header:
//! - the block starts from the previous header's account and nullifier roots, with an empty
//!   note tree, no note and an empty transaction accumulator;
//! - its number is the previous one's plus one;
//! - its chain root is the previous chain root with the previous header's commitment inserted at
//!   slot `number − 1` (a path proving that slot empty before);
//! - its timestamp is later than the previous one and below `2^48` ms.
//!
//! It states `H(BlockStatement ‖ previous commitment ‖ new commitment)`, where the new header is
//! the transition's ([`Transition::header`]).

use plonky2::field::types::Field;
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::iop::target::Target;
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sheaf_circuits::{
    CircuitError, Digest, Header, NodeRule, RuleChild, RuleTargets, WhitelistPositions, F,
};

use super::gadgets::{constant_digest, elements, hash_tagged, merkle_root, Builder};
use super::header::BlockHeaderTarget;
use super::transition::TransitionTarget;
use super::{assert_one_of, kernel_error, TRANSITION_NODES};
use crate::chain::BlockHeader;
use crate::hash::{felt, Domain};
use crate::limits::{CHAIN_TREE_DEPTH, MAX_TIMESTAMP_BITS, NOTE_TREE_DEPTH};
use crate::smt::{empty_root, verify_path, MerklePath, EMPTY_LEAF};
use crate::transition::{block_statement, StateRoots, Transition};

/// The rule's name: `kernel:block`, and the `kind` of its jobs' inputs.
pub const BLOCK_RULE: &str = "block";

/// Bump when the block rule's constraints change.
const VERSION: &str = "block-2";

/// A block job's witness.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockFields {
    /// The whole block's transition (its child's statement).
    pub transition: Transition,
    /// The previous block's header.
    pub previous: BlockHeader,
    /// The new block's timestamp.
    pub timestamp: u64,
    /// The path of slot `previous.number` in the chain tree (empty under
    /// `previous.chain_root`).
    pub chain_path: MerklePath,
}

impl BlockFields {
    /// The new block's header, after checking natively every rule the circuit enforces.
    pub fn header(&self, child: &Header) -> Result<BlockHeader, CircuitError> {
        let refuse = |reason: &str| Err(kernel_error(BLOCK_RULE, reason.to_owned()));
        let t = &self.transition;
        if t.digest() != child.statement {
            return refuse("the child does not prove the block's transition");
        }
        if t.before != StateRoots::block_start(&self.previous) {
            return refuse("the block does not start from the previous block's state");
        }
        if Some(t.block) != self.previous.number.checked_add(1) {
            return refuse("the block's number does not follow the previous one");
        }
        let slot = self.previous.number as u64;
        let previous = self.previous.commitment();
        let chained = verify_path::<CHAIN_TREE_DEPTH>(
            self.previous.chain_root,
            slot,
            EMPTY_LEAF,
            &self.chain_path,
        ) && self.chain_path.compute_root(slot, previous) == t.chain_root;
        if !chained {
            return refuse("the chain root is not the previous one with the previous block added");
        }
        if self.timestamp <= self.previous.timestamp || self.timestamp >> MAX_TIMESTAMP_BITS != 0 {
            return refuse("the timestamp is not later than the previous one (or too large)");
        }
        Ok(t.header(&self.previous, self.timestamp))
    }
}

/// The block rule.
#[derive(Clone, Copy, Debug, Default)]
pub struct BlockRule;

struct BlockTargets {
    transition: TransitionTarget,
    previous: BlockHeaderTarget,
    timestamp: Target,
    chain_path: Vec<HashOutTarget>,
    statement: HashOutTarget,
}

impl RuleTargets for BlockTargets {
    fn statement(&self) -> HashOutTarget {
        self.statement
    }

    fn set(
        &self,
        pw: &mut PartialWitness<F>,
        fields: &Value,
        _children: &[Header],
    ) -> Result<(), CircuitError> {
        let fields: BlockFields = serde_json::from_value(fields.clone())
            .map_err(|e| kernel_error(BLOCK_RULE, e.to_string()))?;
        if fields.chain_path.siblings.len() != CHAIN_TREE_DEPTH {
            return Err(kernel_error(
                BLOCK_RULE,
                "chain path of the wrong depth".into(),
            ));
        }
        self.transition.set(pw, &fields.transition)?;
        let err = |e: anyhow::Error| CircuitError::Prove(e.to_string());
        self.previous.set(pw, &fields.previous)?;
        pw.set_target(self.timestamp, felt(fields.timestamp))
            .map_err(err)?;
        for (target, sibling) in self.chain_path.iter().zip(&fields.chain_path.siblings) {
            pw.set_hash_target(*target, sibling.to_hash_out())
                .map_err(err)?;
        }
        Ok(())
    }
}

impl NodeRule for BlockRule {
    fn name(&self) -> &str {
        BLOCK_RULE
    }

    fn version(&self) -> String {
        VERSION.to_owned()
    }

    fn build(
        &self,
        b: &mut Builder,
        children: &[RuleChild],
        positions: &WhitelistPositions,
    ) -> Box<dyn RuleTargets> {
        // One child: every other slot is padding.
        for child in &children[1..] {
            b.assert_zero(child.active.target);
        }
        let child = &children[0];
        let t = TransitionTarget::add_virtual(b);
        let digest = t.digest(b);
        b.connect_hashes(child.header.statement, digest);
        if let Some(position) = child.position {
            // A tx leaf node, a pair node (a block of one local transaction) or a merge node.
            assert_one_of(b, None, position, positions, &TRANSITION_NODES);
        }

        let previous = BlockHeaderTarget::add_virtual(b);
        let prev_commitment = previous.commitment(b);
        // The block starts from the previous block's state.
        b.connect_hashes(t.before.account_root, previous.account_root);
        b.connect_hashes(t.before.nullifier_root, previous.nullifier_root);
        let empty_notes = constant_digest(b, empty_root(NOTE_TREE_DEPTH));
        b.connect_hashes(t.before.note_root, empty_notes);
        b.assert_zero(t.before.note_count);
        let zero = constant_digest(b, Digest::ZERO);
        b.connect_hashes(t.before.tx_accumulator, zero);
        // Its number follows.
        let next = b.add_const(previous.number, F::ONE);
        b.connect(t.block, next);
        // Its chain root adds the previous block at slot `previous.number`.
        let slot = b.split_le(previous.number, CHAIN_TREE_DEPTH);
        let chain_path = b.add_virtual_hashes(CHAIN_TREE_DEPTH);
        let empty = constant_digest(b, EMPTY_LEAF);
        let before = merkle_root(b, empty, &slot, &chain_path);
        b.connect_hashes(before, previous.chain_root);
        let after = merkle_root(b, prev_commitment, &slot, &chain_path);
        b.connect_hashes(after, t.chain_root);
        // Its time is later, and bounded.
        let timestamp = b.add_virtual_target();
        b.range_check(timestamp, MAX_TIMESTAMP_BITS);
        let elapsed = b.sub(timestamp, previous.timestamp);
        let gap = b.add_const(elapsed, -F::ONE);
        b.range_check(gap, MAX_TIMESTAMP_BITS);

        let new_commitment = BlockHeaderTarget {
            prev_block_commitment: prev_commitment,
            number: t.block,
            chain_root: t.chain_root,
            account_root: t.after.account_root,
            nullifier_root: t.after.nullifier_root,
            note_root: t.after.note_root,
            tx_commitment: t.after.tx_accumulator,
            timestamp,
        }
        .commitment(b);
        let statement = hash_tagged(
            b,
            Domain::BlockStatement,
            &elements(&[prev_commitment, new_commitment]),
        );
        Box::new(BlockTargets {
            transition: t,
            previous,
            timestamp,
            chain_path,
            statement,
        })
    }

    fn statement(&self, fields: &Value, children: &[Header]) -> Result<Digest, CircuitError> {
        let fields: BlockFields = serde_json::from_value(fields.clone())
            .map_err(|e| kernel_error(BLOCK_RULE, e.to_string()))?;
        let [child] = children else {
            return Err(CircuitError::BadChildCount {
                arity: 1,
                got: children.len(),
            });
        };
        let header = fields.header(child)?;
        Ok(block_statement(&fields.previous, &header))
    }
}
