//! Sheaf's hardened HTTP serving loop, one for every server of the workspace (the coordinator's
//! prover API and metrics port, the chain's JSON-RPC port), so a hostile client meets the same
//! defences everywhere.
//!
//! ```text
//!  accept ──▶ share per ──▶ connection cap ──▶ hyper HTTP/1.1 ──▶ URI / header size ──▶ service
//!     │        address       (at it: the one      (header read        (414 / 431 in the    │ body read through
//!     │        (over it:     idle longest gives  timeout, also       server's shape)     │ a deadline and the
//!     │        503, closed)  way; none: 503)     the idle timeout)                       ▼ shared byte budget
//!  EMFILE: back off, never spin    a head hyper cannot parse: its own 400/414/431 ▼  handler (or JSON-RPC)
//!                                  reworded into the server's shape, then closed
//! ```
//!
//! Failure semantics: a connection from an address that holds
//! [`ServeLimits::max_connections_per_address`] already is answered 503 (one try) and closed at
//! accept, with no task, timer or slot spent on it; a client that stalls in its header is cut at [`ServeLimits::header_timeout`]
//! (hyper starts that timer whenever a connection waits for a request, so an idle keep-alive
//! connection is closed after the same time); a body not fully received
//! [`ServeLimits::body_timeout`] after its header fails to read with [`BodyTimedOut`]; a
//! connection above [`ServeLimits::max_connections`] takes the slot of the connection idle
//! longest (waiting for its first header or between keep-alive requests; one that has never
//! been in a request goes before one that has), which is closed, so a flood of stalled sockets
//! evicts itself while a client that sends its request at once is served and keeps its
//! keep-alive connection; when every connection is in a request it is answered 503 and closed at once; a body
//! that cannot get room in the [`BodyBudget`] within its wait is refused (503 `overloaded`). An
//! accept error (descriptors exhausted) is logged and retried after [`ACCEPT_ERROR_BACKOFF`].
//! On shutdown the loop stops accepting, asks every connection to close after its request in
//! flight, and returns when all have.

pub mod body;
pub mod limits;
pub mod refusal;
mod reword;
mod serve;

pub use body::{BodyBudget, BodyError, BodyTimedOut, BudgetedBytes, TimedBody};
pub use limits::*;
pub use refusal::{Refusal, Shape};
pub use serve::serve;

/// The error type of bodies and services (hyper's and tower's boxed error).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
