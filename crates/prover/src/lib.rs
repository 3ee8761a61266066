//! Sheaf's prover ("proof miner"): it leases proving jobs from a coordinator, proves them with
//! the coordinator's circuits under its own worker key, and submits the proofs.
//!
//! ```text
//!  start ─▶ hello (retried with backoff until the coordinator answers)
//!             │ API version, circuit spec, lease TTL, heartbeat interval
//!             ▼
//!           load or build the circuits (artifact cache) ─▶ final key ≠ coordinator's? ─▶ stop
//!             │
//!   ┌───────▶ lease (long-poll) ── nothing ──┐
//!   │         │ job, token                   │
//!   │         ▼                              │
//!   │       decode children, prove ◀── heartbeat every interval
//!   │         │   (proving pool)        lost lease? ─▶ abandon
//!   │         ▼                              │
//!   │       submit proof (same bytes, same token; retried until the lease expires)
//!   │         │ accepted / rejected          │
//!   └─────────┴──────────────────────────────┘   until shutdown or max jobs
//! ```
//!
//! Failure semantics:
//!
//! - **Retries.** Transport failures (coordinator down, restarting, timing out), gateway errors
//!   and the API's retryable codes (`rate_limited`, `too_many_leases`, `overloaded`,
//!   `unavailable`, `internal`) are retried with exponential backoff and jitter ([`backoff`]):
//!   hello until the coordinator answers, leases indefinitely, a submission until the lease's
//!   local deadline (its TTL after the last successful lease or heartbeat) passes. A restarted
//!   coordinator is picked up where it left off: every request is self-contained and signed.
//! - **Abandonment.** A heartbeat answered `stale_lease`, `already_proved` or `unknown_job`
//!   means the job is no longer this prover's: heartbeats stop and the proof, once finished
//!   (proving cannot be interrupted), is dropped; submission retries stop too (a submission
//!   already in flight is still awaited: `already_proved` may be about that very proof). A job whose children do not decode or whose
//!   proof cannot be made is abandoned too; its lease expires and the coordinator hands it out
//!   again (up to its attempt limit).
//! - **Rejections.** A submission refused for a reason retrying cannot fix (`invalid_proof`,
//!   `stale_lease`, …) is logged with its code and message, counted, and the prover moves on.
//! - **Fatal errors** stop the prover with a [`ProverError`]: a hello or lease refused for good
//!   (unknown prover, bad signature, clock too far off), another API version, circuits that
//!   differ from the coordinator's.
//! - **At-least-once execution.** A job may be proved more than once (an expired lease, a
//!   submission whose answer was lost); the coordinator's fencing token keeps its effect
//!   exactly once.
//! - **Shutdown** finishes the job in hand (prove and submit), and cuts short a lease request
//!   or a backoff pause.

pub mod backoff;
pub mod client;
pub mod key;
pub mod worker;

pub use backoff::Backoff;
pub use client::{Client, ClientError};
pub use key::{KeyFileError, ProverKey};
pub use worker::{
    build_circuits, check_circuits, load_lean_circuits, run, ProverConfig, ProverError,
    ProverReport, Quantiles, DEFAULT_LEASE_WAIT_MS, OVERHEAD_SAMPLES,
};

/// Result alias of the prover.
pub type Result<T, E = ProverError> = std::result::Result<T, E>;
