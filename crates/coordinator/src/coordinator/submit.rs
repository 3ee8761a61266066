//! Submissions: a proof is checked on receipt (lease current, expected header, verification on
//! the bounded pool) and stored with its reward entry and the parent's release.

use std::sync::{Arc, Weak};
use std::time::Instant;

use plonky2::plonk::circuit_data::VerifierCircuitData;
use sheaf_api::SubmitResponse;
use sheaf_circuits::{
    decode_proof, CircuitError, CircuitSet, Digest, Expected, Header, JobCircuit, Proof, C, D, F,
};
use sheaf_store::{Job, JobStatus, Prover, RewardEntry};
use sheaf_types::clock::now_ms;
use sheaf_types::JobId;

use super::Coordinator;
use crate::error::{InternalError, JobRefusal, SubmitError};
use crate::metrics::{PROOFS_ACCEPTED, PROOF_SECONDS, PROVING_SECONDS, VERIFY_SECONDS};

impl Coordinator {
    fn submit_lock(&self, job: JobId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.submit_locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.retain(|_, lock| lock.strong_count() > 0);
        if let Some(lock) = locks.get(&job).and_then(Weak::upgrade) {
            return lock;
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        locks.insert(job, Arc::downgrade(&lock));
        lock
    }

    /// Verify `bytes` as `prover`'s proof of `job` under lease `token` and store it.
    pub async fn submit(
        &self,
        prover: &Prover,
        job: JobId,
        token: i64,
        prove_ms: Option<i64>,
        bytes: Vec<u8>,
    ) -> Result<SubmitResponse, SubmitError> {
        let lock = self.submit_lock(job);
        let _serialized = lock.lock().await;
        let now = self.lease_clock_ms().await.map_err(InternalError::Store)?;
        let current = self.job::<SubmitError>(job).await?;
        if current.status == JobStatus::Proved {
            // A retry of the submission that succeeded is answered as it was, minus the news.
            let hash = sheaf_store::proof_hash(&bytes);
            if current.proved_by.as_deref() == Some(prover.id.as_str())
                && current.proof_hash.as_deref() == Some(hash.as_str())
            {
                return Ok(SubmitResponse {
                    proof_hash: hash,
                    parent_ready: None,
                    sequence_proved: false,
                });
            }
            return Err(JobRefusal::AlreadyProved(job).into());
        }
        let lease_current = current.status == JobStatus::Leased
            && current.lease_token == token
            && current.lease_holder.as_deref() == Some(prover.id.as_str())
            && current
                .lease_expires_ms
                .is_some_and(|expires| now < expires);
        if !lease_current {
            return Err(JobRefusal::StaleLease { job, token }.into());
        }

        let circuit = current.circuit.clone();
        let worker_pk =
            Digest::from_bytes(&prover.worker_pk).ok_or_else(|| InternalError::WorkerPk {
                prover: prover.id.clone(),
            })?;
        let expected = self.expected(&current, &circuit, worker_pk).await?;
        let header = self.verify(&circuit, bytes.clone(), expected).await?;

        let work_units = match circuit {
            JobCircuit::Leaf { .. } => header.stats.work_units,
            JobCircuit::LeafNode { .. } | JobCircuit::Universal | JobCircuit::Kernel { .. } => {
                self.circuits.aggregation.universal().weight()
            }
            // The wrap re-exposes the root's header: it adds no work to the reward tree.
            JobCircuit::Wrap => 0,
        };
        let outcome = self
            .store
            .submit_proof(
                job,
                token,
                &prover.id,
                &bytes,
                RewardEntry {
                    worker_pk: prover.worker_pk,
                    work_units: work_units as i64,
                },
                self.store_clock_ms().await.map_err(InternalError::Store)?,
                prove_ms,
            )
            .await?;
        let level = job.level.to_string();
        metrics::counter!(PROOFS_ACCEPTED, "prover" => prover.id.clone(), "level" => level.clone())
            .increment(1);
        if let Some(leased_ms) = current.leased_ms {
            let seconds = (now_ms() - leased_ms).max(0) as f64 / 1000.0;
            metrics::histogram!(PROOF_SECONDS, "level" => level.clone()).record(seconds);
        }
        if let Some(ms) = prove_ms {
            metrics::histogram!(PROVING_SECONDS, "level" => level).record(ms as f64 / 1000.0);
        }
        if outcome.parent_ready.is_some() {
            self.ready.notify_waiters();
        }
        tracing::info!(target: "sheaf::coordinator", %job, prover = %prover.id, token, prove_ms, parent_ready = ?outcome.parent_ready, sequence_proved = outcome.sequence_proved, "proof accepted");
        Ok(SubmitResponse {
            proof_hash: outcome.proof_hash,
            parent_ready: outcome.parent_ready,
            sequence_proved: outcome.sequence_proved,
        })
    }

    /// What `job`'s proof by `worker_pk` must carry: its header, by its kind's rule over its
    /// inputs for a leaf, over the children's stored proofs for a node; and the whitelist root.
    async fn expected(
        &self,
        job: &Job,
        circuit: &JobCircuit,
        worker_pk: Digest,
    ) -> Result<Expected, InternalError> {
        let mut children = Vec::new();
        for (child, bytes) in self.store.child_proofs(job.id).await? {
            let child_circuit = self.stored_job(child).await?.circuit;
            children.push(stored_header(
                &self.circuits,
                child,
                &child_circuit,
                &bytes,
            )?);
        }
        let header = self
            .circuits
            .expected_header(circuit, &job.inputs, &children, worker_pk)
            .map_err(InternalError::Circuits)?;
        Ok(Expected {
            header,
            whitelist_root: self.circuits.whitelist_root(circuit),
        })
    }

    /// Verify on the bounded pool; a full pool answers 503.
    async fn verify(
        &self,
        circuit: &JobCircuit,
        bytes: Vec<u8>,
        expected: Expected,
    ) -> Result<Header, SubmitError> {
        let verifier = self
            .verifiers
            .get(circuit)
            .cloned()
            .ok_or_else(|| InternalError::NoVerifier(circuit.clone()))?;
        let Ok(_admitted) = self.verify_admission.clone().try_acquire_owned() else {
            return Err(SubmitError::Overloaded);
        };
        let _worker = self
            .verify_workers
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| SubmitError::ShuttingDown)?;
        let start = Instant::now();
        let check = self.proof_check;
        let verified = tokio::task::spawn_blocking(move || {
            isolated(|| check(&bytes, &verifier, &expected)).map(|proof| proof.public_inputs)
        })
        .await
        .map_err(InternalError::VerifierTask)?;
        metrics::histogram!(VERIFY_SECONDS).record(start.elapsed().as_secs_f64());
        let public_inputs = verified.map_err(SubmitError::Proof)?;
        // The verifier accepted a header of the expected length: it parses.
        Header::from_public_inputs(&public_inputs).map_err(|e| InternalError::Circuits(e).into())
    }
}

/// How the coordinator checks a submitted proof against its circuit and expected header:
/// [`sheaf_circuits::verify_job_proof`], unless a test installed a stand-in
/// ([`Coordinator::set_proof_check`]).
pub type ProofCheck =
    fn(&[u8], &VerifierCircuitData<F, C, D>, &Expected) -> Result<Proof, CircuitError>;

/// Runs a proof check, turning a panic into a refusal of the proof. Verification runs
/// plonky2 on bytes a remote party chose; a panic there (a bug the bytes reach) must cost the
/// sender its proof, not the coordinator a 500 or a worker thread. The panic is logged in
/// full; the prover is told only that its proof was refused.
pub(crate) fn isolated<T>(
    check: impl FnOnce() -> Result<T, CircuitError>,
) -> Result<T, CircuitError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        tracing::error!(target: "sheaf::coordinator", panic = %message, "proof verification panicked: proof refused");
        Err(CircuitError::VerificationFailed(
            "the verifier failed on this proof".to_owned(),
        ))
    })
}

/// The header of `job`'s stored proof, made with `circuit`: what a parent aggregates and a
/// claim's path is made of. A stored proof that does not decode is an internal failure.
pub(crate) fn stored_header(
    circuits: &CircuitSet,
    job: JobId,
    circuit: &JobCircuit,
    bytes: &[u8],
) -> Result<Header, InternalError> {
    let common = circuits.common(circuit).map_err(InternalError::Circuits)?;
    let unusable = |e: CircuitError| InternalError::StoredJob {
        job,
        what: "proof",
        reason: e.to_string(),
    };
    let proof =
        decode_proof(bytes, common, sheaf_circuits::limits::MAX_PROOF_BYTES).map_err(unusable)?;
    Header::from_public_inputs(&proof.public_inputs).map_err(unusable)
}

impl Coordinator {
    /// Verify a leaf proof made outside the network (a local transaction's signed half, proved
    /// by its client) as any submitted proof: size, decoding, the circuit of `circuit`, the
    /// header its `inputs` give for `worker_pk` (statement and worker key), verification.
    pub(crate) async fn verify_client_leaf(
        &self,
        circuit: &JobCircuit,
        inputs: &sheaf_circuits::JobInputs,
        bytes: Vec<u8>,
        worker_pk: Digest,
    ) -> Result<Header, SubmitError> {
        let header = self
            .circuits
            .expected_header(circuit, inputs, &[], worker_pk)
            .map_err(SubmitError::Proof)?;
        let expected = Expected {
            header,
            whitelist_root: self.circuits.whitelist_root(circuit),
        };
        self.verify(circuit, bytes, expected).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_check_is_a_refused_proof() {
        let refused = isolated::<()>(|| panic!("index out of bounds"));
        assert!(
            matches!(&refused, Err(CircuitError::VerificationFailed(m)) if !m.contains("index")),
            "{refused:?}"
        );
        let formatted = isolated::<()>(|| panic!("{} out of {}", 7, 3));
        assert!(matches!(
            formatted,
            Err(CircuitError::VerificationFailed(_))
        ));
        assert_eq!(isolated(|| Ok(7)).unwrap(), 7);
    }
}
