//! Proof blobs: where their bytes are (a row, or the object store), reading them back, and
//! collecting them once nobody can need them.
//!
//! A `proofs` row names each blob by hash. `stored` says where its bytes are: `row` (in
//! `bytes`; every blob of a store opened without an object store, and those written before
//! one was configured), `object` (the object store's `proofs/<hash>`, written before the row:
//! see [`crate::ProofBlobs`]), or `collected`.
//!
//! Collection: a sequence settled on chain longer ago than the claims window has no claim left
//! to serve (claims need its proofs' headers), so its proofs, all but the top one the chain
//! verified, are marked `collected` and their objects deleted; the sequence's
//! `proofs_collected_ms` takes its rewards out of the claimable ones. Objects no row names (a
//! put whose transaction then failed or was refused) and objects of collected rows (a delete
//! that failed) are swept once older than a grace period, which outlasts any submission in
//! flight.

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
}

/// A job's proof hash and, from the row naming it, where its bytes are and the row's bytes
/// (all `None` while the job is not proved).
type BlobRef = (Option<String>, Option<String>, Option<Vec<u8>>);

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
    /// Objects deleted that no row needed (unnamed and past the grace, or already collected).
    pub swept: u64,
}

impl Store {
    /// Writes a blob about to be named by a row: to the object store now (whole, before the
    /// transaction), or nowhere yet when it goes into the row.
    pub(crate) async fn place_blob(&self, hash: &str, bytes: &[u8]) -> Result<Placed> {
        match &self.blobs {
            Some(blobs) => {
                blobs.put(hash, bytes).await?;
                Ok(Placed::Object)
            }
            None => Ok(Placed::Row),
        }
    }

    /// The proof of a job, `None` while it is not proved.
    pub async fn proof_of(&self, job: JobId) -> Result<Option<Vec<u8>>> {
        let row: Option<BlobRef> = sqlx::query_as(
            "SELECT j.proof_hash, p.stored, p.bytes FROM jobs j \
             LEFT JOIN proofs p ON p.hash = j.proof_hash WHERE j.id = $1",
        )
        .bind(job)
        .fetch_optional(self.reader())
        .await?;
        let (hash, stored, bytes) = row.ok_or(StoreError::UnknownJob(job))?;
        match hash {
            None => Ok(None),
            Some(hash) => Ok(Some(self.blob_bytes(job, hash, stored, bytes).await?)),
        }
    }

    /// The proofs of a job's children, in child order: what its prover aggregates. A child
    /// without a proof gives [`StoreError::NotProved`]; a leaf gives an empty list. Blobs in
    /// the object store are read concurrently.
    pub async fn child_proofs(&self, job: JobId) -> Result<Vec<(JobId, Vec<u8>)>> {
        self.status_of(job).await?;
        type ChildRow = (JobId, Option<String>, Option<String>, Option<Vec<u8>>);
        let rows: Vec<ChildRow> = sqlx::query_as(
            "SELECT c.id, c.proof_hash, p.stored, p.bytes FROM jobs c \
             LEFT JOIN proofs p ON p.hash = c.proof_hash \
             WHERE c.parent = $1 ORDER BY c.position",
        )
        .bind(job)
        .fetch_all(self.reader())
        .await?;
        try_join_all(
            rows.into_iter()
                .map(|(child, hash, stored, bytes)| async move {
                    let hash = hash.ok_or(StoreError::NotProved(child))?;
                    Ok((child, self.blob_bytes(child, hash, stored, bytes).await?))
                }),
        )
        .await
    }

    /// The bytes of `job`'s proof blob `hash`, from wherever its row says they are.
    async fn blob_bytes(
        &self,
        job: JobId,
        hash: String,
        stored: Option<String>,
        bytes: Option<Vec<u8>>,
    ) -> Result<Vec<u8>> {
        match stored.as_deref() {
            Some("row") => {
                bytes.ok_or_else(|| StoreError::Corrupt(format!("proof {hash} has no bytes")))
            }
            Some("object") => match &self.blobs {
                Some(blobs) => blobs.get(&hash).await,
                None => Err(StoreError::Blobs(format!(
                    "the proof of job {job} is in an object store, and this store was opened \
                     without one (--proof-store)"
                ))),
            },
            Some("collected") => Err(StoreError::ProofCollected(job)),
            Some(other) => Err(StoreError::Corrupt(format!(
                "proof {hash} is stored as {other:?}"
            ))),
            None => Err(StoreError::Corrupt(format!(
                "job {job} names proof {hash}, which has no row"
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
                    for (hash, placed, _) in &collected {
                        // A delete that fails leaves a collected row's object: swept later.
                        if *placed == Placed::Object {
                            if let Err(e) = blobs.delete(hash).await {
                                tracing::warn!(target: "sheaf::store", %hash, error = %e, "collected proof's object not deleted; the sweep retries");
                            }
                        }
                    }
                }
                tracing::info!(target: "sheaf::store", %sequence, proofs = collected.len(), "collected a settled sequence's proofs");
            }
        }
        report.swept = self.sweep_objects(unnamed_before_ms).await?;
        Ok(report)
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
/// `$4`. Content-addressed: a blob already named is kept once.
pub(crate) const INSERT_PROOF_ROW: &str = "INSERT INTO proofs (hash, bytes, stored, size) \
     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";

/// What a blob's row holds as `stored`, and its `bytes`, for a blob placed as `placed`.
pub(crate) fn row_form(bytes: &[u8], placed: Placed) -> (&'static str, &[u8]) {
    match placed {
        Placed::Row => ("row", bytes),
        Placed::Object => ("object", &[][..]),
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
    let (stored, bytes) = row_form(bytes, placed);
    sqlx::query(INSERT_PROOF_ROW)
        .bind(hash)
        .bind(bytes)
        .bind(stored)
        .bind(size)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Marks `sequence`'s proofs collected, all but its top one and any another job still needs,
/// inside a write transaction; returns each collected blob's hash, where it was, and size, or
/// `None` when the sequence's proofs were collected already.
async fn collect_sequence(
    tx: &mut WriteTx,
    sequence: SequenceId,
    now_ms: i64,
) -> Result<Option<Vec<(String, Placed, i64)>>> {
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
        let placed = if stored == "object" {
            Placed::Object
        } else {
            Placed::Row
        };
        collected.push((hash, placed, size));
    }
    sqlx::query("UPDATE sequences SET proofs_collected_ms = $2 WHERE id = $1")
        .bind(sequence)
        .bind(now_ms)
        .execute(tx.conn())
        .await?;
    Ok(Some(collected))
}
