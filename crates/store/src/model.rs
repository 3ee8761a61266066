//! The store's domain types: ids, states, and what goes in and comes out.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sheaf_types::{JobCircuit, JobId, JobInputs, SequenceId};

use crate::error::StoreError;

/// State of a job.
///
/// SYSTEM.md's `failed` state (a lease that expired or was given up, to be retried) is folded
/// into [`JobStatus::Ready`]: such a job is `ready` with `attempts > 0`. One state fewer means one
/// query fewer to pick the next job, and the attempts count keeps the history visible.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum JobStatus {
    /// Some child is not proved yet.
    Waiting,
    /// May be leased: a leaf, a job whose children are all proved, or a retry.
    Ready,
    /// Held by one prover until its lease expires.
    Leased,
    /// Its proof is stored. Final.
    Proved,
    /// Its attempts are exhausted; waits for an operator to requeue it.
    Dead,
    /// Withdrawn by an operator; never leased until requeued.
    Cancelled,
}

impl JobStatus {
    /// Every state, in the order of the state machine.
    pub const ALL: [JobStatus; 6] = [
        JobStatus::Waiting,
        JobStatus::Ready,
        JobStatus::Leased,
        JobStatus::Proved,
        JobStatus::Dead,
        JobStatus::Cancelled,
    ];

    /// The name stored in the database and shown to operators.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Waiting => "waiting",
            JobStatus::Ready => "ready",
            JobStatus::Leased => "leased",
            JobStatus::Proved => "proved",
            JobStatus::Dead => "dead",
            JobStatus::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobStatus {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| StoreError::InvalidStatus(s.to_owned()))
    }
}

/// A sequence to plan: one rollup range whose job tree proves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSequence {
    /// Sequence number; sequences are proved and settled in this order.
    pub id: SequenceId,
    /// Number of leaves of the workload (transactions, blocks) the sequence covers.
    pub leaves: i64,
    /// When the coordinator planned it (coordinator clock, milliseconds).
    pub created_ms: i64,
}

/// A stored sequence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Sequence {
    /// Sequence number.
    pub id: SequenceId,
    /// Number of leaves of the workload.
    pub leaves: i64,
    /// The root job, whose proof is the proof of the sequence.
    #[sqlx(rename = "root_job")]
    pub root: JobId,
    /// When it was planned (milliseconds).
    pub created_ms: i64,
    /// When its root was proved (milliseconds), `None` while proving.
    pub proved_ms: Option<i64>,
}

/// A job to plan as part of a sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewJob {
    /// Its place in the tree.
    pub id: JobId,
    /// The circuit that proves it.
    pub circuit: JobCircuit,
    /// What it proves from, besides its children's proofs.
    pub inputs: JobInputs,
    /// Jobs whose proofs it aggregates, in order; empty for a leaf.
    pub children: Vec<JobId>,
}

/// A stored job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Job {
    /// Its place in the tree.
    pub id: JobId,
    /// The circuit that proves it.
    pub circuit: JobCircuit,
    /// What it proves from, besides its children's proofs.
    pub inputs: JobInputs,
    /// Jobs whose proofs it aggregates, in order (read apart from the job's row).
    #[sqlx(skip)]
    pub children: Vec<JobId>,
    /// The job that aggregates it; `None` for the root.
    pub parent: Option<JobId>,
    /// Current state.
    pub status: JobStatus,
    /// Leases counted against the retry budget (reset when an operator requeues the job).
    pub attempts: i64,
    /// Fencing token of the latest lease: the number of leases ever granted on this job.
    pub lease_token: i64,
    /// Prover holding the lease, while leased.
    pub lease_holder: Option<String>,
    /// When the lease expires (milliseconds), while leased.
    pub lease_expires_ms: Option<i64>,
    /// SHA-256 (hex) of its proof, once proved.
    pub proof_hash: Option<String>,
    /// Prover whose proof was stored, once proved.
    pub proved_by: Option<String>,
    /// When its proof was stored (milliseconds), once proved.
    pub proved_ms: Option<i64>,
    /// When its latest lease was granted (milliseconds); kept after the lease ends.
    pub leased_ms: Option<i64>,
    /// How long proving took, in milliseconds, as reported by the prover with its proof.
    pub prove_ms: Option<i64>,
}

/// A granted lease: the job to prove and the token to present when heartbeating or submitting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The leased job.
    pub job: JobId,
    /// Fencing token: job id plus token name exactly one lease of the job.
    pub token: i64,
    /// Which attempt of the retry budget this lease is, from 1.
    pub attempt: i64,
    /// Prover holding it.
    pub holder: String,
    /// When it expires unless heartbeated (milliseconds).
    pub expires_ms: i64,
    /// Circuit to prove with.
    pub circuit: JobCircuit,
    /// What to prove from, besides the children's proofs.
    pub inputs: JobInputs,
}

/// What [`Store::lease_admitted`](crate::Store::lease_admitted) decided for one lease request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaseOutcome {
    /// A job was leased and counted against the prover's rate.
    Leased(Lease),
    /// The prover is within its limits but no job is ready; nothing was counted.
    NoWork,
    /// The prover took its `rate_limit` leases in the current epoch.
    RateLimited {
        /// Leases granted to it in this epoch.
        used: i64,
        /// Its leases per epoch.
        limit: i64,
        /// When the epoch ends and the count starts over (milliseconds).
        epoch_ends_ms: i64,
    },
    /// The prover holds its `max_concurrent` live leases.
    TooManyLeases {
        /// Its unexpired leases.
        active: i64,
        /// The leases it may hold at once.
        limit: i64,
    },
    /// The prover let leases expire and serves its back-off ([`AbandonBackoff`]).
    Suspended {
        /// Expiry sweeps that took a lease back from it since its last accepted proof.
        abandoned: i64,
        /// When it may lease again (milliseconds).
        until_ms: i64,
    },
}

/// What letting a lease expire costs the prover that held it: after `n` sweeps in a row that
/// took a lease back from it (an accepted proof resets `n`), it may not lease for
/// `min(base_ms · 2^(n−1), max_ms)`. The job does not pay: it dies only once `max_attempts`
/// distinct provers abandoned it ([`Store::requeue_expired_with_backoff`](crate::Store)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbandonBackoff {
    /// The first suspension (milliseconds); 0 suspends nobody.
    pub base_ms: i64,
    /// The longest suspension (milliseconds).
    pub max_ms: i64,
}

impl AbandonBackoff {
    /// No suspension at all.
    pub const NONE: AbandonBackoff = AbandonBackoff {
        base_ms: 0,
        max_ms: 0,
    };

    /// The suspension after `in_row` abandoned leases in a row: `min(base · 2^(in_row−1), max)`,
    /// 0 for none.
    pub fn suspension_ms(&self, in_row: i64) -> i64 {
        if in_row < 1 || self.base_ms <= 0 {
            return 0;
        }
        let doublings = (in_row - 1).min(62) as u32;
        self.base_ms
            .saturating_mul(1_i64 << doublings)
            .min(self.max_ms)
            .max(0)
    }
}

/// The reward entry recorded with a proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewardEntry {
    /// Worker key committed in the proof (H(secret) of the prover), which later claims.
    pub worker_pk: [u8; 32],
    /// Work units of the job's circuit; rewards are split by them.
    pub work_units: i64,
}

/// A stored reward entry: one per proved job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reward {
    /// The proved job.
    pub job: JobId,
    /// Prover whose proof was stored.
    pub prover: String,
    /// Worker key in the proof.
    pub worker_pk: [u8; 32],
    /// Work units earned.
    pub work_units: i64,
    /// When the proof was stored (milliseconds).
    pub created_ms: i64,
}

/// What a successful submission changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubmitOutcome {
    /// SHA-256 (hex) under which the proof is stored.
    pub proof_hash: String,
    /// The parent, if this proof was its last missing child and it became ready.
    pub parent_ready: Option<JobId>,
    /// Whether this was the root, so the whole sequence is now proved.
    pub sequence_proved: bool,
}

/// Leases that `requeue_expired` took back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpiredLeases {
    /// Jobs back in `ready`, to be leased again.
    pub requeued: Vec<JobId>,
    /// Jobs that exhausted their attempts and are now `dead`.
    pub dead: Vec<JobId>,
}

/// Which jobs `list_jobs` returns; `None` matches everything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// Only jobs of this sequence.
    pub sequence: Option<SequenceId>,
    /// Only jobs in this state.
    pub status: Option<JobStatus>,
}

/// Number of jobs in one state at one level, for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct StatusCount {
    /// The state.
    pub status: JobStatus,
    /// The tree level.
    #[sqlx(try_from = "i64")]
    pub level: u32,
    /// Jobs in that state at that level, over all sequences.
    pub count: i64,
}

/// A registered prover.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prover {
    /// Name the prover signs requests as.
    pub id: String,
    /// Ed25519 public key that verifies its requests.
    pub public_key: [u8; 32],
    /// Worker key its proofs must carry.
    pub worker_pk: [u8; 32],
    /// Leases it may take per epoch.
    pub rate_limit: i64,
    /// Leases it may hold at once.
    pub max_concurrent: i64,
}

/// How many proof blobs are stored and their total size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct StoredProofs {
    /// Distinct blobs.
    pub count: i64,
    /// Sum of their sizes in bytes.
    pub bytes: i64,
}

/// Number of jobs of one sequence in one state, for `sheaf status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct SequenceStatusCount {
    /// The sequence.
    pub sequence: SequenceId,
    /// The state.
    pub status: JobStatus,
    /// Its jobs in that state.
    pub count: i64,
}

/// What the store knows of one prover: its registry entry and its work. The store keeps no
/// log of requests, so a refused request (a stale lease, a rate limit) leaves no trace here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProverActivity {
    /// The name it leases and submits under.
    pub id: String,
    /// Its registry entry; `None` for a name that holds a lease or a reward but is not (or no
    /// longer) registered.
    pub registered: Option<Prover>,
    /// Unexpired leases it holds.
    pub live_leases: i64,
    /// Jobs whose stored proof is its.
    pub jobs_proved: i64,
    /// Work units of those jobs.
    pub work_units: i64,
    /// Its latest lease still held or proof stored (milliseconds); `None` without either.
    pub last_seen_ms: Option<i64>,
    /// Its submissions refused for its own fault, by reason (the API's error code), most
    /// frequent first.
    pub rejections: Vec<(String, i64)>,
}

/// Where a rollup transaction stands.
///
/// ```text
///  pending ──publish_rollup_block──▶ included (in a block, at a position). Final.
///     └────revert_rollup_transactions──▶ reverted (with the reason). Final.
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum RollupTxStatus {
    /// Received, in no block yet.
    Pending,
    /// In a published block.
    Included,
    /// Dropped by the producer (it no longer applies to the state, say); never included.
    Reverted,
}

impl RollupTxStatus {
    /// Every state.
    pub const ALL: [RollupTxStatus; 3] = [
        RollupTxStatus::Pending,
        RollupTxStatus::Included,
        RollupTxStatus::Reverted,
    ];

    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RollupTxStatus::Pending => "pending",
            RollupTxStatus::Included => "included",
            RollupTxStatus::Reverted => "reverted",
        }
    }
}

impl fmt::Display for RollupTxStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RollupTxStatus {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RollupTxStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| StoreError::Corrupt(format!("stored rollup transaction status {s:?}")))
    }
}

/// A rollup transaction to store as it arrives. The store does not read `body` or
/// `local_proof`: the block producer encodes and decodes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRollupTransaction {
    /// The transaction's id (its hash), unique.
    pub id: [u8; 32],
    /// The transaction, as the producer encodes it (JSON).
    pub body: Vec<u8>,
    /// The client's own proof of the transaction (tx kernel), for a local transaction.
    pub local_proof: Option<Vec<u8>>,
    /// The reward entry of that proof's leaf (the client's worker key, the leaf's work units),
    /// recorded when its block is published.
    pub local_reward: Option<RewardEntry>,
    /// When it arrived (coordinator clock, milliseconds): pending transactions come in this
    /// order.
    pub received_ms: i64,
}

/// A stored rollup transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollupTransaction {
    /// The transaction's id.
    pub id: [u8; 32],
    /// The transaction, as stored.
    pub body: Vec<u8>,
    /// The client's own proof, if it came with one.
    pub local_proof: Option<Vec<u8>>,
    /// Its leaf's reward entry, if it came with one.
    pub local_reward: Option<RewardEntry>,
    /// When it arrived (milliseconds).
    pub received_ms: i64,
    /// Where it stands.
    pub status: RollupTxStatus,
    /// The block including it, once included.
    pub block: Option<i64>,
    /// Its index in that block, from 0, once included.
    pub position: Option<i64>,
    /// Why it was reverted, once reverted.
    pub reason: Option<String>,
}

/// A rollup block to publish with [`Store::publish_rollup_block`](crate::Store::publish_rollup_block):
/// the block and the job tree proving it, stored together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedBlock {
    /// The block's number: the tip's plus one, or any number from 1 for the first block.
    pub number: i64,
    /// The header's commitment.
    pub commitment: [u8; 32],
    /// The header, as the producer encodes it (JSON).
    pub header: Vec<u8>,
    /// The ids of its transactions, in block order; each must be stored and pending.
    pub transactions: Vec<[u8; 32]>,
    /// The sequence proving the block, as [`Store::insert_sequence`](crate::Store::insert_sequence)
    /// takes it.
    pub sequence: NewSequence,
    /// The sequence's job tree, as `insert_sequence` takes it.
    pub jobs: Vec<NewJob>,
    /// Leaves of the tree proved already (local transactions' signed halves, proved by their
    /// clients): stored `proved` with their proofs as the block is published.
    pub proved: Vec<ProvedLeaf>,
    /// When it is published (coordinator clock, milliseconds).
    pub published_ms: i64,
}

/// A leaf of a published block's tree that comes with its proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvedLeaf {
    /// The leaf job.
    pub job: JobId,
    /// Its proof, verified by the caller.
    pub proof: Vec<u8>,
    /// Who proved it, as `proved_by` records it.
    pub proved_by: String,
    /// Its reward entry, recorded with it (none for a proof stored without one).
    pub reward: Option<RewardEntry>,
}

/// A published rollup block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollupBlock {
    /// The block's number.
    pub number: i64,
    /// The header's commitment.
    pub commitment: [u8; 32],
    /// The header, as stored.
    pub header: Vec<u8>,
    /// The sequence proving it.
    pub sequence: SequenceId,
    /// Number of its transactions.
    pub tx_count: i64,
    /// When it was published (milliseconds).
    pub published_ms: i64,
    /// Whether its sequence's root job is proved.
    pub proved: bool,
    /// Whether its sequence is finalized on the base chain, as the proof sender last saw
    /// ([`Store::mark_sequences_settled`](crate::Store::mark_sequences_settled)).
    pub settled: bool,
}
