//! Storing a proof: the one transaction that makes a job's work take effect.

use sha2::{Digest, Sha256};

use sheaf_types::JobId;

use crate::error::{Result, StoreError};
use crate::model::{JobStatus, RewardEntry, SubmitOutcome};
use crate::proofs::{row_form, Placed};
use crate::rows::hex;
use crate::Store;

/// Lowercase hex SHA-256 of `bytes`: the address of a proof blob.
pub fn proof_hash(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

impl Store {
    /// Stores the proof of a leased job, in one transaction: the blob's row (content-addressed,
    /// so an identical proof is kept once; with an object store the blob itself is written
    /// there first, whole, see [`crate::ProofBlobs`]), the job as `proved`, its one reward
    /// entry, and, when this was the last unproved child, the parent as `ready`; when the job
    /// is the root, the sequence as proved.
    ///
    /// The lease must be current at `now_ms`: the job `leased` to `prover` under `token`, not
    /// expired; else [`StoreError::StaleLease`]. A job already proved gives
    /// [`StoreError::AlreadyProved`] and nothing changes, so a retried submission is harmless.
    ///
    /// `prove_ms` is the proving time the prover reports, kept with the job for metrics; a
    /// negative one is [`StoreError::InvalidArgument`].
    #[allow(
        clippy::too_many_arguments,
        reason = "the lease (job, token, prover), the proof with its reward and proving time, and \
                  the clock are independent inputs the coordinator has at hand"
    )]
    pub async fn submit_proof(
        &self,
        job: JobId,
        token: i64,
        prover: &str,
        proof: &[u8],
        reward: RewardEntry,
        now_ms: i64,
        prove_ms: Option<i64>,
    ) -> Result<SubmitOutcome> {
        if let Some(ms) = prove_ms.filter(|ms| *ms < 0) {
            return Err(StoreError::InvalidArgument(format!(
                "reported proving time must not be negative, got {ms} ms"
            )));
        }
        let hash = proof_hash(proof);
        // The blob first, outside the transaction and on disk before it is queued: the row
        // that names it is written only once it is whole (a put that fails leaves nothing
        // referenced). Submitters flush their own blobs side by side while the committer
        // commits the previous group (flushing all of a group's blobs inside its commit, one
        // `syncfs`, measured 12–16 % fewer cycles/s; see the README).
        let placed = self.place_blob(&hash, proof).await?;
        let submission = Submission {
            job,
            token,
            prover: prover.to_owned(),
            proof: proof.to_vec(),
            placed,
            hash,
            reward,
            now_ms,
            prove_ms,
        };
        let outcome = match &self.db.group {
            Some(group) => group.submit(submission).await?,
            None => {
                fail::fail_point!("store::submit::before_commit");
                let outcome = submit_on_postgres(self, &submission).await?;
                fail::fail_point!("store::submit::after_commit");
                outcome
            }
        };
        self.changed();
        if outcome.sequence_proved && placed == Placed::Object {
            // The top proof went into its row: its object is a copy nobody reads (a
            // segment's copy goes with its segment).
            if let Some(blobs) = &self.blobs {
                if let Err(e) = blobs.delete(&outcome.proof_hash).await {
                    tracing::warn!(target: "sheaf::store", %job, error = %e, "top proof's object copy not deleted");
                }
            }
        }
        tracing::debug!(
            target: "sheaf::store",
            %job,
            prover,
            token,
            proof_hash = %outcome.proof_hash,
            parent_ready = ?outcome.parent_ready,
            sequence_proved = outcome.sequence_proved,
            "stored proof"
        );
        Ok(outcome)
    }
}

/// What PostgreSQL's `sheaf_submit` (migrations 0014 and 0015) answers.
#[derive(sqlx::FromRow)]
struct PgSubmitRow {
    /// The job's state when the lease was not current (`unknown`: no such job); `None` when
    /// the proof was stored.
    refused_status: Option<String>,
    parent_ready: Option<JobId>,
    /// 1 when the sequence is now proved (`Any` decodes no booleans).
    sequence_proved: i64,
}

/// A submission whose blob is placed, as [`Store::submit_proof`] stores it.
pub(crate) struct Submission {
    pub(crate) job: JobId,
    pub(crate) token: i64,
    pub(crate) prover: String,
    pub(crate) proof: Vec<u8>,
    pub(crate) placed: Placed,
    pub(crate) hash: String,
    pub(crate) reward: RewardEntry,
    pub(crate) now_ms: i64,
    pub(crate) prove_ms: Option<i64>,
}

/// [`Store::submit_proof`] on PostgreSQL, its blob placed: one call of `sheaf_submit`, which
/// runs this module's statements in the server in one durable transaction. It locks the job's
/// row first, so a concurrent submission of the same job waits, then finds it proved; and the
/// parent's before releasing it, so sibling submissions serialize there and exactly the last
/// of them releases it.
///
/// A blob outside the rows is sent once: the proof goes along again only when the function
/// answers that the job is the root, whose proof stays in its row (a second call; sending it
/// with every submission measured 8–10 % fewer cycles per second).
async fn submit_on_postgres(store: &Store, s: &Submission) -> Result<SubmitOutcome> {
    let row = match call_submit(store, s, false).await? {
        row if row.refused_status.as_deref() == Some(NEEDS_PROOF) => {
            call_submit(store, s, true).await?
        }
        row => row,
    };
    if let Some(status) = row.refused_status {
        let status =
            match status.as_str() {
                "unknown" => None,
                other => Some(other.parse::<JobStatus>().map_err(|e| {
                    StoreError::Corrupt(format!("stored job status {other:?}: {e}"))
                })?),
            };
        return Err(not_proved(s.job, s.token, status));
    }
    Ok(SubmitOutcome {
        proof_hash: s.hash.clone(),
        parent_ready: row.parent_ready,
        sequence_proved: row.sequence_proved == 1,
    })
}

/// What `sheaf_submit` answers, changing nothing, for the root's proof placed outside the rows
/// when it was called without the proof.
const NEEDS_PROOF: &str = "needs_proof";

/// One call of `sheaf_submit`, with the proof for the root's row (`with_proof`) or without.
async fn call_submit(store: &Store, s: &Submission, with_proof: bool) -> Result<PgSubmitRow> {
    let size = i64::try_from(s.proof.len())
        .map_err(|_| StoreError::InvalidArgument("a proof larger than 2^63 bytes".into()))?;
    let form = row_form(&s.proof, s.placed);
    let row: PgSubmitRow = sqlx::query_as(
        "SELECT * FROM sheaf_submit($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
         $14, $15)",
    )
    .bind(s.job)
    .bind(s.job.sequence)
    .bind(s.token)
    .bind(&s.prover)
    .bind(s.now_ms)
    .bind(&s.hash)
    .bind(form.bytes)
    .bind(form.stored)
    .bind(size)
    // The proof again only for the root's row.
    .bind(match s.placed {
        Placed::Object | Placed::Segment { .. } if with_proof => &s.proof[..],
        _ => &[][..],
    })
    .bind(s.prove_ms)
    .bind(s.reward.worker_pk.as_slice())
    .bind(s.reward.work_units)
    .bind(form.segment)
    .bind(form.offset)
    .fetch_one(store.writer())
    .await?;
    Ok(row)
}

/// Marks job `$1` proved by `$3` at `$4` with proof `$5` and reported proving time `$6`, if
/// it is leased to `$3` under token `$2` and the lease has not expired; returns its parent.
pub(crate) const PROVE_JOB: &str = "UPDATE jobs SET status = 'proved', proof_hash = $5, \
     proved_by = $3, proved_ms = $4, prove_ms = $6, lease_holder = NULL, \
     lease_expires_ms = NULL \
     WHERE id = $1 AND status = 'leased' AND lease_token = $2 \
     AND lease_holder = $3 AND lease_expires_ms > $4 \
     RETURNING parent";

/// The state of job `$1`.
pub(crate) const STATUS_OF_JOB: &str = "SELECT status FROM jobs WHERE id = $1";

/// Puts the bytes `$2` of the top proof `$1`, which the chain verifies, into its row (see
/// `crate::proofs`).
pub(crate) const TOP_PROOF_INTO_ROW: &str = "UPDATE proofs \
     SET stored = 'row', bytes = $2, segment = NULL, seg_offset = NULL WHERE hash = $1";

/// Ends prover `$1`'s run of abandoned leases: an accepted proof means its next abandonment
/// starts the back-off from the base again.
pub(crate) const RESET_BACKOFF: &str =
    "UPDATE prover_backoff SET abandoned_in_row = 0 WHERE prover = $1";

/// A proved job's one reward entry: job, sequence, prover, worker key, work units, time.
pub(crate) const INSERT_REWARD: &str = "INSERT INTO rewards \
     (job, sequence, prover, worker_pk, work_units, created_ms) \
     VALUES ($1, $2, $3, $4, $5, $6)";

/// Makes parent `$1` ready once no child of it is unproved; returns it if so. A cancelled
/// parent stays cancelled; only a waiting one is released.
pub(crate) const RELEASE_PARENT: &str = "UPDATE jobs SET status = 'ready' \
     WHERE id = $1 AND status = 'waiting' \
     AND NOT EXISTS (SELECT 1 FROM jobs WHERE parent = $1 AND status <> 'proved') \
     RETURNING id";

/// Records sequence `$1` as proved at `$2`.
pub(crate) const SEQUENCE_PROVED: &str = "UPDATE sequences SET proved_ms = $2 WHERE id = $1";

/// Why a submission for `job` under `token` took no effect, from the job's state: already
/// proved, unknown, or a lease that is not current.
pub(crate) fn not_proved(job: JobId, token: i64, status: Option<JobStatus>) -> StoreError {
    match status {
        None => StoreError::UnknownJob(job),
        Some(JobStatus::Proved) => StoreError::AlreadyProved(job),
        Some(_) => StoreError::StaleLease { job, token },
    }
}
