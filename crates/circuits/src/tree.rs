//! Aggregation trees: their shape and how they are proved.
//!
//! Level 0 holds the leaves; level 1 the leaf nodes, each over up to `arity` consecutive
//! leaves; every higher level universal nodes over up to `arity` nodes below, until one node is
//! left. The root is always a universal node (a tree of at most `arity` leaves gets one above its
//! single leaf node), so one key verifies every root. A node with fewer than `arity` children
//! costs the same as a full one and no extra proof.
//!
//! Proving walks the tree depth first, so at most `arity` proofs per level are held at once:
//! memory does not grow with the number of leaves.

use std::ops::Range;
use std::time::Instant;

use crate::aggregation::AggregationCircuits;
use crate::digest::{Digest, WorkerSecret};
use crate::error::{CircuitError, Result};
use crate::header::Header;
use crate::node::{node_header, Child};
use crate::{Proof, C, D};

use plonky2::plonk::circuit_data::VerifierOnlyCircuitData;

/// Most leaves a tree may have.
pub const MAX_TREE_LEAVES: usize = 1 << 20;

/// The shape of a tree of `leaves` leaves and the given arity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreePlan {
    arity: usize,
    /// Nodes per level; `[0]` is the number of leaves, the last is 1.
    level_sizes: Vec<usize>,
}

impl TreePlan {
    /// Plan a tree.
    pub fn new(leaves: usize, arity: usize) -> Result<Self> {
        if leaves == 0 || leaves > MAX_TREE_LEAVES {
            return Err(CircuitError::InvalidArgument(format!(
                "a tree has 1 to {MAX_TREE_LEAVES} leaves, got {leaves}"
            )));
        }
        if arity < 2 {
            return Err(CircuitError::InvalidArgument(format!(
                "arity must be at least 2, got {arity}"
            )));
        }
        let mut level_sizes = vec![leaves];
        loop {
            let below = *level_sizes.last().expect("never empty");
            if below == 1 && level_sizes.len() >= 3 {
                break;
            }
            level_sizes.push(below.div_ceil(arity));
        }
        Ok(TreePlan { arity, level_sizes })
    }

    /// Children per node.
    pub fn arity(&self) -> usize {
        self.arity
    }

    /// Number of leaves.
    pub fn leaves(&self) -> usize {
        self.level_sizes[0]
    }

    /// Levels, the leaves' included.
    pub fn depth(&self) -> usize {
        self.level_sizes.len()
    }

    /// Nodes at each level, leaves first.
    pub fn level_sizes(&self) -> &[usize] {
        &self.level_sizes
    }

    /// Aggregation nodes in the tree.
    pub fn aggregation_nodes(&self) -> usize {
        self.level_sizes[1..].iter().sum()
    }

    /// The root's level.
    pub fn root_level(&self) -> usize {
        self.level_sizes.len() - 1
    }

    /// Indices, at `level - 1`, of the children of node `index` at `level`.
    pub fn children(&self, level: usize, index: usize) -> Range<usize> {
        let below = self.level_sizes[level - 1];
        (index * self.arity).min(below)..((index + 1) * self.arity).min(below)
    }

    /// The root header a tree over `leaf_headers` has when every node is proved by the worker
    /// `node_worker(level, index)` and adds `node_weight` work units.
    pub fn expected_root_header(
        &self,
        leaf_headers: &[Header],
        node_weight: u64,
        node_worker: impl Fn(usize, usize) -> Digest,
    ) -> Header {
        let mut level_headers = leaf_headers.to_vec();
        for level in 1..self.depth() {
            level_headers = (0..self.level_sizes[level])
                .map(|index| {
                    let children = &level_headers[self.children(level, index)];
                    node_header(children, node_worker(level, index), node_weight)
                })
                .collect();
        }
        level_headers[0]
    }
}

/// One proof made while proving a tree.
#[derive(Clone, Copy, Debug)]
pub struct ProvedNode {
    /// Its level (0 for leaves).
    pub level: usize,
    /// Its index in the level.
    pub index: usize,
    /// Wall seconds spent proving it.
    pub wall_seconds: f64,
}

/// Proves trees with a set of aggregation circuits.
pub struct TreeProver<'a> {
    circuits: &'a AggregationCircuits,
    leaf_kind: &'a str,
    leaf_key: &'a VerifierOnlyCircuitData<C, D>,
    worker: WorkerSecret,
}

impl std::fmt::Debug for TreeProver<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeProver")
            .field("leaf_kind", &self.leaf_kind)
            .finish()
    }
}

impl<'a> TreeProver<'a> {
    /// A prover of trees whose leaves are of kind `leaf_kind` with key `leaf_key`; `worker`
    /// proves every node.
    pub fn new(
        circuits: &'a AggregationCircuits,
        leaf_kind: &'a str,
        leaf_key: &'a VerifierOnlyCircuitData<C, D>,
        worker: WorkerSecret,
    ) -> Self {
        TreeProver {
            circuits,
            leaf_kind,
            leaf_key,
            worker,
        }
    }

    /// Prove the tree of `plan`, asking `leaf_proof(i)` for each leaf in order and telling
    /// `on_proved` about every proof made. When the circuits wrap the final proof, the wrap is
    /// reported one level above the root.
    pub fn prove(
        &self,
        plan: &TreePlan,
        leaf_proof: &mut dyn FnMut(usize) -> Result<Proof>,
        on_proved: &mut dyn FnMut(ProvedNode),
    ) -> Result<Proof> {
        if plan.arity() != self.circuits.settings().arity {
            return Err(CircuitError::InvalidArgument(format!(
                "plan arity {} differs from the circuits' {}",
                plan.arity(),
                self.circuits.settings().arity
            )));
        }
        let root = self.prove_node(plan, plan.root_level(), 0, leaf_proof, on_proved)?;
        let Some(wrap) = self.circuits.final_wrap() else {
            return Ok(root);
        };
        let start = Instant::now();
        let wrapped = wrap.prove(&root)?;
        on_proved(ProvedNode {
            level: plan.root_level() + 1,
            index: 0,
            wall_seconds: start.elapsed().as_secs_f64(),
        });
        Ok(wrapped)
    }

    fn prove_node(
        &self,
        plan: &TreePlan,
        level: usize,
        index: usize,
        leaf_proof: &mut dyn FnMut(usize) -> Result<Proof>,
        on_proved: &mut dyn FnMut(ProvedNode),
    ) -> Result<Proof> {
        if level == 0 {
            let start = Instant::now();
            let proof = leaf_proof(index)?;
            on_proved(ProvedNode {
                level,
                index,
                wall_seconds: start.elapsed().as_secs_f64(),
            });
            return Ok(proof);
        }
        let children = plan
            .children(level, index)
            .map(|child| self.prove_node(plan, level - 1, child, leaf_proof, on_proved))
            .collect::<Result<Vec<Proof>>>()?;
        let (node, key) = if level == 1 {
            (self.circuits.leaf_node(self.leaf_kind)?, self.leaf_key)
        } else {
            let key = if level == 2 {
                &self.circuits.leaf_node(self.leaf_kind)?.data.verifier_only
            } else {
                &self.circuits.universal().data.verifier_only
            };
            (self.circuits.universal(), key)
        };
        let children: Vec<Child<'_>> = children.iter().map(|proof| Child { proof, key }).collect();
        let start = Instant::now();
        let proof = node.prove(&children, &self.worker, self.circuits.whitelist())?;
        on_proved(ProvedNode {
            level,
            index,
            wall_seconds: start.elapsed().as_secs_f64(),
        });
        Ok(proof)
    }
}
