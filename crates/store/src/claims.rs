//! Reward claims: the jobs a worker key proved in sequences finalized on the base chain.

use sheaf_types::JobId;

use crate::error::Result;
use crate::model::Reward;
use crate::rows::RewardRow;
use crate::Store;

impl Store {
    /// The reward entries of `worker_pk` whose sequence is settled (`settled_ms` set by
    /// [`Store::mark_sequences_settled`]) and whose claims window is open (its proofs not
    /// collected, [`Store::collect_proofs`]), in tree order (sequence, level, index), starting
    /// after the job `after` (from the first when `None`), at most `limit` of them. The wrap
    /// of a root (with `--final-zk`) is left out: it re-exposes the root's header and earns
    /// nothing.
    pub async fn claimable_rewards(
        &self,
        worker_pk: &[u8; 32],
        after: Option<JobId>,
        limit: u32,
    ) -> Result<Vec<Reward>> {
        // The cursor as (sequence, level, index); before every job when there is none.
        let (sequence, level, index) = after.map_or((-1, -1, -1), |job| {
            (
                job.sequence.0 as i64,
                i64::from(job.level),
                job.index as i64,
            )
        });
        let rows: Vec<RewardRow> = sqlx::query_as(
            "SELECT r.job, r.prover, r.worker_pk, r.work_units, r.created_ms \
             FROM rewards r JOIN jobs j ON j.id = r.job JOIN sequences s ON s.id = r.sequence \
             WHERE r.worker_pk = $1 AND s.settled_ms IS NOT NULL AND s.proofs_collected_ms IS NULL \
             AND j.circuit <> 'wrap' \
             AND (j.sequence > $2 OR (j.sequence = $2 AND (j.level > $3 \
             OR (j.level = $3 AND j.idx > $4)))) \
             ORDER BY j.sequence, j.level, j.idx LIMIT $5",
        )
        .bind(worker_pk.as_slice())
        .bind(sequence)
        .bind(level)
        .bind(index)
        .bind(i64::from(limit))
        .fetch_all(self.reader())
        .await?;
        rows.into_iter().map(Reward::try_from).collect()
    }
}
