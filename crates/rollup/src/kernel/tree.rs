//! The proving tree of a block: which job proves what, from which children — the tree a
//! coordinator plans for a block and what `sheaf rollup prove-block` proves.
//!
//! ```text
//!  level 0   leaf:tx        one per network transaction (the tx kernel)
//!            leaf:tx-pair   two per local transaction: its client's signed half (proved
//!                           already: [`BlockJob::local`]) and the network's state half
//!  level 1   node:tx        up to `arity` consecutive network transactions of one batch (merge
//!                           rule); node:tx-pair for each local transaction (pair rule)
//!  level 2…  kernel:merge   pairs (up to `arity`) of the level below, within a batch, until one
//!                           per batch; then across batches, until one for the block
//!  top − 1   kernel:block   the block's transition bound to the previous header
//!  top       universal      the root: verified with the one final key
//! ```
//!
//! A batch is a subtree: its transactions are merged among themselves before any merge crosses
//! a batch boundary, so each batch's node states the batch's own transition (its commitments,
//! its expiration). Every job's inputs carry exactly the witness its circuit needs, so any
//! prover can prove any job from its inputs and its children's proofs.

use std::time::Instant;

use serde_json::json;
use sheaf_circuits::{CircuitError, CircuitSet, JobCircuit, JobInputs, Proof, WorkerSecret};

use super::block::{BlockFields, BLOCK_RULE};
use super::merge::{MergeFields, MERGE_RULE};
use super::pair::{PairFields, PAIR_RULE};
use super::tx::{TxJob, TxMode};
use super::{TX_KIND, TX_PAIR_KIND};
use crate::block::ProducedBlock;
use crate::chain::BlockHeader;
use crate::smt::MerklePath;
use crate::transition::Transition;
use crate::tx::{Transaction, TxId};

/// One job of a block's tree.
#[derive(Clone, Debug)]
pub struct BlockJob {
    /// Its level (0: the tx leaves).
    pub level: usize,
    /// Its index in its level.
    pub index: usize,
    /// The circuit that proves it.
    pub circuit: JobCircuit,
    /// Its inputs (the witness of its circuit).
    pub inputs: JobInputs,
    /// Its children, as indices into [`BlockTree::jobs`], in order.
    pub children: Vec<usize>,
    /// The transition it proves (none for the block node and the root).
    pub transition: Option<Transition>,
    /// The local transaction whose signed half this leaf is: its client proved it, so its proof
    /// comes with the transaction and no prover is asked for it.
    pub local: Option<TxId>,
}

/// A block's proving tree, children before parents.
#[derive(Clone, Debug)]
pub struct BlockTree {
    /// Every job, each after its children; the last one is the root.
    pub jobs: Vec<BlockJob>,
    /// The block's header.
    pub header: BlockHeader,
    /// The previous block's header.
    pub previous: BlockHeader,
}

/// Why a block's tree cannot be planned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The block has no transaction: there is nothing to prove.
    #[error("a block without transactions has no proving tree")]
    Empty,
    /// The transactions, witnesses and batch size do not describe the produced block.
    #[error("the transactions do not match the produced block: {0}")]
    Mismatch(String),
    /// Batch size or arity out of range.
    #[error("{0}")]
    Shape(String),
}

impl BlockTree {
    /// Plan the tree of `block` (produced from `transactions` after `previous`, whose chain path
    /// at `previous.number` is `chain_path`) for nodes of `arity` children and batches of
    /// `batch_size` transactions; the transactions listed in `local` are local (their clients
    /// prove their signed halves).
    pub fn plan(
        previous: &BlockHeader,
        chain_path: MerklePath,
        transactions: &[Transaction],
        local: &[TxId],
        block: &ProducedBlock,
        batch_size: usize,
        arity: usize,
    ) -> Result<BlockTree, PlanError> {
        if transactions.is_empty() {
            return Err(PlanError::Empty);
        }
        if batch_size == 0 || arity < 2 {
            return Err(PlanError::Shape(format!(
                "batch size {batch_size} and arity {arity}: need a batch size ≥ 1 and arity ≥ 2"
            )));
        }
        if transactions.len() != block.witnesses.len() {
            return Err(PlanError::Mismatch(format!(
                "{} transactions, {} witnesses",
                transactions.len(),
                block.witnesses.len()
            )));
        }
        let mut jobs: Vec<BlockJob> = Vec::new();
        let mut level_index = Vec::<usize>::new();
        let mut push = |jobs: &mut Vec<BlockJob>, mut job: BlockJob| {
            if level_index.len() <= job.level {
                level_index.resize(job.level + 1, 0);
            }
            job.index = level_index[job.level];
            level_index[job.level] += 1;
            jobs.push(job);
            jobs.len() - 1
        };

        // Leaves, grouped by batch.
        let mut batches: Vec<Vec<Leaf>> = Vec::new();
        for (chunk_txs, chunk_witnesses) in transactions
            .chunks(batch_size)
            .zip(block.witnesses.chunks(batch_size))
        {
            let mut leaves = Vec::new();
            for (tx, witness) in chunk_txs.iter().zip(chunk_witnesses) {
                if witness.tx != tx.id() {
                    return Err(PlanError::Mismatch(format!(
                        "a witness is for transaction {:?}, not {:?}",
                        witness.tx,
                        tx.id()
                    )));
                }
                let transition = Transition::of_tx(witness, tx.body.expiration);
                if !local.contains(&tx.id()) {
                    let inputs =
                        JobInputs::leaf(TX_KIND, json!({ "transaction": tx, "witness": witness }))
                            .map_err(|e| PlanError::Mismatch(e.to_string()))?;
                    let job = BlockJob {
                        level: 0,
                        index: 0,
                        circuit: JobCircuit::Leaf {
                            kind: TX_KIND.into(),
                        },
                        inputs,
                        children: Vec::new(),
                        transition: Some(transition),
                        local: None,
                    };
                    leaves.push(Leaf::Network(push(&mut jobs, job)));
                    continue;
                }
                let halves = [
                    TxJob::local(tx.clone()),
                    TxJob {
                        transaction: tx.clone(),
                        witness: witness.clone(),
                        mode: TxMode::Apply,
                    },
                ];
                let mut pair = [0; 2];
                for (slot, half) in pair.iter_mut().zip(halves) {
                    let signed = half.mode == TxMode::Local;
                    let job = BlockJob {
                        level: 0,
                        index: 0,
                        circuit: JobCircuit::Leaf {
                            kind: TX_PAIR_KIND.into(),
                        },
                        inputs: JobInputs::leaf(TX_PAIR_KIND, to_json(&half)?)
                            .map_err(|e| PlanError::Mismatch(e.to_string()))?,
                        children: Vec::new(),
                        transition: None,
                        local: signed.then(|| tx.id()),
                    };
                    *slot = push(&mut jobs, job);
                }
                leaves.push(Leaf::Local {
                    halves: pair,
                    tx: tx.id(),
                    transition: Box::new(transition),
                });
            }
            batches.push(leaves);
        }

        // Within each batch: the tx leaf nodes and pair nodes, then merges down to one node.
        let mut tops = Vec::new();
        for leaves in batches {
            let mut level = first_level(&mut jobs, &mut push, &leaves, arity)?;
            let mut depth = 2;
            while level.len() > 1 {
                level = merge_level(&mut jobs, &mut push, &level, depth, arity, false)?;
                depth += 1;
            }
            tops.push((level[0], depth - 1));
        }
        // Across batches: merges down to one node, each level above the deepest batch.
        let mut depth = tops.iter().map(|(_, d)| *d).max().unwrap_or(1) + 1;
        let mut level: Vec<usize> = tops.into_iter().map(|(job, _)| job).collect();
        while level.len() > 1 {
            level = merge_level(&mut jobs, &mut push, &level, depth, arity, false)?;
            depth += 1;
        }
        let whole = jobs[level[0]]
            .transition
            .ok_or_else(|| PlanError::Mismatch("the top has no transition".into()))?;

        let fields = BlockFields {
            transition: whole,
            previous: *previous,
            timestamp: block.header.timestamp,
            chain_path,
        };
        let inputs = JobInputs::leaf(BLOCK_RULE, to_json(&fields)?)
            .map_err(|e| PlanError::Mismatch(e.to_string()))?;
        let block_job = push(
            &mut jobs,
            BlockJob {
                level: depth,
                index: 0,
                circuit: JobCircuit::Kernel {
                    name: BLOCK_RULE.into(),
                },
                inputs,
                children: vec![level[0]],
                transition: None,
                local: None,
            },
        );
        push(
            &mut jobs,
            BlockJob {
                level: depth + 1,
                index: 0,
                circuit: JobCircuit::Universal,
                inputs: JobInputs::Aggregate,
                children: vec![block_job],
                transition: None,
                local: None,
            },
        );
        if whole.header(previous, block.header.timestamp) != block.header {
            return Err(PlanError::Mismatch(
                "the transactions' transitions do not make the block's header".into(),
            ));
        }
        Ok(BlockTree {
            jobs,
            header: block.header,
            previous: *previous,
        })
    }

    /// The root job (the last).
    pub fn root(&self) -> &BlockJob {
        self.jobs.last().expect("a planned tree has jobs")
    }

    /// Prove every job with `set` for `worker`, children first, telling `on_proved` about each
    /// (job index, wall seconds). Returns the root proof.
    pub fn prove(
        &self,
        set: &CircuitSet,
        worker: &WorkerSecret,
        on_proved: &mut dyn FnMut(usize, f64),
    ) -> Result<Proof, CircuitError> {
        let mut proofs: Vec<Option<Proof>> = vec![None; self.jobs.len()];
        for (i, job) in self.jobs.iter().enumerate() {
            let children = job
                .children
                .iter()
                .map(|&c| {
                    let proof = proofs[c].take().ok_or_else(|| {
                        CircuitError::InvalidArgument(format!("job {c} proved out of order"))
                    })?;
                    Ok((self.jobs[c].circuit.clone(), proof))
                })
                .collect::<Result<Vec<_>, CircuitError>>()?;
            let start = Instant::now();
            let proof = set.prove_job(&job.circuit, &job.inputs, &children, worker)?;
            on_proved(i, start.elapsed().as_secs_f64());
            proofs[i] = Some(proof);
        }
        proofs
            .pop()
            .flatten()
            .ok_or_else(|| CircuitError::InvalidArgument("empty tree".into()))
    }

    /// The longest chain of proving times from a leaf to the root, given each job's seconds:
    /// the wall time with unlimited provers.
    pub fn critical_path(&self, seconds: &[f64]) -> f64 {
        let mut finish = vec![0.0f64; self.jobs.len()];
        for (i, job) in self.jobs.iter().enumerate() {
            let ready = job.children.iter().map(|&c| finish[c]).fold(0.0, f64::max);
            finish[i] = ready + seconds.get(i).copied().unwrap_or(0.0);
        }
        finish.last().copied().unwrap_or(0.0)
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, PlanError> {
    serde_json::to_value(value).map_err(|e| PlanError::Mismatch(e.to_string()))
}

type Push<'a> = dyn FnMut(&mut Vec<BlockJob>, BlockJob) -> usize + 'a;

/// A transaction's leaves in a batch.
enum Leaf {
    /// A network transaction's tx leaf.
    Network(usize),
    /// A local transaction's two halves (signed, applied).
    Local {
        halves: [usize; 2],
        tx: TxId,
        transition: Box<Transition>,
    },
}

/// A batch's first level, in transaction order: a tx leaf node over each run of up to `arity`
/// consecutive network transactions, a pair node over each local transaction's halves.
fn first_level(
    jobs: &mut Vec<BlockJob>,
    push: &mut Push<'_>,
    leaves: &[Leaf],
    arity: usize,
) -> Result<Vec<usize>, PlanError> {
    let mut level = Vec::new();
    let mut run = Vec::new();
    for leaf in leaves {
        match leaf {
            Leaf::Network(job) => run.push(*job),
            Leaf::Local {
                halves,
                tx,
                transition,
            } => {
                level.extend(merge_level(jobs, push, &run, 1, arity, true)?);
                run.clear();
                let transition = **transition;
                let fields = PairFields {
                    tx: *tx,
                    transition,
                };
                let inputs = JobInputs::leaf(PAIR_RULE, to_json(&fields)?)
                    .map_err(|e| PlanError::Mismatch(e.to_string()))?;
                level.push(push(
                    jobs,
                    BlockJob {
                        level: 1,
                        index: 0,
                        circuit: JobCircuit::LeafNode {
                            kind: TX_PAIR_KIND.into(),
                        },
                        inputs,
                        children: halves.to_vec(),
                        transition: Some(transition),
                        local: None,
                    },
                ));
            }
        }
    }
    level.extend(merge_level(jobs, push, &run, 1, arity, true)?);
    Ok(level)
}

/// One level of merge jobs over `below`, `arity` at a time: tx leaf nodes over leaves when
/// `over_leaves`, merge nodes otherwise.
fn merge_level(
    jobs: &mut Vec<BlockJob>,
    push: &mut Push<'_>,
    below: &[usize],
    level: usize,
    arity: usize,
    over_leaves: bool,
) -> Result<Vec<usize>, PlanError> {
    below
        .chunks(arity)
        .map(|group| {
            let transitions = group
                .iter()
                .map(|&c| {
                    jobs[c]
                        .transition
                        .ok_or_else(|| PlanError::Mismatch("a child has no transition".into()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let joined = transitions[1..]
                .iter()
                .try_fold(transitions[0], |acc, t| acc.join(t))
                .map_err(|e| PlanError::Mismatch(e.to_string()))?;
            let fields = MergeFields {
                children: transitions,
            };
            let inputs = JobInputs::leaf(MERGE_RULE, to_json(&fields)?)
                .map_err(|e| PlanError::Mismatch(e.to_string()))?;
            let circuit = if over_leaves {
                JobCircuit::LeafNode {
                    kind: TX_KIND.into(),
                }
            } else {
                JobCircuit::Kernel {
                    name: MERGE_RULE.into(),
                }
            };
            Ok(push(
                jobs,
                BlockJob {
                    level,
                    index: 0,
                    circuit,
                    inputs,
                    children: group.to_vec(),
                    transition: Some(joined),
                    local: None,
                },
            ))
        })
        .collect()
}
