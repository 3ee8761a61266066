//! The merge rule: the batch kernel and the first levels of the block kernel.
//!
//! A node with this rule verifies up to `arity` children whose statements are transition
//! digests and states their join: every real child's statement is the digest of a witnessed
//! [`Transition`], each one starts where the previous one ends, all are of one block (number
//! and chain root), the expiration is their minimum and the transaction counts add up. It is
//! the rule of the tx kind's leaf node (children: tx kernel proofs) and of the `kernel:merge`
//! node (children: tx leaf nodes, pair nodes of local transactions or merge nodes, told apart by
//! their whitelist position), so a
//! subtree of them over a batch's transactions is the batch kernel.

use plonky2::iop::witness::PartialWitness;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sheaf_circuits::{
    CircuitError, Digest, Header, NodeRule, RuleChild, RuleTargets, WhitelistPositions, F,
};

use super::gadgets::{connect_hash_if, connect_if, min_u32, Builder};
use super::transition::{StateRootsTarget, TransitionTarget};
use super::{assert_one_of, kernel_error, TRANSITION_NODES};
use crate::transition::Transition;

/// The rule's name: `kernel:merge`, and the `kind` of its jobs' inputs.
pub const MERGE_RULE: &str = "merge";

/// Bump when the merge rule's constraints change (the artifact cache keys on it).
const VERSION: &str = "merge-3";

/// A merge job's witness: the transition each real child proves, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeFields {
    /// One per real child.
    pub children: Vec<Transition>,
}

/// The merge rule.
#[derive(Clone, Copy, Debug, Default)]
pub struct MergeRule;

impl MergeRule {
    /// The join of `fields` over children with `headers`, natively: what the circuit states.
    pub fn join(fields: &MergeFields, headers: &[Header]) -> Result<Transition, CircuitError> {
        if fields.children.len() != headers.len() {
            return Err(kernel_error(
                MERGE_RULE,
                format!(
                    "{} transitions for {} children",
                    fields.children.len(),
                    headers.len()
                ),
            ));
        }
        for (index, (transition, header)) in fields.children.iter().zip(headers).enumerate() {
            if transition.digest() != header.statement {
                return Err(kernel_error(
                    MERGE_RULE,
                    format!("child {index} does not prove the transition given for it"),
                ));
            }
        }
        let (first, rest) = fields
            .children
            .split_first()
            .ok_or_else(|| kernel_error(MERGE_RULE, "no children".into()))?;
        rest.iter().enumerate().try_fold(*first, |acc, (i, next)| {
            acc.join(next)
                .map_err(|e| kernel_error(MERGE_RULE, format!("child {}: {e}", i + 1)))
        })
    }
}

struct MergeTargets {
    children: Vec<TransitionTarget>,
    statement: plonky2::hash::hash_types::HashOutTarget,
}

impl RuleTargets for MergeTargets {
    fn statement(&self) -> plonky2::hash::hash_types::HashOutTarget {
        self.statement
    }

    fn set(
        &self,
        pw: &mut PartialWitness<F>,
        fields: &Value,
        _children: &[Header],
    ) -> Result<(), CircuitError> {
        let fields: MergeFields = serde_json::from_value(fields.clone())
            .map_err(|e| kernel_error(MERGE_RULE, e.to_string()))?;
        let first = fields
            .children
            .first()
            .ok_or_else(|| kernel_error(MERGE_RULE, "no children".into()))?;
        if fields.children.len() > self.children.len() {
            return Err(kernel_error(
                MERGE_RULE,
                format!(
                    "{} transitions for {} slots",
                    fields.children.len(),
                    self.children.len()
                ),
            ));
        }
        for (slot, target) in self.children.iter().enumerate() {
            // Padding slots repeat the first child, as the node's proof slots do.
            target.set(pw, fields.children.get(slot).unwrap_or(first))?;
        }
        Ok(())
    }
}

impl NodeRule for MergeRule {
    fn name(&self) -> &str {
        MERGE_RULE
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
        let transitions: Vec<TransitionTarget> = children
            .iter()
            .map(|child| {
                let t = TransitionTarget::add_virtual(b);
                let digest = t.digest(b);
                connect_hash_if(b, child.active, child.header.statement, digest);
                if let Some(position) = child.position {
                    // A real child is a tx leaf node, a pair node or a merge node.
                    assert_one_of(
                        b,
                        Some(child.active),
                        position,
                        positions,
                        &TRANSITION_NODES,
                    );
                }
                t
            })
            .collect();

        let mut acc = transitions[0];
        for (child, next) in children.iter().zip(&transitions).skip(1) {
            let on = child.active;
            for (x, y) in acc
                .after
                .to_targets()
                .into_iter()
                .zip(next.before.to_targets())
            {
                connect_if(b, on, x, y);
            }
            for (x, y) in acc.chain_root.elements.iter().zip(next.chain_root.elements) {
                connect_if(b, on, *x, y);
            }
            connect_if(b, on, acc.block, next.block);
            let min = min_u32(b, acc.expiration, next.expiration);
            let count = b.add(acc.tx_count, next.tx_count);
            acc = TransitionTarget {
                before: acc.before,
                after: select_roots(b, on, &next.after, &acc.after),
                chain_root: acc.chain_root,
                block: acc.block,
                expiration: b.select(on, min, acc.expiration),
                tx_count: b.select(on, count, acc.tx_count),
            };
        }
        let statement = acc.digest(b);
        Box::new(MergeTargets {
            children: transitions,
            statement,
        })
    }

    fn statement(&self, fields: &Value, children: &[Header]) -> Result<Digest, CircuitError> {
        let fields: MergeFields = serde_json::from_value(fields.clone())
            .map_err(|e| kernel_error(MERGE_RULE, e.to_string()))?;
        Ok(MergeRule::join(&fields, children)?.digest())
    }
}

/// `if c { x } else { y }` on state roots.
fn select_roots(
    b: &mut Builder,
    c: plonky2::iop::target::BoolTarget,
    x: &StateRootsTarget,
    y: &StateRootsTarget,
) -> StateRootsTarget {
    use super::gadgets::select_hash;
    StateRootsTarget {
        account_root: select_hash(b, c, x.account_root, y.account_root),
        nullifier_root: select_hash(b, c, x.nullifier_root, y.nullifier_root),
        note_root: select_hash(b, c, x.note_root, y.note_root),
        note_count: b.select(c, x.note_count, y.note_count),
        tx_accumulator: select_hash(b, c, x.tx_accumulator, y.tx_accumulator),
    }
}
