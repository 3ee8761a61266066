//! Sheaf's coordinator: it plans each sequence's job tree, leases jobs to registered provers over
//! a signed HTTP API, verifies every proof on receipt, and stores it; the store readies the
//! parent in the same transaction, and the parent is leased next.
//!
//! ```text
//!  plan(sequence) ──▶ store: leaves ready, nodes waiting
//!                          │
//!  prover ── POST /v1/lease (signed, admitted: registry, rate per epoch, concurrency cap)
//!                          │ long-poll until a job is ready; critical path first
//!                          ▼
//!            JobAssignment (inputs, children's proofs, fencing token)
//!                          │ heartbeats extend the lease; the sweeper takes back expired ones
//!  prover ── POST /v1/jobs/{id}/proof?token=… <bytes>
//!                          │ lease current? → size, decoding, circuit, header (children's
//!                          │ commitments, the prover's worker_pk, statement), whitelist root,
//!                          │ full verification on a bounded pool (503 when full)
//!                          ▼
//!            store: blob, job proved, reward entry, parent ready — one transaction
//! ```
//!
//! Where things happen: a sequence's job tree is planned in [`job_tree`]; a job is leased in
//! `coordinator/lease.rs` and its proof checked on receipt in `coordinator/submit.rs`; who may
//! prove is decided in [`admission`]; the HTTP surface is [`api`]; proved roots are settled on
//! chain by [`settlement`], one file per stage (the sender registers each sequence's tree plan,
//! the positions and units claims are paid by); a prover's claimable jobs are served by
//! [`claims`]; [`service`] assembles all of it into a running
//! coordinator. Operators watch it through `/healthz`, `/readyz` ([`health`]) and `/metrics`
//! ([`metrics`]), on the API's port or a port of their own, and through the live [`console`]
//! at `/ui`, a read-only page of the proof trees filling in, the provers and the settlement.
//!
//! Failure semantics: every operation of the service returns its own error enum ([`error`]);
//! the API maps them to an [`ApiError`] with one JSON shape in one place ([`api::error`]). A
//! refusal changes nothing; an internal failure is logged in full under a reference, and the
//! prover is told only the reference.
//!
//! The coordinator keeps no state of its own beyond caches: killed at any moment, it restarts on
//! the same store and carries on; several replicas may share one PostgreSQL database. Its clock is
//! the only clock: leases, epochs and request timestamps are judged by it.

pub mod admission;
pub mod api;
pub mod claims;
pub mod config;
pub mod console;
pub mod coordinator;
pub mod error;
pub mod health;
pub mod job_tree;
pub mod metrics;
pub mod rollup;
pub mod server;
pub mod service;
pub mod settlement;

pub use admission::{
    ChainRegistry, ChainRegistryConfig, FileRegistry, Refusal, Registry, RegistryError,
    StaticRegistry,
};
pub use api::app;
pub use api::{ApiError, Result};
pub use config::CoordinatorConfig;
pub use coordinator::{Coordinator, StartError};
pub use error::{
    AdmissionError, ClaimsError, HeartbeatError, HelloError, InternalError, JobRefusal, LeaseError,
    SubmitError,
};
pub use server::{serve, serve_with_metrics, shutdown_signal};
pub use service::{
    CoordinatorService, RollupOptions, ServiceError, ServiceOptions, SettlementOptions,
};
pub use settlement::{
    tree_plan, ProofSender, SenderConfig, SenderError, SenderHandle, SequencePlan,
};
