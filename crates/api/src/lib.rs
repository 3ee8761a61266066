//! Sheaf's prover API, shared by the coordinator that serves it and the provers that call it:
//! the JSON bodies, the paths, the one error shape, and the ed25519 request signing. The domain
//! values the bodies carry (job and sequence ids, job circuits and inputs) are `sheaf-types`'s,
//! re-exported here, so a malformed one is refused when the body is decoded.
//!
//! ```text
//!  prover                                              coordinator
//!    │ POST /v1/hello      {api_version}          ──▶  circuits to load, lease TTL, limits
//!    │ POST /v1/lease      {wait_ms}  (long-poll) ──▶  JobAssignment | 204 No Content
//!    │ POST /v1/jobs/{id}/heartbeat {token}       ──▶  new expiry
//!    │ POST /v1/jobs/{id}/proof?token=…  <bytes>  ──▶  verify on receipt, store, parent ready
//!    │ GET  /v1/status                            ──▶  sequences, jobs by status
//! ```
//!
//! Every `POST` is signed ([`auth`]); every failure answers with [`ErrorBody`] and the HTTP
//! status of its [`ErrorCode`].

pub mod auth;
pub mod wire;

pub use auth::{
    check_skew, AuthError, SignedHeaders, StaleTimestamp, HEADER_SERVER_TIME, MAX_CLOCK_SKEW_MS,
};
pub use sheaf_types::{InvalidJobId, JobCircuit, JobId, JobInputs, SequenceId, UnknownCircuit};
pub use wire::*;
