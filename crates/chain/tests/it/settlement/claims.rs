//! Prover rewards: the plan at registration (one test per refusal), what finalization owes, and
//! claim batches (one test per refusal, each leaving the state unchanged). The stub verifier is
//! honest: a claim proof carries the batch statement of the claims the test says were proved,
//! on the root the stub's root proofs commit to, so a batch that lists anything else fails.

use sheaf_chain::settlement::{
    ClaimEntry, Credit, PlanCheck, PlanMismatch, PlannedJob, Position, MAX_CLAIMS_PER_BATCH,
    MAX_CLAIM_ARITY, MAX_PLANNED_JOBS, MIN_CLAIM_ARITY,
};
use sheaf_circuits::claim::{batch_statement, ClaimStatement, MAX_CLAIM_DEPTH};

use super::*;

const RATE: u128 = settlement::DEFAULT_PROVER_REWARD_PER_UNIT.0;
const DAVE: Address = Address([4; 32]);
const ERIN: Address = Address([5; 32]);

fn at(depth: u32, index: u64) -> Position {
    Position { depth, index }
}

fn job(depth: u32, index: u64, units: u64) -> PlannedJob {
    PlannedJob {
        position: at(depth, index),
        units,
    }
}

/// A plan matching the stub's root ([`STATS`]: 3 leaf jobs, 3 aggregation jobs, 99 units),
/// listed out of order: the contract sorts it.
fn plan() -> Vec<PlannedJob> {
    vec![
        job(2, 1, 10),
        job(0, 0, 30),
        job(1, 0, 30),
        job(1, 1, 9),
        job(2, 0, 10),
        job(2, 2, 10),
    ]
}

/// A contract with sequence 0 registered with `jobs` (and sequence 1 with none), Alice staked.
fn planned(jobs: Vec<PlannedJob>) -> SettlementContract<StubVerifier> {
    let mut c =
        SettlementContract::new(SettlementParams::default(), COORDINATOR, StubVerifier).unwrap();
    c.register_sequence(&COORDINATOR, SequenceId(0), statement(0), jobs)
        .unwrap();
    c.register_sequence(&COORDINATOR, SequenceId(1), statement(1), Vec::new())
        .unwrap();
    c.deposit_stake(&ALICE, Amount(DEFAULT_MIN_STAKE));
    c
}

/// Finalizes sequence `s` with Alice's proof; returns the events.
fn finalize(c: &mut SettlementContract<StubVerifier>, s: u64, block: u64) -> Vec<SettlementEvent> {
    c.commit(&ALICE, s, &proof(s, 1), block).unwrap();
    c.reveal(&ALICE, s, &proof(s, 1), block + T1).unwrap()
}

/// A contract whose sequence 0, planned with [`plan`], is finalized.
fn finalized() -> SettlementContract<StubVerifier> {
    let mut c = planned(plan());
    finalize(&mut c, 0, F);
    c
}

/// A claim on sequence `s` at `position` with nullifier number `n`, paid to `exit`.
fn claim(s: u64, position: Position, n: u64, exit: Address) -> ClaimEntry {
    ClaimEntry {
        sequence: SequenceId(s),
        position,
        nullifier: Digest([n, 0xC1A1, 0, 0]),
        exit,
    }
}

/// The batch statement of a claim tree of `arity` over `entries`, each on `root`.
fn batch_on(root: Digest, entries: &[ClaimEntry], arity: u32) -> Digest {
    let statements: Vec<ClaimStatement> = entries
        .iter()
        .map(|e| ClaimStatement {
            root,
            sequence: e.sequence,
            position: e.position,
            nullifier: e.nullifier,
            exit: e.exit,
        })
        .collect();
    batch_statement(&statements, arity as usize).unwrap()
}

/// A stub root proof of `statement`.
fn stub_proof(statement: Digest) -> Vec<u8> {
    let mut bytes = b"root".to_vec();
    bytes.extend_from_slice(&statement.to_bytes());
    bytes
}

/// A stub proof of a claim tree of `arity` over `proved`, each on the stub's root commitment.
fn proof_of(proved: &[ClaimEntry], arity: u32) -> Vec<u8> {
    stub_proof(batch_on(COMMITMENT, proved, arity))
}

/// Submits `claims` with an honest proof of them.
fn pay(
    c: &mut SettlementContract<StubVerifier>,
    claims: &[ClaimEntry],
) -> Result<(Vec<Credit>, Vec<SettlementEvent>), SettlementError> {
    c.claim_rewards(2, claims, &proof_of(claims, 2))
}

/// Asserts that `claims` with `proof` are refused with `error` and change nothing.
fn assert_refused(
    c: &mut SettlementContract<StubVerifier>,
    arity: u32,
    claims: &[ClaimEntry],
    proof: &[u8],
    error: SettlementError,
) {
    let before = c.state().clone();
    assert_eq!(c.claim_rewards(arity, claims, proof), Err(error));
    assert_eq!(c.state(), &before, "a refused batch changes nothing");
}

fn owed_and_paid(c: &SettlementContract<StubVerifier>, s: u64) -> (u128, u128) {
    let rewards = c
        .state()
        .sequence(SequenceId(s))
        .unwrap()
        .prover_rewards
        .unwrap();
    (rewards.owed.0, rewards.paid.0)
}

// ---- the plan at registration ----

/// Asserts that registering sequence 0 with `jobs` is refused with `error` and changes nothing.
fn assert_plan_refused(jobs: Vec<PlannedJob>, error: SettlementError) {
    let mut c = contract(0);
    let before = c.state().clone();
    assert_eq!(
        c.register_sequence(&COORDINATOR, SequenceId(0), statement(0), jobs),
        Err(error)
    );
    assert_eq!(c.state(), &before);
    assert_eq!(c.state().next_sequence(), SequenceId(0));
}

#[test]
fn register_sequence_rejects_a_position_planned_twice() {
    let mut jobs = plan();
    jobs.push(job(1, 1, 5));
    assert_plan_refused(jobs, SettlementError::DuplicatePlannedPosition(at(1, 1)));
}

#[test]
fn register_sequence_rejects_a_job_of_zero_units() {
    let mut jobs = plan();
    jobs.push(job(3, 0, 0));
    assert_plan_refused(jobs, SettlementError::ZeroUnitJob(at(3, 0)));
}

#[test]
fn register_sequence_rejects_a_position_deeper_than_a_claim_reaches() {
    let deep = at(MAX_CLAIM_DEPTH as u32 + 1, 0);
    let mut jobs = plan();
    jobs.push(PlannedJob {
        position: deep,
        units: 1,
    });
    assert_plan_refused(
        jobs,
        SettlementError::PlannedPositionTooDeep {
            position: deep,
            max: MAX_CLAIM_DEPTH,
        },
    );
}

#[test]
fn register_sequence_rejects_a_plan_larger_than_any_tree() {
    let jobs = (0..=MAX_PLANNED_JOBS as u64)
        .map(|i| job(21, i, 1))
        .collect();
    assert_plan_refused(
        jobs,
        SettlementError::PlanTooLarge {
            jobs: MAX_PLANNED_JOBS + 1,
            max: MAX_PLANNED_JOBS,
        },
    );
}

#[test]
fn register_sequence_keeps_the_plan_sorted_and_accepts_an_empty_one() {
    let c = planned(plan());
    let mut sorted = plan();
    sorted.sort_by_key(|j| j.position);
    assert_eq!(c.state().sequence(SequenceId(0)).unwrap().jobs, sorted);
    assert!(c.state().sequence(SequenceId(1)).unwrap().jobs.is_empty());
}

// ---- what finalization owes ----

#[test]
fn a_consistent_plan_owes_its_units_times_the_rate() {
    let mut c = planned(plan());
    let events = finalize(&mut c, 0, F);
    assert!(events.contains(&SettlementEvent::ProverRewardsOwed {
        sequence: SequenceId(0),
        jobs: 6,
        work_units: 99,
        amount: Amount(99 * RATE),
    }));
    assert_eq!(owed_and_paid(&c, 0), (99 * RATE, 0));
}

#[test]
fn a_plan_whose_units_differ_from_the_root_owes_nothing() {
    let mut jobs = plan();
    jobs[0].units += 1;
    let mut c = planned(jobs);
    let events = finalize(&mut c, 0, F);
    let mismatch = PlanMismatch::WorkUnits {
        planned: 100,
        proved: 99,
    };
    assert!(events.contains(&SettlementEvent::ProverPlanInconsistent {
        sequence: SequenceId(0),
        mismatch,
    }));
    assert!(finalizes_first(&events, 0), "finalization goes on");
    let rewards = c.state().sequence(SequenceId(0)).unwrap().prover_rewards;
    assert_eq!(
        rewards.map(|r| (r.plan, r.owed)),
        Some((PlanCheck::Inconsistent(mismatch), Amount::ZERO))
    );
    let claims = [claim(0, at(0, 0), 1, DAVE)];
    assert_refused(
        &mut c,
        2,
        &claims,
        &proof_of(&claims, 2),
        SettlementError::PlanNotConsistent(SequenceId(0)),
    );
}

#[test]
fn a_plan_whose_job_count_differs_from_the_root_owes_nothing() {
    // Five jobs with the root's 99 units: the units agree, the count does not.
    let jobs = vec![
        job(0, 0, 39),
        job(1, 0, 30),
        job(1, 1, 10),
        job(2, 0, 10),
        job(2, 1, 10),
    ];
    let mut c = planned(jobs);
    let events = finalize(&mut c, 0, F);
    assert!(events.contains(&SettlementEvent::ProverPlanInconsistent {
        sequence: SequenceId(0),
        mismatch: PlanMismatch::Jobs {
            planned: 5,
            proved: 6
        },
    }));
    assert_eq!(owed_and_paid(&c, 0), (0, 0));
}

#[test]
fn an_empty_plan_owes_nothing_and_says_nothing() {
    let mut c = finalized();
    let events = finalize(&mut c, 1, F + T1 + 1);
    assert!(finalizes_first(&events, 1));
    assert_eq!(events.len(), 2, "finalized and the sender paid: {events:?}");
    assert_eq!(owed_and_paid(&c, 1), (0, 0));
    let claims = [claim(1, at(0, 0), 1, DAVE)];
    assert_refused(
        &mut c,
        2,
        &claims,
        &proof_of(&claims, 2),
        SettlementError::PlanNotConsistent(SequenceId(1)),
    );
}

// ---- claim batches ----

#[test]
fn claims_pay_each_exit_its_units_times_the_rate() {
    let mut c = finalized();
    let claims = [
        claim(0, at(0, 0), 1, DAVE),
        claim(0, at(1, 1), 2, ERIN),
        claim(0, at(2, 2), 3, DAVE),
    ];
    let (credits, events) = pay(&mut c, &claims).unwrap();
    let credited: Vec<_> = credits.iter().map(|c| (c.account, c.amount.0)).collect();
    assert_eq!(
        credited,
        [(DAVE, 30 * RATE), (ERIN, 9 * RATE), (DAVE, 10 * RATE)]
    );
    assert_eq!(
        events[1],
        SettlementEvent::ClaimPaid {
            sequence: SequenceId(0),
            position: at(1, 1),
            exit: ERIN,
            amount: Amount(9 * RATE),
            nullifier: claims[1].nullifier,
        }
    );
    assert_eq!(events.len(), 3);
    assert_eq!(owed_and_paid(&c, 0), (99 * RATE, 49 * RATE));
    let nullifiers: Vec<_> = claims.iter().map(|e| e.nullifier).collect();
    let unspent = Digest([9, 9, 9, 9]);
    assert_eq!(
        c.nullifiers_spent(&[nullifiers[0], unspent, nullifiers[2]]),
        [true, false, true]
    );
}

#[test]
fn claim_rejects_an_empty_batch() {
    let mut c = finalized();
    assert_refused(
        &mut c,
        2,
        &[],
        &proof(0, 1),
        SettlementError::EmptyClaimBatch,
    );
}

#[test]
fn claim_rejects_more_claims_than_a_batch_holds() {
    let mut c = finalized();
    let claims: Vec<_> = (0..=MAX_CLAIMS_PER_BATCH as u64)
        .map(|n| claim(0, at(0, 0), n, DAVE))
        .collect();
    assert_refused(
        &mut c,
        2,
        &claims,
        &proof_of(&claims, 2),
        SettlementError::TooManyClaims {
            claims: MAX_CLAIMS_PER_BATCH + 1,
            max: MAX_CLAIMS_PER_BATCH,
        },
    );
}

#[test]
fn claim_rejects_an_arity_out_of_range() {
    let mut c = finalized();
    let claims = [claim(0, at(0, 0), 1, DAVE)];
    for arity in [MIN_CLAIM_ARITY - 1, MAX_CLAIM_ARITY + 1] {
        assert_refused(
            &mut c,
            arity,
            &claims,
            &proof_of(&claims, 2),
            SettlementError::InvalidClaimArity(arity),
        );
    }
}

#[test]
fn claim_rejects_an_unknown_sequence() {
    let mut c = finalized();
    let claims = [claim(0, at(0, 0), 1, DAVE), claim(2, at(0, 0), 2, DAVE)];
    assert_refused(
        &mut c,
        2,
        &claims,
        &proof_of(&claims, 2),
        SettlementError::UnknownSequence(SequenceId(2)),
    );
}

#[test]
fn claim_rejects_an_unfinalized_sequence() {
    let mut c = planned(plan());
    let claims = [claim(0, at(0, 0), 1, DAVE)];
    assert_refused(
        &mut c,
        2,
        &claims,
        &proof_of(&claims, 2),
        SettlementError::SequenceNotFinalized(SequenceId(0)),
    );
}

#[test]
fn claim_rejects_a_position_not_in_the_plan() {
    let mut c = finalized();
    let claims = [claim(0, at(2, 3), 1, DAVE)];
    assert_refused(
        &mut c,
        2,
        &claims,
        &proof_of(&claims, 2),
        SettlementError::UnplannedPosition {
            sequence: SequenceId(0),
            position: at(2, 3),
        },
    );
}

#[test]
fn claim_rejects_a_nullifier_spent_by_an_earlier_batch() {
    let mut c = finalized();
    pay(&mut c, &[claim(0, at(0, 0), 1, DAVE)]).unwrap();
    // The same nullifier again, even for another position and exit.
    let claims = [claim(0, at(1, 0), 2, DAVE), claim(0, at(1, 1), 1, ERIN)];
    assert_refused(
        &mut c,
        2,
        &claims,
        &proof_of(&claims, 2),
        SettlementError::NullifierSpent(claims[1].nullifier),
    );
}

#[test]
fn claim_rejects_a_nullifier_twice_in_one_batch() {
    let mut c = finalized();
    let claims = [claim(0, at(1, 0), 7, DAVE), claim(0, at(1, 1), 7, DAVE)];
    assert_refused(
        &mut c,
        2,
        &claims,
        &proof_of(&claims, 2),
        SettlementError::DuplicateNullifier(claims[0].nullifier),
    );
}

#[test]
fn claim_rejects_entries_other_than_the_proved_ones() {
    let mut c = finalized();
    let proved = [claim(0, at(2, 0), 1, DAVE), claim(0, at(2, 1), 2, DAVE)];
    let proof = proof_of(&proved, 2);
    let mut other_position = proved;
    other_position[0].position = at(0, 0); // planned, and worth more
    let mut other_exit = proved;
    other_exit[1].exit = ERIN;
    let mut other_nullifier = proved;
    other_nullifier[1].nullifier = Digest([3, 0xC1A1, 0, 0]);
    let mut other_order = proved;
    other_order.swap(0, 1);
    for listed in [other_position, other_exit, other_nullifier, other_order] {
        assert_refused(
            &mut c,
            2,
            &listed,
            &proof,
            SettlementError::ClaimStatementMismatch {
                expected: batch_on(COMMITMENT, &listed, 2),
                got: batch_on(COMMITMENT, &proved, 2),
            },
        );
    }
    // The proved entries themselves are paid.
    c.claim_rewards(2, &proved, &proof).unwrap();
}

#[test]
fn claim_rejects_a_claim_on_another_root() {
    // A claim proved on a root other than the one the chain finalized does not match.
    let mut c = finalized();
    let claims = [claim(0, at(0, 0), 1, DAVE)];
    let got = batch_on(Digest([8, 8, 8, 8]), &claims, 2);
    assert_refused(
        &mut c,
        2,
        &claims,
        &stub_proof(got),
        SettlementError::ClaimStatementMismatch {
            expected: batch_on(COMMITMENT, &claims, 2),
            got,
        },
    );
}

#[test]
fn claim_rejects_a_proof_that_does_not_verify() {
    let mut c = finalized();
    let claims = [claim(0, at(0, 0), 1, DAVE)];
    assert_refused(
        &mut c,
        2,
        &claims,
        b"not a proof",
        SettlementError::InvalidClaimProof("not a root proof".into()),
    );
}

#[test]
fn claims_never_pay_a_sequence_more_than_it_owes() {
    // Positions are paid once by their nullifier; should a plan let one position be claimed
    // under several nullifiers, the sequence's total still bounds what is paid.
    let mut c = finalized();
    for n in 1..=3 {
        pay(&mut c, &[claim(0, at(0, 0), n, DAVE)]).unwrap();
    }
    assert_eq!(owed_and_paid(&c, 0), (99 * RATE, 90 * RATE));
    let claims = [claim(0, at(0, 0), 4, DAVE)];
    assert_refused(
        &mut c,
        2,
        &claims,
        &proof_of(&claims, 2),
        SettlementError::ClaimExceedsOwed {
            sequence: SequenceId(0),
            owed: Amount(99 * RATE),
            paid: Amount(90 * RATE),
            amount: Amount(30 * RATE),
        },
    );
    // Within one batch too.
    let mut c = finalized();
    let claims: Vec<_> = (1..=4).map(|n| claim(0, at(0, 0), n, DAVE)).collect();
    assert_refused(
        &mut c,
        2,
        &claims,
        &proof_of(&claims, 2),
        SettlementError::ClaimExceedsOwed {
            sequence: SequenceId(0),
            owed: Amount(99 * RATE),
            paid: Amount::ZERO,
            amount: Amount(120 * RATE),
        },
    );
}

#[test]
fn a_state_written_before_prover_rewards_still_loads() {
    let mut c = finalized();
    pay(&mut c, &[claim(0, at(0, 0), 1, DAVE)]).unwrap();
    let mut json = serde_json::to_value(c.state()).unwrap();
    json["params"]
        .as_object_mut()
        .unwrap()
        .remove("prover_reward_per_unit");
    json.as_object_mut().unwrap().remove("spent_nullifiers");
    for seq in json["sequences"].as_array_mut().unwrap() {
        let seq = seq.as_object_mut().unwrap();
        seq.remove("jobs");
        seq.remove("prover_rewards");
    }
    let old: SettlementState = serde_json::from_value(json).unwrap();
    assert_eq!(
        old.params.prover_reward_per_unit,
        settlement::DEFAULT_PROVER_REWARD_PER_UNIT
    );
    assert!(old.spent_nullifiers.is_empty());
    // A sequence finalized before prover rewards owes nothing.
    let mut c = SettlementContract::from_state(old, StubVerifier);
    let claims = [claim(0, at(1, 0), 2, DAVE)];
    assert_refused(
        &mut c,
        2,
        &claims,
        &proof_of(&claims, 2),
        SettlementError::PlanNotConsistent(SequenceId(0)),
    );
}
