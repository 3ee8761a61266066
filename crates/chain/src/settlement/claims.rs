//! Prover rewards: the tree plan a registration carries, what a finalized sequence owes its
//! provers, and the claim batches that pay them (REFERENCE §5, with Sheaf's claim circuit).
//!
//! ```text
//!  register_sequence(s, statement, jobs)   jobs: (position, units), checked and sorted
//!  finalization of s by its root proof     Σ units == stats.work_units and
//!                                          #jobs == leaf_jobs + aggregation_jobs ?
//!                                            yes: owes Σ units · prover_reward_per_unit
//!                                            no:  owes nothing (ProverPlanInconsistent)
//!  claim_rewards(arity, claims, proof)     cheap checks, each refusal typed:
//!                                            batch size, arity, sequence finalized and
//!                                            consistent, position planned, nullifier unspent
//!                                            and not repeated, paid + batch ≤ owed
//!                                          then batch_statement(claims on the chain's roots)
//!                                            == the statement of the verified proof
//!                                          then nullifiers spent, each exit credited
//!                                            units(position) · prover_reward_per_unit
//! ```
//!
//! A claim names no root: the chain takes it from its record of the finalized sequence, so a
//! claim proves a path to the root the chain finalized. A refused batch changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sheaf_circuits::claim::{batch_statement, ClaimStatement, MAX_CLAIM_DEPTH};
use sheaf_circuits::JobStats;

use super::contract::{emit, SettlementContract};
use super::{
    Address, Amount, ClaimEntry, PlannedJob, Result, RootVerifier, SequenceId, SettlementError,
    SettlementEvent,
};

/// Most jobs a plan may list: a tree of [`sheaf_circuits::tree::MAX_TREE_LEAVES`] (2^20) leaves
/// at arity 2 has 2^21 − 1 jobs; the margin covers a final wrap. A plan this large is far above
/// the node's request body limit anyway; the bound keeps the contract's own check independent
/// of it.
pub const MAX_PLANNED_JOBS: usize = (1 << 21) + 64;

/// Most claims one batch pays: a claim tree of 64 leaves is one transaction's worth of
/// recomputed statements (64 Poseidon hashes and a small tree), cheap next to the proof's
/// verification, while a prover with more positions sends more batches.
pub const MAX_CLAIMS_PER_BATCH: usize = 64;

/// Fewest children per node of a claim tree.
pub const MIN_CLAIM_ARITY: u32 = 2;

/// Most children per node of a claim tree: above every arity Sheaf's circuit sets are built
/// with (2 to 8), so the bound refuses nonsense without refusing a real set.
pub const MAX_CLAIM_ARITY: u32 = 16;

/// How a finalized sequence's plan compares with its root proof's stats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanCheck {
    /// No plan was registered: the sequence pays no prover rewards.
    Empty,
    /// The plan's jobs and work units are the root's: the sequence owes its provers.
    Consistent,
    /// The plan disagrees with the root: the sequence owes nothing.
    Inconsistent(PlanMismatch),
}

/// How a plan disagrees with its root proof's stats (the first difference found).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanMismatch {
    /// The plan's work units do not sum to the root's.
    WorkUnits {
        /// Σ units of the plan.
        planned: u128,
        /// The root's `work_units`.
        proved: u64,
    },
    /// The plan lists another number of jobs than the root counts.
    Jobs {
        /// Jobs planned.
        planned: u64,
        /// The root's `leaf_jobs + aggregation_jobs`.
        proved: u64,
    },
}

impl std::fmt::Display for PlanMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlanMismatch::WorkUnits { planned, proved } => write!(
                f,
                "the plan has {planned} work units, the root proof {proved}"
            ),
            PlanMismatch::Jobs { planned, proved } => {
                write!(f, "the plan has {planned} jobs, the root proof {proved}")
            }
        }
    }
}

/// What a finalized sequence owes its provers and has paid them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProverRewards {
    /// The plan against the root's stats.
    pub plan: PlanCheck,
    /// `Σ units · prover_reward_per_unit` if the plan is consistent, zero otherwise.
    pub owed: Amount,
    /// Paid to claims so far; never above `owed`.
    pub paid: Amount,
}

impl ProverRewards {
    /// What is still to be claimed.
    pub fn remaining(&self) -> Amount {
        self.owed.saturating_sub(self.paid)
    }
}

/// An amount a call moves to an account's balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credit {
    /// The account.
    pub account: Address,
    /// The amount.
    pub amount: Amount,
}

/// `units · rate`, saturating: an absurd rate makes the sequence's total saturate too, and a
/// claim batch then exceeds it and is refused.
fn job_reward(units: u64, rate: Amount) -> Amount {
    Amount(u128::from(units).saturating_mul(rate.0))
}

/// `jobs` checked and sorted by position, as a registration stores them.
pub(super) fn checked_plan(mut jobs: Vec<PlannedJob>) -> Result<Vec<PlannedJob>> {
    if jobs.len() > MAX_PLANNED_JOBS {
        return Err(SettlementError::PlanTooLarge {
            jobs: jobs.len(),
            max: MAX_PLANNED_JOBS,
        });
    }
    for job in &jobs {
        if job.units == 0 {
            return Err(SettlementError::ZeroUnitJob(job.position));
        }
        if job.position.depth as usize > MAX_CLAIM_DEPTH {
            return Err(SettlementError::PlannedPositionTooDeep {
                position: job.position,
                max: MAX_CLAIM_DEPTH,
            });
        }
    }
    jobs.sort_unstable_by_key(|job| job.position);
    if let Some(pair) = jobs.windows(2).find(|w| w[0].position == w[1].position) {
        return Err(SettlementError::DuplicatePlannedPosition(pair[0].position));
    }
    Ok(jobs)
}

/// What `sequence`, whose plan is `jobs`, owes once its root proof with `stats` finalized it,
/// and the event that says so (none for an empty plan).
pub(super) fn owed_at_finalization(
    sequence: SequenceId,
    jobs: &[PlannedJob],
    stats: &JobStats,
    rate: Amount,
) -> (ProverRewards, Option<SettlementEvent>) {
    let nothing = |plan| ProverRewards {
        plan,
        owed: Amount::ZERO,
        paid: Amount::ZERO,
    };
    if jobs.is_empty() {
        return (nothing(PlanCheck::Empty), None);
    }
    let planned_units: u128 = jobs.iter().map(|job| u128::from(job.units)).sum();
    let planned_jobs = jobs.len() as u64;
    let proved_jobs = stats.leaf_jobs.saturating_add(stats.aggregation_jobs);
    let mismatch = if planned_units != u128::from(stats.work_units) {
        Some(PlanMismatch::WorkUnits {
            planned: planned_units,
            proved: stats.work_units,
        })
    } else if planned_jobs != proved_jobs {
        Some(PlanMismatch::Jobs {
            planned: planned_jobs,
            proved: proved_jobs,
        })
    } else {
        None
    };
    if let Some(mismatch) = mismatch {
        let event = SettlementEvent::ProverPlanInconsistent { sequence, mismatch };
        return (nothing(PlanCheck::Inconsistent(mismatch)), Some(event));
    }
    let owed = job_reward(stats.work_units, rate);
    let event = SettlementEvent::ProverRewardsOwed {
        sequence,
        jobs: planned_jobs,
        work_units: stats.work_units,
        amount: owed,
    };
    let rewards = ProverRewards {
        plan: PlanCheck::Consistent,
        owed,
        paid: Amount::ZERO,
    };
    (rewards, Some(event))
}

impl<V: RootVerifier> SettlementContract<V> {
    /// Pay a batch of claims proved by `proof`, the root proof of a claim tree of `arity` over
    /// `claims` in order: all or nothing. The cheap checks come first; the proof is verified
    /// with the contract's verifier (the final key) last. Returns the credits to apply to the
    /// exits' balances, one per claim, in order.
    pub fn claim_rewards(
        &mut self,
        arity: u32,
        claims: &[ClaimEntry],
        proof: &[u8],
    ) -> Result<(Vec<Credit>, Vec<SettlementEvent>)> {
        if claims.is_empty() {
            return Err(SettlementError::EmptyClaimBatch);
        }
        if claims.len() > MAX_CLAIMS_PER_BATCH {
            return Err(SettlementError::TooManyClaims {
                claims: claims.len(),
                max: MAX_CLAIMS_PER_BATCH,
            });
        }
        if !(MIN_CLAIM_ARITY..=MAX_CLAIM_ARITY).contains(&arity) {
            return Err(SettlementError::InvalidClaimArity(arity));
        }
        let rate = self.state.params.prover_reward_per_unit;
        let mut nullifiers = BTreeSet::new();
        let mut due = BTreeMap::<SequenceId, Amount>::new();
        let mut statements = Vec::with_capacity(claims.len());
        let mut amounts = Vec::with_capacity(claims.len());
        for claim in claims {
            let sequence = claim.sequence;
            let seq = self
                .state
                .sequence(sequence)
                .ok_or(SettlementError::UnknownSequence(sequence))?;
            let finalized = seq
                .finalized
                .as_ref()
                .ok_or(SettlementError::SequenceNotFinalized(sequence))?;
            if seq.prover_rewards.map(|r| r.plan) != Some(PlanCheck::Consistent) {
                return Err(SettlementError::PlanNotConsistent(sequence));
            }
            let job = seq
                .planned(claim.position)
                .ok_or(SettlementError::UnplannedPosition {
                    sequence,
                    position: claim.position,
                })?;
            if self.state.spent_nullifiers.contains(&claim.nullifier) {
                return Err(SettlementError::NullifierSpent(claim.nullifier));
            }
            if !nullifiers.insert(claim.nullifier) {
                return Err(SettlementError::DuplicateNullifier(claim.nullifier));
            }
            let amount = job_reward(job.units, rate);
            let total = due.entry(sequence).or_insert(Amount::ZERO);
            *total = total.saturating_add(amount);
            amounts.push(amount);
            statements.push(ClaimStatement {
                root: finalized.commitment,
                sequence,
                position: claim.position,
                nullifier: claim.nullifier,
                exit: claim.exit,
            });
        }
        for (&sequence, &amount) in &due {
            let rewards = self
                .state
                .sequence(sequence)
                .and_then(|s| s.prover_rewards)
                .expect("checked above");
            if rewards.paid.saturating_add(amount) > rewards.owed {
                return Err(SettlementError::ClaimExceedsOwed {
                    sequence,
                    owed: rewards.owed,
                    paid: rewards.paid,
                    amount,
                });
            }
        }
        // 1 to MAX_CLAIMS_PER_BATCH leaves and an arity of at least 2: a tree plan exists.
        let expected = batch_statement(&statements, arity as usize)
            .map_err(|_| SettlementError::InvalidClaimArity(arity))?;
        let header = self
            .verifier
            .verify(proof)
            .map_err(SettlementError::InvalidClaimProof)?;
        if header.statement != expected {
            return Err(SettlementError::ClaimStatementMismatch {
                expected,
                got: header.statement,
            });
        }

        for (sequence, amount) in due {
            let index = self.state.index(sequence).expect("checked above");
            let rewards = self.state.sequences[index]
                .prover_rewards
                .as_mut()
                .expect("checked above");
            rewards.paid = rewards.paid.saturating_add(amount);
        }
        let mut credits = Vec::with_capacity(claims.len());
        let mut events = Vec::with_capacity(claims.len());
        for (claim, amount) in claims.iter().zip(amounts) {
            self.state.spent_nullifiers.insert(claim.nullifier);
            credits.push(Credit {
                account: claim.exit,
                amount,
            });
            events.push(SettlementEvent::ClaimPaid {
                sequence: claim.sequence,
                position: claim.position,
                exit: claim.exit,
                amount,
                nullifier: claim.nullifier,
            });
        }
        Ok((credits, emit(events)))
    }

    /// Whether each of `nullifiers` has been spent by a paid claim.
    pub fn nullifiers_spent(&self, nullifiers: &[sheaf_circuits::Digest]) -> Vec<bool> {
        nullifiers
            .iter()
            .map(|n| self.state.spent_nullifiers.contains(n))
            .collect()
    }
}
