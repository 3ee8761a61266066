//! The batch rules (REFERENCE §4.1): what a batch kernel enforces over its transactions, beyond
//! each transaction's own rules.
//!
//! Checked here, before anything is applied: non-empty, at most [`MAX_TXS_PER_BATCH`], no
//! transaction twice, no nullifier twice, the note and account limits. Account-state chaining
//! in input order (X→Y→Z) and the matching of unauthenticated notes to notes created earlier
//! are checked as the block producer applies the transactions in order: each one must start
//! from the account state its predecessor left ([`crate::TxError::StaleAccountCommitment`])
//! and may consume only notes already in the block's note tree. The batch's expiration is the
//! minimum of its transactions'.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use sheaf_circuits::Digest;

use crate::account::AccountId;
use crate::chain::BlockNumber;
use crate::error::BatchError;
use crate::hash::{hash_tagged, Domain};
use crate::limits::{
    MAX_ACCOUNTS_PER_BATCH, MAX_INPUT_NOTES_PER_BATCH, MAX_OUTPUT_NOTES_PER_BATCH,
    MAX_TXS_PER_BATCH,
};
use crate::notes::{NoteId, Nullifier};
use crate::tx::{Transaction, TxId};

/// What a batch exposes: its id, its transactions and the commitments a block builds on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchSummary {
    /// `H(Batch ‖ tx ids in order)`.
    pub id: Digest,
    /// Its transactions' ids, in order.
    pub transactions: Vec<TxId>,
    /// The minimum of the transactions' expirations.
    pub expiration: BlockNumber,
    /// The accounts it updates, in first-update order.
    pub accounts: Vec<AccountId>,
    /// The nullifiers it spends, in order.
    pub nullifiers: Vec<Nullifier>,
    /// The notes it creates, in order.
    pub output_notes: Vec<NoteId>,
}

/// Check the batch rules that need no state, and summarize the batch.
pub fn check_batch(transactions: &[Transaction]) -> Result<BatchSummary, BatchError> {
    if transactions.is_empty() {
        return Err(BatchError::Empty);
    }
    if transactions.len() > MAX_TXS_PER_BATCH {
        return Err(BatchError::TooManyTransactions(transactions.len()));
    }
    let ids: Vec<TxId> = transactions.iter().map(Transaction::id).collect();
    let mut seen = HashSet::new();
    if let Some(duplicate) = ids.iter().find(|id| !seen.insert(**id)) {
        return Err(BatchError::DuplicateTransaction(*duplicate));
    }
    let nullifiers: Vec<Nullifier> = transactions
        .iter()
        .flat_map(|tx| tx.body.nullifiers())
        .collect();
    if nullifiers.len() > MAX_INPUT_NOTES_PER_BATCH {
        return Err(BatchError::TooManyInputNotes(nullifiers.len()));
    }
    // A note twice within one transaction is that transaction's fault
    // (`TxError::DuplicateInputNote`); here, a note spent by two transactions.
    let mut spent = HashSet::new();
    for tx in transactions {
        let own: HashSet<Nullifier> = tx.body.nullifiers().into_iter().collect();
        if let Some(duplicate) = own.into_iter().find(|n| !spent.insert(*n)) {
            return Err(BatchError::DuplicateNullifier(duplicate));
        }
    }
    let output_notes: Vec<NoteId> = transactions
        .iter()
        .flat_map(|tx| tx.body.output_notes.iter().map(|n| n.id()))
        .collect();
    if output_notes.len() > MAX_OUTPUT_NOTES_PER_BATCH {
        return Err(BatchError::TooManyOutputNotes(output_notes.len()));
    }
    let mut accounts = Vec::new();
    for tx in transactions {
        if !accounts.contains(&tx.body.account.id) {
            accounts.push(tx.body.account.id);
        }
    }
    if accounts.len() > MAX_ACCOUNTS_PER_BATCH {
        return Err(BatchError::TooManyAccounts(accounts.len()));
    }
    let id_fields: Vec<_> = ids.iter().flat_map(|id| id.0.to_fields()).collect();
    Ok(BatchSummary {
        id: hash_tagged(Domain::Batch, &id_fields),
        expiration: transactions
            .iter()
            .map(|tx| tx.body.expiration)
            .min()
            .expect("a batch is not empty"),
        transactions: ids,
        accounts,
        nullifiers,
        output_notes,
    })
}
