//! What must hold after the faults, read from the store, the chain's RPC and the proofs
//! themselves: no job lost, no reward twice, no job past its attempt cap, none dead, the outbox
//! and the chain telling the same story, every root proof valid under the final key, and every
//! sequence settled.

use std::collections::HashMap;

use serde::Serialize;
use sheaf_chain::settlement::{Address, SequenceId};
use sheaf_chain::ChainClient;
use sheaf_circuits::FinalKey;
use sheaf_store::{JobFilter, JobStatus, OutboxStatus, Store};

/// The invariants, counted.
#[derive(Debug, Default, Serialize)]
pub struct Checks {
    /// Jobs planned in the store.
    pub jobs: usize,
    /// Jobs not proved, or proved without their reward entry.
    pub jobs_lost: usize,
    /// Reward entries beyond one per job, plus settlement rewards the chain paid beyond what
    /// it owed (in rewards per sequence).
    pub rewards_duplicated: usize,
    /// Jobs more distinct provers abandoned than the attempt cap allows (the cap counts
    /// abandoning provers, once each: a job that reached it is dead).
    pub attempts_over_cap: usize,
    /// The most distinct provers that abandoned any one job.
    pub max_abandoners: usize,
    /// The most leases any job took (leases that expired, were killed or partitioned away,
    /// and the one that proved it).
    pub max_attempts: i64,
    /// The attempt cap the coordinator ran with.
    pub attempt_cap: i64,
    /// Jobs `dead`.
    pub dead_jobs: usize,
    /// Outbox rows whose chain record differs (included without a receipt, failed with one,
    /// still in flight), plus the difference between the sender's transactions on chain and
    /// the outbox rows with a receipt.
    pub outbox_mismatches: usize,
    /// Outbox rows read.
    pub outbox_rows: usize,
    /// Sequences planned.
    pub sequences: u64,
    /// Root proofs that verify with the final key.
    pub roots_verified: u64,
    /// Sequences finalized on chain.
    pub sequences_settled: u64,
    /// One line per mismatch found, for the operator.
    pub details: Vec<String>,
}

impl Checks {
    /// The invariants that do not hold, as lines of the report.
    pub fn failures(&self) -> Vec<String> {
        let mut failed = Vec::new();
        let mut expect = |holds: bool, what: String| {
            if !holds {
                failed.push(what);
            }
        };
        expect(self.jobs_lost == 0, format!("{} jobs lost", self.jobs_lost));
        expect(
            self.rewards_duplicated == 0,
            format!("{} rewards duplicated", self.rewards_duplicated),
        );
        expect(
            self.attempts_over_cap == 0,
            format!(
                "{} jobs over the attempt cap of {}",
                self.attempts_over_cap, self.attempt_cap
            ),
        );
        expect(self.dead_jobs == 0, format!("{} dead jobs", self.dead_jobs));
        expect(
            self.outbox_mismatches == 0,
            format!(
                "{} outbox rows differ from the chain",
                self.outbox_mismatches
            ),
        );
        expect(
            self.roots_verified == self.sequences,
            format!(
                "{} of {} root proofs verify",
                self.roots_verified, self.sequences
            ),
        );
        expect(
            self.sequences_settled == self.sequences,
            format!(
                "{} of {} sequences settled",
                self.sequences_settled, self.sequences
            ),
        );
        failed
    }
}

/// What the checks read besides the store and the chain.
pub struct Expected<'a> {
    /// Sequences planned.
    pub sequences: u64,
    /// The coordinator's attempt cap.
    pub attempt_cap: i64,
    /// The settlement sender.
    pub sender: &'a Address,
    /// Transactions the sender made before the coordinator ran (its stake).
    pub setup_transactions: u64,
    /// The final key.
    pub key: &'a FinalKey,
}

/// Read everything and count what does not hold.
pub async fn check(
    store: &Store,
    chain: &ChainClient,
    expected: &Expected<'_>,
) -> anyhow::Result<Checks> {
    let mut checks = Checks {
        sequences: expected.sequences,
        attempt_cap: expected.attempt_cap,
        ..Checks::default()
    };
    check_jobs(store, &mut checks).await?;
    check_outbox(store, chain, expected, &mut checks).await?;
    for sequence in store.list_sequences().await? {
        match store.proof_of(sequence.root).await? {
            Some(bytes) => match expected.key.verify_bytes(&bytes) {
                Ok(_) => checks.roots_verified += 1,
                Err(e) => checks.details.push(format!(
                    "root proof of sequence {} does not verify: {e}",
                    sequence.id
                )),
            },
            None => checks
                .details
                .push(format!("sequence {} has no root proof", sequence.id)),
        }
    }
    let status = chain.settlement_status().await?;
    for sequence in 1..=expected.sequences {
        if chain.finalized(SequenceId(sequence)).await?.is_some() {
            checks.sequences_settled += 1;
        } else {
            checks
                .details
                .push(format!("sequence {sequence} is not finalized on chain"));
        }
    }
    let owed = status.params.reward_per_sequence.0 * u128::from(checks.sequences_settled);
    let paid = chain.account(expected.sender).await?.rewards;
    if paid.0 > owed && status.params.reward_per_sequence.0 > 0 {
        let excess = (paid.0 - owed).div_ceil(status.params.reward_per_sequence.0);
        checks.rewards_duplicated += usize::try_from(excess).unwrap_or(usize::MAX);
        checks.details.push(format!(
            "the chain paid the sender {} base units for {} sequences owing {owed}",
            paid.0, checks.sequences_settled
        ));
    }
    Ok(checks)
}

async fn check_jobs(store: &Store, checks: &mut Checks) -> anyhow::Result<()> {
    let jobs = store.list_jobs(JobFilter::default()).await?;
    checks.jobs = jobs.len();
    let mut rewarded: HashMap<_, usize> = HashMap::new();
    for sequence in store.list_sequences().await? {
        for reward in store.rewards(sequence.id).await? {
            *rewarded.entry(reward.job).or_default() += 1;
        }
    }
    for job in &jobs {
        checks.max_attempts = checks.max_attempts.max(job.attempts);
        let abandoners = store.abandoners(job.id).await?.len();
        checks.max_abandoners = checks.max_abandoners.max(abandoners);
        if i64::try_from(abandoners).unwrap_or(i64::MAX) > checks.attempt_cap {
            checks.attempts_over_cap += 1;
            checks.details.push(format!(
                "job {} was abandoned by {abandoners} provers, over the cap of {}",
                job.id, checks.attempt_cap
            ));
        }
        if job.status == JobStatus::Dead {
            checks.dead_jobs += 1;
            checks.details.push(format!(
                "job {} is dead after {} attempts",
                job.id, job.attempts
            ));
        }
        let rewards = rewarded.get(&job.id).copied().unwrap_or(0);
        if job.status != JobStatus::Proved || rewards == 0 {
            checks.jobs_lost += 1;
            checks.details.push(format!(
                "job {} is {} with {rewards} reward entries",
                job.id, job.status
            ));
        }
        if rewards > 1 {
            checks.rewards_duplicated += rewards - 1;
            checks
                .details
                .push(format!("job {} has {rewards} reward entries", job.id));
        }
    }
    let orphans = rewarded
        .keys()
        .filter(|job| !jobs.iter().any(|j| j.id == **job))
        .count();
    if orphans > 0 {
        checks.rewards_duplicated += orphans;
        checks
            .details
            .push(format!("{orphans} reward entries of no planned job"));
    }
    Ok(())
}

async fn check_outbox(
    store: &Store,
    chain: &ChainClient,
    expected: &Expected<'_>,
    checks: &mut Checks,
) -> anyhow::Result<()> {
    let rows = store.outbox_all().await?;
    checks.outbox_rows = rows.len();
    let mut with_receipt = 0u64;
    for row in &rows {
        let hash = row.tx_hash.parse().map_err(|e| {
            anyhow::anyhow!("outbox row {} has hash {:?}: {e}", row.id, row.tx_hash)
        })?;
        let receipt = chain.receipt(&hash).await?;
        if receipt.is_some() {
            with_receipt += 1;
        }
        let differs = match (row.status, &receipt) {
            (OutboxStatus::Included, Some(r)) => {
                r.error.is_some() || row.included_height != Some(r.block as i64)
            }
            (OutboxStatus::Included, None) => true,
            // Failed on chain (a receipt with an error), or its nonce taken (no receipt).
            (OutboxStatus::Failed, Some(r)) => r.error.is_none(),
            (OutboxStatus::Failed, None) => false,
            // Everything settles before the checks: nothing may be left in flight.
            (OutboxStatus::Pending | OutboxStatus::Sent, _) => true,
        };
        if differs {
            checks.outbox_mismatches += 1;
            checks.details.push(format!(
                "outbox {} (sequence {} {} attempt {}) is {} in the store, the chain has {}",
                row.id,
                row.sequence,
                row.kind,
                row.attempt,
                row.status.as_str(),
                match &receipt {
                    Some(r) => format!(
                        "a receipt in block {}{}",
                        r.block,
                        r.error
                            .as_ref()
                            .map(|e| format!(" failing: {e}"))
                            .unwrap_or_default()
                    ),
                    None => "no receipt".to_owned(),
                }
            ));
        }
    }
    let on_chain = chain
        .account(expected.sender)
        .await?
        .nonce
        .saturating_sub(expected.setup_transactions);
    if on_chain != with_receipt {
        checks.outbox_mismatches += on_chain.abs_diff(with_receipt) as usize;
        checks.details.push(format!(
            "the sender has {on_chain} transactions on chain, the outbox {with_receipt} with a receipt"
        ));
    }
    Ok(())
}
