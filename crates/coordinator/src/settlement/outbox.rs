//! The outbox: every transaction signed at the next nonce, stored, then sent; resent until it
//! has a receipt, and recorded as included or failed.

use std::collections::HashMap;
use std::time::Instant;

use sheaf_chain::node::Receipt;
use sheaf_chain::settlement::SequenceId;
use sheaf_chain::{Call, ClientError, SignedTx};
use sheaf_store::{NewOutboxTx, OutboxKind, OutboxStatus, OutboxTx};

use sheaf_types::clock::now_ms;

use super::{ProofSender, Result, SenderError, TARGET};
use crate::metrics::SETTLEMENT_TXS;

/// What became of a stored transaction.
pub(super) enum Outcome {
    /// Not yet in a block.
    InFlight,
    /// In block `height`, and its call succeeded.
    Included(u64),
    /// Refused, or included with a failed call.
    Failed,
}

impl ProofSender {
    /// The transaction of step `(sequence, kind)` at its current attempt: the stored one if in
    /// flight or included, else a new attempt after a failed one.
    pub(super) async fn step(
        &self,
        sequence: SequenceId,
        kind: OutboxKind,
        call: Call,
    ) -> Result<OutboxTx> {
        let attempt = match self.store.outbox_latest(sequence, kind).await? {
            Some(tx) if tx.status == OutboxStatus::Failed => tx.attempt + 1,
            Some(tx) => return Ok(tx),
            None => 0,
        };
        self.step_attempt(sequence, kind, attempt, call).await
    }

    /// The transaction of one step: the stored one, or `call` signed at the next nonce, stored,
    /// then sent (a send that fails is resent by [`Self::outcome`]).
    pub(super) async fn step_attempt(
        &self,
        sequence: SequenceId,
        kind: OutboxKind,
        attempt: i64,
        call: Call,
    ) -> Result<OutboxTx> {
        let fence = self
            .current_fence()
            .ok_or_else(|| SenderError::Standby(self.role.clone()))?;
        let mut next_nonce = self.signer.lock().await;
        if let Some(stored) = self.store.outbox_get(sequence, kind, attempt).await? {
            return Ok(stored);
        }
        let account = self.chain.account(&self.address).await?;
        let local = match *next_nonce {
            Some((token, nonce)) if token == fence.token => nonce,
            _ => self.highest_in_flight_nonce().await?.map_or(0, |n| n + 1),
        };
        let nonce = account.next_nonce.max(local);
        let signed = SignedTx::sign(&self.key, self.chain_id, nonce, call);
        let new = NewOutboxTx {
            sequence,
            kind,
            attempt,
            tx_hash: signed.hash(self.chain_id).to_string(),
            tx: serde_json::to_vec(&signed).expect("a transaction serializes"),
        };
        let stored = self.store.outbox_add_fenced(&new, now_ms(), &fence).await?;
        *next_nonce = Some((fence.token, nonce + 1));
        drop(next_nonce);
        metrics::counter!(SETTLEMENT_TXS, "kind" => kind.as_str()).increment(1);
        self.send(&stored, &signed).await?;
        Ok(stored)
    }

    async fn highest_in_flight_nonce(&self) -> Result<Option<u64>> {
        let mut highest = None;
        for tx in self.store.outbox_open().await? {
            highest = highest.max(Some(decode(&tx)?.nonce));
        }
        Ok(highest)
    }

    /// Send a stored transaction; the node refusing it is logged (the outcome decides).
    async fn send(&self, stored: &OutboxTx, signed: &SignedTx) -> Result<()> {
        self.last_sent_lock().insert(stored.id, Instant::now());
        fail::fail_point!(&format!("sender::before_send::{}", stored.kind));
        match self.chain.send_transaction(signed).await {
            Ok(_) => {
                fail::fail_point!(&format!("sender::after_send::{}", stored.kind));
                self.store.outbox_mark_sent(stored.id, now_ms()).await?;
            }
            Err(ClientError::Rpc(e)) => {
                tracing::debug!(target: TARGET, tx = %stored.tx_hash, error = %e, "node refused the transaction for now");
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    pub(super) fn last_sent_lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Instant>> {
        self.last_sent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// At start: send again, in nonce order, every transaction stored but not known included.
    pub(super) async fn resend_in_flight(&self) -> Result<()> {
        let mut open = Vec::new();
        for tx in self.store.outbox_open().await? {
            let signed = decode(&tx)?;
            open.push((signed.nonce, tx, signed));
        }
        open.sort_by_key(|(nonce, _, _)| *nonce);
        if !open.is_empty() {
            tracing::info!(target: TARGET, transactions = open.len(), "resending what was in flight");
        }
        for (_, tx, signed) in open {
            self.send(&tx, &signed).await?;
        }
        Ok(())
    }

    /// Where a stored transaction stands, recording news in the outbox; one without a receipt
    /// for `resend_after` is sent again, and one whose nonce the chain used for another
    /// transaction has failed.
    pub(super) async fn outcome(&self, tx: &OutboxTx) -> Result<Outcome> {
        match tx.status {
            OutboxStatus::Included => {
                return Ok(Outcome::Included(
                    tx.included_height.unwrap_or_default() as u64
                ))
            }
            OutboxStatus::Failed => return Ok(Outcome::Failed),
            OutboxStatus::Pending | OutboxStatus::Sent => {}
        }
        let hash = parse_hash(tx)?;
        if let Some(receipt) = self.chain.receipt(&hash).await? {
            return self.record(tx, receipt).await;
        }
        let signed = decode(tx)?;
        let account = self.chain.account(&self.address).await?;
        if account.nonce > signed.nonce {
            // Its nonce is used. It may have been included since the receipt was asked for;
            // if it still has no receipt, another transaction took the nonce.
            if let Some(receipt) = self.chain.receipt(&hash).await? {
                return self.record(tx, receipt).await;
            }
            let error = "its nonce was used by another transaction of this key";
            tracing::warn!(target: TARGET, sequence = %tx.sequence, kind = %tx.kind, error, "transaction dropped");
            self.store.outbox_mark_failed(tx.id, error).await?;
            return Ok(Outcome::Failed);
        }
        let due = self
            .last_sent_lock()
            .get(&tx.id)
            .is_none_or(|sent| sent.elapsed() >= self.config.resend_after);
        if due {
            self.send(tx, &signed).await?;
        }
        Ok(Outcome::InFlight)
    }

    /// Record a transaction's receipt in the outbox.
    async fn record(&self, tx: &OutboxTx, receipt: Receipt) -> Result<Outcome> {
        self.last_sent_lock().remove(&tx.id);
        Ok(match receipt.error {
            None => {
                self.store
                    .outbox_mark_included(tx.id, receipt.block as i64)
                    .await?;
                Outcome::Included(receipt.block)
            }
            Some(error) => {
                tracing::warn!(target: TARGET, sequence = %tx.sequence, kind = %tx.kind,
                        attempt = tx.attempt, error = %error, "transaction failed on chain");
                self.store.outbox_mark_failed(tx.id, &error).await?;
                Outcome::Failed
            }
        })
    }
}

fn decode(tx: &OutboxTx) -> Result<SignedTx> {
    serde_json::from_slice(&tx.tx).map_err(|e| SenderError::CorruptOutbox {
        id: tx.id,
        reason: e.to_string(),
    })
}

pub(super) fn parse_hash(tx: &OutboxTx) -> Result<sheaf_chain::TxHash> {
    tx.tx_hash
        .parse()
        .map_err(|e: hex::FromHexError| SenderError::CorruptOutbox {
            id: tx.id,
            reason: e.to_string(),
        })
}
