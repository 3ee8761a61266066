//! The coordinator's service: what each API call does, independent of HTTP.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use plonky2::plonk::circuit_data::VerifierCircuitData;
use sheaf_api::{
    ChildProof, CircuitSpec, HelloRequest, HelloResponse, JobAssignment, JobCount, ProverLimits,
    SequenceStatus, StatusResponse, SubmitResponse, API_VERSION,
};
use sheaf_circuits::work::work_input;
use sheaf_circuits::{
    decode_proof, verify_job_proof, CircuitError, CircuitSet, Digest, Expected, Header, JobCircuit,
    C, D, F,
};
use sheaf_store::{Job, JobStatus, Lease, LeaseOutcome, Prover, RewardEntry, Store, StoreError};
use sheaf_types::clock::{millis, now_ms};
use sheaf_types::{JobId, JobInputs, SequenceId};
use tokio::sync::{Notify, Semaphore};

use crate::admission::{Registry, RegistryError};
use crate::config::{CoordinatorConfig, LEASE_RECHECK_INTERVAL};
use crate::error::{
    AdmissionError, HeartbeatError, HelloError, InternalError, JobRefusal, LeaseError, SubmitError,
};
use crate::job_tree::plan_sequence;
use crate::metrics::{
    JOBS_DEAD, JOBS_REQUEUED, LEASES_EXPIRED, LEASES_GRANTED, PROOFS_ACCEPTED, VERIFY_SECONDS,
};

/// Why the coordinator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The registry could not be read.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A circuit is missing from the set.
    #[error(transparent)]
    Circuits(#[from] sheaf_circuits::CircuitError),
}

/// The coordinator: leases jobs to provers, verifies what they submit, and keeps everything in
/// the store. Cheap to share (`Arc`); one per process, several per database.
pub struct Coordinator {
    store: Store,
    circuits: Arc<CircuitSet>,
    verifiers: HashMap<JobCircuit, Arc<VerifierCircuitData<F, C, D>>>,
    spec: CircuitSpec,
    config: CoordinatorConfig,
    registry: Option<Arc<dyn Registry>>,
    /// Set when copying the registry into the store failed: the next sweep copies it again
    /// even if the registry reports no change (it counts the failed read as seen).
    registry_stale: std::sync::atomic::AtomicBool,
    /// Woken when a job may have become ready (a proof readied a parent, a lease expired).
    ready: Notify,
    /// Submissions in verification or waiting for it; none left means 503.
    verify_admission: Arc<Semaphore>,
    /// Verifications running at once.
    verify_workers: Arc<Semaphore>,
    /// Submissions of one job are serialized, so identical concurrent submissions cost one
    /// verification and store one proof.
    submit_locks: Mutex<HashMap<JobId, Weak<tokio::sync::Mutex<()>>>>,
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("spec", &self.spec)
            .field("config", &self.config)
            .finish()
    }
}

impl Coordinator {
    /// A coordinator over `store`, verifying with `circuits` (whose work leaf has
    /// `2^leaf_rows_log2` rows), admitting the provers of `registry` (copied into the store now
    /// and whenever it changes; without a registry, the provers already in the store).
    pub async fn new(
        store: Store,
        circuits: Arc<CircuitSet>,
        leaf_rows_log2: usize,
        config: CoordinatorConfig,
        registry: Option<Arc<dyn Registry>>,
    ) -> Result<Self, StartError> {
        // Counters recorded before the recorder exists would be lost.
        crate::metrics::handle();
        if let Some(registry) = &registry {
            store.sync_provers(&registry.admitted()?).await?;
        }
        let kind = sheaf_circuits::work::WORK_LEAF_KIND.to_owned();
        let mut circuit_names = vec![
            JobCircuit::Leaf { kind: kind.clone() },
            JobCircuit::LeafNode { kind },
            JobCircuit::Universal,
        ];
        if circuits.aggregation.final_wrap().is_some() {
            circuit_names.push(JobCircuit::Wrap);
        }
        let verifiers = circuit_names
            .into_iter()
            .map(|c| Ok((c.clone(), Arc::new(circuits.verifier_data(&c)?))))
            .collect::<Result<_, sheaf_circuits::CircuitError>>()?;
        let settings = circuits.aggregation.settings();
        let spec = CircuitSpec {
            profile: settings.profile.to_string(),
            arity: settings.arity,
            final_zk: settings.final_zk,
            leaf_rows_log2,
            final_key_id: circuits.aggregation.final_key().id().to_string(),
            whitelist_root: circuits.aggregation.whitelist().root().to_string(),
        };
        Ok(Coordinator {
            store,
            verifiers,
            spec,
            verify_admission: Arc::new(Semaphore::new(config.verify_workers + config.verify_queue)),
            verify_workers: Arc::new(Semaphore::new(config.verify_workers.max(1))),
            circuits,
            config,
            registry,
            ready: Notify::new(),
            registry_stale: std::sync::atomic::AtomicBool::new(false),
            submit_locks: Mutex::new(HashMap::new()),
            shutdown: tokio::sync::watch::channel(false).0,
        })
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    /// The circuits provers must prove with.
    pub fn spec(&self) -> &CircuitSpec {
        &self.spec
    }

    /// The circuits.
    pub fn circuits(&self) -> &CircuitSet {
        &self.circuits
    }

    /// The circuits, shared (for the proof sender).
    pub fn circuits_arc(&self) -> Arc<CircuitSet> {
        self.circuits.clone()
    }

    /// Ends long-polls at once (they answer "no job"), for a graceful shutdown.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
        self.ready.notify_waiters();
    }

    /// Plans sequence `id` of `leaves` work leaves (seeded by its id). Planning a sequence
    /// that exists changes nothing and returns `false`.
    pub async fn plan(&self, id: i64, leaves: usize) -> Result<bool, StartError> {
        let settings = self.circuits.aggregation.settings();
        let plan = plan_sequence(
            id,
            leaves,
            settings.arity,
            sheaf_circuits::work::WORK_LEAF_KIND,
            id as u64,
            self.circuits.aggregation.final_wrap().is_some(),
            now_ms(),
        )?;
        match self.store.insert_sequence(plan.sequence, &plan.jobs).await {
            Ok(()) => {
                tracing::info!(target: "sheaf::coordinator", sequence = id, leaves, jobs = plan.jobs.len(), "planned sequence");
                self.ready.notify_waiters();
                Ok(true)
            }
            Err(StoreError::SequenceExists(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The registered prover whose key is `public_key`. A key the store does not admit is
    /// refused with the registry's reason when it has one (an expired membership, no
    /// membership), else as an unknown prover.
    pub async fn prover_by_key(&self, public_key: &[u8; 32]) -> Result<Prover, AdmissionError> {
        if let Some(prover) = self.store.prover_by_key(public_key).await? {
            return Ok(prover);
        }
        if let Some(refusal) = self.registry.as_ref().and_then(|r| r.refusal(public_key)) {
            return Err(AdmissionError::Refused(refusal));
        }
        Err(AdmissionError::UnknownProver {
            key: hex::encode(public_key),
        })
    }

    /// Records a request nonce; a nonce seen within the clock-skew window is a replay.
    pub async fn check_nonce(
        &self,
        key: &[u8; 32],
        nonce: &[u8; 16],
        now: i64,
    ) -> Result<(), AdmissionError> {
        let expires = now + 2 * sheaf_api::MAX_CLOCK_SKEW_MS;
        if self
            .store
            .remember_nonce(&hex::encode(key), &hex::encode(nonce), expires)
            .await?
        {
            Ok(())
        } else {
            Err(AdmissionError::ReplayedNonce)
        }
    }

    /// Answer a prover's hello.
    pub fn hello(
        &self,
        prover: &Prover,
        request: &HelloRequest,
    ) -> Result<HelloResponse, HelloError> {
        if request.api_version != API_VERSION {
            return Err(HelloError::IncompatibleVersion {
                prover: request.api_version,
                coordinator: API_VERSION,
            });
        }
        tracing::info!(target: "sheaf::coordinator", prover = %prover.id, software = %request.software, "hello");
        Ok(HelloResponse {
            api_version: API_VERSION,
            prover: prover.id.clone(),
            circuits: self.spec.clone(),
            lease_ttl_ms: millis(self.config.lease_ttl),
            heartbeat_interval_ms: millis(self.config.heartbeat_interval) as u64,
            max_lease_wait_ms: millis(self.config.max_lease_wait) as u64,
            limits: ProverLimits {
                rate_limit: prover.rate_limit,
                epoch_ms: millis(self.config.epoch),
                max_concurrent: prover.max_concurrent,
            },
        })
    }

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
            let outcome = if !self.store.has_ready_job().await? {
                LeaseOutcome::NoWork
            } else {
                self.store
                    .lease_admitted(
                        &prover.id,
                        now_ms(),
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
                    let retry_after_s = ((epoch_ends_ms - now_ms()).max(0) as u64).div_ceil(1000);
                    return Err(LeaseError::RateLimited {
                        used,
                        limit,
                        retry_after_s,
                    });
                }
                LeaseOutcome::TooManyLeases { active, limit } => {
                    return Err(LeaseError::TooManyLeases { active, limit });
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
        let job = wire_job(lease.job);
        let circuit = parse_circuit(job, &lease.circuit)?;
        let inputs = parse_inputs(job, &lease.inputs)?;
        let mut children = Vec::new();
        for (child, proof) in self.store.child_proofs(lease.job).await? {
            let stored = self.stored_job(child).await?;
            children.push(ChildProof {
                job: wire_job(child),
                circuit: parse_circuit(wire_job(child), &stored.circuit)?,
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

    /// Job `id` as a prover names it: unknown is a refusal.
    async fn job<E: From<JobRefusal> + From<InternalError>>(&self, id: JobId) -> Result<Job, E> {
        let stored = self.store.get_job(store_job(id)).await;
        match stored.map_err(InternalError::Store)? {
            Some(job) => Ok(job),
            None => Err(JobRefusal::UnknownJob(id).into()),
        }
    }

    /// A job the store named (a child): missing is a failure of the store.
    async fn stored_job(&self, id: sheaf_store::JobId) -> Result<Job, InternalError> {
        self.store
            .get_job(id)
            .await?
            .ok_or(InternalError::Store(StoreError::UnknownJob(id)))
    }

    /// Extend `prover`'s lease on `job`.
    pub async fn heartbeat(
        &self,
        prover: &Prover,
        job: JobId,
        token: i64,
    ) -> Result<i64, HeartbeatError> {
        let current = self.job::<HeartbeatError>(job).await?;
        if current.lease_holder.as_deref() != Some(prover.id.as_str()) {
            return Err(JobRefusal::StaleLease { job, token }.into());
        }
        Ok(self
            .store
            .heartbeat(
                store_job(job),
                token,
                now_ms(),
                millis(self.config.lease_ttl),
            )
            .await?)
    }

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
        let now = now_ms();
        let lease_current = current.status == JobStatus::Leased
            && current.lease_token == token
            && current.lease_holder.as_deref() == Some(prover.id.as_str())
            && current
                .lease_expires_ms
                .is_some_and(|expires| now < expires);
        if !lease_current {
            return Err(JobRefusal::StaleLease { job, token }.into());
        }

        let circuit = parse_circuit(job, &current.circuit)?;
        let worker_pk =
            Digest::from_bytes(&prover.worker_pk).ok_or_else(|| InternalError::WorkerPk {
                prover: prover.id.clone(),
            })?;
        let expected = self.expected(&current, &circuit, worker_pk).await?;
        let header = self.verify(&circuit, bytes.clone(), expected).await?;

        let work_units = match circuit {
            JobCircuit::Leaf { .. } => header.stats.work_units,
            JobCircuit::LeafNode { .. } | JobCircuit::Universal => {
                self.circuits.aggregation.universal().weight()
            }
            // The wrap re-exposes the root's header: it adds no work to the reward tree.
            JobCircuit::Wrap => 0,
        };
        let outcome = self
            .store
            .submit_proof(
                store_job(job),
                token,
                &prover.id,
                &bytes,
                RewardEntry {
                    worker_pk: prover.worker_pk,
                    work_units: work_units as i64,
                },
                now_ms(),
                prove_ms,
            )
            .await?;
        metrics::counter!(PROOFS_ACCEPTED, "prover" => prover.id.clone(), "level" => job.level.to_string())
            .increment(1);
        if outcome.parent_ready.is_some() {
            self.ready.notify_waiters();
        }
        tracing::info!(target: "sheaf::coordinator", %job, prover = %prover.id, token, prove_ms, parent_ready = ?outcome.parent_ready, sequence_proved = outcome.sequence_proved, "proof accepted");
        Ok(SubmitResponse {
            proof_hash: outcome.proof_hash,
            parent_ready: outcome.parent_ready.map(wire_job),
            sequence_proved: outcome.sequence_proved,
        })
    }

    /// What `job`'s proof by `worker_pk` must carry: its header over the work input or the
    /// children's stored proofs, and the whitelist root.
    async fn expected(
        &self,
        job: &Job,
        circuit: &JobCircuit,
        worker_pk: Digest,
    ) -> Result<Expected, InternalError> {
        let work = match parse_inputs(wire_job(job.id), &job.inputs)? {
            JobInputs::Work { seed, index } => Some(work_input(seed, index)),
            JobInputs::Aggregate => None,
        };
        let mut children = Vec::new();
        for (child, bytes) in self.store.child_proofs(job.id).await? {
            let child_job = wire_job(child);
            let child_circuit = parse_circuit(child_job, &self.stored_job(child).await?.circuit)?;
            let common = self
                .circuits
                .common(&child_circuit)
                .map_err(InternalError::Circuits)?;
            let unusable = |e: CircuitError| InternalError::StoredJob {
                job: child_job,
                what: "proof",
                reason: e.to_string(),
            };
            let proof = decode_proof(&bytes, common, sheaf_circuits::limits::MAX_PROOF_BYTES)
                .map_err(unusable)?;
            children.push(Header::from_public_inputs(&proof.public_inputs).map_err(unusable)?);
        }
        let header = self
            .circuits
            .expected_header(circuit, work.as_ref(), &children, worker_pk)
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
        let verified = tokio::task::spawn_blocking(move || {
            verify_job_proof(&bytes, &verifier, &expected).map(|proof| proof.public_inputs)
        })
        .await
        .map_err(InternalError::VerifierTask)?;
        metrics::histogram!(VERIFY_SECONDS).record(start.elapsed().as_secs_f64());
        let public_inputs = verified.map_err(SubmitError::Proof)?;
        // The verifier accepted a header of the expected length: it parses.
        Header::from_public_inputs(&public_inputs).map_err(|e| InternalError::Circuits(e).into())
    }

    /// Sequences and jobs by status.
    pub async fn status(&self) -> Result<StatusResponse, InternalError> {
        let sequences = self
            .store
            .list_sequences()
            .await?
            .into_iter()
            .map(|s| SequenceStatus {
                id: SequenceId(s.id as u64),
                leaves: s.leaves,
                root_job: wire_job(s.root),
                proved: s.proved_ms.is_some(),
            })
            .collect();
        let jobs = self
            .store
            .counts_by_status()
            .await?
            .into_iter()
            .map(|c| JobCount {
                status: c.status.as_str().to_owned(),
                level: c.level,
                count: c.count,
            })
            .collect();
        Ok(StatusResponse { sequences, jobs })
    }

    /// One pass of the sweeper: take back expired leases, forget old nonces, pick up registry
    /// changes.
    pub async fn sweep(&self) -> Result<(), StartError> {
        let now = now_ms();
        let expired = self
            .store
            .requeue_expired(now, self.config.max_attempts)
            .await?;
        let taken_back = expired.requeued.len() + expired.dead.len();
        if taken_back > 0 {
            metrics::counter!(LEASES_EXPIRED).increment(taken_back as u64);
            metrics::counter!(JOBS_REQUEUED).increment(expired.requeued.len() as u64);
            metrics::counter!(JOBS_DEAD).increment(expired.dead.len() as u64);
            self.ready.notify_waiters();
        }
        self.store.prune_nonces(now).await?;
        use std::sync::atomic::Ordering;
        let stale = self.registry_stale.load(Ordering::Acquire);
        if let Some(registry) = self.registry.as_ref().filter(|r| stale || r.changed()) {
            self.registry_stale.store(true, Ordering::Release);
            self.store.sync_provers(&registry.admitted()?).await?;
            self.registry_stale.store(false, Ordering::Release);
            tracing::info!(target: "sheaf::coordinator", "provers registry reloaded");
        }
        Ok(())
    }
}

// The store keeps its own job ids, circuits as text and inputs as JSON until it adopts
// sheaf-types' (on the `store` branch); these bridge the two in one place and go at the merge.

/// A store job id as the API's.
pub(crate) fn wire_job(id: sheaf_store::JobId) -> JobId {
    JobId::new(
        SequenceId(id.sequence as u64),
        id.level as u32,
        id.index as u64,
    )
}

/// An API job id as the store's.
fn store_job(id: JobId) -> sheaf_store::JobId {
    sheaf_store::JobId::new(id.sequence.0 as i64, id.level as i32, id.index as i64)
}

/// A stored circuit name.
fn parse_circuit(job: JobId, name: &str) -> Result<JobCircuit, InternalError> {
    name.parse().map_err(
        |e: sheaf_circuits::UnknownCircuit| InternalError::StoredJob {
            job,
            what: "circuit",
            reason: e.to_string(),
        },
    )
}

/// Stored job inputs.
fn parse_inputs(job: JobId, bytes: &[u8]) -> Result<JobInputs, InternalError> {
    JobInputs::from_bytes(bytes).map_err(|e| InternalError::StoredJob {
        job,
        what: "inputs",
        reason: e.to_string(),
    })
}
