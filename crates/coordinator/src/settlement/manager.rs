//! The proof manager: registers the store's sequences on chain in order, records in the store
//! which of them the chain finalized, then fetches proved roots from the chain's next sequence
//! to finalize into the first cache.

use sheaf_chain::node::SettlementStatus;
use sheaf_chain::settlement::SequenceId;
use sheaf_chain::Call;
use sheaf_store::{OutboxKind, StoreError};

use sheaf_types::clock::now_ms;

use super::outbox::Outcome;
use super::{ProofSender, Result, TARGET};
use crate::metrics::{SEQUENCES_UNSETTLED, SETTLEMENT_LAG};

/// Sequences a manager pass records as settled at most, so a store upgraded under a long
/// settled history catches up over a few passes rather than holding one up.
const RECORD_SETTLED_PER_PASS: u64 = 256;

impl ProofSender {
    /// Register planned sequences in order, then queue proved roots from the chain's next
    /// sequence to finalize, in order.
    pub(super) async fn manage(&self) -> Result<()> {
        let status = self.chain.settlement_status().await?;
        self.register(&status).await?;
        let status = self.chain.settlement_status().await?;
        self.record_settled(&status).await?;
        self.report_lag(&status).await?;
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

    /// Set the settlement lag gauges from the store's sequences and the chain's next to finalize.
    async fn report_lag(&self, status: &SettlementStatus) -> Result<()> {
        let sequences = self.store.list_sequences().await?;
        let backlog = Backlog::of(&sequences, status.next_to_finalize, now_ms());
        metrics::gauge!(SETTLEMENT_LAG).set(backlog.oldest_age_ms as f64 / 1000.0);
        metrics::gauge!(SEQUENCES_UNSETTLED).set(backlog.unsettled as f64);
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

    /// Mark in the store the sequences the chain finalized since the last look, up to
    /// [`RECORD_SETTLED_PER_PASS`] a pass: the chain finalizes in order, so every registered
    /// sequence below its next to finalize is final. Each is checked to be final with this
    /// store's statement first; a chain that finalized another statement (a chain of another
    /// store) marks nothing from there on.
    async fn record_settled(&self, status: &SettlementStatus) -> Result<()> {
        let from = (*self.lock_settled_below()).max(status.first_sequence);
        let mut below = from;
        while below < status.next_to_finalize && below.get() - from.get() < RECORD_SETTLED_PER_PASS
        {
            if self.store.get_sequence(below).await?.is_none() {
                break;
            }
            let Some(finalized) = self.chain.finalized(below).await? else {
                break;
            };
            let ours = self.statement(below).await?;
            if finalized.statement != ours {
                tracing::error!(target: TARGET, sequence = %below, chain = %finalized.statement, ours = %ours,
                    "the chain finalized another statement for this sequence: not recording it settled");
                break;
            }
            below = below.next();
        }
        if below > from {
            let marked = self
                .store
                .mark_sequences_settled(from, below, now_ms())
                .await?;
            tracing::debug!(target: TARGET, from = %from, below = %below, marked, "recorded finalized sequences");
            *self.lock_settled_below() = below;
        }
        Ok(())
    }

    pub(super) fn lock_settled_below(&self) -> std::sync::MutexGuard<'_, SequenceId> {
        self.settled_below.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Register the store's sequences the chain does not have yet, in order, without gaps.
    async fn register(&self, status: &SettlementStatus) -> Result<()> {
        // Record the fate of registrations in flight (also those the chain already applied),
        // and of any transaction of a sequence the chain has finalized: no task watches those
        // any more, yet one sent just before a restart may have been included since.
        for tx in self.store.outbox_open().await? {
            if tx.kind == OutboxKind::Register || tx.sequence < status.next_to_finalize {
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
            let plan = self.plan(id).await?;
            let tx = self
                .step(
                    id,
                    OutboxKind::Register,
                    Call::RegisterSequence {
                        sequence: id,
                        statement: plan.statement,
                        jobs: plan.jobs.into_iter().map(|(_, job)| job).collect(),
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

/// Sequences proved in the store and not finalized on chain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Backlog {
    /// How many.
    unsettled: usize,
    /// Age of the oldest one's proof, in ms; 0 when there is none.
    oldest_age_ms: i64,
}

impl Backlog {
    /// The backlog of `sequences` when the chain's next sequence to finalize is
    /// `next_to_finalize`: those before it are finalized (the chain finalizes in order), those
    /// from it on with a proof are not.
    fn of(sequences: &[sheaf_store::Sequence], next_to_finalize: SequenceId, now_ms: i64) -> Self {
        let proved = sequences
            .iter()
            .filter(|s| s.id >= next_to_finalize)
            .filter_map(|s| s.proved_ms);
        proved.fold(Backlog::default(), |backlog, proved_ms| Backlog {
            unsettled: backlog.unsettled + 1,
            oldest_age_ms: backlog.oldest_age_ms.max(now_ms - proved_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sequence(id: u64, proved_ms: Option<i64>) -> sheaf_store::Sequence {
        sheaf_store::Sequence {
            id: SequenceId(id),
            leaves: 1,
            root: sheaf_types::JobId::new(SequenceId(id), 0, 0),
            created_ms: 0,
            proved_ms,
        }
    }

    #[test]
    fn backlog_counts_proved_sequences_from_the_next_to_finalize_and_ages_the_oldest() {
        let sequences = [
            sequence(1, Some(100)), // finalized: before the next to finalize
            sequence(2, Some(300)),
            sequence(3, Some(250)),
            sequence(4, None), // still proving
        ];
        assert_eq!(
            Backlog::of(&sequences, SequenceId(2), 1_000),
            Backlog {
                unsettled: 2,
                oldest_age_ms: 750,
            }
        );
    }

    #[test]
    fn backlog_is_empty_when_everything_proved_is_finalized() {
        let sequences = [sequence(1, Some(100)), sequence(2, None)];
        assert_eq!(
            Backlog::of(&sequences, SequenceId(2), 1_000),
            Backlog::default()
        );
    }
}
