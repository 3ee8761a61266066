//! The rollup's typed errors, one enum per operation: signing, one transaction's rules, one
//! batch's rules, producing a block, loading a genesis.

use std::path::PathBuf;

use sheaf_circuits::Digest;
use sheaf_types::Amount;

use crate::account::AccountId;
use crate::chain::BlockNumber;
use crate::notes::{NoteId, Nullifier};
use crate::tx::TxId;

/// Why a signer refuses to sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A key tree holds between 1 and `2^16` keys.
    #[error("a key tree holds 1 to 65536 one-time keys, not {0}")]
    KeyCount(u64),
    /// The key was never generated (the nonce is past the account's keys).
    #[error("no one-time key number {0}")]
    NoSuchKey(u64),
    /// The one-time key already signed a different message; a second one would leak it.
    #[error("one-time key {0} already signed another message")]
    KeyReused(u64),
}

/// Why a transaction breaks the rules of the block it is applied in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The block is past the transaction's expiration.
    #[error("transaction expired at block {expiration}, this is block {block}")]
    Expired {
        /// The last block that may include it.
        expiration: BlockNumber,
        /// The block being produced.
        block: BlockNumber,
    },
    /// More input notes than the tx kernel's slots.
    #[error("{0} input notes, more than the limit")]
    TooManyInputNotes(usize),
    /// More output notes than the tx kernel's slots.
    #[error("{0} output notes, more than the limit")]
    TooManyOutputNotes(usize),
    /// An amount (a note's, or the new balance) above `MAX_AMOUNT`.
    #[error("amount {0:?} is above the largest amount")]
    AmountOutOfRange(Amount),
    /// The account is not in the account tree.
    #[error("{0} does not exist")]
    AccountNotFound(AccountId),
    /// The transaction was made against another state of the account (another nonce, balance
    /// or keys) than the current one.
    #[error("{account}: the transaction starts from {claimed}, the account is at {current}")]
    StaleAccountCommitment {
        /// The account.
        account: AccountId,
        /// The initial commitment the transaction claims.
        claimed: Digest,
        /// The account's current commitment.
        current: Digest,
    },
    /// An input note is addressed to another account.
    #[error("note {note:?} belongs to {recipient}")]
    NoteNotOwned {
        /// The note.
        note: NoteId,
        /// Its recipient.
        recipient: AccountId,
    },
    /// The same note twice among one transaction's inputs.
    #[error("note with nullifier {0:?} consumed twice in one transaction")]
    DuplicateInputNote(Nullifier),
    /// An authenticated input note is not where it says it is: no such earlier block, or the
    /// block's note tree does not hold it at that index.
    #[error("note {note:?} is not note {index} of block {block}")]
    NoteNotFound {
        /// The note.
        note: NoteId,
        /// The block it claims to be from.
        block: BlockNumber,
        /// Its claimed index in that block's note tree.
        index: u32,
    },
    /// An unauthenticated input note was not created earlier in this block.
    #[error("note {0:?} was not created earlier in this block")]
    UnauthenticatedNoteNotFound(NoteId),
    /// The note was already consumed.
    #[error("nullifier {0:?} is already spent")]
    NullifierAlreadySpent(Nullifier),
    /// Another nullifier holds this nullifier's slot (probability `n²/2^65`, see the limits).
    #[error("the slot of nullifier {0:?} holds another nullifier")]
    NullifierSlotTaken(Nullifier),
    /// An output note whose id a note of this block already has.
    #[error("note {0:?} is already created in this block")]
    DuplicateOutputNote(NoteId),
    /// Old balance + inputs differ from outputs + new balance.
    #[error("value not conserved: {inputs} in (balance and notes), {outputs} out")]
    ValueNotConserved {
        /// Old balance plus input notes, in base units.
        inputs: u128,
        /// Output notes plus new balance, in base units.
        outputs: u128,
    },
    /// The signature does not sign this transaction with the account's key for its nonce.
    #[error("the signature does not authorize this transaction")]
    BadSignature,
}

/// Why a batch breaks the batch rules (REFERENCE §4.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// A batch has at least one transaction.
    #[error("empty batch")]
    Empty,
    /// More transactions than a batch may hold.
    #[error("{0} transactions, more than a batch may hold")]
    TooManyTransactions(usize),
    /// The same transaction twice.
    #[error("transaction {0:?} twice in the batch")]
    DuplicateTransaction(TxId),
    /// The same nullifier consumed by two transactions.
    #[error("nullifier {0:?} twice in the batch")]
    DuplicateNullifier(Nullifier),
    /// More input notes than a batch may consume.
    #[error("{0} input notes, more than a batch may consume")]
    TooManyInputNotes(usize),
    /// More output notes than a batch may create.
    #[error("{0} output notes, more than a batch may create")]
    TooManyOutputNotes(usize),
    /// More distinct accounts than a batch may update.
    #[error("{0} accounts, more than a batch may update")]
    TooManyAccounts(usize),
}

/// Why a block cannot be produced; the state is then unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// A timestamp at or past `2^48` ms, which the block kernel cannot compare.
    #[error("timestamp {0} ms is past the largest (2^48 ms)")]
    TimestampOutOfRange(u64),
    /// A batch size of 0, or above the batch rules' maximum.
    #[error("batch size {0} is not between 1 and the maximum")]
    BatchSize(usize),
    /// More batches than a block may hold.
    #[error("{0} batches, more than a block may hold")]
    TooManyBatches(usize),
    /// More output notes than the block's note tree has slots.
    #[error("{0} output notes, more than a block's note tree holds")]
    TooManyOutputNotes(usize),
    /// Timestamps strictly increase.
    #[error("timestamp {proposed} is not after the previous block's {previous}")]
    TimestampNotIncreasing {
        /// The tip's timestamp.
        previous: u64,
        /// The proposed one.
        proposed: u64,
    },
    /// The chain tree has no slot for another block.
    #[error("the chain is full")]
    ChainFull,
    /// The same transaction in two batches of the block.
    #[error("transaction {0:?} twice in the block")]
    DuplicateTransaction(TxId),
    /// A batch breaks the batch rules.
    #[error("batch {batch}: {source}")]
    Batch {
        /// The batch's index in the block.
        batch: usize,
        /// The rule it breaks.
        #[source]
        source: BatchError,
    },
    /// A transaction breaks the rules at its place in the block.
    #[error("transaction {index}: {source}")]
    Transaction {
        /// Its index in the block's order.
        index: usize,
        /// The rule it breaks.
        #[source]
        source: TxError,
    },
}

/// Why a genesis file cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// The file cannot be read.
    #[error("cannot read genesis file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a genesis document.
    #[error("genesis is not valid JSON of the expected shape: {0}")]
    Json(#[from] serde_json::Error),
    /// An account id twice.
    #[error("{0} is listed twice")]
    DuplicateAccount(AccountId),
    /// The balances sum to more than the largest amount, so balances could outgrow it.
    #[error("total supply {0:?} is above the largest amount")]
    SupplyOutOfRange(Amount),
}
