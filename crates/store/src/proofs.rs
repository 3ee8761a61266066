//! Proof blobs: where their bytes are (a row, or the object store), reading them back, and
//! collecting them once nobody can need them.
//!
//! A `proofs` row names each blob by hash. `stored` says where its bytes are: `row` (in
//! `bytes`; every blob of a store opened without an object store, and those written before
//! one was configured), `segment` (in a local directory's segment file `segment`, at
//! `seg_offset`, `size` bytes), `object` (the object store's `proofs/<hash>`), both written
//! before the row (see [`crate::ProofBlobs`]), or `collected`.
//!
//! Collection: a sequence settled on chain longer ago than the claims window has no claim left
//! to serve (claims need its proofs' headers), so its proofs, all but the top one the chain
//! verified, are marked `collected` and their objects deleted; the sequence's
//! `proofs_collected_ms` takes its rewards out of the claimable ones. Objects no row names (a
//! put whose transaction then failed or was refused) and objects of collected rows (a delete
//! that failed) are swept once older than a grace period, which outlasts any submission in
//! flight; so are sealed segments in which no row names a blob any more.

use futures::future::try_join_all;

use sheaf_types::{JobId, SequenceId};

use crate::error::{Result, StoreError};
use crate::model::StoredProofs;
use crate::store::WriteTx;
use crate::Store;

/// Where a blob's bytes were put, for the row that names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Placed {
    /// Into the row itself.
    Row,
    /// Into the object store, already whole.
    Object,
    /// Into segment `id` of a local directory at `offset`, already on disk.
    Segment { id: i64, offset: i64 },
}

impl Placed {
    /// Where a row says its blob is: `stored`, and for a segment its id and offset.
    fn from_row(stored: &str, segment: Option<i64>, offset: Option<i64>) -> Option<Placed> {
        match (stored, segment, offset) {
            ("row", _, _) => Some(Placed::Row),
            ("object", _, _) => Some(Placed::Object),
            ("segment", Some(id), Some(offset)) => Some(Placed::Segment { id, offset }),
            _ => None,
        }
    }
}

/// A job's proof hash and, from the row naming it, where its bytes are, the row's bytes, the
/// blob's size and its segment and offset (all `None` while the job is not proved).
#[derive(sqlx::FromRow)]
struct BlobRef {
    proof_hash: Option<String>,
    stored: Option<String>,
    bytes: Option<Vec<u8>>,
    size: Option<i64>,
    segment: Option<i64>,
    seg_offset: Option<i64>,
}

/// The columns of [`BlobRef`], from jobs `j` joined with proofs `p`.
const BLOB_REF_COLUMNS: &str = "j.proof_hash, p.stored, p.bytes, p.size, p.segment, p.seg_offset";

/// Sequences collected per pass of [`Store::collect_proofs`] before it looks again.
const COLLECT_BATCH: i64 = 64;

/// Hashes looked up per query by the orphan sweep.
const SWEEP_BATCH: usize = 256;

/// What one [`Store::collect_proofs`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CollectedProofs {
    /// Sequences whose proofs were collected.
    pub sequences: u64,
    /// Proofs marked collected (their objects deleted, or their row's bytes emptied).
    pub proofs: u64,
    /// Their total size in bytes.
    pub bytes: i64,
    /// Objects and segments deleted that no row needed (unnamed and past the grace, or
    /// already collected).
    pub swept: u64,
}

impl Store {
    /// Writes a blob about to be named by a row: to the object store now (whole, before the
    /// transaction), or nowhere yet when it goes into the row.
    pub(crate) async fn place_blob(&self, hash: &str, bytes: &[u8]) -> Result<Placed> {
        match &self.blobs {
            Some(blobs) => blobs.put(hash, bytes).await,
            None => Ok(Placed::Row),
        }
    }

    /// The proof of a job, `None` while it is not proved.
    pub async fn proof_of(&self, job: JobId) -> Result<Option<Vec<u8>>> {
        let row: Option<BlobRef> = sqlx::query_as(&format!(
            "SELECT {BLOB_REF_COLUMNS} FROM jobs j \
             LEFT JOIN proofs p ON p.hash = j.proof_hash WHERE j.id = $1"
        ))
        .bind(job)
        .fetch_optional(self.reader())
        .await?;
        let blob = row.ok_or(StoreError::UnknownJob(job))?;
        if blob.proof_hash.is_none() {
            return Ok(None);
        }
        Ok(Some(self.blob_bytes(job, blob).await?))
    }

    /// The proofs of a job's children, in child order: what its prover aggregates. A child
    /// without a proof gives [`StoreError::NotProved`]; a leaf gives an empty list. Blobs
    /// outside the rows are read concurrently.
    pub async fn child_proofs(&self, job: JobId) -> Result<Vec<(JobId, Vec<u8>)>> {
        self.status_of(job).await?;
        #[derive(sqlx::FromRow)]
        struct ChildRow {
            id: JobId,
            #[sqlx(flatten)]
            blob: BlobRef,
        }
        let rows: Vec<ChildRow> = sqlx::query_as(&format!(
            "SELECT j.id, {BLOB_REF_COLUMNS} FROM jobs j \
             LEFT JOIN proofs p ON p.hash = j.proof_hash \
             WHERE j.parent = $1 ORDER BY j.position"
        ))
        .bind(job)
        .fetch_all(self.reader())
        .await?;
        try_join_all(rows.into_iter().map(|ChildRow { id, blob }| async move {
            if blob.proof_hash.is_none() {
                return Err(StoreError::NotProved(id));
            }
            Ok((id, self.blob_bytes(id, blob).await?))
        }))
        .await
    }

    /// The bytes of `job`'s proof blob, from wherever its row says they are.
    async fn blob_bytes(&self, job: JobId, blob: BlobRef) -> Result<Vec<u8>> {
        let hash = blob.proof_hash.unwrap_or_default();
        let Some(stored) = blob.stored else {
            return Err(StoreError::Corrupt(format!(
                "job {job} names proof {hash}, which has no row"
            )));
        };
        if stored == "collected" {
            return Err(StoreError::ProofCollected(job));
        }
        let placed = Placed::from_row(&stored, blob.segment, blob.seg_offset)
            .ok_or_else(|| StoreError::Corrupt(format!("proof {hash} is stored as {stored:?}")))?;
        match (placed, &self.blobs) {
            (Placed::Row, _) => blob
                .bytes
                .ok_or_else(|| StoreError::Corrupt(format!("proof {hash} has no bytes"))),
            (_, Some(blobs)) => blobs.get(&hash, placed, blob.size.unwrap_or(0)).await,
            (_, None) => Err(StoreError::Blobs(format!(
                "the proof of job {job} is in a proof store, and this store was opened \
                 without one (--proof-store)"
            ))),
        }
    }

    /// Number and total size of the proof blobs held (collected ones left out).
    pub async fn stored_proofs(&self) -> Result<StoredProofs> {
        Ok(sqlx::query_as(
            "SELECT COUNT(*) AS count, \
             CAST(COALESCE(SUM(COALESCE(size, LENGTH(bytes))), 0) AS BIGINT) AS bytes \
             FROM proofs WHERE stored <> 'collected'",
        )
        .fetch_one(self.reader())
        .await?)
    }

    /// Collects the proofs of every sequence settled before `settled_before_ms` (all but its
    /// top proof; see the module), then, with an object store, sweeps the objects no row
    /// needs that were written before `unnamed_before_ms`. `now_ms` is recorded as the
    /// sequences' collection time. Safe to run from several replicas at once.
    pub async fn collect_proofs(
        &self,
        settled_before_ms: i64,
        unnamed_before_ms: i64,
        now_ms: i64,
    ) -> Result<CollectedProofs> {
        let mut report = CollectedProofs::default();
        loop {
            let due: Vec<SequenceId> = sqlx::query_scalar(
                "SELECT id FROM sequences WHERE settled_ms IS NOT NULL AND settled_ms < $1 \
                 AND proofs_collected_ms IS NULL ORDER BY id LIMIT $2",
            )
            .bind(settled_before_ms)
            .bind(COLLECT_BATCH)
            .fetch_all(self.reader())
            .await?;
            if due.is_empty() {
                break;
            }
            for sequence in due {
                let mut tx = self.begin_write().await?;
                let collected = collect_sequence(&mut tx, sequence, now_ms).await;
                // `None`: another replica collected it since it was listed.
                let Some(collected) = tx.finish(collected).await? else {
                    continue;
                };
                report.sequences += 1;
                report.proofs += collected.len() as u64;
                report.bytes += collected.iter().map(|(_, _, size)| size).sum::<i64>();
                if let Some(blobs) = &self.blobs {
                    for (hash, object, _) in &collected {
                        // A delete that fails leaves a collected row's object: swept later.
                        if *object {
                            if let Err(e) = blobs.delete(hash).await {
                                tracing::warn!(target: "sheaf::store", %hash, error = %e, "collected proof's object not deleted; the sweep retries");
                            }
                        }
                    }
                }
                tracing::info!(target: "sheaf::store", %sequence, proofs = collected.len(), "collected a settled sequence's proofs");
            }
        }
        report.swept = self.sweep_objects(unnamed_before_ms).await?
            + self.sweep_segments(unnamed_before_ms).await?;
        Ok(report)
    }

    /// Deletes the sealed segments in which no row names a blob (all collected, or never
    /// named) that were last written before `unnamed_before_ms`.
    async fn sweep_segments(&self, unnamed_before_ms: i64) -> Result<u64> {
        let Some(blobs) = &self.blobs else {
            return Ok(0);
        };
        let mut swept = 0;
        for segment in blobs.sealed_segments()? {
            if segment.written_ms >= unnamed_before_ms {
                continue;
            }
            let named: Option<i64> = sqlx::query_scalar(
                "SELECT CAST(1 AS BIGINT) FROM proofs \
                 WHERE stored = 'segment' AND segment = $1 LIMIT 1",
            )
            .bind(segment.id)
            .fetch_optional(self.reader())
            .await?;
            if named.is_none() && blobs.delete_segment(segment.id)? {
                swept += 1;
            }
        }
        if swept > 0 {
            tracing::info!(target: "sheaf::store", swept, "swept proof segments no row needs");
        }
        Ok(swept)
    }

    /// Deletes the objects no row needs: unnamed and written before `unnamed_before_ms`, or
    /// named by a collected row.
    async fn sweep_objects(&self, unnamed_before_ms: i64) -> Result<u64> {
        let Some(blobs) = &self.blobs else {
            return Ok(0);
        };
        let objects = blobs.list().await?;
        let mut swept = 0;
        for chunk in objects.chunks(SWEEP_BATCH) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT hash, stored FROM proofs WHERE hash IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query_as::<_, (String, String)>(&sql);
            for object in chunk {
                query = query.bind(&object.hash);
            }
            let named: std::collections::HashMap<String, String> =
                query.fetch_all(self.reader()).await?.into_iter().collect();
            for object in chunk {
                let unneeded = match named.get(&object.hash).map(String::as_str) {
                    None => object.written_ms < unnamed_before_ms,
                    Some(stored) => stored == "collected",
                };
                if unneeded {
                    blobs.delete(&object.hash).await?;
                    swept += 1;
                }
            }
        }
        if swept > 0 {
            tracing::info!(target: "sheaf::store", swept, "swept proof objects no row needs");
        }
        Ok(swept)
    }
}

/// The row of blob `$1`: its bytes `$2` (empty when elsewhere), where they are `$3`, its size
/// `$4`, its segment `$5` and offset there `$6` (NULL when not in one). Content-addressed: a
/// blob already named is kept once.
pub(crate) const INSERT_PROOF_ROW: &str =
    "INSERT INTO proofs (hash, bytes, stored, size, segment, seg_offset) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING";

/// What a blob placed as `placed` puts in its row.
pub(crate) struct RowForm<'a> {
    /// `stored`.
    pub(crate) stored: &'static str,
    /// `bytes`: the blob, or empty when it is elsewhere.
    pub(crate) bytes: &'a [u8],
    /// `segment` and `seg_offset`.
    pub(crate) segment: Option<i64>,
    pub(crate) offset: Option<i64>,
}

/// What a blob's row holds for a blob placed as `placed`.
pub(crate) fn row_form(bytes: &[u8], placed: Placed) -> RowForm<'_> {
    let (stored, bytes, segment, offset) = match placed {
        Placed::Row => ("row", bytes, None, None),
        Placed::Object => ("object", &[][..], None, None),
        Placed::Segment { id, offset } => ("segment", &[][..], Some(id), Some(offset)),
    };
    RowForm {
        stored,
        bytes,
        segment,
        offset,
    }
}

/// Inserts the row naming blob `hash` (kept once: an identical proof already stored is left as
/// it is).
pub(crate) async fn insert_proof_row(
    tx: &mut WriteTx,
    hash: &str,
    bytes: &[u8],
    placed: Placed,
) -> Result<()> {
    let size = i64::try_from(bytes.len())
        .map_err(|_| StoreError::InvalidArgument("a proof larger than 2^63 bytes".into()))?;
    let row = row_form(bytes, placed);
    sqlx::query(INSERT_PROOF_ROW)
        .bind(hash)
        .bind(row.bytes)
        .bind(row.stored)
        .bind(size)
        .bind(row.segment)
        .bind(row.offset)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Marks `sequence`'s proofs collected, all but its top one and any another job still needs,
/// inside a write transaction; returns each collected blob's hash, whether it was an object
/// (to delete; a segment's bytes go with the whole segment), and size, or `None` when the
/// sequence's proofs were collected already.
async fn collect_sequence(
    tx: &mut WriteTx,
    sequence: SequenceId,
    now_ms: i64,
) -> Result<Option<Vec<(String, bool, i64)>>> {
    // Checked again inside the transaction: another replica may have collected it since.
    let pending: Option<Option<i64>> =
        sqlx::query_scalar("SELECT proofs_collected_ms FROM sequences WHERE id = $1")
            .bind(sequence)
            .fetch_optional(tx.conn())
            .await?;
    if !matches!(pending, Some(None)) {
        return Ok(None);
    }
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT DISTINCT p.hash, p.stored, COALESCE(p.size, LENGTH(p.bytes)) FROM jobs j \
         JOIN proofs p ON p.hash = j.proof_hash \
         WHERE j.sequence = $1 AND j.parent IS NOT NULL AND p.stored <> 'collected' \
         AND NOT EXISTS (SELECT 1 FROM jobs o JOIN sequences os ON os.id = o.sequence \
           WHERE o.proof_hash = p.hash AND (o.parent IS NULL \
           OR (o.sequence <> $1 AND os.proofs_collected_ms IS NULL)))",
    )
    .bind(sequence)
    .fetch_all(tx.conn())
    .await?;
    let mut collected = Vec::with_capacity(rows.len());
    for (hash, stored, size) in rows {
        sqlx::query("UPDATE proofs SET stored = 'collected', bytes = $2 WHERE hash = $1")
            .bind(&hash)
            .bind(Vec::<u8>::new())
            .execute(tx.conn())
            .await?;
        collected.push((hash, stored == "object", size));
    }
    sqlx::query("UPDATE sequences SET proofs_collected_ms = $2 WHERE id = $1")
        .bind(sequence)
        .bind(now_ms)
        .execute(tx.conn())
        .await?;
    Ok(Some(collected))
}
