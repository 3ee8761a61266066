//! The proof manager: registers the store's sequences on chain in order, then fetches proved
//! roots from the chain's next sequence to finalize into the first cache.

use sheaf_chain::node::SettlementStatus;
use sheaf_chain::settlement::SequenceId;
use sheaf_chain::Call;
use sheaf_circuits::Digest;
use sheaf_store::{OutboxKind, StoreError};

use super::outbox::Outcome;
use super::{ProofSender, Result, TARGET};

impl ProofSender {
    /// Register planned sequences in order, then queue proved roots from the chain's next
    /// sequence to finalize, in order.
    pub(super) async fn manage(&self) -> Result<()> {
        let status = self.chain.settlement_status().await?;
        self.register(&status).await?;
        let status = self.chain.settlement_status().await?;
        let mut next = {
            let next = *self.lock_next_fetch();
            next.max(status.next_to_finalize)
        };
        while next < status.next_sequence {
            let Some(sequence) = self.store.get_sequence(next).await? else {
                break;
            };
            if sequence.proved_ms.is_none() {
                break;
            }
            let Some(on_chain) = self.chain.sequence(next).await? else {
                break;
            };
            let ours = self.statement(next).await?;
            if on_chain.statement != ours {
                tracing::error!(target: TARGET, sequence = %next, chain = %on_chain.statement, ours = %ours,
                    "the chain registered another statement for this sequence: not settling it");
                break;
            }
            if on_chain.finalized.is_none() {
                tracing::debug!(target: TARGET, sequence = %next, "root proof fetched");
                self.final_proofs.push(next, ());
            }
            next = next.next();
        }
        *self.lock_next_fetch() = next;
        Ok(())
    }

    pub(super) fn lock_next_fetch(&self) -> std::sync::MutexGuard<'_, SequenceId> {
        self.next_fetch.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sequence `id` as the store holds it; a sequence the store does not know is its failure.
    pub(super) async fn stored_sequence(&self, id: SequenceId) -> Result<sheaf_store::Sequence> {
        Ok(self
            .store
            .get_sequence(id)
            .await?
            .ok_or(StoreError::UnknownSequence(id))?)
    }

    /// The statement sequence `id` of the store proves.
    async fn statement(&self, id: SequenceId) -> Result<Digest> {
        let sequence = self.stored_sequence(id).await?;
        Ok(self
            .circuits
            .sequence_statement(sequence.leaves as usize, id.get())?)
    }

    /// Register the store's sequences the chain does not have yet, in order, without gaps.
    async fn register(&self, status: &SettlementStatus) -> Result<()> {
        // Record the fate of registrations in flight (also those the chain already applied).
        for tx in self.store.outbox_open().await? {
            if tx.kind == OutboxKind::Register {
                self.outcome(&tx).await?;
            }
        }
        if status.coordinator != self.address {
            // Only the chain's coordinator key registers: sending would only burn nonces.
            return Ok(());
        }
        let empty = status.next_sequence == status.first_sequence;
        let sequences = self.store.list_sequences().await?;
        let mut expected = (!empty).then_some(status.next_sequence);
        for sequence in sequences {
            let id = sequence.id;
            match expected {
                Some(next) if id < next => continue,
                Some(next) if id > next => {
                    tracing::warn!(target: TARGET, sequence = %id, expected = %next,
                        "sequence numbers skip ahead of the chain's: not registering further");
                    break;
                }
                _ => {}
            }
            let statement = self
                .circuits
                .sequence_statement(sequence.leaves as usize, id.get())?;
            let tx = self
                .step(
                    id,
                    OutboxKind::Register,
                    Call::RegisterSequence {
                        sequence: id,
                        statement,
                    },
                )
                .await?;
            if let Outcome::Failed = self.outcome(&tx).await? {
                // The chain refused it: the next pass signs the step's next attempt.
                break;
            }
            expected = Some(id.next());
        }
        Ok(())
    }
}
