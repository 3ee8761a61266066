//! Decoding stored rows into domain types. A value that does not decode is
//! [`StoreError::Corrupt`]: the database was changed outside the store.

use crate::error::{Result, StoreError};
use crate::model::{Job, JobId, JobStatus};

/// Columns selected for a [`Job`], in the order of [`JobRow`].
pub(crate) const JOB_COLUMNS: &str = "id, parent, circuit, inputs, status, attempts, lease_token, \
     lease_holder, lease_expires_ms, proof_hash, proved_by, proved_ms, leased_ms, prove_ms";

/// A row of [`JOB_COLUMNS`].
pub(crate) type JobRow = (
    String,
    Option<String>,
    String,
    Vec<u8>,
    String,
    i64,
    i64,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// Builds a [`Job`] from its row and its children (read separately).
pub(crate) fn job_from_row(row: JobRow, children: Vec<JobId>) -> Result<Job> {
    let (
        id,
        parent,
        circuit,
        inputs,
        status,
        attempts,
        lease_token,
        holder,
        expires,
        hash,
        by,
        at,
        leased_ms,
        prove_ms,
    ) = row;
    Ok(Job {
        id: parse_stored_id(&id)?,
        circuit,
        inputs,
        children,
        parent: parent.as_deref().map(parse_stored_id).transpose()?,
        status: parse_stored_status(&status)?,
        attempts,
        lease_token,
        lease_holder: holder,
        lease_expires_ms: expires,
        proof_hash: hash,
        proved_by: by,
        proved_ms: at,
        leased_ms,
        prove_ms,
    })
}

pub(crate) fn parse_stored_id(id: &str) -> Result<JobId> {
    id.parse()
        .map_err(|_| StoreError::Corrupt(format!("stored job id {id:?}")))
}

pub(crate) fn parse_stored_status(status: &str) -> Result<JobStatus> {
    status
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("stored job status {status:?}")))
}

/// Parses stored ids and sorts them (tree order), for deterministic reports.
pub(crate) fn sorted_ids(ids: &[String]) -> Result<Vec<JobId>> {
    let mut ids = ids
        .iter()
        .map(|id| parse_stored_id(id))
        .collect::<Result<Vec<_>>>()?;
    ids.sort();
    Ok(ids)
}

pub(crate) fn key32(bytes: Vec<u8>, what: &str) -> Result<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| StoreError::Corrupt(format!("stored {what} of {} bytes", b.len())))
}
