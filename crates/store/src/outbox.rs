//! The proof sender's outbox of chain transactions.
//!
//! ```text
//!  outbox_add (signed bytes stored first) ──▶ pending ──outbox_mark_sent──▶ sent
//!                                               │                           │
//!                                               │        outbox_mark_included (in a block)
//!                                               ▼                           ▼
//!                                            failed ◀──outbox_mark_failed── included
//! ```
//!
//! A sender signs a transaction, stores it here, then sends it. Restarted, it resends what is
//! `pending` or `sent` with the same bytes: the chain's account nonce makes a resend idempotent,
//! and the unique step `(sequence, kind, attempt)` keeps it from signing a second transaction
//! for the same step.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use sheaf_types::SequenceId;

use crate::error::{Result, StoreError};
use crate::roles::{check_fence, RoleFence};
use crate::store::WriteTx;
use crate::Store;

/// What a chain transaction of the sender does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum OutboxKind {
    /// Registers the sequence and the statement its root proof must carry.
    Register,
    /// Commits to a root proof: `H(H(proof) ‖ sender)`.
    ProofHash,
    /// Reveals the root proof.
    Proof,
}

/// Where an outbox transaction stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum OutboxStatus {
    /// Stored, not yet known to have reached the chain.
    Pending,
    /// Accepted by the chain's node, not yet in a block.
    Sent,
    /// In a block.
    Included,
    /// Given up (refused by the chain, or its window passed).
    Failed,
}

impl OutboxKind {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxKind::Register => "register",
            OutboxKind::ProofHash => "proof_hash",
            OutboxKind::Proof => "proof",
        }
    }
}

impl OutboxStatus {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Sent => "sent",
            OutboxStatus::Included => "included",
            OutboxStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for OutboxKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for OutboxStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OutboxKind {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self> {
        [
            OutboxKind::Register,
            OutboxKind::ProofHash,
            OutboxKind::Proof,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == s)
        .ok_or_else(|| StoreError::Corrupt(format!("stored outbox kind {s:?}")))
    }
}

impl FromStr for OutboxStatus {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self> {
        [
            OutboxStatus::Pending,
            OutboxStatus::Sent,
            OutboxStatus::Included,
            OutboxStatus::Failed,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
        .ok_or_else(|| StoreError::Corrupt(format!("stored outbox status {s:?}")))
    }
}

/// A transaction to store before sending it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOutboxTx {
    /// The sequence it settles.
    pub sequence: SequenceId,
    /// Hash commitment or proof reveal.
    pub kind: OutboxKind,
    /// The settlement window it is for (0 for the first; a resend after a window closed
    /// without a valid proof is the next attempt).
    pub attempt: i64,
    /// The transaction's hash on the chain.
    pub tx_hash: String,
    /// The signed transaction bytes.
    pub tx: Vec<u8>,
}

/// A stored outbox transaction.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxTx {
    /// Row id, in order of storing.
    pub id: i64,
    /// The sequence it settles.
    pub sequence: SequenceId,
    /// Hash commitment or proof reveal.
    pub kind: OutboxKind,
    /// The settlement window it is for.
    pub attempt: i64,
    /// The transaction's hash on the chain.
    pub tx_hash: String,
    /// The signed transaction bytes.
    pub tx: Vec<u8>,
    /// Where it stands.
    pub status: OutboxStatus,
    /// When it was stored (coordinator clock).
    pub created_ms: i64,
    /// When the chain's node first accepted it.
    pub sent_ms: Option<i64>,
    /// The block it is in.
    pub included_height: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
}

const COLUMNS: &str = "id, sequence, kind, attempt, tx_hash, tx, status, created_ms, sent_ms, \
                       included_height, error";

impl Store {
    /// Stores a signed transaction before it is sent. Storing the same transaction again
    /// (same hash, same step) returns the stored one and changes nothing; another transaction
    /// for a step that has one gives [`StoreError::OutboxStepTaken`].
    pub async fn outbox_add(&self, new: &NewOutboxTx, now_ms: i64) -> Result<OutboxTx> {
        self.outbox_add_in(new, now_ms, None).await
    }

    /// [`Store::outbox_add`] made in a role: refused with [`StoreError::RoleLost`], changing
    /// nothing, once another replica took the role over, so two replicas never sign for the
    /// same key.
    pub async fn outbox_add_fenced(
        &self,
        new: &NewOutboxTx,
        now_ms: i64,
        fence: &RoleFence,
    ) -> Result<OutboxTx> {
        self.outbox_add_in(new, now_ms, Some(fence)).await
    }

    async fn outbox_add_in(
        &self,
        new: &NewOutboxTx,
        now_ms: i64,
        fence: Option<&RoleFence>,
    ) -> Result<OutboxTx> {
        let mut tx = self.begin_write().await?;
        let added = add(&mut tx, new, now_ms, fence).await;
        fail::fail_point!("store::outbox::before_commit");
        let (added, existing) = tx.finish(added).await?;
        fail::fail_point!("store::outbox::after_commit");
        if let Some(added) = added {
            return Ok(added);
        }
        match existing {
            Some(stored) if stored.tx_hash == new.tx_hash && stored.tx == new.tx => Ok(stored),
            _ => Err(StoreError::OutboxStepTaken {
                sequence: new.sequence,
                kind: new.kind.as_str(),
                attempt: new.attempt,
            }),
        }
    }

    /// The transactions still in flight (`pending` or `sent`), in sequence order, hash
    /// commitments before reveals.
    pub async fn outbox_open(&self) -> Result<Vec<OutboxTx>> {
        let select = format!(
            "SELECT {COLUMNS} FROM chain_outbox WHERE status IN ('pending', 'sent') \
             ORDER BY sequence, attempt, CASE kind WHEN 'register' THEN 0 WHEN 'proof_hash' THEN 1 ELSE 2 END, id"
        );
        Ok(sqlx::query_as(&select).fetch_all(self.reader()).await?)
    }

    /// The latest attempt of one kind of step for `sequence`, if any was stored.
    pub async fn outbox_latest(
        &self,
        sequence: SequenceId,
        kind: OutboxKind,
    ) -> Result<Option<OutboxTx>> {
        let select = format!(
            "SELECT {COLUMNS} FROM chain_outbox WHERE sequence = $1 AND kind = $2 \
             ORDER BY attempt DESC LIMIT 1"
        );
        Ok(sqlx::query_as(&select)
            .bind(sequence)
            .bind(kind)
            .fetch_optional(self.reader())
            .await?)
    }

    /// Every stored transaction, in order of storing (for operators and tests).
    pub async fn outbox_all(&self) -> Result<Vec<OutboxTx>> {
        let select = format!("SELECT {COLUMNS} FROM chain_outbox ORDER BY id");
        Ok(sqlx::query_as(&select).fetch_all(self.reader()).await?)
    }

    /// The transaction of one step, if stored.
    pub async fn outbox_get(
        &self,
        sequence: SequenceId,
        kind: OutboxKind,
        attempt: i64,
    ) -> Result<Option<OutboxTx>> {
        let select = format!(
            "SELECT {COLUMNS} FROM chain_outbox WHERE sequence = $1 AND kind = $2 AND attempt = $3"
        );
        Ok(sqlx::query_as(&select)
            .bind(sequence)
            .bind(kind)
            .bind(attempt)
            .fetch_optional(self.reader())
            .await?)
    }

    /// `pending` → `sent` at `now_ms` (the node accepted it). Marking a sent transaction sent
    /// again is a no-op.
    pub async fn outbox_mark_sent(&self, id: i64, now_ms: i64) -> Result<()> {
        let updated = sqlx::query(
            "UPDATE chain_outbox SET status = 'sent', sent_ms = COALESCE(sent_ms, $2) \
                 WHERE id = $1 AND status IN ('pending', 'sent')",
        )
        .bind(id)
        .bind(now_ms)
        .execute(self.writer())
        .await?
        .rows_affected();
        if updated > 0 {
            self.changed();
        }
        self.outbox_moved(id, updated, OutboxStatus::Sent).await
    }

    /// `pending` or `sent` → `included` in block `height` (again: a no-op).
    pub async fn outbox_mark_included(&self, id: i64, height: i64) -> Result<()> {
        let updated = sqlx::query(
            "UPDATE chain_outbox SET status = 'included', included_height = $2 \
                 WHERE id = $1 AND status IN ('pending', 'sent', 'included')",
        )
        .bind(id)
        .bind(height)
        .execute(self.writer())
        .await?
        .rows_affected();
        if updated > 0 {
            self.changed();
        }
        self.outbox_moved(id, updated, OutboxStatus::Included).await
    }

    /// `pending` or `sent` → `failed`, with the reason.
    pub async fn outbox_mark_failed(&self, id: i64, error: &str) -> Result<()> {
        let updated = sqlx::query(
            "UPDATE chain_outbox SET status = 'failed', error = $2 \
                 WHERE id = $1 AND status IN ('pending', 'sent', 'failed')",
        )
        .bind(id)
        .bind(error)
        .execute(self.writer())
        .await?
        .rows_affected();
        if updated > 0 {
            self.changed();
        }
        self.outbox_moved(id, updated, OutboxStatus::Failed).await
    }

    /// Records that the chain finalized sequences `from` up to (not including) `below`, at
    /// `now_ms`: the sender calls it with the chain's first registered sequence and its next to
    /// finalize (the chain finalizes in order, so everything between is final). Sequences marked
    /// already keep their time; returns how many were marked now. What the rollup's settled tip
    /// ([`Store::rollup_settled_tip`]) reads.
    pub async fn mark_sequences_settled(
        &self,
        from: SequenceId,
        below: SequenceId,
        now_ms: i64,
    ) -> Result<u64> {
        let marked = sqlx::query(
            "UPDATE sequences SET settled_ms = $3 \
             WHERE id >= $1 AND id < $2 AND settled_ms IS NULL",
        )
        .bind(from)
        .bind(below)
        .bind(now_ms)
        .execute(self.writer())
        .await?
        .rows_affected();
        if marked > 0 {
            self.changed();
        }
        Ok(marked)
    }

    /// How many sequences the proof sender has marked settled.
    pub async fn settled_sequence_count(&self) -> Result<u64> {
        let count: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM sequences WHERE settled_ms IS NOT NULL",
        )
        .fetch_one(self.reader())
        .await?;
        Ok(count as u64)
    }

    /// After an update that moved `updated` rows: nothing moved means an unknown id or a
    /// transition the row's state does not allow.
    async fn outbox_moved(&self, id: i64, updated: u64, to: OutboxStatus) -> Result<()> {
        if updated > 0 {
            return Ok(());
        }
        let current: Option<OutboxStatus> =
            sqlx::query_scalar("SELECT status FROM chain_outbox WHERE id = $1")
                .bind(id)
                .fetch_optional(self.reader())
                .await?;
        let from = current.ok_or(StoreError::UnknownOutboxTx(id))?;
        Err(StoreError::OutboxTransition {
            id,
            from: from.as_str(),
            to: to.as_str(),
        })
    }
}

/// The body of [`Store::outbox_add`], inside its write transaction: the stored transaction, or
/// what holds its step already.
async fn add(
    tx: &mut WriteTx,
    new: &NewOutboxTx,
    now_ms: i64,
    fence: Option<&RoleFence>,
) -> Result<(Option<OutboxTx>, Option<OutboxTx>)> {
    if let Some(fence) = fence {
        check_fence(tx, fence).await?;
    }
    let insert = format!(
        "INSERT INTO chain_outbox (sequence, kind, attempt, tx_hash, tx, status, created_ms) \
         VALUES ($1, $2, $3, $4, $5, 'pending', $6) ON CONFLICT DO NOTHING RETURNING {COLUMNS}"
    );
    let added: Option<OutboxTx> = sqlx::query_as(&insert)
        .bind(new.sequence)
        .bind(new.kind)
        .bind(new.attempt)
        .bind(&new.tx_hash)
        .bind(&new.tx)
        .bind(now_ms)
        .fetch_optional(tx.conn())
        .await?;
    if added.is_some() {
        return Ok((added, None));
    }
    // The step (or the hash) is taken: the same transaction is a no-op, another a refusal.
    let select = format!(
        "SELECT {COLUMNS} FROM chain_outbox WHERE sequence = $1 AND kind = $2 AND attempt = $3"
    );
    let existing = sqlx::query_as(&select)
        .bind(new.sequence)
        .bind(new.kind)
        .bind(new.attempt)
        .fetch_optional(tx.conn())
        .await?;
    Ok((None, existing))
}
