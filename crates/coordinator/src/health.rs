//! Liveness and readiness.
//!
//! Liveness (`/healthz`) is "the process answers HTTP": it touches nothing else, so a store
//! outage does not get a healthy coordinator restarted. Readiness (`/readyz`) is "this replica
//! can do its work now": the store answers a trivial query within [`READY_STORE_TIMEOUT`], the
//! circuits are loaded (a [`Coordinator`](crate::Coordinator) cannot exist without them, and
//! the service binds its port only after loading them), and, when it settles on a chain, the
//! chain answered the proof sender within its role's lease ([`ChainContact`]): the same rule
//! by which the sender keeps or lets go of the sender role.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sheaf_store::StoreError;
use sheaf_types::clock::now_ms;

/// The store must answer the readiness query within this: longer than a healthy database ever
/// takes for `SELECT MAX(version)`, shorter than a load balancer's probe timeout.
pub const READY_STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// When the chain last answered the proof sender (shared between the sender, which notes each
/// answer, and the readiness check, which reads it).
#[derive(Clone, Debug)]
pub struct ChainContact(Arc<AtomicI64>);

impl ChainContact {
    /// A contact whose last answer is now (the sender just connected).
    pub fn now() -> Self {
        ChainContact(Arc::new(AtomicI64::new(now_ms())))
    }

    /// Note that the chain answered now.
    pub fn answered(&self) {
        self.0.store(now_ms(), Ordering::Relaxed);
    }

    /// How long since the chain last answered.
    pub fn silent_for(&self) -> Duration {
        Duration::from_millis((now_ms() - self.0.load(Ordering::Relaxed)).max(0) as u64)
    }
}

/// The chain a coordinator settles on, as its readiness sees it.
#[derive(Clone, Debug)]
pub(crate) struct ChainWatch {
    pub(crate) contact: ChainContact,
    /// Silent for longer than this, the chain is not ready.
    pub(crate) limit: Duration,
}

/// Why a coordinator is not ready.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    /// The store failed the readiness query (the cause is logged, not answered).
    #[error("store: the readiness query failed")]
    Store(#[source] StoreError),
    /// The store did not answer the readiness query in time.
    #[error("store: no answer within {} ms", .0.as_millis())]
    StoreTimeout(Duration),
    /// The chain has not answered the proof sender for too long.
    #[error("chain: no answer for {} ms (limit {} ms)", .silent_for.as_millis(), .limit.as_millis())]
    ChainSilent {
        /// Since the last answer.
        silent_for: Duration,
        /// The longest silence that is still ready.
        limit: Duration,
    },
}

/// What a readiness check found: each check's verdict, for the `/readyz` body.
#[derive(Debug, Default)]
pub struct Readiness {
    /// What is not ready; empty when ready.
    pub problems: Vec<NotReady>,
    /// Whether the chain was checked (the coordinator settles).
    pub chain_checked: bool,
}

impl Readiness {
    /// Ready when nothing is wrong.
    pub fn is_ready(&self) -> bool {
        self.problems.is_empty()
    }
}
