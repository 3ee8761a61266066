//! The console's one publisher: builds snapshots while someone watches, when something moved,
//! at most once per interval, and shares each as one JSON text with every viewer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sheaf_chain::node::{ProverRewardsView, SequenceView as ChainSequence};
use sheaf_types::SequenceId;

use super::snapshot::{self, ChainFacts, ChainView};
use super::ConsoleChain;
use crate::config::CONSOLE_IDLE_REFRESH;
use crate::coordinator::Coordinator;

/// The chain is asked at most this often (a block interval or so), at most this long.
const CHAIN_POLL: Duration = Duration::from_secs(1);
const CHAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs the publisher until the task is aborted (the server does at shutdown).
pub async fn publish_forever(c: Arc<Coordinator>) {
    let console = c.console();
    let mut tick = tokio::time::interval(c.config().console_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut chain = ChainReader::default();
    // The store's write count the last snapshot was built after; `None`: build at once.
    let mut built_after: Option<u64> = None;
    let mut built_at = Instant::now();
    // A transaction counted as it commits may not be visible to the very next read on another
    // connection yet: build once more after a change.
    let mut trailing = false;
    let mut last: Option<Arc<str>> = None;
    loop {
        tick.tick().await;
        if console.viewers() == 0 {
            built_after = None;
            continue;
        }
        let writes = c.store().write_generation();
        let changed = built_after != Some(writes);
        if !changed && !trailing && built_at.elapsed() < CONSOLE_IDLE_REFRESH {
            continue;
        }
        trailing = changed;
        built_after = Some(writes);
        built_at = Instant::now();
        let facts = match console.chain.get() {
            Some(source) => chain.read(source, &c).await,
            None => ChainFacts::default(),
        };
        console
            .builds
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let snapshot = match snapshot::build(&c, &facts, console.events()).await {
            Ok(snapshot) => snapshot,
            Err(e) => {
                tracing::warn!(target: "sheaf::console", error = %e, "could not read a snapshot; trying again");
                built_after = None;
                continue;
            }
        };
        let json: Arc<str> = match serde_json::to_string(&snapshot) {
            Ok(json) => json.into(),
            Err(e) => {
                tracing::warn!(target: "sheaf::console", error = %e, "could not serialize a snapshot");
                continue;
            }
        };
        if last.as_deref() != Some(&*json) {
            last = Some(json.clone());
            console
                .frames
                .send_replace(Some(super::snapshot_event(&json)));
        }
    }
}

/// What the publisher keeps of the chain between builds: finalized sequences never change,
/// and the rest is asked again at most every [`CHAIN_POLL`].
#[derive(Default)]
struct ChainReader {
    finalized: HashMap<SequenceId, ChainSequence>,
    /// Finalized sequences whose provers' rewards are all paid.
    paid: HashMap<SequenceId, ProverRewardsView>,
    facts: ChainFacts,
    asked_at: Option<Instant>,
}

impl ChainReader {
    async fn read(&mut self, source: &ConsoleChain, c: &Coordinator) -> ChainFacts {
        if self.asked_at.is_some_and(|at| at.elapsed() < CHAIN_POLL) {
            return self.facts.clone();
        }
        self.asked_at = Some(Instant::now());
        let asked = tokio::time::timeout(CHAIN_TIMEOUT, self.ask(source, c)).await;
        let error = match asked {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!(
                "the chain did not answer within {} ms",
                CHAIN_TIMEOUT.as_millis()
            )),
        };
        let view = self.facts.view.get_or_insert_with(ChainView::default);
        view.sender = source.sender.to_string();
        view.error = error;
        self.facts.clone()
    }

    async fn ask(
        &mut self,
        source: &ConsoleChain,
        c: &Coordinator,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let client = &source.client;
        let height = client.height().await?;
        self.facts
            .view
            .get_or_insert_with(ChainView::default)
            .height = Some(height);
        if self.facts.reward_per_unit.is_none() {
            let status = client.settlement_status().await?;
            self.facts.reward_per_unit = Some(status.params.prover_reward_per_unit);
        }
        let shown = c
            .store()
            .console_sequences(c.config().console_sequences)
            .await?;
        let mut sequences = HashMap::new();
        let mut rewards = HashMap::new();
        for sequence in shown {
            if let Some(paid) = self.paid.get(&sequence.id) {
                rewards.insert(sequence.id, paid.clone());
            } else if self.finalized.contains_key(&sequence.id) {
                if let Some(owed) = client.prover_rewards(sequence.id).await? {
                    // Nothing moves once every claim is paid.
                    if owed.remaining.0 == 0 && owed.finalized {
                        self.paid.insert(sequence.id, owed.clone());
                    }
                    rewards.insert(sequence.id, owed);
                }
            }
            if let Some(done) = self.finalized.get(&sequence.id) {
                sequences.insert(sequence.id, done.clone());
                continue;
            }
            if let Some(view) = client.sequence(sequence.id).await? {
                if view.finalized.is_some() {
                    self.finalized.insert(sequence.id, view.clone());
                }
                sequences.insert(sequence.id, view);
            }
        }
        self.facts.sequences = sequences;
        self.facts.rewards = rewards;
        self.facts.members = client
            .memberships()
            .await?
            .members
            .into_iter()
            .map(|m| {
                (
                    m.id_commitment.to_bytes(),
                    format!("{:?}", m.membership.state),
                )
            })
            .collect();
        Ok(())
    }
}
