//! The prover's loop: hello, load the circuits, then lease, prove and submit until told to stop.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::ThreadPool;
use serde::Serialize;
use sheaf_api::{ChildProof, CircuitSpec, ErrorCode, JobAssignment, JobId, JobInputs, API_VERSION};
use sheaf_circuits::limits::MAX_PROOF_BYTES;
use sheaf_circuits::work::work_input;
use sheaf_circuits::{
    decode_proof, encode_proof, proving_pool, AggregationSettings, ArtifactCache, CircuitError,
    CircuitSet, JobCircuit, WorkerSecret,
};
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::backoff::Backoff;
use crate::client::{Client, ClientError};
use crate::key::ProverKey;

/// Default long-poll wait of a lease request: long enough that an idle prover asks rarely,
/// short enough that a lost connection is noticed soon. The coordinator caps it with its
/// `max_lease_wait_ms`.
pub const DEFAULT_LEASE_WAIT_MS: u64 = 20_000;

/// Shortest heartbeat interval followed, whatever the coordinator asks: a floor against a
/// misconfigured coordinator turning heartbeats into a busy loop.
pub const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(100);

/// Tracing target of the prover.
const TARGET: &str = "sheaf::prover";

/// What a prover runs with.
#[derive(Clone, Debug)]
pub struct ProverConfig {
    /// The coordinator's base URL (`http://host:port`).
    pub coordinator: String,
    /// The prover's key.
    pub key: ProverKey,
    /// Proving threads (0: one per core).
    pub threads: usize,
    /// Stop after this many accepted proofs (`None`: run until shut down).
    pub max_jobs: Option<u64>,
    /// Where built circuits are kept across runs (`None`: build them every run).
    pub cache: Option<ArtifactCache>,
    /// Long-poll wait of each lease request, capped by the coordinator's `max_lease_wait_ms`.
    pub lease_wait_ms: u64,
}

/// What a prover did, for its operator.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ProverReport {
    /// Jobs whose proof the coordinator accepted.
    pub jobs_proved: u64,
    /// Jobs given up: lease lost (stale, already proved, unknown, expired before submission) or
    /// not provable here.
    pub jobs_abandoned: u64,
    /// Proofs the coordinator refused for a reason that retrying would not fix.
    pub submissions_rejected: u64,
    /// Time spent proving, summed over every proof made (abandoned ones too).
    pub prove_seconds: f64,
    /// Time from start to exit.
    pub wall_seconds: f64,
    /// Time spent building or loading the circuits.
    pub circuits_seconds: f64,
    /// Whether the aggregation circuits came from the artifact cache.
    pub circuits_from_cache: bool,
}

/// Why a prover stopped with an error.
#[derive(Debug, Error)]
pub enum ProverError {
    /// The client could not be set up (bad coordinator URL, TLS backend).
    #[error("cannot set up the client")]
    Setup(#[source] ClientError),
    /// The coordinator refused the hello for a reason that retrying will not fix (the key is
    /// not registered, the signature or the clock is off, …).
    #[error("the coordinator refused hello")]
    Hello(#[source] ClientError),
    /// The coordinator speaks another API version.
    #[error("the coordinator speaks API version {coordinator}, this prover {prover}")]
    IncompatibleVersion {
        /// The coordinator's version.
        coordinator: u32,
        /// Ours ([`API_VERSION`]).
        prover: u32,
    },
    /// The coordinator's circuit profile is unknown here.
    #[error("unknown circuit profile: {0}")]
    UnknownProfile(String),
    /// Building or loading the circuits, or the proving pool, failed.
    #[error("cannot build the circuits")]
    Circuits(#[source] CircuitError),
    /// The circuits built here are not those the coordinator verifies with: their proofs would
    /// all be refused.
    #[error(
        "circuit mismatch: the coordinator verifies with final key {coordinator_key} (whitelist \
         {coordinator_whitelist}), these circuits have {local_key} (whitelist {local_whitelist})"
    )]
    CircuitMismatch {
        /// The coordinator's final key id.
        coordinator_key: String,
        /// The coordinator's whitelist root.
        coordinator_whitelist: String,
        /// The final key id of the circuits built here.
        local_key: String,
        /// Their whitelist root.
        local_whitelist: String,
    },
    /// Building the circuits panicked.
    #[error("building the circuits panicked: {0}")]
    Panicked(String),
    /// The coordinator refused a lease for a reason that retrying will not fix.
    #[error("the coordinator refused a lease")]
    Lease(#[source] ClientError),
}

/// Run a prover until `shutdown` completes or `max_jobs` proofs are accepted.
///
/// On shutdown, a job being proved is finished and submitted first; a lease request or a
/// backoff pause is cut short.
pub async fn run(
    config: ProverConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<ProverReport, ProverError> {
    let started = Instant::now();
    tokio::pin!(shutdown);
    let mut shutdown = Shutdown {
        signal: shutdown,
        fired: false,
    };
    let mut report = ProverReport::default();
    let finish = |mut report: ProverReport| {
        report.wall_seconds = started.elapsed().as_secs_f64();
        report
    };

    let client =
        Client::new(&config.coordinator, config.key.clone()).map_err(ProverError::Setup)?;
    let Some(hello) = say_hello(&client, &mut shutdown).await? else {
        return Ok(finish(report));
    };
    if hello.api_version != API_VERSION {
        return Err(ProverError::IncompatibleVersion {
            coordinator: hello.api_version,
            prover: API_VERSION,
        });
    }
    info!(
        target: TARGET,
        prover = %hello.prover,
        lease_ttl_ms = hello.lease_ttl_ms,
        heartbeat_interval_ms = hello.heartbeat_interval_ms,
        rate_limit = hello.limits.rate_limit,
        max_concurrent = hello.limits.max_concurrent,
        "registered with the coordinator"
    );

    let pool = Arc::new(proving_pool(config.threads).map_err(ProverError::Circuits)?);
    let Some(circuits) = load_circuits(
        &hello.circuits,
        pool.clone(),
        config.cache.clone(),
        &mut shutdown,
        &mut report,
    )
    .await?
    else {
        return Ok(finish(report));
    };
    check_circuits(&circuits, &hello.circuits)?;

    let worker = Worker {
        client,
        circuits: Arc::new(circuits),
        pool,
        secret: config.key.worker,
        lease_ttl: Duration::from_millis(u64::try_from(hello.lease_ttl_ms).unwrap_or(0)),
        heartbeat_interval: Duration::from_millis(hello.heartbeat_interval_ms)
            .max(MIN_HEARTBEAT_INTERVAL),
    };
    let wait_ms = config.lease_wait_ms.min(hello.max_lease_wait_ms);
    let mut backoff = Backoff::new();
    while !shutdown.fired && config.max_jobs.is_none_or(|max| report.jobs_proved < max) {
        let asked = Instant::now();
        let leased = tokio::select! {
            leased = worker.client.lease(wait_ms) => leased,
            () = shutdown.wait() => break,
        };
        match leased {
            Ok(Some(assignment)) => {
                backoff.reset();
                worker.run_job(assignment, &mut report).await;
            }
            Ok(None) if asked.elapsed() < Duration::from_millis(wait_ms / 2) => {
                // An empty answer long before the wait was up: do not poll in a tight loop.
                let delay = backoff.next_delay();
                debug!(target: TARGET, delay_ms = millis(delay), "no job; pausing");
                shutdown.sleep(delay).await;
            }
            Ok(None) => backoff.reset(),
            Err(e) if e.is_retryable() => {
                let delay = backoff.next_delay();
                warn!(
                    target: TARGET,
                    attempt = backoff.failures(),
                    delay_ms = millis(delay),
                    error = %error_chain(&e),
                    "lease failed; retrying"
                );
                shutdown.sleep(delay).await;
            }
            Err(e) => return Err(ProverError::Lease(e)),
        }
    }
    let report = finish(report);
    info!(
        target: TARGET,
        jobs_proved = report.jobs_proved,
        jobs_abandoned = report.jobs_abandoned,
        submissions_rejected = report.submissions_rejected,
        "prover stopped"
    );
    Ok(report)
}

/// The shutdown signal, remembered once it has fired.
struct Shutdown<'a, F> {
    signal: Pin<&'a mut F>,
    fired: bool,
}

impl<F: Future<Output = ()>> Shutdown<'_, F> {
    /// Completes when shutdown is asked for (at once if it was already).
    async fn wait(&mut self) {
        if !self.fired {
            self.signal.as_mut().await;
            self.fired = true;
            info!(target: TARGET, "shutting down");
        }
    }

    /// Sleep for `delay`, or less if shutdown is asked for meanwhile.
    async fn sleep(&mut self, delay: Duration) {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = self.wait() => {}
        }
    }
}

/// Hello, retried with backoff until the coordinator answers; `None` on shutdown.
async fn say_hello<F: Future<Output = ()>>(
    client: &Client,
    shutdown: &mut Shutdown<'_, F>,
) -> Result<Option<sheaf_api::HelloResponse>, ProverError> {
    let mut backoff = Backoff::new();
    loop {
        let answer = tokio::select! {
            answer = client.hello() => answer,
            () = shutdown.wait() => return Ok(None),
        };
        match answer {
            Ok(hello) => return Ok(Some(hello)),
            Err(e) if e.is_retryable() => {
                let delay = backoff.next_delay();
                warn!(
                    target: TARGET,
                    coordinator = %client.base_url(),
                    attempt = backoff.failures(),
                    delay_ms = millis(delay),
                    error = %error_chain(&e),
                    "hello failed; retrying"
                );
                shutdown.sleep(delay).await;
            }
            Err(e) => return Err(ProverError::Hello(e)),
        }
    }
}

/// Load or build the coordinator's circuits in the proving pool; `None` on shutdown.
async fn load_circuits<F: Future<Output = ()>>(
    spec: &CircuitSpec,
    pool: Arc<ThreadPool>,
    cache: Option<ArtifactCache>,
    shutdown: &mut Shutdown<'_, F>,
    report: &mut ProverReport,
) -> Result<Option<CircuitSet>, ProverError> {
    let settings = AggregationSettings {
        profile: spec.profile.parse().map_err(ProverError::UnknownProfile)?,
        arity: spec.arity,
        final_zk: spec.final_zk,
    };
    let leaf_rows_log2 = spec.leaf_rows_log2;
    info!(
        target: TARGET,
        profile = %settings.profile,
        arity = settings.arity,
        final_zk = settings.final_zk,
        leaf_rows_log2,
        cache = ?cache.as_ref().map(|c| c.dir().display().to_string()),
        "loading circuits"
    );
    let started = Instant::now();
    let building = tokio::task::spawn_blocking(move || {
        pool.install(|| CircuitSet::load_or_build(settings, leaf_rows_log2, cache.as_ref()))
    });
    let circuits = tokio::select! {
        built = building => built
            .map_err(|e| ProverError::Panicked(e.to_string()))?
            .map_err(ProverError::Circuits)?,
        () = shutdown.wait() => return Ok(None),
    };
    report.circuits_seconds = started.elapsed().as_secs_f64();
    report.circuits_from_cache = circuits.aggregation.from_cache();
    info!(
        target: TARGET,
        seconds = report.circuits_seconds,
        from_cache = report.circuits_from_cache,
        final_key = %circuits.aggregation.final_key().id(),
        "circuits ready"
    );
    Ok(Some(circuits))
}

/// The prover must prove what the coordinator verifies: same final key, same whitelist.
fn check_circuits(circuits: &CircuitSet, spec: &CircuitSpec) -> Result<(), ProverError> {
    let key = circuits.aggregation.final_key();
    let local_key = key.id().to_string();
    let local_whitelist = key.whitelist_root().to_string();
    if local_key == spec.final_key_id && local_whitelist == spec.whitelist_root {
        Ok(())
    } else {
        Err(ProverError::CircuitMismatch {
            coordinator_key: spec.final_key_id.clone(),
            coordinator_whitelist: spec.whitelist_root.clone(),
            local_key,
            local_whitelist,
        })
    }
}

/// How one leased job ended.
enum Outcome {
    /// The coordinator accepted its proof.
    Proved,
    /// The lease was lost or the job cannot be proved here.
    Abandoned,
    /// The coordinator refused the proof.
    Rejected,
}

/// Why a heartbeat gave the lease up: the coordinator's code and message.
type LeaseLost = (ErrorCode, String);

/// Everything a job needs, shared by all jobs of a run.
struct Worker {
    client: Client,
    circuits: Arc<CircuitSet>,
    pool: Arc<ThreadPool>,
    secret: WorkerSecret,
    lease_ttl: Duration,
    heartbeat_interval: Duration,
}

impl Worker {
    /// Prove and submit one leased job, counting how it ended.
    async fn run_job(&self, assignment: JobAssignment, report: &mut ProverReport) {
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

/// Heartbeat the lease every `interval` until the coordinator says it is lost; each success
/// moves the lease's local deadline to `ttl` after the heartbeat was sent. Failures that may
/// pass (transport, overload) are logged and retried at the next interval.
async fn keep_lease(
    client: Client,
    job: JobId,
    token: i64,
    interval: Duration,
    ttl: Duration,
    deadline: watch::Sender<Instant>,
) -> LeaseLost {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let sent = Instant::now();
        match client.heartbeat(job, token).await {
            Ok(extended) => {
                deadline.send_replace(sent + ttl);
                debug!(target: TARGET, job = %job, token, expires_ms = extended.expires_ms, "lease extended");
            }
            Err(ClientError::Api {
                code:
                    code @ (ErrorCode::StaleLease | ErrorCode::AlreadyProved | ErrorCode::UnknownJob),
                message,
                ..
            }) => return (code, message),
            Err(e) => {
                warn!(target: TARGET, job = %job, token, error = %error_chain(&e), "heartbeat failed");
            }
        }
    }
}

fn log_lease_lost(job: JobId, token: i64, lost: Result<LeaseLost, tokio::task::JoinError>) {
    match lost {
        Ok((code, message)) => {
            info!(target: TARGET, job = %job, token, code = %code, message = %message, "lease lost; abandoning the job");
        }
        Err(e) => {
            error!(target: TARGET, job = %job, token, error = %e, "heartbeat task failed; abandoning the job");
        }
    }
}

/// A proof made for a job.
struct Proved {
    bytes: Vec<u8>,
    prove_time: Duration,
}

/// Why a job cannot be proved here.
#[derive(Debug, Error)]
enum JobError {
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
fn prove(
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
    let work = match inputs {
        JobInputs::Work { seed, index } => Some(work_input(*seed, *index)),
        JobInputs::Aggregate => None,
    };
    let started = Instant::now();
    let proof = circuits
        .prove_job(circuit, work.as_ref(), &children, worker)
        .map_err(JobError::Prove)?;
    Ok(Proved {
        bytes: encode_proof(&proof),
        prove_time: started.elapsed(),
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// An error and its sources, `: `-separated, for logs.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}
