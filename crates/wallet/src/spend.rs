//! Spending: a transfer (a note to another account, the change left in the balance) or the
//! consumption of the account's notes into its balance; signing, sending, and waiting for the
//! block that includes it.
//!
//! ```text
//!  sync ─▶ refuse: a transaction still pending, too little to spend, an unknown recipient
//!       ─▶ body: account (as of the tip), input notes (committed: block, index), output notes,
//!                final balance, expiration = tip + DEFAULT_EXPIRATION_BLOCKS
//!       ─▶ sign with key `nonce` ─▶ saved as pending in the wallet file ─▶ POST
//!       ─▶ sync until a published block includes it
//! ```
//!
//! The signed transaction is written to the wallet file **before** it is sent, and no other is
//! signed while it may still be included ([`SpendError::Pending`]): a one-time key signs a
//! second message only once the first can never be included (the published tip passed its
//! expiration, or the node refused it). The residual risk of that second signature: whoever
//! saw both could forge a third message with the same key and race it against the second
//! while it waits. It arises only for a transaction the node took and then lost, and it is why
//! transactions expire soon ([`DEFAULT_EXPIRATION_BLOCKS`]).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sheaf_rollup::chain::BlockNumber;
use sheaf_rollup::limits::{MAX_AMOUNT, MAX_INPUT_NOTES_PER_TX};
use sheaf_rollup::{
    AccountId, InputNote, Note, SignatureError, Transaction, TransactionBody, TxId,
};
use sheaf_types::Amount;

use crate::client::{ClientError, RollupClient};
use crate::file::{random_digest, OwnedNote, WalletFile, WalletFileError};
use crate::local::LocalProver;
use crate::sync::SyncError;

/// Blocks after the tip until a transaction expires. The node refuses one expiring within its
/// slack (2 blocks); a longer life lets a busy node include it, a shorter one frees the
/// account's next key sooner when the transaction is lost.
pub const DEFAULT_EXPIRATION_BLOCKS: BlockNumber = 16;

/// How often the wallet asks the node whether its transaction's block (or proof) has come.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How long the wallet waits for its transaction to be published (or proven, or settled).
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(120);

/// Why the wallet did not spend, or does not know that it did.
#[derive(Debug, thiserror::Error)]
pub enum SpendError {
    /// The wallet could not catch up with the node.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The wallet file could not be written.
    #[error(transparent)]
    File(#[from] WalletFileError),
    /// The node could not be asked, or refused the transaction.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// An earlier transaction may still be included.
    #[error(
        "transaction {} is still waiting for a block (it expires after block {expiration}); \
         the wallet signs no other until it is published or expired",
        .tx.0
    )]
    Pending {
        /// Its id.
        tx: TxId,
        /// The last block that may include it.
        expiration: BlockNumber,
    },
    /// A transfer of nothing.
    #[error("the amount must be more than zero")]
    ZeroAmount,
    /// The local proof of the transaction's signed half failed; nothing was sent.
    #[error("proving the transaction locally failed: {0}")]
    LocalProof(String),
    /// More than the account can spend.
    #[error("cannot send {requested}: the wallet holds {available} (balance and notes)")]
    InsufficientFunds {
        /// The amount asked for.
        requested: Amount,
        /// The balance plus the notes one transaction may consume.
        available: Amount,
    },
    /// The recipient is not an account of the rollup.
    #[error("{0} does not exist in this rollup")]
    UnknownRecipient(AccountId),
    /// Every one-time key is used.
    #[error("the account has signed with all of its {key_count} one-time keys")]
    KeysExhausted {
        /// The wallet's key count.
        key_count: u64,
    },
    /// Signing failed.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The transaction expired without a block including it.
    #[error("transaction {} expired without being included; nothing was spent", .0.0)]
    Dropped(TxId),
    /// No block included it in time (it may still come: the wallet keeps it pending).
    #[error(
        "transaction {} was not published within {seconds} s; it stays pending in the wallet",
        .tx.0
    )]
    NotPublished {
        /// Its id.
        tx: TxId,
        /// How long the wallet waited.
        seconds: u64,
    },
    /// Its block was not proven (or settled) in time; the transaction is published regardless.
    #[error(
        "transaction {} is in block {block}, which was not {what} within {seconds} s",
        .tx.0
    )]
    BlockNotYet {
        /// Its id.
        tx: TxId,
        /// The block that includes it.
        block: BlockNumber,
        /// `proven` or `settled`.
        what: &'static str,
        /// How long the wallet waited.
        seconds: u64,
    },
}

/// How far a sent transaction is followed before the command returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum WaitFor {
    /// A published block includes it (balances and notes change there).
    Published,
    /// That block and every one before it are proved.
    Proven,
    /// That block is settled on the base chain.
    Settled,
}

/// A transaction the node published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// Its id.
    pub tx: TxId,
    /// The block that includes it.
    pub block: BlockNumber,
    /// What it did.
    pub body: TransactionBody,
}

/// What a spend is: where its value goes.
enum Spend {
    Transfer { to: AccountId, amount: Amount },
    Consume,
}

/// The notes a transfer of `amount` consumes besides `balance`: none when the balance covers
/// it, else the largest notes first, at most a transaction's inputs.
fn notes_to_cover(balance: Amount, amount: Amount, notes: &[OwnedNote]) -> Option<Vec<OwnedNote>> {
    let mut chosen = Vec::new();
    let mut have = balance.base_units();
    let mut by_size = notes.to_vec();
    by_size.sort_by_key(|n| std::cmp::Reverse(n.note.amount.base_units()));
    for note in by_size {
        if have >= amount.base_units() || chosen.len() == MAX_INPUT_NOTES_PER_TX {
            break;
        }
        have += note.note.amount.base_units();
        chosen.push(note);
    }
    (have >= amount.base_units()).then_some(chosen)
}

impl WalletFile {
    /// What the account may spend in one transaction: its balance and its largest notes.
    pub fn spendable(&self) -> Amount {
        let mut amounts: Vec<u128> = self
            .notes
            .iter()
            .map(|n| n.note.amount.base_units())
            .collect();
        amounts.sort_unstable_by(|a, b| b.cmp(a));
        let notes: u128 = amounts.iter().take(MAX_INPUT_NOTES_PER_TX).sum();
        Amount(self.account.map_or(0, |a| a.balance.base_units()) + notes)
    }

    /// The account's balance plus every note it owns.
    pub fn total(&self) -> Amount {
        let notes: u128 = self.notes.iter().map(|n| n.note.amount.base_units()).sum();
        Amount(self.account.map_or(0, |a| a.balance.base_units()) + notes)
    }

    /// Send `amount` to account `to` in a note; the change stays in the balance. With `local`,
    /// the transaction is local: its signed half is proved here and sent with it.
    pub async fn transfer(
        &mut self,
        path: &Path,
        client: &RollupClient,
        to: AccountId,
        amount: Amount,
        timeout: Duration,
        local: Option<Arc<LocalProver>>,
    ) -> Result<Sent, SpendError> {
        self.spend(path, client, Spend::Transfer { to, amount }, timeout, local)
            .await
    }

    /// Consume up to a transaction's worth of the account's notes into its balance; `None` when
    /// it owns none.
    pub async fn consume(
        &mut self,
        path: &Path,
        client: &RollupClient,
        timeout: Duration,
        local: Option<Arc<LocalProver>>,
    ) -> Result<Option<Sent>, SpendError> {
        self.sync_and_save(path, client).await?;
        if self.notes.is_empty() {
            return Ok(None);
        }
        self.spend(path, client, Spend::Consume, timeout, local)
            .await
            .map(Some)
    }

    /// Sync, and write what was learned.
    pub async fn sync_and_save(
        &mut self,
        path: &Path,
        client: &RollupClient,
    ) -> Result<crate::sync::SyncReport, SpendError> {
        let report = self.sync(client).await;
        // Whatever was read before a failure is kept.
        self.save(path)?;
        Ok(report?)
    }

    async fn spend(
        &mut self,
        path: &Path,
        client: &RollupClient,
        spend: Spend,
        timeout: Duration,
        local: Option<Arc<LocalProver>>,
    ) -> Result<Sent, SpendError> {
        let report = self.sync_and_save(path, client).await?;
        if let Some(tx) = &self.pending {
            return Err(SpendError::Pending {
                tx: tx.id(),
                expiration: tx.body.expiration,
            });
        }
        let account = self.account.expect("a synced wallet has its account");
        let tip = report
            .status
            .as_ref()
            .and_then(|s| s.published_tip)
            .unwrap_or(0);
        let tip = BlockNumber::try_from(tip).unwrap_or(BlockNumber::MAX);
        let (inputs, outputs, final_balance) = match spend {
            Spend::Transfer { to, amount } => {
                if amount.is_zero() {
                    return Err(SpendError::ZeroAmount);
                }
                let genesis = client.genesis().await?;
                if !genesis.accounts.iter().any(|a| a.id == to) {
                    return Err(SpendError::UnknownRecipient(to));
                }
                let requested = amount;
                let inputs = (amount.base_units() <= MAX_AMOUNT)
                    .then(|| notes_to_cover(account.balance, amount, &self.notes))
                    .flatten()
                    .ok_or(SpendError::InsufficientFunds {
                        requested,
                        available: self.spendable(),
                    })?;
                let received: u128 = inputs.iter().map(|n| n.note.amount.base_units()).sum();
                let note = Note {
                    recipient: to,
                    amount,
                    serial: random_digest(),
                };
                let change = account.balance.base_units() + received - amount.base_units();
                (inputs, vec![note], Amount(change))
            }
            Spend::Consume => {
                let inputs: Vec<OwnedNote> = self
                    .notes
                    .iter()
                    .take(MAX_INPUT_NOTES_PER_TX)
                    .copied()
                    .collect();
                let received: u128 = inputs.iter().map(|n| n.note.amount.base_units()).sum();
                (
                    inputs,
                    Vec::new(),
                    Amount(account.balance.base_units() + received),
                )
            }
        };
        if account.nonce >= self.key_count {
            return Err(SpendError::KeysExhausted {
                key_count: self.key_count,
            });
        }
        let body = TransactionBody {
            account,
            input_notes: inputs
                .iter()
                .map(|n| InputNote {
                    note: n.note,
                    origin: n.origin(),
                })
                .collect(),
            output_notes: outputs,
            final_balance,
            expiration: tip.saturating_add(DEFAULT_EXPIRATION_BLOCKS),
        };
        let tx = body.sign(&mut self.signing_key()?)?;
        // Saved before it leaves: whatever happens next, the wallet knows key `nonce` signed it.
        self.pending = Some(tx.clone());
        self.save(path)?;
        let submitted = match local {
            Some(prover) => {
                let signed = tx.clone();
                let proved = tokio::task::spawn_blocking(move || prover.prove(&signed))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|proved| proved.map_err(|e| e.to_string()));
                match proved {
                    Ok(proved) => client.submit_local(&proved).await,
                    Err(reason) => {
                        // Never sent: its signature did not leave this machine, so the key
                        // may sign again.
                        self.pending = None;
                        self.save(path)?;
                        return Err(SpendError::LocalProof(reason));
                    }
                }
            }
            None => client.submit(&tx).await,
        };
        if let Err(e) = submitted {
            if matches!(e, ClientError::Refused { .. }) {
                // Refused by the node: it will never be in a block, so it is not pending.
                self.pending = None;
                self.save(path)?;
            }
            return Err(e.into());
        }
        self.await_inclusion(path, client, &tx, timeout).await
    }

    /// Sync until a block includes `tx` (or it expires, or `timeout` passes).
    async fn await_inclusion(
        &mut self,
        path: &Path,
        client: &RollupClient,
        tx: &Transaction,
        timeout: Duration,
    ) -> Result<Sent, SpendError> {
        let id = tx.id();
        let deadline = Instant::now() + timeout;
        loop {
            let report = self.sync_and_save(path, client).await?;
            if let Some(&(_, block)) = report.included.iter().find(|(tx, _)| *tx == id) {
                return Ok(Sent {
                    tx: id,
                    block,
                    body: tx.body.clone(),
                });
            }
            if report.dropped == Some(id) {
                return Err(SpendError::Dropped(id));
            }
            if Instant::now() >= deadline {
                return Err(SpendError::NotPublished {
                    tx: id,
                    seconds: timeout.as_secs(),
                });
            }
            tokio::time::sleep(DEFAULT_POLL_INTERVAL).await;
        }
    }
}

/// Wait until block `block` is proven or settled (`WaitFor::Published` returns at once).
pub async fn wait_for_block(
    client: &RollupClient,
    tx: TxId,
    block: BlockNumber,
    wait: WaitFor,
    timeout: Duration,
) -> Result<(), SpendError> {
    let deadline = Instant::now() + timeout;
    loop {
        let status = client.status().await?;
        let reached = match wait {
            WaitFor::Published => return Ok(()),
            WaitFor::Proven => status.proven_tip,
            WaitFor::Settled => status.settled_tip,
        };
        if reached.is_some_and(|tip| tip >= i64::from(block)) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(SpendError::BlockNotYet {
                tx,
                block,
                what: if wait == WaitFor::Proven {
                    "proven"
                } else {
                    "settled"
                },
                seconds: timeout.as_secs(),
            });
        }
        tokio::time::sleep(DEFAULT_POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sheaf_circuits::Digest;

    fn note(amount: u128, serial: u64) -> OwnedNote {
        OwnedNote {
            note: Note {
                recipient: AccountId(1),
                amount: Amount(amount),
                serial: Digest([serial, 0, 0, 0]),
            },
            block: 1,
            index: serial as u32,
        }
    }

    #[test]
    fn a_transfer_the_balance_covers_consumes_no_note() {
        let notes = [note(5, 0)];
        assert_eq!(notes_to_cover(Amount(10), Amount(10), &notes), Some(vec![]));
    }

    #[test]
    fn a_short_balance_takes_the_largest_notes_first() {
        let notes = [note(1, 0), note(7, 1), note(3, 2)];
        let chosen = notes_to_cover(Amount(2), Amount(10), &notes).unwrap();
        assert_eq!(chosen, vec![notes[1], notes[2]]);
    }

    #[test]
    fn more_than_the_balance_and_a_transactions_notes_is_refused() {
        let notes: Vec<OwnedNote> = (0..20).map(|i| note(1, i)).collect();
        // 16 notes of 1 and a balance of 0 hold 16, though the wallet owns 20.
        assert_eq!(notes_to_cover(Amount(0), Amount(17), &notes), None);
        assert!(notes_to_cover(Amount(0), Amount(16), &notes).is_some());
    }
}
