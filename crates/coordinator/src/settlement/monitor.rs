//! Stage 2: follow each committed hash to its block and hand it to the reveal stage once its
//! window's proof phase opens; a hash that failed or was left behind goes back to stage 1.

use sheaf_chain::{phase, WindowPhase};
use sheaf_store::OutboxKind;

use super::outbox::Outcome;
use super::{ProofSender, Result, Reveal};

impl ProofSender {
    /// Follow each committed hash to its block, then hand it to the reveal stage once the
    /// window's proof phase is open; a hash that failed goes back for its next attempt.
    pub(super) async fn monitor_hashes(&self) -> Result<()> {
        for (sequence, watch) in self.hashes.snapshot() {
            let Some(tx) = self
                .store
                .outbox_get(sequence, OutboxKind::ProofHash, watch.attempt)
                .await?
            else {
                self.hashes.remove(sequence);
                continue;
            };
            let block = match self.outcome(&tx).await? {
                Outcome::InFlight => continue,
                Outcome::Failed => {
                    self.hashes.remove(sequence);
                    self.final_proofs.push(sequence, ());
                    continue;
                }
                Outcome::Included(block) => block,
            };
            let status = self.chain.settlement_status().await?;
            let on_chain = self.chain.sequence(sequence).await?;
            let window = on_chain
                .as_ref()
                .and_then(|s| s.window.as_ref())
                .filter(|w| {
                    w.commitment(&self.address)
                        .is_some_and(|c| c.block == block)
                });
            match window {
                Some(w)
                    if phase(w.opened_at, status.height + 1, &status.params)
                        != WindowPhase::Hash =>
                {
                    self.hashes.remove(sequence);
                    self.reveals.push(
                        sequence,
                        Reveal {
                            attempt: watch.attempt,
                            opened_at: w.opened_at,
                        },
                    );
                }
                Some(_) => {} // still in the hash phase
                None => {
                    // The window moved on without this hash: commit again.
                    self.hashes.remove(sequence);
                    self.final_proofs.push(sequence, ());
                }
            }
        }
        Ok(())
    }
}
