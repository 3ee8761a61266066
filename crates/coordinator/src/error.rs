//! What can go wrong in each operation of the coordinator, as types.
//!
//! The service ([`crate::Coordinator`]) knows nothing of HTTP: it returns one error enum per
//! operation ([`AdmissionError`], [`HelloError`], [`LeaseError`], [`HeartbeatError`],
//! [`SubmitError`], [`ClaimsError`]), whose variants are the refusals a prover may act on, plus
//! [`InternalError`] for failures of the coordinator itself. The API maps them to its codes in
//! one place ([`crate::api::error`]), where an internal error is logged in full and answered
//! with an opaque reference only.

use sheaf_circuits::CircuitError;
use sheaf_store::StoreError;
use sheaf_types::JobId;

use crate::admission::Refusal;

/// A failure of the coordinator itself, not of the request: nothing the prover did causes it,
/// and its text (database messages included) never reaches the prover.
#[derive(Debug, thiserror::Error)]
pub enum InternalError {
    /// The store failed: a lost connection, a broken schema, a bug.
    #[error("store failure")]
    Store(#[source] StoreError),
    /// A value the coordinator stored for a job does not parse back (its circuit, its inputs, a
    /// child's proof or header).
    #[error("stored {what} of job {job} is unusable: {reason}")]
    StoredJob {
        /// The job.
        job: JobId,
        /// Which value (`circuit`, `inputs`, `proof`, …).
        what: &'static str,
        /// Why it does not parse.
        reason: String,
    },
    /// A registered prover's `worker_pk` is not a canonical digest.
    #[error("registered worker_pk of prover {prover:?} is not canonical")]
    WorkerPk {
        /// The prover.
        prover: String,
    },
    /// The circuits could not compute what a job's proof must carry.
    #[error("circuits")]
    Circuits(#[source] CircuitError),
    /// The coordinator holds no verifier for a circuit it planned.
    #[error("no verifier for circuit {0}")]
    NoVerifier(sheaf_types::JobCircuit),
    /// The verification task panicked or was cancelled.
    #[error("verifier task failed")]
    VerifierTask(#[source] tokio::task::JoinError),
    /// Decoding stored proofs' headers on the blocking pool panicked or was cancelled.
    #[error("header decoding task failed")]
    DecodeTask(#[source] tokio::task::JoinError),
}

impl InternalError {
    /// Whether the failure is the store (or its proof store) being out of reach (the request
    /// may succeed later), rather than a bug.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, InternalError::Store(e) if e.is_unavailable())
    }
}

impl From<StoreError> for InternalError {
    fn from(e: StoreError) -> Self {
        InternalError::Store(e)
    }
}

/// Why a signed request's key or nonce is refused, after its signature verified.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// The key is not a registered prover, and the registry says nothing more.
    #[error("key {key} is not a registered prover")]
    UnknownProver {
        /// The key, hex.
        key: String,
    },
    /// The registry's own refusal of the key (an expired membership, no membership, admitted
    /// but not loaded yet).
    #[error(transparent)]
    Refused(Refusal),
    /// The request's nonce was used before, within the clock-skew window.
    #[error("this request's nonce was already used")]
    ReplayedNonce,
    /// The prover sends requests faster than its request rate allows.
    #[error("more than {rate} requests a second from this prover (burst {burst}): retry in {retry_after_ms} ms")]
    RequestRate {
        /// Requests a second allowed.
        rate: u32,
        /// Requests allowed at once after a quiet spell.
        burst: u32,
        /// When the next request would be allowed, in ms.
        retry_after_ms: u64,
    },
    /// The coordinator failed.
    #[error(transparent)]
    Internal(#[from] InternalError),
}

/// Why a hello is refused.
#[derive(Debug, thiserror::Error)]
pub enum HelloError {
    /// The prover speaks another API version.
    #[error("prover speaks API version {prover}, this coordinator {coordinator}")]
    IncompatibleVersion {
        /// The prover's version.
        prover: u32,
        /// The coordinator's.
        coordinator: u32,
    },
}

/// Why a lease request is refused.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The prover used up its leases for this epoch.
    #[error("{used} of {limit} leases used this epoch")]
    RateLimited {
        /// Leases granted this epoch.
        used: i64,
        /// Leases allowed per epoch.
        limit: i64,
        /// Seconds until the epoch ends.
        retry_after_s: u64,
    },
    /// The prover holds as many leases as it may.
    #[error("holding {active} of {limit} leases allowed at once")]
    TooManyLeases {
        /// Leases held.
        active: i64,
        /// Leases allowed at once.
        limit: i64,
    },
    /// The prover let leases expire and is suspended for its back-off.
    #[error("suspended for {retry_after_s} s after {abandoned} abandoned leases in a row")]
    Suspended {
        /// Sweeps that took a lease back from it since its last accepted proof.
        abandoned: i64,
        /// Seconds until it may lease again.
        retry_after_s: u64,
    },
    /// The coordinator failed.
    #[error(transparent)]
    Internal(#[from] InternalError),
}

/// A refusal about the job a heartbeat or a submission names.
#[derive(Debug, thiserror::Error)]
pub enum JobRefusal {
    /// No such job.
    #[error("unknown job {0}")]
    UnknownJob(JobId),
    /// The lease is not current: not leased, leased under another token or to another prover,
    /// or expired.
    #[error("stale lease on job {job} (token {token})")]
    StaleLease {
        /// The job.
        job: JobId,
        /// The token presented.
        token: i64,
    },
    /// The job is proved already (by other bytes or another prover).
    #[error("job {0} is already proved")]
    AlreadyProved(JobId),
}

/// Why a heartbeat is refused.
#[derive(Debug, thiserror::Error)]
pub enum HeartbeatError {
    /// The job or its lease.
    #[error(transparent)]
    Job(#[from] JobRefusal),
    /// The coordinator failed.
    #[error(transparent)]
    Internal(#[from] InternalError),
}

/// Why a submitted proof is refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The job or its lease.
    #[error(transparent)]
    Job(#[from] JobRefusal),
    /// The proof is refused: its bytes, circuit, header or verification (the cause says which).
    #[error("proof refused: {0}")]
    Proof(#[source] CircuitError),
    /// Every verifier is busy and the queue is full.
    #[error("every verifier is busy and the queue is full")]
    Overloaded,
    /// The coordinator is shutting down.
    #[error("shutting down")]
    ShuttingDown,
    /// The coordinator failed.
    #[error(transparent)]
    Internal(#[from] InternalError),
}

/// Why a request for a prover's claimable jobs was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ClaimsError {
    /// The worker key is not a digest (64 hex digits of four canonical field elements).
    #[error("{0:?} is not a worker key (64 hex digits)")]
    BadWorkerKey(String),
    /// The `after` cursor is not a job id.
    #[error("cursor after={0:?} is not a job id (s{{sequence}}-l{{level}}-i{{index}})")]
    BadCursor(String),
    /// The `limit` is not a number from 1 to [`crate::claims::MAX_CLAIMS_LIMIT`].
    #[error("limit={0:?} is not a number from 1 to {max}", max = crate::claims::MAX_CLAIMS_LIMIT)]
    BadLimit(String),
    /// The coordinator failed.
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl From<StoreError> for ClaimsError {
    fn from(e: StoreError) -> Self {
        ClaimsError::Internal(InternalError::Store(e))
    }
}

/// The store's refusals about a job as [`JobRefusal`]s; any other store failure is internal.
pub(crate) fn job_refusal(e: StoreError) -> Result<JobRefusal, InternalError> {
    match e {
        StoreError::UnknownJob(job) => Ok(JobRefusal::UnknownJob(job)),
        StoreError::StaleLease { job, token } => Ok(JobRefusal::StaleLease { job, token }),
        StoreError::AlreadyProved(job) => Ok(JobRefusal::AlreadyProved(job)),
        other => Err(InternalError::Store(other)),
    }
}

impl From<StoreError> for HeartbeatError {
    fn from(e: StoreError) -> Self {
        job_refusal(e).map_or_else(HeartbeatError::Internal, HeartbeatError::Job)
    }
}

impl From<StoreError> for SubmitError {
    fn from(e: StoreError) -> Self {
        job_refusal(e).map_or_else(SubmitError::Internal, SubmitError::Job)
    }
}

impl From<StoreError> for LeaseError {
    fn from(e: StoreError) -> Self {
        LeaseError::Internal(InternalError::Store(e))
    }
}

impl From<StoreError> for AdmissionError {
    fn from(e: StoreError) -> Self {
        AdmissionError::Internal(InternalError::Store(e))
    }
}
