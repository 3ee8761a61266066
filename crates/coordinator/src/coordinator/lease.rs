//! Leasing: the long-poll that hands the next job to a prover, with its children's proofs, and
//! the heartbeats that keep the lease.

use std::time::{Duration, Instant};

use sheaf_api::{ChildProof, JobAssignment};
use sheaf_store::{Lease, LeaseOutcome, Prover};
use sheaf_types::clock::millis;
use sheaf_types::JobId;

use super::Coordinator;
use crate::config::LEASE_RECHECK_INTERVAL;
use crate::error::{HeartbeatError, InternalError, JobRefusal, LeaseError};
use crate::metrics::LEASES_GRANTED;

impl Coordinator {
    /// Lease the next job to `prover`, waiting up to `wait` for one.
    pub async fn lease(
        &self,
        prover: &Prover,
        wait: Duration,
    ) -> Result<Option<JobAssignment>, LeaseError> {
        let deadline = Instant::now() + wait.min(self.config.max_lease_wait);
        let mut shutdown = self.shutdown.subscribe();
        loop {
            // Register for a wake-up before looking, so a job readied in between is not missed.
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Nothing ready: wait without taking the store's write lock (idle provers would
            // otherwise queue writes on SQLite every recheck).
            let mut now = 0;
            let outcome = if !self.store.has_ready_job().await? {
                LeaseOutcome::NoWork
            } else {
                now = self.store_clock_ms().await?;
                self.store
                    .lease_admitted(
                        &prover.id,
                        now,
                        millis(self.config.lease_ttl),
                        millis(self.config.epoch),
                    )
                    .await?
            };
            match outcome {
                LeaseOutcome::Leased(lease) => {
                    metrics::counter!(LEASES_GRANTED, "prover" => prover.id.clone()).increment(1);
                    return Ok(Some(self.assignment(lease).await?));
                }
                LeaseOutcome::RateLimited {
                    used,
                    limit,
                    epoch_ends_ms,
                } => {
                    let retry_after_s = ((epoch_ends_ms - now).max(0) as u64).div_ceil(1000);
                    return Err(LeaseError::RateLimited {
                        used,
                        limit,
                        retry_after_s,
                    });
                }
                LeaseOutcome::TooManyLeases { active, limit } => {
                    return Err(LeaseError::TooManyLeases { active, limit });
                }
                LeaseOutcome::Suspended {
                    abandoned,
                    until_ms,
                } => {
                    let retry_after_s = ((until_ms - now).max(0) as u64).div_ceil(1000);
                    return Err(LeaseError::Suspended {
                        abandoned,
                        retry_after_s,
                    });
                }
                LeaseOutcome::NoWork => {}
            }
            let now = Instant::now();
            if now >= deadline || *shutdown.borrow() {
                return Ok(None);
            }
            let nap = (deadline - now).min(LEASE_RECHECK_INTERVAL);
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(nap) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    async fn assignment(&self, lease: Lease) -> Result<JobAssignment, InternalError> {
        let job = lease.job;
        let circuit = lease.circuit.clone();
        let inputs = lease.inputs.clone();
        let mut children = Vec::new();
        for (child, proof) in self.store.child_proofs(lease.job).await? {
            let stored = self.stored_job(child).await?;
            children.push(ChildProof {
                job: child,
                circuit: stored.circuit.clone(),
                proof,
            });
        }
        tracing::info!(target: "sheaf::coordinator", %job, prover = %lease.holder, token = lease.token, attempt = lease.attempt, "leased");
        Ok(JobAssignment {
            job,
            token: lease.token,
            attempt: lease.attempt,
            expires_ms: lease.expires_ms,
            circuit,
            inputs,
            children,
        })
    }

    /// Extend `prover`'s lease on `job`.
    pub async fn heartbeat(
        &self,
        prover: &Prover,
        job: JobId,
        token: i64,
    ) -> Result<i64, HeartbeatError> {
        let now = self.lease_clock_ms().await?;
        let current = self.job::<HeartbeatError>(job).await?;
        if current.lease_holder.as_deref() != Some(prover.id.as_str()) {
            return Err(JobRefusal::StaleLease { job, token }.into());
        }
        Ok(self
            .store
            .heartbeat(job, token, now, millis(self.config.lease_ttl))
            .await?)
    }
}
