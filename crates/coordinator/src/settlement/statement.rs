//! The statement a sequence's root proves and its tree plan, computed from its stored job
//! tree: what the manager registers on chain before any proof exists, and checks the chain's
//! record against.
//!
//! ```text
//!  store.list_jobs(sequence) ── level by level, children first ──▶ CircuitSet::expected_header
//!     (a leaf: its kind's rule over its inputs; a node: the children's headers, and a kernel
//!      node's rule over its inputs; the wrap: its child's) ──▶ the root's header.statement
//!                          └── from the universal root down ──▶ each job's PlannedJob:
//!      its position (slots read from the root, base arity) and its own work units (its
//!      header's less its children's)
//! ```
//!
//! The statement depends only on the tree's inputs and shape, never on who proves a job, so
//! the headers are computed for a null worker. Reading the tree rather than assuming a shape
//! is what lets one sender settle whatever the store plans: a work sequence (work leaves seeded
//! by its number) and a rollup block (tx leaves, merges, the block kernel) alike, each with the
//! rules of the circuit set its proofs are made with.
//!
//! The wrap (with `--final-zk`) re-exposes the universal root's header: it is no planned job,
//! and positions are read from the universal root under it, as claims read them.

use std::collections::HashMap;

use sheaf_chain::settlement::PlannedJob;
use sheaf_circuits::claim::Position;
use sheaf_circuits::{CircuitSet, Digest, Header, JobCircuit};
use sheaf_store::{Job, JobFilter};
use sheaf_types::{JobId, SequenceId};

use super::{ProofSender, Result, SenderError};

/// What the chain registers for a sequence, computed from its stored tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequencePlan {
    /// The statement its root proves.
    pub statement: Digest,
    /// Every job the chain pays for (all but the wrap), in tree order (level, then index).
    pub jobs: Vec<(JobId, PlannedJob)>,
}

impl ProofSender {
    /// The plan of sequence `id` (its root's statement and its jobs), from its stored tree.
    /// Cached: a stored tree never changes.
    pub(super) async fn plan(&self, id: SequenceId) -> Result<SequencePlan> {
        if let Some(plan) = self.plans_lock().get(&id) {
            return Ok(plan.clone());
        }
        let jobs = self
            .store
            .list_jobs(JobFilter {
                sequence: Some(id),
                status: None,
            })
            .await?;
        let circuits = self.circuits.clone();
        // Leaf rules decode and hash their inputs natively: CPU work, off the reactor.
        let plan = tokio::task::spawn_blocking(move || tree_plan(&circuits, id, &jobs))
            .await
            .map_err(|e| SenderError::Statement {
                sequence: id,
                reason: e.to_string(),
            })??;
        self.plans_lock().insert(id, plan.clone());
        Ok(plan)
    }

    /// The statement the root of sequence `id` proves, from its stored tree.
    pub(super) async fn statement(&self, id: SequenceId) -> Result<Digest> {
        Ok(self.plan(id).await?.statement)
    }

    fn plans_lock(&self) -> std::sync::MutexGuard<'_, HashMap<SequenceId, SequencePlan>> {
        self.plans.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The plan of `jobs` (one sequence's whole tree) under `circuits`: its root's statement, and
/// each job's position below the universal root and own work units, whose sum is the root
/// header's `work_units`.
pub fn tree_plan(
    circuits: &CircuitSet,
    sequence: SequenceId,
    jobs: &[Job],
) -> Result<SequencePlan> {
    let malformed = |reason: String| SenderError::Statement { sequence, reason };
    let mut headers: HashMap<JobId, Header> = HashMap::with_capacity(jobs.len());
    let mut root = None;
    let mut ordered: Vec<&Job> = jobs.iter().collect();
    // Children sit at lower levels than their parent: level order computes them first.
    ordered.sort_by_key(|job| (job.id.level, job.id.index));
    for job in &ordered {
        let children = job
            .children
            .iter()
            .map(|child| {
                headers.get(child).copied().ok_or_else(|| {
                    malformed(format!("job {} comes before its child {child}", job.id))
                })
            })
            .collect::<Result<Vec<Header>>>()?;
        let header =
            circuits.expected_header(&job.circuit, &job.inputs, &children, Digest::default())?;
        if job.parent.is_none() {
            if root.is_some() {
                return Err(malformed("more than one root".into()));
            }
            root = Some(*job);
        }
        headers.insert(job.id, header);
    }
    let root = root.ok_or_else(|| malformed("no root job".into()))?;
    let statement = headers[&root.id].statement;

    let by_id: HashMap<JobId, &Job> = jobs.iter().map(|job| (job.id, job)).collect();
    let top = match (&root.circuit, root.children.as_slice()) {
        (JobCircuit::Wrap, [universal]) => *universal,
        (JobCircuit::Wrap, _) => return Err(malformed("the wrap has not one child".into())),
        _ => root.id,
    };
    let arity = circuits.aggregation.settings().arity as u64;
    let mut positions: HashMap<JobId, Position> = HashMap::with_capacity(jobs.len());
    let mut stack = vec![(top, Position::default())];
    while let Some((id, position)) = stack.pop() {
        let job = by_id
            .get(&id)
            .ok_or_else(|| malformed(format!("job {id} is not in the tree")))?;
        for (slot, child) in job.children.iter().enumerate() {
            stack.push((
                *child,
                Position {
                    depth: position.depth + 1,
                    // As `CommitmentPath::position` reads it.
                    index: position.index.wrapping_mul(arity).wrapping_add(slot as u64),
                },
            ));
        }
        positions.insert(id, position);
    }
    let planned = ordered
        .iter()
        .filter(|job| job.circuit != JobCircuit::Wrap)
        .map(|job| {
            let position = *positions
                .get(&job.id)
                .ok_or_else(|| malformed(format!("job {} is not below the root", job.id)))?;
            let children: u64 = job
                .children
                .iter()
                .map(|child| headers[child].stats.work_units)
                .sum();
            let units = headers[&job.id].stats.work_units - children;
            Ok((job.id, PlannedJob { position, units }))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(SequencePlan {
        statement,
        jobs: planned,
    })
}
