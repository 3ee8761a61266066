//! How domain values are stored: rows that are not a domain type as they stand, and the `Any`
//! driver's side of the text enums. A value that does not decode is [`StoreError::Corrupt`]:
//! the database was changed outside the store.

use std::str::FromStr;

use sqlx::any::{AnyTypeInfo, AnyValueRef};
use sqlx::error::BoxDynError;
use sqlx::{Any, Decode, Type};

use crate::error::{Result, StoreError};
use crate::model::{
    JobStatus, Prover, Reward, RewardEntry, RollupBlock, RollupTransaction, RollupTxStatus,
};
use crate::outbox::{OutboxKind, OutboxStatus};
use sheaf_types::{JobCircuit, JobId, JobInputs, SequenceId};

/// Columns selected for a [`crate::Job`].
pub(crate) const JOB_COLUMNS: &str = "id, parent, circuit, inputs, status, attempts, lease_token, \
     lease_holder, lease_expires_ms, proof_hash, proved_by, proved_ms, leased_ms, prove_ms";

/// What claiming a job returns.
#[derive(sqlx::FromRow)]
pub(crate) struct ClaimRow {
    pub(crate) id: JobId,
    pub(crate) attempts: i64,
    pub(crate) lease_token: i64,
    pub(crate) circuit: JobCircuit,
    pub(crate) inputs: JobInputs,
}

impl ClaimRow {
    /// The lease this claim granted `prover` until `expires_ms`.
    pub(crate) fn into_lease(self, prover: &str, expires_ms: i64) -> crate::model::Lease {
        crate::model::Lease {
            job: self.id,
            token: self.lease_token,
            attempt: self.attempts,
            holder: prover.to_owned(),
            expires_ms,
            circuit: self.circuit,
            inputs: self.inputs,
        }
    }
}

/// A row of `provers`; keys are checked to be 32 bytes.
#[derive(sqlx::FromRow)]
pub(crate) struct ProverRow {
    id: String,
    public_key: Vec<u8>,
    worker_pk: Vec<u8>,
    rate_limit: i64,
    max_concurrent: i64,
}

/// Columns selected for a [`ProverRow`].
pub(crate) const PROVER_COLUMNS: &str = "id, public_key, worker_pk, rate_limit, max_concurrent";

impl TryFrom<ProverRow> for Prover {
    type Error = StoreError;

    fn try_from(row: ProverRow) -> Result<Prover> {
        Ok(Prover {
            id: row.id,
            public_key: key32(row.public_key, "prover public key")?,
            worker_pk: key32(row.worker_pk, "prover worker_pk")?,
            rate_limit: row.rate_limit,
            max_concurrent: row.max_concurrent,
        })
    }
}

/// A row of `rewards`.
#[derive(sqlx::FromRow)]
pub(crate) struct RewardRow {
    job: JobId,
    prover: String,
    worker_pk: Vec<u8>,
    work_units: i64,
    created_ms: i64,
}

impl TryFrom<RewardRow> for Reward {
    type Error = StoreError;

    fn try_from(row: RewardRow) -> Result<Reward> {
        Ok(Reward {
            job: row.job,
            prover: row.prover,
            worker_pk: key32(row.worker_pk, "reward worker_pk")?,
            work_units: row.work_units,
            created_ms: row.created_ms,
        })
    }
}

/// Columns selected for a [`RollupBlockRow`], from `rollup_blocks b` joined with its
/// `sequences s`.
pub(crate) const ROLLUP_BLOCK_COLUMNS: &str =
    "b.number, b.commitment, b.header, b.sequence, b.tx_count, b.published_ms, s.proved_ms, \
     s.settled_ms";

/// A row of `rollup_blocks` with its sequence's `proved_ms` and `settled_ms` (`Any` decodes no
/// booleans).
#[derive(sqlx::FromRow)]
pub(crate) struct RollupBlockRow {
    number: i64,
    commitment: Vec<u8>,
    header: Vec<u8>,
    sequence: SequenceId,
    tx_count: i64,
    published_ms: i64,
    proved_ms: Option<i64>,
    settled_ms: Option<i64>,
}

impl TryFrom<RollupBlockRow> for RollupBlock {
    type Error = StoreError;

    fn try_from(row: RollupBlockRow) -> Result<RollupBlock> {
        Ok(RollupBlock {
            number: row.number,
            commitment: key32(row.commitment, "rollup block commitment")?,
            header: row.header,
            sequence: row.sequence,
            tx_count: row.tx_count,
            published_ms: row.published_ms,
            proved: row.proved_ms.is_some(),
            settled: row.settled_ms.is_some(),
        })
    }
}

/// Columns selected for a [`RollupTransactionRow`].
pub(crate) const ROLLUP_TRANSACTION_COLUMNS: &str =
    "id, body, local_proof, local_worker_pk, local_work_units, received_ms, status, block, position, \
     reason";

/// A row of `rollup_transactions`; the id is checked to be 32 bytes.
#[derive(sqlx::FromRow)]
pub(crate) struct RollupTransactionRow {
    id: Vec<u8>,
    body: Vec<u8>,
    local_proof: Option<Vec<u8>>,
    local_worker_pk: Option<Vec<u8>>,
    local_work_units: Option<i64>,
    received_ms: i64,
    status: RollupTxStatus,
    block: Option<i64>,
    position: Option<i64>,
    reason: Option<String>,
}

impl TryFrom<RollupTransactionRow> for RollupTransaction {
    type Error = StoreError;

    fn try_from(row: RollupTransactionRow) -> Result<RollupTransaction> {
        Ok(RollupTransaction {
            id: key32(row.id, "rollup transaction id")?,
            body: row.body,
            local_proof: row.local_proof,
            local_reward: match (row.local_worker_pk, row.local_work_units) {
                (Some(pk), Some(work_units)) => Some(RewardEntry {
                    worker_pk: key32(pk, "local worker key")?,
                    work_units,
                }),
                _ => None,
            },
            received_ms: row.received_ms,
            status: row.status,
            block: row.block,
            position: row.position,
            reason: row.reason,
        })
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn key32(bytes: Vec<u8>, what: &str) -> Result<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| StoreError::Corrupt(format!("stored {what} of {} bytes", b.len())))
}

/// Sorts ids (tree order), for deterministic reports.
pub(crate) fn sorted(mut ids: Vec<JobId>) -> Vec<JobId> {
    ids.sort();
    ids
}

/// Decodes a text enum from the `Any` driver through its `FromStr`.
fn decode_text<T>(value: AnyValueRef<'_>) -> Result<T, BoxDynError>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    Ok(<&str as Decode<Any>>::decode(value)?.parse()?)
}

impl Type<Any> for JobStatus {
    fn type_info() -> AnyTypeInfo {
        <str as Type<Any>>::type_info()
    }
}

impl<'r> Decode<'r, Any> for JobStatus {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        decode_text(value)
    }
}

impl Type<Any> for OutboxKind {
    fn type_info() -> AnyTypeInfo {
        <str as Type<Any>>::type_info()
    }
}

impl<'r> Decode<'r, Any> for OutboxKind {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        decode_text(value)
    }
}

impl Type<Any> for OutboxStatus {
    fn type_info() -> AnyTypeInfo {
        <str as Type<Any>>::type_info()
    }
}

impl<'r> Decode<'r, Any> for OutboxStatus {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        decode_text(value)
    }
}

impl Type<Any> for RollupTxStatus {
    fn type_info() -> AnyTypeInfo {
        <str as Type<Any>>::type_info()
    }
}

impl<'r> Decode<'r, Any> for RollupTxStatus {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        decode_text(value)
    }
}
