//! The coordinator's knobs, each with a named default and the trade-off it sets.

use std::sync::Arc;
use std::time::Duration;

use sheaf_net::{ServeLimits, DEFAULT_BODY_BUDGET_BYTES};

/// A lease lives this long without a heartbeat. Long enough to ride out a slow request or a
/// short network hiccup, short enough that a dead prover's job moves on within a minute.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);
/// Provers heartbeat this often: a fifth of the TTL, so four heartbeats may be lost before the
/// lease expires.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(6);
/// Distinct provers that may let a job's lease expire before it is `dead`: a job that kills
/// three provers is more likely broken than unlucky, and an operator should look at it. One
/// prover abandoning the same job again does not count again (it is suspended instead).
pub const DEFAULT_MAX_ATTEMPTS: i64 = 3;
/// First suspension of a prover that let a lease expire; each further abandonment in a row
/// (until a proof of it is accepted) doubles it. Long enough that walking away from a job costs
/// the walker, not the job; short enough that an honest prover restarted after a crash is back
/// within seconds once its old lease expired.
pub const DEFAULT_ABANDON_BACKOFF_BASE: Duration = Duration::from_secs(5);
/// Longest suspension of a prover that keeps letting leases expire.
pub const DEFAULT_ABANDON_BACKOFF_MAX: Duration = Duration::from_secs(600);
/// Expired leases are taken back this often. The delay adds to a dead prover's TTL.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_millis(500);
/// How long after a sequence settles its provers may read the claim paths of its jobs
/// (`GET /v1/claims`): its proofs, all but the top one, are kept that long, then collected.
pub const DEFAULT_CLAIMS_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often proofs past their claims window are collected.
pub const DEFAULT_PROOF_GC_INTERVAL: Duration = Duration::from_secs(600);
/// An object in the proof store that no row names (a submission whose transaction failed after
/// its blob was written) is deleted once this old: far longer than any submission in flight.
pub const UNNAMED_BLOB_GRACE: Duration = Duration::from_secs(3600);
/// Longest a lease request waits for a job before answering 204. Long-polling lets an idle
/// prover get a job the moment it is ready, without hammering the store.
pub const DEFAULT_MAX_LEASE_WAIT: Duration = Duration::from_secs(20);
/// How often a waiting lease request re-checks the store even without a local wake-up, which
/// covers jobs readied by another coordinator replica on the same database.
pub const LEASE_RECHECK_INTERVAL: Duration = Duration::from_millis(250);
/// Signed requests a second one prover may send, checked after its signature and before the
/// store records the nonce: an honest prover sends a few (long-polled leases, a heartbeat per
/// lease every few seconds, submissions), a flooding member is held to this and costs the
/// store nothing beyond it. A burst of twice as many is allowed after a quiet spell.
pub const DEFAULT_PROVER_REQUEST_RATE: u32 = 20;
/// Length of a rate-limit epoch: a prover's `rate_limit` leases per epoch.
pub const DEFAULT_EPOCH: Duration = Duration::from_secs(60);
/// Proofs verified at once. Verification is ~10 ms of CPU for a node proof; two at a time keep
/// a small machine responsive.
pub const DEFAULT_VERIFY_WORKERS: usize = 2;
/// Submissions allowed to wait for a verifier. Beyond workers + queue, a submission is refused
/// with 503 instead of queueing without bound.
pub const DEFAULT_VERIFY_QUEUE: usize = 32;
/// Largest request body accepted (a submitted proof): a node proof is ~135 kB and the largest
/// circuits of this core stay well under 1 MiB, so 2 MiB leaves room without inviting abuse.
pub const DEFAULT_MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// How often the provers file is re-read (when it changed), so an operator's edit takes effect
/// without a restart.
pub const DEFAULT_REGISTRY_REFRESH: Duration = Duration::from_secs(5);
/// How often the proof sender's tasks look at the chain: a fraction of a block, so a phase
/// that opens is used in its first block.
pub const DEFAULT_SENDER_POLL_INTERVAL: Duration = Duration::from_millis(250);
/// A chain transaction with no receipt after this long is sent again with the same bytes (the
/// node may have restarted and lost its mempool); resending is idempotent.
pub const DEFAULT_SENDER_RESEND_AFTER: Duration = Duration::from_secs(5);
/// The lease on the proof sender's role in the store: the holder renews it every third of it;
/// a standby replica takes over this long after the holder stopped renewing (a crash), or at
/// once after a clean stop. Short against a settlement window (T1 + T2 blocks, 52 s on a
/// default `sheaf chain`), so a failover still reveals in the window its predecessor opened.
pub const DEFAULT_SENDER_ROLE_TTL: Duration = Duration::from_secs(10);
/// How often the chain's membership list is polled when provers are admitted from the chain
/// ([`crate::ChainRegistry`]). About a block interval: an expiry or a new registration takes
/// effect within a poll and a sweep, and one small JSON-RPC call a second costs the node little.
pub const DEFAULT_CHAIN_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The console's publisher builds a snapshot at most this often, and only when this process
/// wrote to the store since the last one (or [`CONSOLE_IDLE_REFRESH`] passed): fast enough to
/// watch a tree fill in, slow enough that a busy store is read twice a second for every viewer
/// together, not per viewer.
pub const DEFAULT_CONSOLE_INTERVAL: Duration = Duration::from_millis(500);
/// The console rebuilds its snapshot at least this often while someone watches, changed or
/// not: what this process does not write moves too (the chain's settlement windows, another
/// replica's leases on a shared database).
pub const CONSOLE_IDLE_REFRESH: Duration = Duration::from_secs(2);
/// Sequences (or rollup blocks) the console shows, newest first: each with its tree.
pub const DEFAULT_CONSOLE_SEQUENCES: u32 = 16;
/// A tree of this many jobs or more is sent to the console as counts per level and state, each
/// level expandable a page at a time (`/ui/api/…`): a snapshot stays a few kilobytes however
/// large the sequence.
pub const DEFAULT_CONSOLE_COLLAPSE_JOBS: u64 = 10_000;
/// Console viewers (server-sent event streams) served at once; beyond, 503. Each costs one
/// connection and a shared copy of the snapshot, not a store query.
pub const DEFAULT_CONSOLE_MAX_VIEWERS: usize = 256;

/// This replica's own clock (milliseconds since the Unix epoch): the process clock, or a skewed
/// one a test injects. On PostgreSQL, lease expiry, nonce windows and the sender role are timed
/// by the database's clock instead, which all replicas share ([`sheaf_store::Store::shared_clock_ms`]);
/// this one times them on SQLite, where one process is the only clock.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    /// The process clock.
    pub fn system() -> Self {
        Clock(Arc::new(sheaf_types::clock::now_ms))
    }

    /// The process clock off by `offset_ms` (ahead when positive), as a replica's clock may be.
    pub fn skewed(offset_ms: i64) -> Self {
        Clock(Arc::new(move || {
            sheaf_types::clock::now_ms().saturating_add(offset_ms)
        }))
    }

    /// The time now.
    pub fn now_ms(&self) -> i64 {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({} ms)", self.now_ms())
    }
}

/// Everything the coordinator service is tuned by.
#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    /// Lease lifetime without a heartbeat.
    pub lease_ttl: Duration,
    /// Heartbeat interval told to provers.
    pub heartbeat_interval: Duration,
    /// Distinct abandoning provers before a job is dead.
    pub max_attempts: i64,
    /// First suspension of a prover that let a lease expire, doubled per abandonment in a row.
    pub abandon_backoff_base: Duration,
    /// Longest such suspension.
    pub abandon_backoff_max: Duration,
    /// Sweeper period.
    pub sweep_interval: Duration,
    /// Longest long-poll.
    pub max_lease_wait: Duration,
    /// Rate-limit epoch.
    pub epoch: Duration,
    /// Signed requests a second per prover (burst twice as many); 0: no limit.
    pub prover_request_rate: u32,
    /// Concurrent verifications.
    pub verify_workers: usize,
    /// Submissions waiting for a verifier.
    pub verify_queue: usize,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Registry refresh period.
    pub registry_refresh: Duration,
    /// The HTTP servers' connection cap and header and body timeouts.
    pub serve: ServeLimits,
    /// Bytes of request bodies held at once across connections (at least `max_body_bytes`).
    pub body_budget_bytes: usize,
    /// How long a settled sequence's proofs are kept for claims before they are collected.
    pub claims_window: Duration,
    /// How often proofs past their claims window are collected.
    pub proof_gc_interval: Duration,
    /// This replica's clock.
    pub clock: Clock,
    /// The console's shortest interval between two snapshots.
    pub console_interval: Duration,
    /// Sequences the console shows.
    pub console_sequences: u32,
    /// Jobs from which a tree is shown as counts per level.
    pub console_collapse_jobs: u64,
    /// Console viewers served at once.
    pub console_max_viewers: usize,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            lease_ttl: DEFAULT_LEASE_TTL,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            abandon_backoff_base: DEFAULT_ABANDON_BACKOFF_BASE,
            abandon_backoff_max: DEFAULT_ABANDON_BACKOFF_MAX,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            max_lease_wait: DEFAULT_MAX_LEASE_WAIT,
            epoch: DEFAULT_EPOCH,
            prover_request_rate: DEFAULT_PROVER_REQUEST_RATE,
            verify_workers: DEFAULT_VERIFY_WORKERS,
            verify_queue: DEFAULT_VERIFY_QUEUE,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            registry_refresh: DEFAULT_REGISTRY_REFRESH,
            serve: ServeLimits::default(),
            body_budget_bytes: DEFAULT_BODY_BUDGET_BYTES,
            claims_window: DEFAULT_CLAIMS_WINDOW,
            proof_gc_interval: DEFAULT_PROOF_GC_INTERVAL,
            clock: Clock::system(),
            console_interval: DEFAULT_CONSOLE_INTERVAL,
            console_sequences: DEFAULT_CONSOLE_SEQUENCES,
            console_collapse_jobs: DEFAULT_CONSOLE_COLLAPSE_JOBS,
            console_max_viewers: DEFAULT_CONSOLE_MAX_VIEWERS,
        }
    }
}
