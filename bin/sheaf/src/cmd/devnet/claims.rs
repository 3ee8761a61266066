//! The devnet closes the loop: once its sequences settle, every prover (and the workload's
//! local client, whose proofs of its own halves are in the trees too) claims its rewards with
//! `sheaf claim`, in a process of its own as on its own machine. Then the chain must owe
//! nothing, and have paid each claimant exactly its jobs' units at the genesis rate.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;
use sheaf_chain::client::ChainClient;
use sheaf_chain::Amount;
use sheaf_store::Store;
use sheaf_types::{Address, SequenceId};

use crate::cmd::claim::ClaimReport;

/// How long the devnet waits for its coordinator to see every sequence settled.
const SETTLED_WAIT: Duration = Duration::from_secs(120);

/// Who claims: a name, its key file, its worker key and the account it is paid to.
pub struct Claimant {
    /// `prover-1`, …, or `client`.
    pub name: String,
    /// Its key file.
    pub key: PathBuf,
    /// Its worker key, hex, as the store records it.
    pub worker_pk: [u8; 32],
    /// The account paid.
    pub exit: Address,
}

/// One claimant's line of the summary.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimantReport {
    /// Its name.
    pub name: String,
    /// Jobs it proved (reward entries in the store).
    pub jobs: usize,
    /// Their work units.
    pub work_units: u64,
    /// What the chain owes it: units × the genesis rate.
    pub owed: Amount,
    /// What its claim run was paid.
    pub claimed: Amount,
    /// Jobs its run claimed.
    pub claims: usize,
    /// Chain transactions (one per batch).
    pub claim_batches: usize,
    /// Peak resident memory of its `sheaf claim` process.
    pub claim_peak_rss_bytes: u64,
    /// Wall seconds of its claim run (circuits, proving, transactions).
    pub claim_seconds: f64,
}

/// The claims part of the devnet's summary.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimsReport {
    /// One per claimant.
    pub claimants: Vec<ClaimantReport>,
    /// Σ over sequences of what the chain owes provers.
    pub owed: Amount,
    /// Σ over sequences of what it paid.
    pub paid: Amount,
    /// Σ over sequences of what it still owes.
    pub remaining: Amount,
    /// Sequences whose plan the chain found inconsistent with the proved root (they owe
    /// nothing).
    pub inconsistent_plans: Vec<SequenceId>,
}

impl ClaimsReport {
    /// Why the loop is not closed, if it is not: something owed unclaimed, or a claimant paid
    /// other than what it is owed (a double payment shows as more).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.remaining != Amount::ZERO {
            problems.push(format!("{} owed to provers is unclaimed", self.remaining));
        }
        if !self.inconsistent_plans.is_empty() {
            problems.push(format!(
                "sequences {:?} registered plans that do not match their roots",
                self.inconsistent_plans
            ));
        }
        for c in &self.claimants {
            if c.claimed != c.owed {
                problems.push(format!(
                    "{} is owed {} and was paid {}",
                    c.name, c.owed, c.claimed
                ));
            }
        }
        problems
    }
}

/// Run every claimant's claim, one after the other, then read what the chain owes and paid.
pub async fn claim_all(
    chain_url: &str,
    coordinator_url: &str,
    store: &Store,
    sequences: &[SequenceId],
    claimants: &[Claimant],
    cache_dir: &std::path::Path,
    threads: usize,
) -> anyhow::Result<ClaimsReport> {
    let chain = ChainClient::new(chain_url)?;
    wait_settled(store, sequences).await?;
    let rate = chain
        .settlement_status()
        .await?
        .params
        .prover_reward_per_unit;

    // What each worker key proved, from the store's reward entries.
    let mut proved: BTreeMap<[u8; 32], (usize, u64)> = BTreeMap::new();
    for &sequence in sequences {
        for reward in store.rewards(sequence).await? {
            let entry = proved.entry(reward.worker_pk).or_default();
            entry.0 += 1;
            entry.1 += reward.work_units as u64;
        }
    }

    let exe = std::env::current_exe().context("locating the sheaf binary")?;
    let mut reports = Vec::new();
    for claimant in claimants {
        let (jobs, work_units) = proved.get(&claimant.worker_pk).copied().unwrap_or_default();
        if jobs == 0 {
            continue;
        }
        let output = tokio::process::Command::from(claim_command(
            &exe,
            chain_url,
            coordinator_url,
            claimant,
            cache_dir,
            threads,
        ))
        .output()
        .await
        .with_context(|| format!("running {}'s claim", claimant.name))?;
        if !output.status.success() {
            bail!(
                "{}'s claim failed ({}): {}",
                claimant.name,
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let run: ClaimReport = serde_json::from_slice(&output.stdout)
            .with_context(|| format!("reading {}'s claim report", claimant.name))?;
        reports.push(ClaimantReport {
            name: claimant.name.clone(),
            jobs,
            work_units,
            owed: Amount(rate.0 * work_units as u128),
            claimed: run.amount,
            claims: run.claimed,
            claim_batches: run.batches.len(),
            claim_peak_rss_bytes: run.peak_rss_bytes,
            claim_seconds: run.seconds,
        });
    }

    let (mut owed, mut paid, mut remaining) = (Amount::ZERO, Amount::ZERO, Amount::ZERO);
    let mut inconsistent_plans = Vec::new();
    for &sequence in sequences {
        let view = chain
            .prover_rewards(sequence)
            .await?
            .with_context(|| format!("the chain has no sequence {sequence}"))?;
        if !view.plan_consistent {
            inconsistent_plans.push(sequence);
        }
        owed = owed.saturating_add(view.owed);
        paid = paid.saturating_add(view.paid);
        remaining = remaining.saturating_add(view.remaining);
    }
    Ok(ClaimsReport {
        claimants: reports,
        owed,
        paid,
        remaining,
        inconsistent_plans,
    })
}

fn claim_command(
    exe: &std::path::Path,
    chain_url: &str,
    coordinator_url: &str,
    claimant: &Claimant,
    cache_dir: &std::path::Path,
    threads: usize,
) -> Command {
    let mut command = Command::new(exe);
    command
        .arg("claim")
        .args(["--chain", chain_url, "--coordinator", coordinator_url])
        .arg("--key")
        .arg(&claimant.key)
        .args(["--to", &claimant.exit.to_string()])
        .args(["--threads", &threads.to_string()])
        .arg("--cache-dir")
        .arg(cache_dir)
        .arg("--json")
        .env_remove("SHEAF_CHAIN")
        .env_remove("SHEAF_COORDINATOR")
        .env_remove("SHEAF_KEY");
    command
}

/// Wait until the coordinator's store has seen every sequence settled on chain (its proof
/// sender marks them as it sees them finalized): its claims endpoint serves only those.
async fn wait_settled(store: &Store, sequences: &[SequenceId]) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let settled = store.settled_sequence_count().await?;
        if settled >= sequences.len() as u64 {
            return Ok(());
        }
        if started.elapsed() > SETTLED_WAIT {
            bail!(
                "the coordinator saw {settled} of {} sequences settled after {} s",
                sequences.len(),
                SETTLED_WAIT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
