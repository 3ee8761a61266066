//! Transactions: one account's signed state change, and the rules it must satisfy on its own
//! (what a tx kernel proves without looking at any tree).
//!
//! ```text
//!  account (initial) ─┐                                  ┌─▶ account (final): balance', nonce+1
//!  input notes ───────┼─ balance + Σ in = Σ out + balance' ┼─▶ output notes
//!  expiration ────────┘   signed: key `nonce` over the id └─▶ nullifiers of the inputs
//! ```
//!
//! The id, which the signature covers, binds everything the transaction changes:
//! `H(Transaction ‖ initial commitment ‖ final commitment ‖ input notes commitment ‖
//! output notes commitment ‖ expiration)`. The account commitments bind the id, balance, nonce
//! and keys; the input notes commitment binds the nullifiers; the output notes commitment binds
//! every created note's id. Where an input note is found (an earlier block, or this one) is not
//! signed: it changes where the producer looks, not what the transaction does.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use sheaf_circuits::Digest;
use sheaf_types::Amount;

use crate::account::Account;
use crate::chain::BlockNumber;
use crate::error::{SignatureError, TxError};
use crate::hash::{felt, hash_padded_list, hash_tagged, Domain};
use crate::limits::{MAX_AMOUNT, MAX_INPUT_NOTES_PER_TX, MAX_OUTPUT_NOTES_PER_TX};
use crate::notes::{Note, Nullifier};
use crate::signature::{self, Signature, SigningKey};

/// A transaction's id: the message its signature covers.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct TxId(pub Digest);

/// Where an input note was created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoteOrigin {
    /// Note `index` of the note tree of an earlier block (authenticated through the chain tree).
    Committed {
        /// The block that created it.
        block: BlockNumber,
        /// Its index in that block's note tree.
        index: u32,
    },
    /// Created by an earlier transaction of the same block (authenticated by the block's own
    /// note tree as it grows).
    Unauthenticated,
}

/// A note a transaction consumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputNote {
    /// The note.
    pub note: Note,
    /// Where to find it.
    pub origin: NoteOrigin,
}

/// Everything a transaction does, without its signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionBody {
    /// The account's state the transaction starts from.
    pub account: Account,
    /// Notes consumed, each addressed to the account.
    pub input_notes: Vec<InputNote>,
    /// Notes created.
    pub output_notes: Vec<Note>,
    /// The account's balance afterwards.
    pub final_balance: Amount,
    /// The last block that may include the transaction.
    pub expiration: BlockNumber,
}

/// A signed transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// What it does.
    pub body: TransactionBody,
    /// The account's one-time signature (key number `account.nonce`) over the id.
    pub signature: Signature,
}

impl TransactionBody {
    /// The account's state afterwards: the new balance, the nonce one more.
    pub fn final_account(&self) -> Account {
        self.account.next(self.final_balance)
    }

    /// The consumed notes' nullifiers, in input order.
    pub fn nullifiers(&self) -> Vec<Nullifier> {
        self.input_notes
            .iter()
            .map(|n| n.note.nullifier())
            .collect()
    }

    /// `H(InputNotes ‖ count ‖ nullifiers, padded to MAX_INPUT_NOTES_PER_TX)`.
    pub fn input_notes_commitment(&self) -> Digest {
        let nullifiers: Vec<Digest> = self.nullifiers().iter().map(|n| n.0).collect();
        let capacity = nullifiers.len().max(MAX_INPUT_NOTES_PER_TX);
        hash_padded_list(Domain::InputNotes, &nullifiers, capacity)
    }

    /// `H(OutputNotes ‖ count ‖ note ids, padded to MAX_OUTPUT_NOTES_PER_TX)`.
    pub fn output_notes_commitment(&self) -> Digest {
        let ids: Vec<Digest> = self.output_notes.iter().map(|n| n.id().0).collect();
        let capacity = ids.len().max(MAX_OUTPUT_NOTES_PER_TX);
        hash_padded_list(Domain::OutputNotes, &ids, capacity)
    }

    /// The id (the signed message). Over-long note lists, which the rules refuse anyway, are
    /// padded to their own length so the id stays defined.
    pub fn id(&self) -> TxId {
        let mut fields = Vec::with_capacity(17);
        for d in [
            self.account.commitment(),
            self.final_account().commitment(),
            self.input_notes_commitment(),
            self.output_notes_commitment(),
        ] {
            fields.extend_from_slice(&d.to_fields());
        }
        fields.push(felt(self.expiration as u64));
        TxId(hash_tagged(Domain::Transaction, &fields))
    }

    /// The balance before plus every input note's amount. Amounts are checked below `2^56`
    /// before this matters, and at most 17 are summed, so no overflow; saturating so that an
    /// unchecked hostile amount cannot panic either.
    pub fn value_in(&self) -> u128 {
        self.input_notes
            .iter()
            .fold(self.account.balance.base_units(), |sum, n| {
                sum.saturating_add(n.note.amount.base_units())
            })
    }

    /// The balance after plus every output note's amount (as [`Self::value_in`]).
    pub fn value_out(&self) -> u128 {
        self.output_notes
            .iter()
            .fold(self.final_balance.base_units(), |sum, n| {
                sum.saturating_add(n.amount.base_units())
            })
    }

    /// Sign with the account's key for its current nonce.
    pub fn sign(self, key: &mut SigningKey) -> Result<Transaction, SignatureError> {
        let signature = key.sign(self.account.nonce, self.id().0)?;
        Ok(Transaction {
            body: self,
            signature,
        })
    }
}

impl Transaction {
    /// The transaction's id.
    pub fn id(&self) -> TxId {
        self.body.id()
    }

    /// The rules a transaction satisfies on its own, whatever the state: note limits, every
    /// amount in range, every input addressed to the account and consumed once, value
    /// conserved, and the signature. The tx kernel proves exactly these.
    pub fn check_rules(&self) -> Result<(), TxError> {
        let body = &self.body;
        if body.input_notes.len() > MAX_INPUT_NOTES_PER_TX {
            return Err(TxError::TooManyInputNotes(body.input_notes.len()));
        }
        if body.output_notes.len() > MAX_OUTPUT_NOTES_PER_TX {
            return Err(TxError::TooManyOutputNotes(body.output_notes.len()));
        }
        let amounts = body
            .input_notes
            .iter()
            .map(|n| n.note.amount)
            .chain(body.output_notes.iter().map(|n| n.amount))
            .chain([body.account.balance, body.final_balance]);
        for amount in amounts {
            if amount.base_units() > MAX_AMOUNT {
                return Err(TxError::AmountOutOfRange(amount));
            }
        }
        let mut consumed = HashSet::new();
        for input in &body.input_notes {
            if input.note.recipient != body.account.id {
                return Err(TxError::NoteNotOwned {
                    note: input.note.id(),
                    recipient: input.note.recipient,
                });
            }
            let nullifier = input.note.nullifier();
            if !consumed.insert(nullifier) {
                return Err(TxError::DuplicateInputNote(nullifier));
            }
        }
        let (inputs, outputs) = (body.value_in(), body.value_out());
        if inputs != outputs {
            return Err(TxError::ValueNotConserved { inputs, outputs });
        }
        let authorized = signature::verify(
            body.account.auth_commitment,
            body.account.nonce,
            self.id().0,
            &self.signature,
        );
        if !authorized {
            return Err(TxError::BadSignature);
        }
        Ok(())
    }
}
