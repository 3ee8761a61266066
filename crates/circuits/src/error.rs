//! The proving core's error type.

use crate::header::HeaderField;

/// Result alias for the proving core.
pub type Result<T, E = CircuitError> = std::result::Result<T, E>;

/// Everything that can go wrong when building, proving, decoding or verifying.
#[derive(Debug, thiserror::Error)]
pub enum CircuitError {
    /// The circuits were loaded to verify only (see [`crate::ArtifactCache::verifier_only`]).
    #[error("these circuits were loaded to verify only and cannot prove")]
    VerifierOnly,
    /// The caller asked the work to stop before it finished.
    #[error("stopped before finishing")]
    Cancelled,
    /// Proof bytes were empty, cut short or otherwise unreadable.
    #[error("malformed proof bytes: {0}")]
    Malformed(String),
    /// Proof bytes were longer than the proof they encode.
    #[error("proof has {0} trailing bytes")]
    TrailingBytes(usize),
    /// A field element was encoded as a value at or above the field order.
    #[error("proof contains a non-canonical field element")]
    NonCanonical,
    /// Proof bytes exceed the size bound for the expected circuit.
    #[error("proof is {size} bytes, more than the bound of {max}")]
    Oversized {
        /// The size received.
        size: usize,
        /// The bound.
        max: usize,
    },
    /// The proof's size or shape is not that of the expected circuit.
    #[error("proof is not of the expected circuit: {0}")]
    WrongCircuit(String),
    /// The plonky2 verifier rejected the proof.
    #[error("proof failed verification: {0}")]
    VerificationFailed(String),
    /// The root proof commits to a different circuit whitelist than the key.
    #[error("whitelist root of the proof does not match the verifier key")]
    WhitelistMismatch,
    /// A child's circuit is not in the aggregation whitelist.
    #[error("child {index} was proved by a circuit outside the whitelist")]
    NotWhitelisted {
        /// Position of the child among its siblings.
        index: usize,
    },
    /// A header field differs from what the caller expected.
    #[error("header field {field} differs from the expected value")]
    HeaderMismatch {
        /// Which field differs.
        field: HeaderField,
    },
    /// A node was given no children, or more than its arity.
    #[error("a node takes 1 to {arity} children, got {got}")]
    BadChildCount {
        /// The node's arity.
        arity: usize,
        /// The number of children given.
        got: usize,
    },
    /// A leaf kind that is not registered (or, for a prover, that it cannot build).
    #[error("unknown leaf kind {0:?}")]
    UnknownKind(String),
    /// A leaf job's inputs are not those of its kind.
    #[error("bad inputs for a {kind} leaf: {reason}")]
    BadInputs {
        /// The leaf's kind.
        kind: String,
        /// What is wrong with them.
        reason: String,
    },
    /// An argument is out of its allowed range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Proof generation failed (an unsatisfiable witness, for instance).
    #[error("proving failed: {0}")]
    Prove(String),
    /// A circuit could not be built or its shapes could not be unified.
    #[error("circuit build failed: {0}")]
    Build(String),
    /// Reading or writing a key or artifact failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file involved.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A verifier-key file is unreadable or of another version.
    #[error("bad verifier key: {0}")]
    BadKey(String),
}

impl CircuitError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<std::path::PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
