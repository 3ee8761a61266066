//! One leased job: prove it on the pool while a heartbeat keeps the lease, then submit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::ThreadPool;
use sheaf_api::{ChildProof, ErrorCode, JobAssignment, JobId, JobInputs};
use sheaf_circuits::limits::MAX_PROOF_BYTES;
use sheaf_circuits::{
    decode_proof, encode_proof, CircuitError, CircuitSet, JobCircuit, WorkerSecret,
};
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::backoff::Backoff;
use crate::client::{Client, ClientError};

use super::heartbeat::{keep_lease, log_lease_lost};
use super::{error_chain, millis, ProverReport, TARGET};

/// How one leased job ended.
pub(super) enum Outcome {
    /// The coordinator accepted its proof.
    Proved,
    /// The lease was lost or the job cannot be proved here.
    Abandoned,
    /// The coordinator refused the proof.
    Rejected,
}

/// Why a heartbeat gave the lease up: the coordinator's code and message.
pub(super) type LeaseLost = (ErrorCode, String);

/// Everything a job needs, shared by all jobs of a run.
pub(super) struct Worker {
    pub(super) client: Client,
    pub(super) circuits: Arc<CircuitSet>,
    pub(super) pool: Arc<ThreadPool>,
    pub(super) secret: WorkerSecret,
    pub(super) lease_ttl: Duration,
    pub(super) heartbeat_interval: Duration,
}

impl Worker {
    /// Prove and submit one leased job, counting how it ended.
    pub(super) async fn run_job(&self, assignment: JobAssignment, report: &mut ProverReport) {
        let (job, token) = (assignment.job, assignment.token);
        info!(
            target: TARGET,
            job = %job,
            token,
            attempt = assignment.attempt,
            circuit = %assignment.circuit,
            children = assignment.children.len(),
            "leased job"
        );
        fail::fail_point!("prover::after_lease");
        let (lease, deadline) = watch::channel(Instant::now() + self.lease_ttl);
        let mut heartbeat = tokio::spawn(keep_lease(
            self.client.clone(),
            job,
            token,
            self.heartbeat_interval,
            self.lease_ttl,
            lease,
        ));
        let outcome = self
            .prove_and_submit(assignment, &mut heartbeat, deadline, report)
            .await;
        heartbeat.abort();
        match outcome {
            Outcome::Proved => report.jobs_proved += 1,
            Outcome::Abandoned => report.jobs_abandoned += 1,
            Outcome::Rejected => report.submissions_rejected += 1,
        }
    }

    async fn prove_and_submit(
        &self,
        assignment: JobAssignment,
        heartbeat: &mut JoinHandle<LeaseLost>,
        deadline: watch::Receiver<Instant>,
        report: &mut ProverReport,
    ) -> Outcome {
        let JobAssignment {
            job,
            token,
            circuit,
            inputs,
            children,
            ..
        } = assignment;
        let (circuits, pool, secret) = (self.circuits.clone(), self.pool.clone(), self.secret);
        let mut proving = tokio::task::spawn_blocking(move || {
            pool.install(|| prove(&circuits, &circuit, &inputs, &children, &secret))
        });
        let proved = tokio::select! {
            proved = &mut proving => proved,
            lost = &mut *heartbeat => {
                log_lease_lost(job, token, lost);
                // Proving cannot be interrupted: let it finish, so that one proof at a time
                // holds the pool and its memory, and drop it.
                if let Ok(Ok(proved)) = proving.await {
                    report.prove_seconds += proved.prove_time.as_secs_f64();
                }
                return Outcome::Abandoned;
            }
        };
        let proved = match proved {
            Ok(Ok(proved)) => proved,
            Ok(Err(e)) => {
                warn!(target: TARGET, job = %job, token, error = %error_chain(&e), "cannot prove job; abandoning it");
                return Outcome::Abandoned;
            }
            Err(e) => {
                error!(target: TARGET, job = %job, token, error = %e, "proving panicked; abandoning the job");
                return Outcome::Abandoned;
            }
        };
        report.prove_seconds += proved.prove_time.as_secs_f64();
        let prove_ms = millis(proved.prove_time);
        info!(target: TARGET, job = %job, token, prove_ms, bytes = proved.bytes.len(), "proved job");
        fail::fail_point!("prover::before_submit");
        self.submit(job, token, prove_ms, &proved.bytes, heartbeat, deadline)
            .await
    }

    /// Submit a proof, retrying retryable failures (same bytes, same token) until the lease
    /// expires or a heartbeat learns it is lost. Heartbeats go on meanwhile, so the lease
    /// outlives a slow coordinator.
    async fn submit(
        &self,
        job: JobId,
        token: i64,
        prove_ms: u64,
        proof: &[u8],
        heartbeat: &mut JoinHandle<LeaseLost>,
        deadline: watch::Receiver<Instant>,
    ) -> Outcome {
        let mut backoff = Backoff::new();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            // A submission in flight is always awaited (its timeout bounds it): a heartbeat
            // answering `already_proved` meanwhile may be about this very proof.
            let e = match self.client.submit(job, token, prove_ms, proof).await {
                Ok(accepted) => {
                    info!(
                        target: TARGET,
                        job = %job,
                        token,
                        attempt,
                        prove_ms,
                        proof_hash = %accepted.proof_hash,
                        parent_ready = ?accepted.parent_ready,
                        sequence_proved = accepted.sequence_proved,
                        "proof accepted"
                    );
                    return Outcome::Proved;
                }
                Err(e) if e.is_retryable() => e,
                Err(ClientError::Api { code, message, .. }) => {
                    warn!(target: TARGET, job = %job, token, attempt, code = %code, message = %message, "proof rejected");
                    return Outcome::Rejected;
                }
                Err(e) => {
                    warn!(target: TARGET, job = %job, token, attempt, error = %error_chain(&e), "proof rejected");
                    return Outcome::Rejected;
                }
            };
            let delay = backoff.next_delay();
            if Instant::now() + delay >= *deadline.borrow() {
                warn!(
                    target: TARGET,
                    job = %job,
                    token,
                    attempt,
                    error = %error_chain(&e),
                    "submission failed and the lease expires before another try; abandoning the job"
                );
                return Outcome::Abandoned;
            }
            warn!(
                target: TARGET,
                job = %job,
                token,
                attempt,
                delay_ms = millis(delay),
                error = %error_chain(&e),
                "submission failed; retrying"
            );
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                lost = &mut *heartbeat => {
                    log_lease_lost(job, token, lost);
                    return Outcome::Abandoned;
                }
            }
        }
    }
}

/// A proof made for a job.
pub(super) struct Proved {
    bytes: Vec<u8>,
    prove_time: Duration,
}

/// Why a job cannot be proved here.
#[derive(Debug, Error)]
pub(super) enum JobError {
    /// A child's proof is not usable: unknown circuit, or bytes that do not decode.
    #[error("child {job}")]
    Child {
        /// The child job.
        job: JobId,
        /// Why.
        #[source]
        source: CircuitError,
    },
    /// Proving failed.
    #[error("proving failed")]
    Prove(#[source] CircuitError),
}

/// Decode the children and prove the job (blocking: run it in the proving pool).
pub(super) fn prove(
    circuits: &CircuitSet,
    circuit: &JobCircuit,
    inputs: &JobInputs,
    children: &[ChildProof],
    worker: &WorkerSecret,
) -> Result<Proved, JobError> {
    let children = children
        .iter()
        .map(|child| {
            circuits
                .common(&child.circuit)
                .and_then(|common| decode_proof(&child.proof, common, MAX_PROOF_BYTES))
                .map(|proof| (child.circuit.clone(), proof))
                .map_err(|source| JobError::Child {
                    job: child.job,
                    source,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let started = Instant::now();
    let proof = circuits
        .prove_job(circuit, inputs, &children, worker)
        .map_err(JobError::Prove)?;
    Ok(Proved {
        bytes: encode_proof(&proof),
        prove_time: started.elapsed(),
    })
}
