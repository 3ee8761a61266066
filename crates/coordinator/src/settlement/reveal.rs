//! Stage 3: reveal the committed proofs lowest first, each once its predecessor is finalized and
//! while its proof phase runs; report what the reveal earned.

use sheaf_chain::node::Event;
use sheaf_chain::settlement::{SequenceId, SettlementEvent};
use sheaf_chain::{phase, Call, WindowPhase};
use sheaf_store::{OutboxKind, OutboxTx};

use super::outbox::{parse_hash, Outcome};
use super::{ProofSender, Result, TARGET};
use crate::metrics::SETTLEMENT_FINALIZED;

impl ProofSender {
    /// Reveal proofs lowest first, each once its predecessor is finalized and while its proof
    /// phase runs; a reveal that missed its window goes back for a new hash.
    pub(super) async fn reveal_proofs(&self) -> Result<()> {
        for (sequence, reveal) in self.reveals.snapshot() {
            let stored = self
                .store
                .outbox_get(sequence, OutboxKind::Proof, reveal.attempt)
                .await?;
            if let Some(tx) = stored {
                match self.outcome(&tx).await? {
                    Outcome::InFlight => return Ok(()),
                    Outcome::Included(block) => {
                        self.reveals.remove(sequence);
                        self.report_reveal(sequence, &tx, block).await?;
                        continue;
                    }
                    Outcome::Failed => {
                        self.reveals.remove(sequence);
                        self.resend_unless_finalized(sequence).await?;
                        continue;
                    }
                }
            }
            let status = self.chain.settlement_status().await?;
            let at_next_block = phase(reveal.opened_at, status.height + 1, &status.params);
            if at_next_block == WindowPhase::Closed {
                tracing::warn!(target: TARGET, sequence = %sequence, attempt = reveal.attempt,
                    "the proof phase closed before the reveal: committing again");
                self.reveals.remove(sequence);
                self.resend_unless_finalized(sequence).await?;
                continue;
            }
            if sequence > status.next_to_finalize || at_next_block == WindowPhase::Hash {
                return Ok(()); // strictly in order, and only in the proof phase
            }
            let proof = self.root_proof(sequence).await?;
            let call = Call::SubmitProof { sequence, proof };
            let tx = self
                .step_attempt(sequence, OutboxKind::Proof, reveal.attempt, call)
                .await?;
            tracing::info!(target: TARGET, sequence = %sequence, attempt = reveal.attempt, tx = %tx.tx_hash, "proof revealed");
            return Ok(());
        }
        Ok(())
    }

    async fn resend_unless_finalized(&self, sequence: SequenceId) -> Result<()> {
        let finalized = self.chain.finalized(sequence).await?.is_some();
        if !finalized && !self.final_proofs.contains(sequence) {
            self.final_proofs.push(sequence, ());
        }
        Ok(())
    }

    async fn report_reveal(&self, sequence: SequenceId, tx: &OutboxTx, block: u64) -> Result<()> {
        let receipt = self.chain.receipt(&parse_hash(tx)?).await?;
        for event in receipt.iter().flat_map(|r| r.events.iter()) {
            match event {
                Event::Settlement(SettlementEvent::SequenceFinalized { sender, .. })
                    if *sender == self.address =>
                {
                    metrics::counter!(SETTLEMENT_FINALIZED).increment(1);
                    tracing::info!(target: TARGET, sequence = %sequence, block, "sequence finalized on chain");
                }
                Event::Settlement(SettlementEvent::SenderPaid { sender, amount, .. })
                    if *sender == self.address =>
                {
                    tracing::info!(target: TARGET, sequence = %sequence, amount = %amount, "sender paid");
                }
                Event::Settlement(SettlementEvent::SenderPenalized { sender, reason, .. })
                    if *sender == self.address =>
                {
                    tracing::error!(target: TARGET, sequence = %sequence, reason = ?reason, "sender penalized");
                }
                _ => {}
            }
        }
        Ok(())
    }
}
