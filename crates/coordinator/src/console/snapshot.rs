//! What one console snapshot holds, and how it is built from the store (and the chain's views
//! the publisher keeps). Field names are what `console.js` reads.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use sheaf_chain::node::{ProverRewardsView, SequenceView as ChainSequence};
use sheaf_chain::{Amount, WindowPhase};
use sheaf_store::{
    ConsoleJob, ConsoleSequence, JobStatus, OutboxKind, OutboxStatus, OutboxStep, ProverActivity,
    StoreError,
};
use sheaf_types::{JobCircuit, SequenceId};

use super::ConsoleEvent;
use crate::coordinator::Coordinator;

/// One snapshot of what the coordinator knows, as the page draws it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Snapshot {
    /// Whether this coordinator runs a rollup (sequences are blocks).
    pub rollup: bool,
    /// Published, proven and settled tips (block numbers for a rollup, else sequences).
    pub tips: Tips,
    /// The newest sequences, newest first.
    pub sequences: Vec<SequenceView>,
    /// Every prover the store knows.
    pub provers: Vec<ProverView>,
    /// Leases taken back and jobs dead, newest last.
    pub events: Vec<ConsoleEvent>,
    /// The chain, when the coordinator settles on one.
    pub chain: Option<ChainView>,
    /// Trees of this many jobs or more come as counts per level.
    pub collapse_jobs: u64,
}

/// The published, proven and settled tips.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Tips {
    /// The newest published (planned) one.
    pub published: Option<u64>,
    /// It and everything before it is proved.
    pub proven: Option<u64>,
    /// It and everything before it is finalized on chain.
    pub settled: Option<u64>,
}

/// The chain as the publisher last saw it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ChainView {
    /// Blocks produced.
    pub height: Option<u64>,
    /// The proof sender's address.
    pub sender: String,
    /// Why the last look failed, if it did.
    pub error: Option<String>,
}

/// A sequence (or the rollup block it proves).
#[derive(Clone, Debug, Serialize)]
pub struct SequenceView {
    /// Sequence number.
    pub id: u64,
    /// The rollup block it proves.
    pub block: Option<i64>,
    /// That block's transactions.
    pub txs: Option<i64>,
    /// Leaves of its workload.
    pub leaves: i64,
    /// `published`, `proving`, `proved`, `hash sent`, `revealed` or `finalized`.
    pub state: &'static str,
    /// Planned (published) at (ms).
    pub created_ms: i64,
    /// Root proved at (ms).
    pub proved_ms: Option<i64>,
    /// Seen finalized at (ms).
    pub settled_ms: Option<i64>,
    /// Its jobs.
    pub jobs: i64,
    /// Its jobs by state.
    pub counts: BTreeMap<&'static str, i64>,
    /// Whether its levels come as counts only.
    pub collapsed: bool,
    /// Its levels, root level last.
    pub levels: Vec<LevelView>,
    /// Its settlement.
    pub settlement: SettlementView,
}

/// One level of a tree.
#[derive(Clone, Debug, Serialize)]
pub struct LevelView {
    /// The level (0: leaves).
    pub level: u32,
    /// Its jobs by state.
    pub counts: BTreeMap<&'static str, i64>,
    /// Its jobs, unless the tree is collapsed.
    pub jobs: Option<Vec<JobView>>,
}

/// One job.
#[derive(Clone, Debug, Serialize)]
pub struct JobView {
    /// Its id (`s1-l0-i3`).
    pub id: String,
    /// Index within its level.
    pub index: u64,
    /// `tx`, `batch`, `block`, `claim`, `work` or `universal` ([`job_kind`]).
    pub kind: &'static str,
    /// Its circuit's name.
    pub circuit: String,
    /// Its state.
    pub status: &'static str,
    /// The prover holding it (leased) or that proved it.
    pub prover: Option<String>,
    /// Attempts counted against its retry budget.
    pub attempts: i64,
    /// Leases ever granted on it.
    pub leases: i64,
    /// Latest lease granted at (ms).
    pub leased_ms: Option<i64>,
    /// Lease expires at (ms), while leased.
    pub expires_ms: Option<i64>,
    /// Proof stored at (ms).
    pub proved_ms: Option<i64>,
    /// Proving time the prover reported (ms).
    pub prove_ms: Option<i64>,
}

impl JobView {
    /// The view of a stored job.
    pub fn of(job: &ConsoleJob) -> Self {
        let prover = match job.status {
            JobStatus::Leased => job.lease_holder.clone(),
            _ => job.proved_by.clone(),
        };
        JobView {
            id: job.id.to_string(),
            index: job.id.index,
            kind: job_kind(&job.circuit),
            circuit: job.circuit.to_string(),
            status: job.status.as_str(),
            prover,
            attempts: job.attempts,
            leases: job.lease_token,
            leased_ms: job.leased_ms,
            expires_ms: job
                .lease_expires_ms
                .filter(|_| job.status == JobStatus::Leased),
            proved_ms: job.proved_ms,
            prove_ms: job.prove_ms,
        }
    }
}

/// What a job is, in the words of the issue: a rollup transaction (`tx`: its kernel, a local
/// transaction's half and the node joining its halves), a batch (`node:tx`, `kernel:merge`), a block (`kernel:block`), a reward
/// claim, a synthetic work leaf or node, or a universal aggregation node (the root and its
/// wrap).
pub fn job_kind(circuit: &JobCircuit) -> &'static str {
    let domain = |kind: &str| match kind {
        "tx" | "tx-pair" => "tx",
        "claim" => "claim",
        _ => "work",
    };
    match circuit {
        JobCircuit::Leaf { kind } => domain(kind),
        // The node joining a local transaction's two halves is still that transaction.
        JobCircuit::LeafNode { kind } if kind == "tx-pair" => "tx",
        JobCircuit::LeafNode { kind } => match domain(kind) {
            "tx" => "batch",
            other => other,
        },
        JobCircuit::Kernel { name } if name == "block" => "block",
        JobCircuit::Kernel { .. } => "batch",
        JobCircuit::Universal | JobCircuit::Wrap => "universal",
    }
}

/// A sequence's settlement: the sender's steps from the store, the window from the chain.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SettlementView {
    /// Registered on chain (the sender's registration is included).
    pub registered: bool,
    /// `hash`, `proof` or `closed`: the window's phase, when one is open.
    pub phase: Option<&'static str>,
    /// The block that opened the window.
    pub window_opened_at: Option<u64>,
    /// The hashes committed in the window, by sender.
    pub commitments: Vec<CommitmentView>,
    /// The sender's hash transactions.
    pub hashes: Vec<StepView>,
    /// The sender's reveal transactions.
    pub reveals: Vec<StepView>,
    /// The block that finalized it.
    pub finalized_block: Option<u64>,
    /// Who finalized it.
    pub sender: Option<String>,
    /// What it owes its provers and has paid to their claims, in base units, once finalized.
    pub prover_rewards: Option<RewardsView>,
}

/// A finalized sequence's rewards to its provers, in base units.
#[derive(Clone, Debug, Serialize)]
pub struct RewardsView {
    /// Owed in all.
    pub owed: String,
    /// Paid to claims so far.
    pub paid: String,
    /// Still to be claimed.
    pub remaining: String,
}

/// A hash committed on chain.
#[derive(Clone, Debug, Serialize)]
pub struct CommitmentView {
    /// The committer.
    pub sender: String,
    /// The block of its hash.
    pub block: u64,
    /// Whether it revealed.
    pub revealed: bool,
}

/// One of the sender's transactions.
#[derive(Clone, Debug, Serialize)]
pub struct StepView {
    /// The window it is for.
    pub attempt: i64,
    /// Its hash.
    pub tx_hash: String,
    /// `pending`, `sent`, `included` or `failed`.
    pub status: &'static str,
    /// The block it is in.
    pub block: Option<i64>,
}

/// A prover.
#[derive(Clone, Debug, Serialize)]
pub struct ProverView {
    /// Its name.
    pub id: String,
    /// Its request key (hex), when registered.
    pub public_key: Option<String>,
    /// Its worker key (hex), when registered.
    pub worker_pk: Option<String>,
    /// Whether the store admits it now.
    pub registered: bool,
    /// `Active`, `GracePeriod`, `Expired` or `none`, from the chain's registry.
    pub membership: Option<String>,
    /// Leases it holds.
    pub leases: i64,
    /// Jobs it proved.
    pub jobs_proved: i64,
    /// Their work units.
    pub work_units: i64,
    /// Submissions refused for its fault.
    pub rejections: i64,
    /// Those refusals by reason.
    pub rejection_reasons: Vec<(String, i64)>,
    /// Its latest lease or proof (ms).
    pub last_seen_ms: Option<i64>,
    /// Work units it proved in sequences finalized on chain.
    pub settled_units: i64,
    /// What the chain owes it for them, in base units (owed whether claimed yet or not).
    pub rewards_owed: Option<String>,
}

/// What the publisher read from the chain for one build.
#[derive(Clone, Debug, Default)]
pub struct ChainFacts {
    /// Each shown sequence's view.
    pub sequences: HashMap<SequenceId, ChainSequence>,
    /// What each finalized shown sequence owes its provers and paid.
    pub rewards: HashMap<SequenceId, ProverRewardsView>,
    /// Membership state by worker key.
    pub members: HashMap<[u8; 32], String>,
    /// The contract's reward per work unit.
    pub reward_per_unit: Option<Amount>,
    /// The chain as seen.
    pub view: Option<ChainView>,
}

/// Reads the store and builds a snapshot of the newest `config.console_sequences` sequences.
pub async fn build(
    c: &Coordinator,
    chain: &ChainFacts,
    events: Vec<ConsoleEvent>,
) -> Result<Snapshot, StoreError> {
    let store = c.store();
    let config = c.config();
    let shown = store.console_sequences(config.console_sequences).await?;
    let oldest = shown.last().map(|s| s.id);
    let mut counts: HashMap<SequenceId, BTreeMap<u32, BTreeMap<&'static str, i64>>> =
        HashMap::new();
    let level_counts = match oldest {
        Some(oldest) => store.level_counts(oldest).await?,
        None => Vec::new(),
    };
    for count in level_counts {
        *counts
            .entry(count.sequence)
            .or_default()
            .entry(count.level)
            .or_default()
            .entry(count.status.as_str())
            .or_default() += count.count;
    }
    let mut steps: HashMap<SequenceId, Vec<OutboxStep>> = HashMap::new();
    let outbox = match oldest {
        Some(oldest) => store.outbox_steps(oldest).await?,
        None => Vec::new(),
    };
    for step in outbox {
        steps.entry(step.sequence).or_default().push(step);
    }
    let mut sequences = Vec::with_capacity(shown.len());
    for sequence in &shown {
        let levels = counts.remove(&sequence.id).unwrap_or_default();
        let jobs: i64 = levels.values().flat_map(|c| c.values()).sum();
        let collapsed = u64::try_from(jobs).unwrap_or(0) >= config.console_collapse_jobs;
        let mut by_level: BTreeMap<u32, Vec<JobView>> = BTreeMap::new();
        if !collapsed {
            for job in store.console_jobs(sequence.id).await? {
                by_level
                    .entry(job.id.level)
                    .or_default()
                    .push(JobView::of(&job));
            }
        }
        let mut totals: BTreeMap<&'static str, i64> = BTreeMap::new();
        let levels: Vec<LevelView> = levels
            .into_iter()
            .map(|(level, counts)| {
                for (&status, n) in &counts {
                    *totals.entry(status).or_default() += n;
                }
                LevelView {
                    level,
                    counts,
                    jobs: (!collapsed).then(|| by_level.remove(&level).unwrap_or_default()),
                }
            })
            .collect();
        let mut settlement = settlement(
            steps.get(&sequence.id).map_or(&[][..], Vec::as_slice),
            chain.sequences.get(&sequence.id),
        );
        settlement.prover_rewards = chain.rewards.get(&sequence.id).map(|r| RewardsView {
            owed: r.owed.0.to_string(),
            paid: r.paid.0.to_string(),
            remaining: r.remaining.0.to_string(),
        });
        sequences.push(SequenceView {
            id: sequence.id.get(),
            block: sequence.block,
            txs: sequence.tx_count,
            leaves: sequence.leaves,
            state: state(sequence, &totals, &settlement),
            created_ms: sequence.created_ms,
            proved_ms: sequence.proved_ms,
            settled_ms: sequence.settled_ms,
            jobs,
            counts: totals,
            collapsed,
            levels,
            settlement,
        });
    }
    let rollup = c.rollup().is_some();
    let tips = if rollup {
        let tip = store.rollup_tip().await?.map(|b| b.number as u64);
        Tips {
            published: tip,
            proven: store.rollup_proven_tip().await?.map(|n| n as u64),
            settled: store.rollup_settled_tip().await?.map(|n| n as u64),
        }
    } else {
        let tips = store.sequence_tips().await?;
        Tips {
            published: tips.published.map(SequenceId::get),
            proven: tips.proven.map(SequenceId::get),
            settled: tips.settled.map(SequenceId::get),
        }
    };
    let settled_units: HashMap<String, i64> =
        store.settled_units_by_prover().await?.into_iter().collect();
    let now = c.config().clock.now_ms();
    let provers = store
        .prover_activity(now)
        .await?
        .into_iter()
        .map(|p| prover(p, &settled_units, chain))
        .collect();
    Ok(Snapshot {
        rollup,
        tips,
        sequences,
        provers,
        events,
        chain: chain.view.clone(),
        collapse_jobs: config.console_collapse_jobs,
    })
}

/// Where a sequence stands, furthest first.
fn state(
    sequence: &ConsoleSequence,
    counts: &BTreeMap<&'static str, i64>,
    settlement: &SettlementView,
) -> &'static str {
    let live = |status: &str| counts.get(status).copied().unwrap_or(0) > 0;
    if sequence.settled_ms.is_some() || settlement.finalized_block.is_some() {
        "finalized"
    } else if !settlement.reveals.is_empty() {
        "revealed"
    } else if !settlement.hashes.is_empty() {
        "hash sent"
    } else if sequence.proved_ms.is_some() {
        "proved"
    } else if live("leased") || live("proved") {
        "proving"
    } else {
        "published"
    }
}

fn settlement(steps: &[OutboxStep], chain: Option<&ChainSequence>) -> SettlementView {
    let step = |s: &OutboxStep| StepView {
        attempt: s.attempt,
        tx_hash: s.tx_hash.clone(),
        status: s.status.as_str(),
        block: s.included_height,
    };
    let live = |s: &&OutboxStep| s.status != OutboxStatus::Failed;
    let of = |kind: OutboxKind| -> Vec<StepView> {
        steps
            .iter()
            .filter(|s| s.kind == kind)
            .filter(live)
            .map(step)
            .collect()
    };
    let mut view = SettlementView {
        registered: steps
            .iter()
            .any(|s| s.kind == OutboxKind::Register && s.status == OutboxStatus::Included),
        hashes: of(OutboxKind::ProofHash),
        reveals: of(OutboxKind::Proof),
        ..SettlementView::default()
    };
    if let Some(chain) = chain {
        view.registered = true;
        view.phase = chain.phase.map(|phase| match phase {
            WindowPhase::Hash => "hash",
            WindowPhase::Proof => "proof",
            WindowPhase::Closed => "closed",
        });
        if let Some(window) = &chain.window {
            view.window_opened_at = Some(window.opened_at);
            view.commitments = window
                .commitments
                .iter()
                .map(|(sender, c)| CommitmentView {
                    sender: sender.to_string(),
                    block: c.block,
                    revealed: c.revealed,
                })
                .collect();
        }
        if let Some(finalized) = &chain.finalized {
            view.finalized_block = Some(finalized.block);
            view.sender = Some(finalized.sender.to_string());
            view.phase = None;
        }
    }
    view
}

fn prover(
    p: ProverActivity,
    settled_units: &HashMap<String, i64>,
    chain: &ChainFacts,
) -> ProverView {
    let units = settled_units.get(&p.id).copied().unwrap_or(0);
    let membership = p.registered.as_ref().and_then(|r| {
        chain.view.as_ref()?;
        Some(
            chain
                .members
                .get(&r.worker_pk)
                .cloned()
                .unwrap_or_else(|| "none".to_owned()),
        )
    });
    ProverView {
        public_key: p.registered.as_ref().map(|r| hex::encode(r.public_key)),
        worker_pk: p.registered.as_ref().map(|r| hex::encode(r.worker_pk)),
        registered: p.registered.is_some(),
        membership,
        leases: p.live_leases,
        jobs_proved: p.jobs_proved,
        work_units: p.work_units,
        rejections: p.rejections.iter().map(|(_, n)| n).sum(),
        rejection_reasons: p.rejections,
        last_seen_ms: p.last_seen_ms,
        settled_units: units,
        rewards_owed: chain
            .reward_per_unit
            .map(|per_unit| (per_unit.0 * u128::try_from(units).unwrap_or(0)).to_string()),
        id: p.id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_circuit_of_a_tree_has_the_kind_an_operator_knows() {
        let kind = |text: &str| job_kind(&text.parse().expect("a circuit name"));
        assert_eq!(kind("leaf:tx"), "tx");
        assert_eq!(kind("leaf:tx-pair"), "tx");
        assert_eq!(kind("node:tx-pair"), "tx");
        assert_eq!(kind("node:tx"), "batch");
        assert_eq!(kind("kernel:merge"), "batch");
        assert_eq!(kind("kernel:block"), "block");
        assert_eq!(kind("leaf:claim"), "claim");
        assert_eq!(kind("leaf:work"), "work");
        assert_eq!(kind("node:work"), "work");
        assert_eq!(kind("universal"), "universal");
        assert_eq!(kind("wrap"), "universal");
    }
}
