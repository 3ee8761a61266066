//! The pair rule: a local transaction's two halves joined into the transition of a transaction.
//!
//! A local transaction is proved in two halves by the same tx kernel ([`TxMode`]): its client
//! proves the signed half before it knows where the transaction lands (`H(LocalTx ‖ id)`), and
//! the network proves the state half at the transaction's place in the block
//! (`H(AppliedTx ‖ transition ‖ id)`). The leaf node of the pair kind ([`TX_PAIR_KIND`])
//! verifies exactly these two, in this order, checks that they are of one transaction id and
//! states the transition — what a network transaction's tx leaf states — so the merge rule takes
//! it like a tx leaf node.
//!
//! ```text
//!  leaf tx-pair (local mode, the client's)   H(LocalTx ‖ id)
//!  leaf tx-pair (apply mode, a prover's)     H(AppliedTx ‖ T ‖ id)
//!        └──── node:tx-pair (pair rule) ───▶ T.digest()  ─▶ kernel:merge …
//! ```
//!
//! [`TxMode`]: super::tx::TxMode
//! [`TX_PAIR_KIND`]: super::tx::TX_PAIR_KIND

use plonky2::hash::hash_types::HashOutTarget;
use plonky2::iop::witness::PartialWitness;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sheaf_circuits::{
    CircuitError, Digest, Header, NodeRule, RuleChild, RuleTargets, WhitelistPositions, F,
};

use super::gadgets::{hash_tagged, Builder};
use super::kernel_error;
use super::transition::TransitionTarget;
use crate::hash::Domain;
use crate::transition::{applied_tx_statement, local_tx_statement, Transition};
use crate::tx::TxId;

/// The rule's name, and the `kind` of its jobs' inputs.
pub const PAIR_RULE: &str = "pair";

/// Bump when the pair rule's constraints change (the artifact cache keys on it).
const VERSION: &str = "pair-1";

/// A pair job's witness: the transaction and the transition its state half applies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairFields {
    /// The transaction's id.
    pub tx: TxId,
    /// Its transition at its place in the block.
    pub transition: Transition,
}

/// The pair rule.
#[derive(Clone, Copy, Debug, Default)]
pub struct PairRule;

impl PairRule {
    /// What a node over children with `headers` states, natively: the transition, when the
    /// children are the signed half and the state half of `fields.tx`, in that order.
    pub fn join(fields: &PairFields, headers: &[Header]) -> Result<Transition, CircuitError> {
        let [signed, applied] = headers else {
            return Err(kernel_error(
                PAIR_RULE,
                format!(
                    "a pair has two children (the signed half, the state half), not {}",
                    headers.len()
                ),
            ));
        };
        if signed.statement != local_tx_statement(fields.tx) {
            return Err(kernel_error(
                PAIR_RULE,
                "the first child is not the signed half of the transaction".into(),
            ));
        }
        if applied.statement != applied_tx_statement(&fields.transition, fields.tx) {
            return Err(kernel_error(
                PAIR_RULE,
                "the second child is not the transaction's state half with this transition".into(),
            ));
        }
        Ok(fields.transition)
    }
}

fn decode(fields: &Value) -> Result<PairFields, CircuitError> {
    serde_json::from_value(fields.clone()).map_err(|e| kernel_error(PAIR_RULE, e.to_string()))
}

struct PairTargets {
    tx: HashOutTarget,
    transition: TransitionTarget,
    statement: HashOutTarget,
}

impl RuleTargets for PairTargets {
    fn statement(&self) -> HashOutTarget {
        self.statement
    }

    fn set(
        &self,
        pw: &mut PartialWitness<F>,
        fields: &Value,
        _children: &[Header],
    ) -> Result<(), CircuitError> {
        use plonky2::iop::witness::WitnessWrite as _;
        let fields = decode(fields)?;
        pw.set_hash_target(self.tx, fields.tx.0.to_hash_out())
            .map_err(|e| CircuitError::Prove(e.to_string()))?;
        self.transition.set(pw, &fields.transition)
    }
}

impl NodeRule for PairRule {
    fn name(&self) -> &str {
        PAIR_RULE
    }

    fn version(&self) -> String {
        VERSION.to_owned()
    }

    fn build(
        &self,
        b: &mut Builder,
        children: &[RuleChild],
        _positions: &WhitelistPositions,
    ) -> Box<dyn RuleTargets> {
        let tx = b.add_virtual_hash();
        let transition = TransitionTarget::add_virtual(b);
        let digest = transition.digest(b);
        let signed = hash_tagged(b, Domain::LocalTx, &tx.elements);
        let mut fields = digest.elements.to_vec();
        fields.extend(tx.elements);
        let applied = hash_tagged(b, Domain::AppliedTx, &fields);
        // Exactly two real children (the node's arity is at least 2): the signed half, then
        // the state half. Children of a leaf node are of the tx kernel by construction.
        let one = b.one();
        let zero = b.zero();
        for (slot, child) in children.iter().enumerate() {
            let expected = if slot < 2 { one } else { zero };
            b.connect(child.active.target, expected);
        }
        b.connect_hashes(children[0].header.statement, signed);
        b.connect_hashes(children[1].header.statement, applied);
        Box::new(PairTargets {
            tx,
            transition,
            statement: digest,
        })
    }

    fn statement(&self, fields: &Value, children: &[Header]) -> Result<Digest, CircuitError> {
        Ok(PairRule::join(&decode(fields)?, children)?.digest())
    }
}
