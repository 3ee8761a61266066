//! The critical path of a devnet run: the chain of jobs each waited for, back from the last
//! proof stored, and how much of it was proving rather than the coordinator's overhead.

use std::collections::HashMap;

use serde::Serialize;
use sheaf_store::{Job, JobId, JobStatus};
use sheaf_types::SequenceId;

/// The critical path: the chain of jobs (and of each prover's previous job) that ends at the
/// last proof; what on it was not proving is the coordinator's overhead.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct CriticalPath {
    /// Jobs on the path.
    pub jobs: usize,
    /// From the first lease on the path to the last proof stored.
    pub seconds: f64,
    /// Of which provers spent proving.
    pub proving_seconds: f64,
    /// The rest: leasing, transfers, verification, storing, waking up.
    pub overhead_seconds: f64,
}

/// The critical path through `jobs`: from the last proof stored, step back to whichever ended
/// last among the job's children and the previous job of the same prover (what the job
/// waited for), until nothing precedes. Gaps between a predecessor's proof and the next lease,
/// and a job's lease time not spent proving, are overhead. A job cannot be leased before its
/// sequence is planned (`released`, per sequence: a rollup block's publication), so a
/// predecessor that ended earlier is not what it waited for: the path then starts at the
/// planning (the first job of all starts at its lease, as a work run's first jobs do).
pub fn critical_path(jobs: &[Job], released: &HashMap<SequenceId, i64>) -> CriticalPath {
    let proved: HashMap<JobId, &Job> = jobs
        .iter()
        .filter(|j| j.status == JobStatus::Proved && j.proved_ms.is_some() && j.leased_ms.is_some())
        .map(|j| (j.id, j))
        .collect();
    let Some(mut current) = proved.values().max_by_key(|j| (j.proved_ms, j.id)).copied() else {
        return CriticalPath::default();
    };
    let end = current.proved_ms.unwrap_or(0);
    let mut path = CriticalPath::default();
    let mut proving_ms = 0i64;
    loop {
        path.jobs += 1;
        proving_ms += current.prove_ms.unwrap_or(0);
        let leased = current.leased_ms.unwrap_or(0);
        let ready = released
            .get(&current.id.sequence)
            .copied()
            .filter(|r| *r <= leased);
        let children = current
            .children
            .iter()
            .filter_map(|c| proved.get(c))
            .copied();
        let previous_of_prover = proved
            .values()
            .filter(|j| j.proved_by == current.proved_by && j.id != current.id)
            .copied();
        let before = children
            .chain(previous_of_prover)
            .filter(|j| j.proved_ms.is_some_and(|p| p <= leased))
            .max_by_key(|j| (j.proved_ms, j.id));
        match (before, ready) {
            (Some(job), Some(ready)) if job.proved_ms.is_some_and(|p| p < ready) => {
                path.seconds = (end - ready) as f64 / 1000.0;
                break;
            }
            (Some(job), _) => current = job,
            (None, _) => {
                path.seconds = (end - leased) as f64 / 1000.0;
                break;
            }
        }
    }
    path.proving_seconds = proving_ms as f64 / 1000.0;
    path.overhead_seconds = (path.seconds - path.proving_seconds).max(0.0);
    path
}
