//! Admission: who may prove, with their keys and limits.
//!
//! The registry is either a TOML file the operator maintains (`--provers FILE`,
//! [`FileRegistry`], in `file.rs`) or the chain's membership registry ([`ChainRegistry`], in
//! `chain.rs`), behind the same [`Registry`] trait. Either way the coordinator copies the
//! admitted provers into the store, where leases are admitted atomically against their limits,
//! and asks the registry why a key the store does not know is refused ([`Registry::refusal`]).

mod chain;
mod file;

pub use chain::{ChainRegistry, ChainRegistryConfig};
pub use file::{parse_provers, FileRegistry};

use std::path::PathBuf;

use sheaf_store::Prover;

/// Leases per epoch when a provers-file entry names no `rate_limit`.
pub const DEFAULT_RATE_LIMIT: i64 = 600;
/// Leases held at once when an entry names no `max_concurrent`.
pub const DEFAULT_MAX_CONCURRENT: i64 = 2;

/// Why the registry could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The provers file cannot be read.
    #[error("reading provers file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The provers file is not valid TOML of the expected shape.
    #[error("provers file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The chain's membership list could not be read.
    #[error("reading the chain's membership list: {0}")]
    Chain(#[from] sheaf_chain::ClientError),
}

/// A source of admitted provers.
pub trait Registry: Send + Sync + 'static {
    /// The provers admitted now, with their limits.
    fn admitted(&self) -> Result<Vec<Prover>, RegistryError>;

    /// Whether the registry may have changed since the last [`Registry::admitted`].
    fn changed(&self) -> bool {
        true
    }

    /// Why `public_key`, which the store does not admit, is refused, when the registry can say
    /// more than "unknown prover" (e.g. an expired membership); `None` keeps that generic answer.
    fn refusal(&self, public_key: &[u8; 32]) -> Option<Refusal> {
        let _ = public_key;
        None
    }
}

/// A registry's own reason to refuse a key the store does not admit; the API maps each to its
/// code (`api/error.rs`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Admitted by the registry but not yet copied into the store: the next sweep copies it,
    /// so the prover retries after `retry_after_s`.
    #[error("{message}")]
    NotLoadedYet {
        /// What happened, for the prover's operator.
        message: String,
        /// When to retry, in seconds.
        retry_after_s: u64,
    },
    /// The key's membership expired (its grace period ended).
    #[error("{0}")]
    MembershipExpired(String),
    /// The key holds no membership (never registered, or erased).
    #[error("{0}")]
    NotAMember(String),
}

/// A fixed list of provers (for tests and embedding).
#[derive(Debug, Clone)]
pub struct StaticRegistry(pub Vec<Prover>);

impl Registry for StaticRegistry {
    fn admitted(&self) -> Result<Vec<Prover>, RegistryError> {
        Ok(self.0.clone())
    }

    fn changed(&self) -> bool {
        false
    }
}
