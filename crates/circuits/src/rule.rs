//! Kernel nodes: aggregation nodes of the universal shape whose statement is not the plain hash
//! of their children's statements but what a [`NodeRule`] makes of them.
//!
//! ```text
//!  kernel node = the universal node's body   (children verified against whitelisted keys,
//!                                             commitment chain, stats, worker_pk)
//!              + the rule's constraints      (reads each child's statement, whitelist position
//!                                             and activity; the witness the rule asks for)
//!              ─▶ statement = the rule's output
//! ```
//!
//! A rule is what a rollup's batch and block kernels are: the merge node checks that its
//! children's state transitions chain and states the joined transition; the block node binds a
//! whole block's transition to the previous header and states the new one. The rule sees where
//! each child sits in the whitelist ([`RuleChild::position`]), so it can accept only the
//! circuits whose statements it knows how to read. Kernel nodes are whitelisted like every other
//! node and verified by the universal node, so a tree mixing them still has the one final key.
//!
//! A kernel job's witness travels as JSON (a job's `inputs`, `{"kind":"<rule>",…}`): the rule
//! decodes it, checks it natively against the children's headers ([`NodeRule::statement`], what
//! the coordinator's expected header uses) and sets it in the circuit.

use std::collections::BTreeMap;
use std::fmt;

use plonky2::hash::hash_types::HashOutTarget;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::PartialWitness;
use plonky2::plonk::circuit_builder::CircuitBuilder;
use serde_json::Value;

use crate::digest::Digest;
use crate::error::Result;
use crate::header::{Header, HeaderTarget};
use crate::{D, F};

/// One child slot of a kernel node, as its rule sees it.
#[derive(Clone, Debug)]
pub struct RuleChild {
    /// The child's header (its statement is what rules read).
    pub header: HeaderTarget,
    /// Whether the slot holds a real child (slot 0 always does; real slots are a prefix).
    pub active: BoolTarget,
    /// The child's circuit: its position in the whitelist (the prover's witness, proved by the
    /// membership path of an active child); `None` when the node verifies one leaf kind against
    /// its constant key (a leaf node with a rule), whose children are of that kind by
    /// construction.
    pub position: Option<Target>,
}

/// Where each whitelisted circuit sits, by its job-circuit name (`universal`, `node:<kind>`,
/// `kernel:<rule>`): known before any circuit is built, so a rule can test a child's position
/// against a constant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WhitelistPositions(pub BTreeMap<String, usize>);

impl WhitelistPositions {
    /// The position of the circuit named `name`.
    pub fn get(&self, name: &str) -> Option<usize> {
        self.0.get(name).copied()
    }
}

/// The witness side of a built rule: its statement target and how to set its witness.
pub trait RuleTargets: Send + Sync {
    /// The node's statement.
    fn statement(&self) -> HashOutTarget;

    /// Set the rule's witness for a job with `fields` over children with `children` headers.
    fn set(&self, pw: &mut PartialWitness<F>, fields: &Value, children: &[Header]) -> Result<()>;
}

/// A kernel node's rule: its constraints and their native mirror.
pub trait NodeRule: Send + Sync + fmt::Debug {
    /// The rule's name: its circuit is `kernel:<name>`, its jobs' inputs `{"kind":"<name>",…}`.
    fn name(&self) -> &str;

    /// What changes the rule's circuit, for the artifact cache (bump it with the constraints).
    fn version(&self) -> String;

    /// Lay down the rule's constraints over `children` (one per slot of the node's arity).
    fn build(
        &self,
        builder: &mut CircuitBuilder<F, D>,
        children: &[RuleChild],
        positions: &WhitelistPositions,
    ) -> Box<dyn RuleTargets>;

    /// The statement a proof of the job with `fields` over children with `children` headers
    /// carries; a typed error when the circuit could not prove it (children that do not match
    /// the witness, a witness the rule refuses).
    fn statement(&self, fields: &Value, children: &[Header]) -> Result<Digest>;
}
