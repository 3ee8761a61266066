//! The state transition: a transaction admitted to the mempool, then applied in its block to the
//! accounts and the two contracts, one receipt each; the ticker that produces blocks.

use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::mempool::{Entry, Limits};
use super::view::{Block, Event, Receipt};
use super::{
    CallError, Chain, ChainError, Result, State, DEFAULT_MIN_SENDER_BALANCE, DEFAULT_TX_FEE,
};
use crate::membership::{check_possession, MembershipEvent, MembershipRegistry};
use crate::settlement::{Address, Amount, SettlementEvent, SettlementState};
use crate::tx::{Call, SignedTx, TxHash};

/// An account's balance and nonce.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountState {
    /// Spendable balance.
    pub balance: Amount,
    /// Transactions included so far: the nonce of the next one.
    pub nonce: u64,
}

/// The state a block changes, copied at its start (and after a panicking call) to roll back to.
#[derive(Clone)]
struct Checkpoint {
    accounts: BTreeMap<Address, AccountState>,
    settlement: SettlementState,
    membership: MembershipRegistry,
}

/// What a caught panic said.
fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// The length of `tx`'s JSON encoding (as it arrives), counted without keeping the bytes.
fn json_len(tx: &SignedTx) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, tx).expect("a transaction serializes to JSON");
    count.0
}

impl Chain {
    /// Check `tx`'s signature, nonce and sender and queue it for the next block within the
    /// mempool's bounds; returns its hash.
    ///
    /// What the state refuses whatever the signature (an unfunded sender, a wrong nonce, a
    /// sender at its caps) is refused first, from the public state: the signature and the hash
    /// cost a reveal's megabyte of hashing, which a flood from fresh keys would otherwise get
    /// for free. Both run off the lock, and the state is checked again before the queueing.
    pub fn submit(&self, tx: SignedTx) -> Result<TxHash> {
        let bytes = json_len(&tx);
        let chain_id = {
            let s = self.lock();
            s.check_admissible(&tx, bytes, &self.mempool_limits())?;
            s.chain_id
        };
        let hash = tx.verified_hash(chain_id).ok_or(ChainError::BadSignature)?;
        let mut s = self.lock();
        s.check_admissible(&tx, bytes, &self.mempool_limits())?;
        let nonce = tx.nonce;
        s.mempool
            .admit(Entry { hash, tx, bytes }, &self.mempool_limits())?;
        tracing::debug!(target: "sheaf_chain::node", %hash, nonce, "transaction queued");
        Ok(hash)
    }

    fn mempool_limits(&self) -> Limits {
        Limits {
            max_txs: self.config.max_mempool_txs,
            max_bytes: self.config.max_mempool_bytes,
            max_txs_per_sender: self.config.max_pending_txs_per_sender,
            max_bytes_per_sender: self.config.max_pending_bytes_per_sender,
        }
    }

    /// Produce the next block: apply up to `max_block_bytes` of the pending transactions, the
    /// senders taking turns, in order (the rest stays pending), then write the state,
    /// all under the state lock, so the block is seen only once it is durable. A call that
    /// panics fails alone (the state is rolled back to before it); a failed write rolls the
    /// whole block back, keeps its transactions pending and returns the error.
    pub fn produce_block(&self) -> Result<Block> {
        let mut guard = self.lock();
        let s = &mut *guard;
        let number = s.height + 1;
        let timestamp_ms = s.timestamp_ms(number);
        let now = timestamp_ms / 1000;
        let entries = s.mempool.take_block(self.config.max_block_bytes);
        let start = (!entries.is_empty()).then(|| s.checkpoint());
        // Where to roll back to when a call panics: the state after the last panicking call
        // (and the index of the next transaction), or the block's start.
        let mut after_panic: Option<(Checkpoint, usize)> = None;
        let mut receipts = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            let tx = &entry.tx;
            let applied = catch_unwind(AssertUnwindSafe(|| s.include(tx, number, now)));
            let result = applied.unwrap_or_else(|panic| {
                let why = panic_message(panic.as_ref());
                tracing::error!(
                    target: "sheaf_chain::node",
                    hash = %entry.hash, block = number, panic = %why,
                    "a call panicked: rolled back"
                );
                let (base, since) = match after_panic.take() {
                    Some((checkpoint, since)) => (checkpoint, since),
                    None => (
                        start
                            .clone()
                            .expect("a block with transactions has a start"),
                        0,
                    ),
                };
                s.restore(base);
                for earlier in &entries[since..index] {
                    // Deterministic: these applied without panicking a moment ago.
                    let _ = s.include(&earlier.tx, number, now);
                }
                s.pay_inclusion(tx);
                after_panic = Some((s.checkpoint(), index + 1));
                Err(CallError::Panicked(why))
            });
            let (events, error) = match result {
                Ok(events) => (events, None),
                Err(e) => (Vec::new(), Some(e.to_string())),
            };
            receipts.push(Receipt {
                tx_hash: entry.hash,
                from: tx.from,
                nonce: tx.nonce,
                block: number,
                index: index as u32,
                events,
                error,
            });
        }
        s.height = number;
        let receipts_before = s.receipts.len();
        s.receipts.extend(receipts.iter().cloned());
        let excess = s.receipts.len().saturating_sub(self.config.receipts_kept);
        let dropped: Vec<Receipt> = s.receipts.drain(..excess).collect();
        let snapshot = self.snapshot(s);
        if let Err(e) = self.write(snapshot) {
            // Nothing of the block was seen (the lock is held): undo it whole.
            s.height = number - 1;
            // Dropped then kept are the old receipts followed by the block's.
            let mut all: VecDeque<Receipt> = dropped.into();
            all.append(&mut s.receipts);
            all.truncate(receipts_before);
            s.receipts = all;
            if let Some(start) = start {
                s.restore(start);
            }
            s.mempool.restore(entries);
            return Err(e);
        }
        drop(guard);
        tracing::debug!(
            target: "sheaf_chain::node",
            block = number, txs = receipts.len(), "block produced"
        );
        self.note_block_produced();
        Ok(Block {
            number,
            timestamp_ms,
            receipts,
        })
    }

    /// Produce a block every block interval, forever (run it as a task; abort it to stop).
    /// A block's work runs on the blocking pool: it may verify root proofs.
    pub async fn produce_blocks(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.block_interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let chain = self.clone();
            match tokio::task::spawn_blocking(move || chain.produce_block()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::error!(target: "sheaf_chain::node", error = %e, "block not persisted")
                }
                Err(e) => {
                    tracing::error!(target: "sheaf_chain::node", error = %e, "block production failed")
                }
            }
        }
    }
}

impl State {
    pub(super) fn timestamp_ms(&self, number: u64) -> u64 {
        self.genesis_time_ms
            .saturating_add(number.saturating_mul(self.block_ms))
    }

    pub(super) fn next_nonce(&self, address: &Address) -> u64 {
        let included = self.accounts.get(address).map_or(0, |a| a.nonce);
        included + self.mempool.pending_of(address) as u64
    }

    /// The fee of a transaction (the genesis', or the default for a state file without one).
    fn tx_fee(&self) -> Amount {
        self.genesis.as_ref().map_or(DEFAULT_TX_FEE, |g| g.tx_fee)
    }

    /// Refuse a sender that is not an account holding the minimum sender balance (and the fee);
    /// the coordinator, whose key alone registers sequences, may send with none.
    /// Whether the state would queue `tx` (of `bytes`), its signature aside: its nonce is the
    /// sender's next, the sender may send, and the sender has room in the mempool.
    fn check_admissible(&self, tx: &SignedTx, bytes: usize, limits: &Limits) -> Result<()> {
        let expected = self.next_nonce(&tx.from);
        if tx.nonce < expected {
            return Err(ChainError::NonceTooLow {
                expected,
                got: tx.nonce,
            });
        }
        if tx.nonce > expected {
            return Err(ChainError::NonceTooHigh {
                expected,
                got: tx.nonce,
            });
        }
        self.check_sender(&tx.from)?;
        self.mempool.check_sender_room(&tx.from, bytes, limits)
    }

    fn check_sender(&self, sender: &Address) -> Result<()> {
        if *sender == self.settlement.state().coordinator {
            return Ok(());
        }
        let min = self
            .genesis
            .as_ref()
            .map_or(DEFAULT_MIN_SENDER_BALANCE, |g| g.min_sender_balance);
        let needed = min.max(self.tx_fee());
        match self.accounts.get(sender) {
            Some(account) if account.balance >= needed => Ok(()),
            account => Err(ChainError::UnfundedSender {
                balance: account.map_or(Amount::ZERO, |a| a.balance),
                needed,
            }),
        }
    }

    /// What a block may roll back to.
    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            accounts: self.accounts.clone(),
            settlement: self.settlement.state().clone(),
            membership: self.membership.clone(),
        }
    }

    fn restore(&mut self, checkpoint: Checkpoint) {
        self.accounts = checkpoint.accounts;
        self.settlement.restore(checkpoint.settlement);
        self.membership = checkpoint.membership;
    }

    /// Include `tx` in block `block` at `now` (seconds): its nonce is used and its fee paid
    /// whatever the call does, then the call is applied.
    fn include(&mut self, tx: &SignedTx, block: u64, now: u64) -> Result<Vec<Event>, CallError> {
        self.pay_inclusion(tx);
        self.apply(tx, block, now)
    }

    /// Use `tx`'s nonce and charge its fee (up to the balance; the fee is burnt).
    fn pay_inclusion(&mut self, tx: &SignedTx) {
        let fee = self.tx_fee();
        let account = self.accounts.entry(tx.from).or_default();
        account.nonce += 1;
        account.balance -= fee.min(account.balance);
    }

    fn balance(&self, address: &Address) -> Amount {
        self.accounts
            .get(address)
            .map_or(Amount::ZERO, |a| a.balance)
    }

    fn check_balance(&self, address: &Address, needed: Amount) -> Result<(), CallError> {
        let balance = self.balance(address);
        if balance < needed {
            return Err(CallError::InsufficientBalance { balance, needed });
        }
        Ok(())
    }

    fn debit(&mut self, account: Address, amount: Amount, events: &mut Vec<Event>) {
        let acc = self.accounts.entry(account).or_default();
        acc.balance -= amount;
        events.push(Event::Debited { account, amount });
    }

    fn credit(&mut self, account: Address, amount: Amount, events: &mut Vec<Event>) {
        let acc = self.accounts.entry(account).or_default();
        acc.balance = acc.balance.saturating_add(amount);
        events.push(Event::Credited { account, amount });
    }

    /// Apply `tx`'s call in block `block` at `now` (seconds): all of it, or, on an error,
    /// nothing.
    fn apply(&mut self, tx: &SignedTx, block: u64, now: u64) -> Result<Vec<Event>, CallError> {
        let from = tx.from;
        let mut events = Vec::new();
        let settlement = |e: Vec<SettlementEvent>| e.into_iter().map(Event::Settlement);
        let membership = |e: Vec<MembershipEvent>| e.into_iter().map(Event::Membership);
        match &tx.call {
            Call::Transfer { to, amount } => {
                self.check_balance(&from, *amount)?;
                // A transfer of nothing creates no account.
                if *amount > Amount::ZERO {
                    self.accounts.entry(from).or_default().balance -= *amount;
                    let to_acc = self.accounts.entry(*to).or_default();
                    to_acc.balance = to_acc.balance.saturating_add(*amount);
                }
                events.push(Event::Transferred {
                    from,
                    to: *to,
                    amount: *amount,
                });
            }
            Call::DepositStake { amount } => {
                self.check_balance(&from, *amount)?;
                self.debit(from, *amount, &mut events);
                events.extend(settlement(self.settlement.deposit_stake(&from, *amount)));
            }
            Call::WithdrawStake { amount } => {
                let e = self.settlement.withdraw_stake(&from, *amount, block)?;
                events.extend(settlement(e));
                self.credit(from, *amount, &mut events);
            }
            Call::RegisterSequence {
                sequence,
                statement,
                jobs,
            } => {
                let e = self.settlement.register_sequence(
                    &from,
                    *sequence,
                    *statement,
                    jobs.clone(),
                )?;
                events.extend(settlement(e));
            }
            Call::SubmitProofHash { sequence, hash } => {
                let e = self
                    .settlement
                    .submit_proof_hash(&from, *sequence, *hash, block)?;
                events.extend(settlement(e));
            }
            Call::SubmitProof { sequence, proof } => {
                let e = self
                    .settlement
                    .submit_proof(&from, *sequence, proof, block)?;
                events.extend(settlement(e));
            }
            Call::ClaimRewards {
                arity,
                claims,
                proof,
            } => {
                let (credits, e) = self.settlement.claim_rewards(*arity, claims, proof)?;
                events.extend(settlement(e));
                for credit in credits {
                    self.credit(credit.account, credit.amount, &mut events);
                }
            }
            Call::WithdrawRewards => {
                let (amount, e) = self.settlement.withdraw_rewards(&from);
                events.extend(settlement(e));
                self.credit(from, amount, &mut events);
            }
            Call::Settle { sender } => {
                let e = self.settlement.settle(sender, block)?;
                events.extend(settlement(e));
            }
            Call::Register {
                id_commitment,
                rate_limit,
                erase_list,
                possession,
            } => {
                let deposit = self.membership.params().deposit_for(*rate_limit);
                self.check_balance(&from, deposit)?;
                check_possession(possession, *id_commitment, &from, self.chain_id)?;
                let e =
                    self.membership
                        .register(from, *id_commitment, *rate_limit, erase_list, now)?;
                self.debit(from, deposit, &mut events);
                events.extend(membership(e));
            }
            Call::Extend { ids } => {
                events.extend(membership(self.membership.extend(from, ids, now)?));
            }
            Call::Erase { ids, cleanup } => {
                events.extend(membership(self.membership.erase(from, ids, *cleanup, now)?));
            }
            Call::Withdraw => {
                let amount = self.membership.withdraw(from)?;
                self.credit(from, amount, &mut events);
            }
        }
        Ok(events)
    }
}
