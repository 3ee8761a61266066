//! The state transition: a transaction admitted to the mempool, then applied in its block to the
//! accounts and the two contracts, one receipt each; the ticker that produces blocks.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::view::{Block, Event, Receipt};
use super::{CallError, Chain, ChainError, Result, State};
use crate::membership::{check_possession, MembershipEvent};
use crate::settlement::{Address, Amount, SettlementEvent};
use crate::tx::{Call, SignedTx, TxHash};

/// An account's balance and nonce.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountState {
    /// Spendable balance.
    pub balance: Amount,
    /// Transactions included so far: the nonce of the next one.
    pub nonce: u64,
}

impl Chain {
    /// Check `tx`'s signature and nonce and queue it for the next block; returns its hash.
    pub fn submit(&self, tx: SignedTx) -> Result<TxHash> {
        let mut s = self.lock();
        if !tx.verify(s.chain_id) {
            return Err(ChainError::BadSignature);
        }
        let expected = s.next_nonce(&tx.from);
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
        if s.mempool.len() >= self.config.max_mempool_txs {
            return Err(ChainError::MempoolFull(s.mempool.len()));
        }
        let hash = tx.hash(s.chain_id);
        tracing::debug!(target: "sheaf_chain::node", %hash, nonce = tx.nonce, "transaction queued");
        s.mempool.push_back((hash, tx));
        Ok(hash)
    }

    /// Produce the next block: apply every pending transaction in order, then write the state.
    /// On a write failure the block stands in memory and the error is returned.
    pub fn produce_block(&self) -> Result<Block> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut s = self.lock();
        let number = s.height + 1;
        let timestamp_ms = s.timestamp_ms(number);
        let txs = std::mem::take(&mut s.mempool);
        let mut receipts = Vec::with_capacity(txs.len());
        for (index, (tx_hash, tx)) in txs.into_iter().enumerate() {
            let (events, error) = match s.apply(&tx, number, timestamp_ms / 1000) {
                Ok(events) => (events, None),
                Err(e) => (Vec::new(), Some(e.to_string())),
            };
            receipts.push(Receipt {
                tx_hash,
                from: tx.from,
                nonce: tx.nonce,
                block: number,
                index: index as u32,
                events,
                error,
            });
        }
        s.height = number;
        s.receipts.extend(receipts.iter().cloned());
        let excess = s.receipts.len().saturating_sub(self.config.receipts_kept);
        s.receipts.drain(..excess);
        tracing::debug!(
            target: "sheaf_chain::node",
            block = number, txs = receipts.len(), "block produced"
        );
        let snapshot = self.snapshot(&s);
        drop(s);
        self.write(snapshot)?;
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
        let pending = self
            .mempool
            .iter()
            .filter(|(_, t)| t.from == *address)
            .count();
        included + pending as u64
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

    /// Apply `tx` in block `block` at `now` (seconds): the nonce is used whatever the call does.
    fn apply(&mut self, tx: &SignedTx, block: u64, now: u64) -> Result<Vec<Event>, CallError> {
        self.accounts.entry(tx.from).or_default().nonce += 1;
        let from = tx.from;
        let mut events = Vec::new();
        let settlement = |e: Vec<SettlementEvent>| e.into_iter().map(Event::Settlement);
        let membership = |e: Vec<MembershipEvent>| e.into_iter().map(Event::Membership);
        match &tx.call {
            Call::Transfer { to, amount } => {
                self.check_balance(&from, *amount)?;
                self.accounts.entry(from).or_default().balance -= *amount;
                let to_acc = self.accounts.entry(*to).or_default();
                to_acc.balance = to_acc.balance.saturating_add(*amount);
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
