//! Stage 1: commit `H(H(proof) ‖ sender)` for each fetched root proof, lowest first, strictly in
//! order, only while the window is not in its proof phase.

use sheaf_chain::node::{SequenceView, SettlementStatus};
use sheaf_chain::settlement::{proof_hash, SequenceId};
use sheaf_chain::{phase, Call, WindowPhase};
use sheaf_store::{OutboxKind, OutboxStatus, StoreError};

use std::sync::atomic::Ordering;

use super::{ProofSender, Result, Watch, TARGET};

impl ProofSender {
    /// Commit hashes for the queued root proofs, lowest first, strictly in order: a sequence
    /// that cannot be committed now holds back those above it.
    pub(super) async fn send_hashes(&self) -> Result<()> {
        let queued = self.final_proofs.snapshot();
        if queued.is_empty() {
            return Ok(());
        }
        // One look at the head per pass: a pass takes well under a block, and the chain
        // itself refuses a hash outside its phase.
        let status = self.chain.settlement_status().await?;
        for (sequence, ()) in queued {
            let Some(on_chain) = self.chain.sequence(sequence).await? else {
                return Ok(());
            };
            let latest = self
                .store
                .outbox_latest(sequence, OutboxKind::ProofHash)
                .await?;
            // A hash already committed in the running window (also after a restart) is
            // watched, not sent again.
            let attempt = match &latest {
                Some(tx) if matches!(tx.status, OutboxStatus::Pending | OutboxStatus::Sent) => {
                    self.watch(sequence, tx.attempt);
                    continue;
                }
                Some(tx) if tx.status == OutboxStatus::Included => {
                    let block = tx.included_height.unwrap_or_default() as u64;
                    if self.committed_in_running_window(&on_chain, &status, block) {
                        self.watch(sequence, tx.attempt);
                        continue;
                    }
                    tx.attempt + 1
                }
                Some(tx) => tx.attempt + 1,
                None => 0,
            };
            if on_chain.finalized.is_some() {
                self.final_proofs.remove(sequence);
                continue;
            }
            // A window in its proof phase must close before a hash can reopen it.
            let in_proof_phase = on_chain.window.as_ref().is_some_and(|w| {
                phase(w.opened_at, status.height + 1, &status.params) == WindowPhase::Proof
            });
            if in_proof_phase {
                return Ok(());
            }
            // The stake net of penalties due: the chain takes those before it checks.
            let stake = self.chain.account(&self.address).await?.stake;
            let short = stake < status.params.min_stake;
            if self.short_of_stake.swap(short, Ordering::Relaxed) != short {
                if short {
                    tracing::error!(target: TARGET, sequence = %sequence, stake = %stake,
                        min_stake = %status.params.min_stake,
                        "stake below the chain's minimum (penalties for missed reveals): not committing until more is deposited (`sheaf stake deposit`)");
                } else {
                    tracing::info!(target: TARGET, stake = %stake, "stake back above the minimum: committing again");
                }
            }
            if short {
                // The chain would refuse the hash: wait for stake rather than burn attempts.
                return Ok(());
            }
            let proof = self.root_proof(sequence).await?;
            let hash = proof_hash(&proof, &self.address);
            let call = Call::SubmitProofHash { sequence, hash };
            let tx = self
                .step_attempt(sequence, OutboxKind::ProofHash, attempt, call)
                .await?;
            tracing::info!(target: TARGET, sequence = %sequence, attempt, tx = %tx.tx_hash, "proof hash sent");
            self.watch(sequence, attempt);
        }
        Ok(())
    }

    fn watch(&self, sequence: SequenceId, attempt: i64) {
        self.final_proofs.remove(sequence);
        self.hashes.push(sequence, Watch { attempt });
    }

    /// Whether this sender's hash included in `block` is in the sequence's running window.
    fn committed_in_running_window(
        &self,
        sequence: &SequenceView,
        status: &SettlementStatus,
        block: u64,
    ) -> bool {
        sequence.window.as_ref().is_some_and(|w| {
            phase(w.opened_at, status.height + 1, &status.params) != WindowPhase::Closed
                && w.commitment(&self.address)
                    .is_some_and(|c| c.block == block)
        })
    }

    pub(super) async fn root_proof(&self, sequence: SequenceId) -> Result<Vec<u8>> {
        let stored = self.stored_sequence(sequence).await?;
        Ok(self
            .store
            .proof_of(stored.root)
            .await?
            .ok_or(StoreError::UnknownJob(stored.root))?)
    }
}
