//! The statement a sequence's root proves, computed from its stored job tree: what the manager
//! registers on chain before any proof exists, and checks the chain's record against.
//!
//! ```text
//!  store.list_jobs(sequence) ── level by level, children first ──▶ CircuitSet::expected_header
//!     (a leaf: its kind's rule over its inputs; a node: the children's headers, and a kernel
//!      node's rule over its inputs; the wrap: its child's) ──▶ the root's header.statement
//! ```
//!
//! The statement depends only on the tree's inputs and shape, never on who proves a job, so
//! the headers are computed for a null worker. Reading the tree rather than assuming a shape
//! is what lets one sender settle whatever the store plans: a work sequence (work leaves seeded
//! by its number) and a rollup block (tx leaves, merges, the block kernel) alike, each with the
//! rules of the circuit set its proofs are made with.

use std::collections::HashMap;

use sheaf_circuits::{CircuitSet, Digest, Header};
use sheaf_store::{Job, JobFilter};
use sheaf_types::{JobId, SequenceId};

use super::{ProofSender, Result, SenderError};

impl ProofSender {
    /// The statement the root of sequence `id` proves, from its stored tree. Cached: a stored
    /// tree never changes.
    pub(super) async fn statement(&self, id: SequenceId) -> Result<Digest> {
        if let Some(statement) = self.statements_lock().get(&id) {
            return Ok(*statement);
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
        let statement = tokio::task::spawn_blocking(move || tree_statement(&circuits, id, &jobs))
            .await
            .map_err(|e| SenderError::Statement {
                sequence: id,
                reason: e.to_string(),
            })??;
        self.statements_lock().insert(id, statement);
        Ok(statement)
    }

    fn statements_lock(&self) -> std::sync::MutexGuard<'_, HashMap<SequenceId, Digest>> {
        self.statements.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The statement the root of `jobs` (one sequence's whole tree, as the store lists it: by
/// level, then index) proves under `circuits`.
pub(crate) fn tree_statement(
    circuits: &CircuitSet,
    sequence: SequenceId,
    jobs: &[Job],
) -> Result<Digest> {
    let malformed = |reason: String| SenderError::Statement { sequence, reason };
    let mut headers: HashMap<JobId, Header> = HashMap::with_capacity(jobs.len());
    let mut root = None;
    let mut ordered: Vec<&Job> = jobs.iter().collect();
    // Children sit at lower levels than their parent: level order computes them first.
    ordered.sort_by_key(|job| (job.id.level, job.id.index));
    for job in ordered {
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
            root = Some(header.statement);
        }
        headers.insert(job.id, header);
    }
    root.ok_or_else(|| malformed("no root job".into()))
}
