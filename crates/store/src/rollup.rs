//! The rollup block producer's persistence: transactions as they arrive, and blocks as they are
//! published, each with the sequence (job tree) that proves it.
//!
//! ```text
//!  insert_rollup_transaction ──▶ pending ──publish_rollup_block──▶ included (block, position)
//!                                   │
//!                                   └──revert_rollup_transactions──▶ reverted (reason)
//!
//!  publish_rollup_block, one write transaction:
//!    number = tip + 1 (any number from 1 for the first block)
//!    the sequence and its jobs, as insert_sequence stores them
//!    the block's row
//!    each listed transaction pending ─▶ included, at its position
//! ```
//!
//! A block is published before it is proved, and never without its tree: a crash leaves either
//! both or neither. Its sequence's root proof proves it; [`Store::rollup_proven_tip`] is the
//! last block of the proved prefix, [`Store::rollup_settled_tip`] the last of the prefix the
//! proof sender saw finalized on chain. The store does not read headers or transactions: the
//! producer encodes them (JSON), and on restart replays the published blocks' transactions in
//! order ([`Store::rollup_block_transactions`]) to rebuild its state.

use crate::error::{Result, StoreError};
use crate::model::{
    NewRollupTransaction, ProvedLeaf, PublishedBlock, RollupBlock, RollupTransaction,
};
use crate::plan::Plan;
use crate::proofs::{insert_proof_row, Placed};
use crate::rows::{
    hex, RollupBlockRow, RollupTransactionRow, ROLLUP_BLOCK_COLUMNS, ROLLUP_TRANSACTION_COLUMNS,
};
use crate::store::{Engine, WriteTx};
use crate::submit::proof_hash;
use crate::Store;
use sheaf_types::JobId;

impl Store {
    /// Stores a transaction as it arrives, `pending`. An id stored already gives
    /// [`StoreError::RollupTransactionExists`] and changes nothing.
    pub async fn insert_rollup_transaction(&self, new: &NewRollupTransaction) -> Result<()> {
        let inserted = sqlx::query(
            "INSERT INTO rollup_transactions \
             (id, body, local_proof, local_worker_pk, local_work_units, received_ms, status) \
             VALUES ($1, $2, $3, $4, $5, $6, 'pending') ON CONFLICT DO NOTHING",
        )
        .bind(new.id.as_slice())
        .bind(new.body.as_slice())
        .bind(new.local_proof.as_deref())
        .bind(new.local_reward.as_ref().map(|r| r.worker_pk.to_vec()))
        .bind(new.local_reward.as_ref().map(|r| r.work_units))
        .bind(new.received_ms)
        .execute(self.writer())
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::RollupTransactionExists(new.id));
        }
        Ok(())
    }

    /// The pending transactions, in arrival order (`received_ms`, then id).
    pub async fn pending_rollup_transactions(&self) -> Result<Vec<RollupTransaction>> {
        let rows: Vec<RollupTransactionRow> = sqlx::query_as(&format!(
            "SELECT {ROLLUP_TRANSACTION_COLUMNS} FROM rollup_transactions \
             WHERE status = 'pending' ORDER BY received_ms, id"
        ))
        .fetch_all(self.reader())
        .await?;
        rows.into_iter().map(RollupTransaction::try_from).collect()
    }

    /// The transaction with this id, or `None`.
    pub async fn rollup_transaction(&self, id: [u8; 32]) -> Result<Option<RollupTransaction>> {
        let row: Option<RollupTransactionRow> = sqlx::query_as(&format!(
            "SELECT {ROLLUP_TRANSACTION_COLUMNS} FROM rollup_transactions WHERE id = $1"
        ))
        .bind(id.as_slice())
        .fetch_optional(self.reader())
        .await?;
        row.map(RollupTransaction::try_from).transpose()
    }

    /// Publishes a block with the sequence that proves it, in one transaction: the sequence and
    /// its jobs as [`Store::insert_sequence`] stores them, the block's row, and its transactions
    /// `included` at their positions. On any refusal or failure nothing is changed:
    ///
    /// - `block.number` must be the tip's number plus one, or, while no block is published, any
    ///   number from 1; else [`StoreError::RollupBlockOutOfOrder`];
    /// - `block.jobs` must form one tree of `block.sequence`, else [`StoreError::InvalidPlan`],
    ///   and the sequence must be new, else [`StoreError::SequenceExists`];
    /// - every listed transaction must be stored and `pending` (listed once), else
    ///   [`StoreError::RollupTransactionNotPending`].
    ///
    /// On PostgreSQL, publishers serialize on the table of blocks, so of two replicas
    /// publishing the same number one succeeds and the other is out of order.
    pub async fn publish_rollup_block(&self, block: &PublishedBlock) -> Result<()> {
        let plan = Plan::check(&block.sequence, &block.jobs)?;
        let tx_count = i64::try_from(block.transactions.len()).map_err(|_| {
            StoreError::InvalidArgument("more transactions than a block can count".into())
        })?;
        // The proved leaves' blobs first, outside the transaction that names them.
        let mut placed = Vec::with_capacity(block.proved.len());
        for leaf in &block.proved {
            placed.push(
                self.place_blob(&proof_hash(&leaf.proof), &leaf.proof)
                    .await?,
            );
        }
        let mut tx = self.begin_write().await?;
        let published = publish(&mut tx, block, &plan, tx_count, &placed).await;
        tx.finish(published).await?;
        tracing::info!(
            target: "sheaf::store",
            block = block.number,
            commitment = %hex(&block.commitment),
            transactions = tx_count,
            sequence = %block.sequence.id,
            jobs = block.jobs.len(),
            "published rollup block"
        );
        Ok(())
    }

    /// Marks the listed transactions that are `pending` as `reverted`, with `reason`, in one
    /// transaction; the others (unknown, included, reverted already) are left as they are.
    /// Returns how many were reverted.
    pub async fn revert_rollup_transactions(&self, ids: &[[u8; 32]], reason: &str) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let reverted = revert(&mut tx, ids, reason).await;
        let reverted = tx.finish(reverted).await?;
        tracing::info!(
            target: "sheaf::store",
            listed = ids.len(),
            reverted,
            reason,
            "reverted rollup transactions"
        );
        Ok(reverted)
    }

    /// The highest published block, `None` before the first.
    pub async fn rollup_tip(&self) -> Result<Option<RollupBlock>> {
        let row: Option<RollupBlockRow> = sqlx::query_as(&format!(
            "SELECT {ROLLUP_BLOCK_COLUMNS} FROM rollup_blocks b \
             JOIN sequences s ON s.id = b.sequence ORDER BY b.number DESC LIMIT 1"
        ))
        .fetch_optional(self.reader())
        .await?;
        row.map(RollupBlock::try_from).transpose()
    }

    /// The number of the highest block that is proved with every block before it, `None`
    /// while the first block is not proved. A proved block after an unproved one does not
    /// count.
    pub async fn rollup_proven_tip(&self) -> Result<Option<i64>> {
        self.rollup_prefix_tip("proved_ms").await
    }

    /// The number of the highest block that is finalized on the base chain with every block
    /// before it, as the proof sender recorded ([`Store::mark_sequences_settled`]); `None` while
    /// the first block is not, and always when no sender settles.
    pub async fn rollup_settled_tip(&self) -> Result<Option<i64>> {
        self.rollup_prefix_tip("settled_ms").await
    }

    /// The last block of the prefix of blocks whose sequence has `column` (a time) set.
    async fn rollup_prefix_tip(&self, column: &'static str) -> Result<Option<i64>> {
        // One statement, so blocks published between two reads cannot slip in.
        Ok(sqlx::query_scalar(&format!(
            "WITH first_missing AS ( \
               SELECT MIN(b.number) AS number FROM rollup_blocks b \
               JOIN sequences s ON s.id = b.sequence WHERE s.{column} IS NULL) \
             SELECT MAX(b.number) FROM rollup_blocks b, first_missing f \
             WHERE f.number IS NULL OR b.number < f.number"
        ))
        .fetch_one(self.reader())
        .await?)
    }

    /// The block with this number, or `None`.
    pub async fn rollup_block(&self, number: i64) -> Result<Option<RollupBlock>> {
        let row: Option<RollupBlockRow> = sqlx::query_as(&format!(
            "SELECT {ROLLUP_BLOCK_COLUMNS} FROM rollup_blocks b \
             JOIN sequences s ON s.id = b.sequence WHERE b.number = $1"
        ))
        .bind(number)
        .fetch_optional(self.reader())
        .await?;
        row.map(RollupBlock::try_from).transpose()
    }

    /// Up to `limit` blocks from number `from` on, in ascending order.
    pub async fn rollup_blocks(&self, from: i64, limit: u32) -> Result<Vec<RollupBlock>> {
        let rows: Vec<RollupBlockRow> = sqlx::query_as(&format!(
            "SELECT {ROLLUP_BLOCK_COLUMNS} FROM rollup_blocks b \
             JOIN sequences s ON s.id = b.sequence WHERE b.number >= $1 \
             ORDER BY b.number LIMIT $2"
        ))
        .bind(from)
        .bind(i64::from(limit))
        .fetch_all(self.reader())
        .await?;
        rows.into_iter().map(RollupBlock::try_from).collect()
    }

    /// The transactions of block `number`, in block order: what a restarted producer replays.
    /// An unknown block gives [`StoreError::UnknownRollupBlock`].
    pub async fn rollup_block_transactions(&self, number: i64) -> Result<Vec<RollupTransaction>> {
        let known: Option<i64> =
            sqlx::query_scalar("SELECT number FROM rollup_blocks WHERE number = $1")
                .bind(number)
                .fetch_optional(self.reader())
                .await?;
        if known.is_none() {
            return Err(StoreError::UnknownRollupBlock(number));
        }
        // A published block's transactions never change, so this second read agrees.
        let rows: Vec<RollupTransactionRow> = sqlx::query_as(&format!(
            "SELECT {ROLLUP_TRANSACTION_COLUMNS} FROM rollup_transactions \
             WHERE block = $1 ORDER BY position"
        ))
        .bind(number)
        .fetch_all(self.reader())
        .await?;
        rows.into_iter().map(RollupTransaction::try_from).collect()
    }
}

/// The body of [`Store::publish_rollup_block`], inside its write transaction. Each refusal is
/// an error, so what was written before it is rolled back with the rest.
async fn publish(
    tx: &mut WriteTx,
    block: &PublishedBlock,
    plan: &Plan<'_>,
    tx_count: i64,
    placed: &[Placed],
) -> Result<()> {
    if tx.engine == Engine::Postgres {
        // Publishers wait for one another here (the mode conflicts with itself), and each
        // reads the tip after the previous one committed. Readers, and the foreign-key checks
        // of transactions referencing a block, are not held up. SQLite's `BEGIN IMMEDIATE`
        // serializes writers already.
        sqlx::query("LOCK TABLE rollup_blocks IN SHARE ROW EXCLUSIVE MODE")
            .execute(tx.conn())
            .await?;
    }
    let tip: Option<i64> = sqlx::query_scalar("SELECT MAX(number) FROM rollup_blocks")
        .fetch_one(tx.conn())
        .await?;
    let expected = match tip {
        Some(tip) => tip.checked_add(1).ok_or_else(|| {
            StoreError::InvalidArgument(format!("block {tip} is the last block number"))
        })?,
        None => block.number.max(1),
    };
    if block.number != expected {
        return Err(StoreError::RollupBlockOutOfOrder {
            expected,
            got: block.number,
        });
    }
    // The sequence first: the block's row references it.
    plan.store(tx).await?;
    for (leaf, placed) in block.proved.iter().zip(placed) {
        store_proved_leaf(tx, block, leaf, *placed).await?;
    }
    sqlx::query(
        "INSERT INTO rollup_blocks \
         (number, commitment, header, sequence, tx_count, published_ms) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(block.number)
    .bind(block.commitment.as_slice())
    .bind(block.header.as_slice())
    .bind(block.sequence.id)
    .bind(tx_count)
    .bind(block.published_ms)
    .execute(tx.conn())
    .await?;
    for (position, id) in (0i64..).zip(&block.transactions) {
        // On PostgreSQL a concurrent revert of the same transaction waits for this row, then
        // finds it included and leaves it.
        let included = sqlx::query(
            "UPDATE rollup_transactions SET status = 'included', block = $2, position = $3 \
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(id.as_slice())
        .bind(block.number)
        .bind(position)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if included == 0 {
            return Err(StoreError::RollupTransactionNotPending(*id));
        }
    }
    Ok(())
}

/// A leaf of the block's tree stored with its proof, `proved`; its parent `ready` when all its
/// children are.
async fn store_proved_leaf(
    tx: &mut WriteTx,
    block: &PublishedBlock,
    leaf: &ProvedLeaf,
    placed: Placed,
) -> Result<()> {
    let hash = proof_hash(&leaf.proof);
    insert_proof_row(tx, &hash, &leaf.proof, placed).await?;
    let parent: Option<Option<JobId>> = sqlx::query_scalar(
        "UPDATE jobs SET status = 'proved', proof_hash = $2, proved_by = $3, proved_ms = $4 \
         WHERE id = $1 AND sequence = $5 AND status = 'ready' \
         AND NOT EXISTS (SELECT 1 FROM jobs c WHERE c.parent = $1) \
         RETURNING parent",
    )
    .bind(leaf.job)
    .bind(&hash)
    .bind(&leaf.proved_by)
    .bind(block.published_ms)
    .bind(block.sequence.id)
    .fetch_optional(tx.conn())
    .await?;
    let Some(parent) = parent else {
        return Err(StoreError::InvalidPlan(format!(
            "{} is not a leaf of sequence {} to store proved",
            leaf.job, block.sequence.id
        )));
    };
    if let Some(reward) = &leaf.reward {
        sqlx::query(
            "INSERT INTO rewards (job, sequence, prover, worker_pk, work_units, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(leaf.job)
        .bind(block.sequence.id)
        .bind(&leaf.proved_by)
        .bind(reward.worker_pk.as_slice())
        .bind(reward.work_units)
        .bind(block.published_ms)
        .execute(tx.conn())
        .await?;
    }
    if let Some(parent) = parent {
        sqlx::query(
            "UPDATE jobs SET status = 'ready' WHERE id = $1 AND status = 'waiting' \
             AND NOT EXISTS (SELECT 1 FROM jobs WHERE parent = $1 AND status <> 'proved')",
        )
        .bind(parent)
        .execute(tx.conn())
        .await?;
    }
    Ok(())
}

/// The body of [`Store::revert_rollup_transactions`], inside its write transaction.
async fn revert(tx: &mut WriteTx, ids: &[[u8; 32]], reason: &str) -> Result<u64> {
    let mut reverted = 0;
    for id in ids {
        reverted += sqlx::query(
            "UPDATE rollup_transactions SET status = 'reverted', reason = $2 \
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(id.as_slice())
        .bind(reason)
        .execute(tx.conn())
        .await?
        .rows_affected();
    }
    Ok(reverted)
}
