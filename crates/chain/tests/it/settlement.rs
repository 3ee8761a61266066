//! Settlement contract tests: the two-step window block by block, reopening, rewards,
//! front-running and penalties. Most use a stand-in verifier; one runs a real root proof through
//! the real final key.

use std::path::PathBuf;
use std::sync::OnceLock;

use sheaf_chain::settlement::{
    self, proof_hash, Address, Amount, PenaltyReason, RootVerifier, SequenceId, SettlementContract,
    SettlementError, SettlementEvent, SettlementParams, SettlementState,
    DEFAULT_HASH_WINDOW_BLOCKS, DEFAULT_PROOF_WINDOW_BLOCKS,
};
use sheaf_circuits::{
    AggregationSettings, ArtifactCache, CircuitSet, Digest, FinalKey, Header, JobStats, Profile,
};

// The amounts in base units, as the assertions count them.
const DEFAULT_MIN_STAKE: u128 = settlement::DEFAULT_MIN_STAKE.0;
const DEFAULT_NO_REVEAL_PENALTY: u128 = settlement::DEFAULT_NO_REVEAL_PENALTY.0;
const DEFAULT_REWARD_PER_SEQUENCE: u128 = settlement::DEFAULT_REWARD_PER_SEQUENCE.0;
const DEFAULT_WRONG_HASH_PENALTY: u128 = settlement::DEFAULT_WRONG_HASH_PENALTY.0;
const UNIT: u128 = settlement::UNIT.0;
const T1: u64 = DEFAULT_HASH_WINDOW_BLOCKS;
const T2: u64 = DEFAULT_PROOF_WINDOW_BLOCKS;
/// The block of the first hash in most tests.
const F: u64 = 100;
const COORDINATOR: Address = Address([0xC0; 32]);
const ALICE: Address = Address([1; 32]);
const BOB: Address = Address([2; 32]);
const CAROL: Address = Address([3; 32]);

const COMMITMENT: Digest = Digest([7, 7, 7, 7]);
const STATS: JobStats = JobStats {
    leaf_jobs: 3,
    aggregation_jobs: 3,
    work_units: 99,
};

/// Accepts `b"root" ‖ statement` (plus any suffix) as a root proof of that statement.
#[derive(Debug)]
struct StubVerifier;

impl RootVerifier for StubVerifier {
    fn verify(&self, proof: &[u8]) -> Result<Header, String> {
        let statement = proof
            .strip_prefix(b"root")
            .and_then(|rest| rest.get(..32))
            .and_then(|bytes| Digest::from_bytes(bytes.try_into().unwrap()))
            .ok_or("not a root proof")?;
        Ok(Header {
            commitment: COMMITMENT,
            worker_pk: Digest([1, 2, 3, 4]),
            stats: STATS,
            statement,
        })
    }
}

fn statement(sequence: u64) -> Digest {
    Digest([sequence + 1, 42, 0, 0])
}

/// A valid stub proof of `sequence`; `nonce` tells apart proofs of the same sequence.
fn proof(sequence: u64, nonce: u8) -> Vec<u8> {
    let mut bytes = b"root".to_vec();
    bytes.extend_from_slice(&statement(sequence).to_bytes());
    bytes.push(nonce);
    bytes
}

/// A contract with `sequences` registered and Alice, Bob and Carol staked with the minimum.
fn contract(sequences: u64) -> SettlementContract<StubVerifier> {
    let mut c =
        SettlementContract::new(SettlementParams::default(), COORDINATOR, StubVerifier).unwrap();
    for s in 0..sequences {
        c.register_sequence(&COORDINATOR, SequenceId(s), statement(s))
            .unwrap();
    }
    for sender in [ALICE, BOB, CAROL] {
        c.deposit_stake(&sender, Amount(DEFAULT_MIN_STAKE));
    }
    c
}

fn commit<V: RootVerifier>(
    c: &mut SettlementContract<V>,
    sender: &Address,
    sequence: u64,
    proof: &[u8],
    block: u64,
) -> Result<Vec<SettlementEvent>, SettlementError> {
    c.submit_proof_hash(
        sender,
        SequenceId(sequence),
        proof_hash(proof, sender),
        block,
    )
}

fn paid(events: &[SettlementEvent]) -> Vec<(Address, u128)> {
    events
        .iter()
        .filter_map(|e| match e {
            SettlementEvent::SenderPaid { sender, amount, .. } => Some((*sender, amount.0)),
            _ => None,
        })
        .collect()
}

fn penalties(events: &[SettlementEvent]) -> Vec<(Address, PenaltyReason, u128)> {
    events
        .iter()
        .filter_map(|e| match e {
            SettlementEvent::SenderPenalized {
                sender,
                reason,
                amount,
                ..
            } => Some((*sender, reason.clone(), amount.0)),
            _ => None,
        })
        .collect()
}

// ---- parameters and registration ----

#[test]
fn new_rejects_an_empty_hash_phase() {
    let params = SettlementParams {
        hash_window_blocks: 0,
        ..SettlementParams::default()
    };
    let err = SettlementContract::new(params, COORDINATOR, StubVerifier).unwrap_err();
    assert!(matches!(err, SettlementError::InvalidParameters(_)));
}

#[test]
fn new_rejects_an_empty_proof_phase() {
    let params = SettlementParams {
        proof_window_blocks: 0,
        ..SettlementParams::default()
    };
    let err = SettlementContract::new(params, COORDINATOR, StubVerifier).unwrap_err();
    assert!(matches!(err, SettlementError::InvalidParameters(_)));
}

#[test]
fn register_sequence_rejects_other_callers() {
    let mut c = contract(0);
    assert_eq!(
        c.register_sequence(&ALICE, SequenceId(0), statement(0)),
        Err(SettlementError::NotCoordinator)
    );
}

#[test]
fn register_sequence_rejects_sequences_out_of_order() {
    let mut c = contract(1);
    assert_eq!(
        c.register_sequence(&COORDINATOR, SequenceId(2), statement(2)),
        Err(SettlementError::SequenceOutOfOrder {
            expected: SequenceId(1),
            got: SequenceId(2)
        })
    );
}

#[test]
fn first_registration_fixes_the_numbering() {
    let mut c = contract(0);
    c.register_sequence(&COORDINATOR, SequenceId(5), statement(5))
        .unwrap();
    assert_eq!(c.state().first_sequence, SequenceId(5));
    assert_eq!(c.state().next_to_finalize, SequenceId(5));
    assert_eq!(c.state().next_sequence(), SequenceId(6));
    assert_eq!(
        c.register_sequence(&COORDINATOR, SequenceId(7), statement(7)),
        Err(SettlementError::SequenceOutOfOrder {
            expected: SequenceId(6),
            got: SequenceId(7)
        })
    );
    c.register_sequence(&COORDINATOR, SequenceId(6), statement(6))
        .unwrap();
    // Numbers below the first are unknown; 5 and 6 settle as usual.
    assert_eq!(
        commit(&mut c, &ALICE, 4, &proof(4, 1), F),
        Err(SettlementError::UnknownSequence(SequenceId(4)))
    );
    commit(&mut c, &ALICE, 5, &proof(5, 1), F).unwrap();
    let events = c
        .submit_proof(&ALICE, SequenceId(5), &proof(5, 1), F + T1)
        .unwrap();
    assert!(events.iter().any(|e| matches!(
        e,
        SettlementEvent::SequenceFinalized {
            sequence: SequenceId(5),
            ..
        }
    )));
    assert_eq!(c.state().next_to_finalize, SequenceId(6));
    assert!(c.finalized(SequenceId(5)).is_some());
    assert!(c.finalized(SequenceId(6)).is_none());
}

// ---- hash phase ----

#[test]
fn first_hash_opens_the_window() {
    let mut c = contract(1);
    let events = commit(&mut c, &ALICE, 0, &proof(0, 1), F).unwrap();
    assert_eq!(
        events[0],
        SettlementEvent::WindowOpened {
            sequence: SequenceId(0),
            block: F,
            reopened: false
        }
    );
    assert!(matches!(
        events[1],
        SettlementEvent::ProofHashSubmitted {
            sequence: SequenceId(0),
            stake: Amount(DEFAULT_MIN_STAKE),
            ..
        }
    ));
}

#[test]
fn hash_is_accepted_in_the_last_block_of_the_hash_phase() {
    let mut c = contract(1);
    commit(&mut c, &ALICE, 0, &proof(0, 1), F).unwrap();
    let events = commit(&mut c, &BOB, 0, &proof(0, 2), F + T1 - 1).unwrap();
    assert!(matches!(
        events[..],
        [SettlementEvent::ProofHashSubmitted { .. }]
    ));
}

#[test]
fn hash_is_refused_in_the_first_block_of_the_proof_phase() {
    let mut c = contract(1);
    commit(&mut c, &ALICE, 0, &proof(0, 1), F).unwrap();
    assert_eq!(
        commit(&mut c, &BOB, 0, &proof(0, 2), F + T1),
        Err(SettlementError::HashWindowClosed {
            sequence: SequenceId(0),
            closed_at: F + T1
        })
    );
}

#[test]
fn hash_is_refused_in_the_last_block_of_the_proof_phase() {
    let mut c = contract(1);
    commit(&mut c, &ALICE, 0, &proof(0, 1), F).unwrap();
    assert_eq!(
        commit(&mut c, &BOB, 0, &proof(0, 2), F + T1 + T2 - 1),
        Err(SettlementError::HashWindowClosed {
            sequence: SequenceId(0),
            closed_at: F + T1
        })
    );
}

#[test]
fn hash_is_refused_for_an_unknown_sequence() {
    let mut c = contract(1);
    assert_eq!(
        commit(&mut c, &ALICE, 1, &proof(1, 1), F),
        Err(SettlementError::UnknownSequence(SequenceId(1)))
    );
}

#[test]
fn hash_is_refused_below_the_minimum_stake() {
    let mut c = contract(1);
    let poor = Address([9; 32]);
    c.deposit_stake(&poor, Amount(DEFAULT_MIN_STAKE - 1));
    assert_eq!(
        commit(&mut c, &poor, 0, &proof(0, 1), F),
        Err(SettlementError::InsufficientStake {
            stake: Amount(DEFAULT_MIN_STAKE - 1),
            min_stake: Amount(DEFAULT_MIN_STAKE)
        })
    );
}

#[test]
fn one_hash_per_sender_per_window() {
    let mut c = contract(1);
    commit(&mut c, &ALICE, 0, &proof(0, 1), F).unwrap();
    assert_eq!(
        commit(&mut c, &ALICE, 0, &proof(0, 2), F + 1),
        Err(SettlementError::DuplicateProofHash(SequenceId(0)))
    );
}

#[test]
fn hash_is_refused_for_a_finalized_sequence() {
    let mut c = contract(1);
    commit(&mut c, &ALICE, 0, &proof(0, 1), F).unwrap();
    c.submit_proof(&ALICE, SequenceId(0), &proof(0, 1), F + T1)
        .unwrap();
    assert_eq!(
        commit(&mut c, &BOB, 0, &proof(0, 2), F + T1 + T2),
        Err(SettlementError::SequenceAlreadyFinalized(SequenceId(0)))
    );
}

#[test]
fn blocks_going_backwards_are_refused() {
    let mut c = contract(1);
    commit(&mut c, &ALICE, 0, &proof(0, 1), F).unwrap();
    assert_eq!(
        commit(&mut c, &BOB, 0, &proof(0, 2), F - 1),
        Err(SettlementError::BlockWentBackwards {
            block: F - 1,
            last: F
        })
    );
}

// ---- proof phase ----

#[test]
fn proof_is_refused_in_the_last_block_of_the_hash_phase() {
    let mut c = contract(1);
    commit(&mut c, &ALICE, 0, &proof(0, 1), F).unwrap();
    assert_eq!(
        c.submit_proof(&ALICE, SequenceId(0), &proof(0, 1), F + T1 - 1),
        Err(SettlementError::ProofTooEarly {
            sequence: SequenceId(0),
            opens_at: F + T1
        })
    );
}

#[test]
fn proof_is_accepted_in_the_first_block_of_the_proof_phase() {
    let mut c = contract(1);
    commit(&mut c, &ALICE, 0, &proof(0, 1), F).unwrap();
    let events = c
        .submit_proof(&ALICE, SequenceId(0), &proof(0, 1), F + T1)
        .unwrap();
    assert!(matches!(
        events[0],
        SettlementEvent::SequenceFinalized {
            sequence: SequenceId(0),
            ..
        }
    ));
}

#[test]
fn proof_is_accepted_in_the_last_block_of_the_proof_phase() {
    let mut c = contract(1);
    commit(&mut c, &ALICE, 0, &proof(0, 1), F).unwrap();
    let events = c
        .submit_proof(&ALICE, SequenceId(0), &proof(0, 1), F + T1 + T2 - 1)
        .unwrap();
    assert!(matches!(
        events[0],
        SettlementEvent::SequenceFinalized {
            sequence: SequenceId(0),
            ..
        }
    ));
}

#[test]
fn proof_is_refused_after_the_proof_phase() {
    let mut c = contract(1);
    commit(&mut c, &ALICE, 0, &proof(0, 1), F).unwrap();
    assert_eq!(
        c.submit_proof(&ALICE, SequenceId(0), &proof(0, 1), F + T1 + T2),
        Err(SettlementError::ProofTooLate {
            sequence: SequenceId(0),
            closed_at: F + T1 + T2
        })
    );
}

#[test]
fn proof_is_refused_for_an_unknown_sequence() {
    let mut c = contract(1);
    assert_eq!(
        c.submit_proof(&ALICE, SequenceId(1), &proof(1, 1), F),
        Err(SettlementError::UnknownSequence(SequenceId(1)))
    );
}

#[test]
fn proof_is_refused_before_any_hash() {
    let mut c = contract(1);
    assert_eq!(
        c.submit_proof(&ALICE, SequenceId(0), &proof(0, 1), F),
        Err(SettlementError::WindowNotOpen(SequenceId(0)))
    );
}

#[test]
fn proof_is_refused_from_a_sender_without_a_hash() {
    let mut c = contract(1);
    commit(&mut c, &ALICE, 0, &proof(0, 1), F).unwrap();
    assert_eq!(
        c.submit_proof(&BOB, SequenceId(0), &proof(0, 2), F + T1),
        Err(SettlementError::NoProofHash(SequenceId(0)))
    );
}

#[test]
fn proof_is_refused_when_already_revealed() {
    let mut c = contract(1);
    commit(&mut c, &ALICE, 0, &proof(0, 1), F).unwrap();
    c.submit_proof(&ALICE, SequenceId(0), &proof(0, 1), F + T1)
        .unwrap();
    assert_eq!(
        c.submit_proof(&ALICE, SequenceId(0), &proof(0, 1), F + T1 + 1),
        Err(SettlementError::AlreadyRevealed(SequenceId(0)))
    );
}

#[test]
fn proof_is_refused_while_the_previous_sequence_is_not_finalized() {
    let mut c = contract(2);
    commit(&mut c, &ALICE, 1, &proof(1, 1), F).unwrap();
    assert_eq!(
        c.submit_proof(&ALICE, SequenceId(1), &proof(1, 1), F + T1),
        Err(SettlementError::PreviousSequenceNotFinalized {
            sequence: SequenceId(1),
            next: SequenceId(0)
        })
    );
}

// ---- finalization ----

#[test]
fn first_valid_proof_finalizes_and_records_commitment_and_stats() {
    let mut c = contract(1);
    commit(&mut c, &ALICE, 0, &proof(0, 1), F).unwrap();
    commit(&mut c, &BOB, 0, &proof(0, 2), F + 1).unwrap();
    c.submit_proof(&ALICE, SequenceId(0), &proof(0, 1), F + T1)
        .unwrap();
    let events = c
        .submit_proof(&BOB, SequenceId(0), &proof(0, 2), F + T1 + 1)
        .unwrap();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, SettlementEvent::SequenceFinalized { .. })),
        "only the first valid proof finalizes"
    );
    let record = c.finalized(SequenceId(0)).unwrap();
    assert_eq!(record.commitment, COMMITMENT);
    assert_eq!(record.stats, STATS);
    assert_eq!(record.statement, statement(0));
    assert_eq!(record.sender, ALICE);
    assert_eq!(record.block, F + T1);
}

#[test]
fn sequences_finalize_in_order() {
    let mut c = contract(2);
    commit(&mut c, &ALICE, 0, &proof(0, 1), F).unwrap();
    commit(&mut c, &ALICE, 1, &proof(1, 1), F + 1).unwrap();
    c.submit_proof(&ALICE, SequenceId(0), &proof(0, 1), F + T1)
        .unwrap();
    c.submit_proof(&ALICE, SequenceId(1), &proof(1, 1), F + T1 + 1)
        .unwrap();
    assert_eq!(c.state().next_to_finalize, SequenceId(2));
    assert!(c.finalized(SequenceId(0)).is_some() && c.finalized(SequenceId(1)).is_some());
}

// ---- reopening ----

#[test]
fn window_with_no_valid_proof_reopens_with_the_next_hash() {
    let mut c = contract(1);
    commit(&mut c, &ALICE, 0, &proof(0, 1), F).unwrap();
    c.submit_proof(&ALICE, SequenceId(0), b"garbage", F + T1)
        .unwrap();
    let reopen = F + T1 + T2;
    let events = commit(&mut c, &BOB, 0, &proof(0, 2), reopen).unwrap();
    assert_eq!(
        events[0],
        SettlementEvent::WindowOpened {
            sequence: SequenceId(0),
            block: reopen,
            reopened: true
        }
    );
    // The new window has its own phases, and its own committers.
    assert_eq!(
        c.submit_proof(&BOB, SequenceId(0), &proof(0, 2), reopen + T1 - 1),
        Err(SettlementError::ProofTooEarly {
            sequence: SequenceId(0),
            opens_at: reopen + T1
        })
    );
    let events = c
        .submit_proof(&BOB, SequenceId(0), &proof(0, 2), reopen + T1)
        .unwrap();
    assert!(matches!(
        events[0],
        SettlementEvent::SequenceFinalized {
            sequence: SequenceId(0),
            ..
        }
    ));
    assert_eq!(
        paid(&events),
        vec![(BOB, DEFAULT_REWARD_PER_SEQUENCE)],
        "the stakes of the closed window no longer count"
    );
}

#[test]
fn a_sender_may_commit_again_in_a_reopened_window() {
    let mut c = contract(1);
    commit(&mut c, &ALICE, 0, &proof(0, 1), F).unwrap();
    let reopen = F + T1 + T2;
    commit(&mut c, &ALICE, 0, &proof(0, 1), reopen).unwrap();
    let events = c
        .submit_proof(&ALICE, SequenceId(0), &proof(0, 1), reopen + T1)
        .unwrap();
    assert_eq!(paid(&events), vec![(ALICE, DEFAULT_REWARD_PER_SEQUENCE)]);
}

#[test]
fn hash_of_a_closed_window_cannot_be_revealed_in_the_reopened_one() {
    let mut c = contract(1);
    commit(&mut c, &ALICE, 0, &proof(0, 1), F).unwrap();
    let reopen = F + T1 + T2;
    commit(&mut c, &BOB, 0, &proof(0, 2), reopen).unwrap();
    assert_eq!(
        c.submit_proof(&ALICE, SequenceId(0), &proof(0, 1), reopen + T1),
        Err(SettlementError::NoProofHash(SequenceId(0)))
    );
}

// ---- rewards ----

#[test]
fn two_honest_senders_are_both_paid_pro_rata_to_stake() {
    let mut c = contract(1);
    c.deposit_stake(&BOB, Amount(2 * DEFAULT_MIN_STAKE)); // Bob stakes 3×, Alice 1×
    commit(&mut c, &ALICE, 0, &proof(0, 1), F).unwrap();
    commit(&mut c, &BOB, 0, &proof(0, 2), F + T1 - 1).unwrap();
    let alice = c
        .submit_proof(&ALICE, SequenceId(0), &proof(0, 1), F + T1)
        .unwrap();
    let bob = c
        .submit_proof(&BOB, SequenceId(0), &proof(0, 2), F + T1 + 1)
        .unwrap();
    assert_eq!(paid(&alice), vec![(ALICE, DEFAULT_REWARD_PER_SEQUENCE / 4)]);
    assert_eq!(paid(&bob), vec![(BOB, DEFAULT_REWARD_PER_SEQUENCE * 3 / 4)]);
    assert_eq!(
        c.account(&BOB).rewards.0,
        DEFAULT_REWARD_PER_SEQUENCE * 3 / 4
    );
}

#[test]
fn rewards_follow_the_reference_example() {
    // REFERENCE §1.5: 2 per sequence, stakes 200K/500K/300K earn 0.4/1/0.6.
    let mut c = contract(1);
    for (sender, stake) in [(ALICE, 200_000), (BOB, 500_000), (CAROL, 300_000)] {
        c.deposit_stake(&sender, Amount(stake * UNIT - DEFAULT_MIN_STAKE));
    }
    for (i, sender) in [ALICE, BOB, CAROL].iter().enumerate() {
        commit(&mut c, sender, 0, &proof(0, i as u8), F).unwrap();
    }
    let mut rewards = Vec::new();
    for (i, sender) in [ALICE, BOB, CAROL].iter().enumerate() {
        let events = c
            .submit_proof(sender, SequenceId(0), &proof(0, i as u8), F + T1)
            .unwrap();
        rewards.extend(paid(&events));
    }
    assert_eq!(
        rewards,
        vec![(ALICE, 4 * UNIT / 10), (BOB, UNIT), (CAROL, 6 * UNIT / 10)]
    );
}

#[test]
fn claimed_rewards_are_paid_out_once() {
    let mut c = contract(1);
    commit(&mut c, &ALICE, 0, &proof(0, 1), F).unwrap();
    c.submit_proof(&ALICE, SequenceId(0), &proof(0, 1), F + T1)
        .unwrap();
    assert_eq!(c.claim_rewards(&ALICE).0 .0, DEFAULT_REWARD_PER_SEQUENCE);
    assert_eq!(c.claim_rewards(&ALICE).0, Amount::ZERO);
}

// ---- front-running ----

#[test]
fn copier_cannot_commit_to_a_revealed_proof() {
    let mut c = contract(1);
    commit(&mut c, &ALICE, 0, &proof(0, 1), F).unwrap();
    // Bob sees Alice's reveal pending for block F+T1 and races to commit to its proof in the
    // same block: the hash phase is over.
    assert_eq!(
        commit(&mut c, &BOB, 0, &proof(0, 1), F + T1),
        Err(SettlementError::HashWindowClosed {
            sequence: SequenceId(0),
            closed_at: F + T1
        })
    );
    c.submit_proof(&ALICE, SequenceId(0), &proof(0, 1), F + T1)
        .unwrap();
    assert_eq!(
        c.submit_proof(&BOB, SequenceId(0), &proof(0, 1), F + T1),
        Err(SettlementError::NoProofHash(SequenceId(0)))
    );
    assert_eq!(c.account(&BOB).rewards.0, 0);
}

#[test]
fn copier_with_a_hash_of_its_own_gets_nothing_and_is_penalized() {
    let mut c = contract(1);
    commit(&mut c, &ALICE, 0, &proof(0, 1), F).unwrap();
    // Bob commits to something in the window, hoping to swap in whatever Alice reveals.
    c.submit_proof_hash(&BOB, SequenceId(0), [0xAB; 32], F + 1)
        .unwrap();
    c.submit_proof(&ALICE, SequenceId(0), &proof(0, 1), F + T1)
        .unwrap();
    let events = c
        .submit_proof(&BOB, SequenceId(0), &proof(0, 1), F + T1)
        .unwrap();
    assert!(paid(&events).is_empty());
    assert_eq!(
        penalties(&events),
        vec![(BOB, PenaltyReason::WrongHash, DEFAULT_WRONG_HASH_PENALTY)]
    );
    assert_eq!(c.account(&BOB).rewards.0, 0);
}

// ---- penalties ----

#[test]
fn wrong_hash_is_penalized() {
    let mut c = contract(1);
    commit(&mut c, &ALICE, 0, &proof(0, 1), F).unwrap();
    let events = c
        .submit_proof(&ALICE, SequenceId(0), &proof(0, 2), F + T1)
        .unwrap();
    assert_eq!(
        penalties(&events),
        vec![(ALICE, PenaltyReason::WrongHash, DEFAULT_WRONG_HASH_PENALTY)]
    );
    assert!(
        c.finalized(SequenceId(0)).is_none(),
        "a wrong hash finalizes nothing"
    );
    assert_eq!(
        c.account(&ALICE).stake.0,
        DEFAULT_MIN_STAKE - DEFAULT_WRONG_HASH_PENALTY
    );
    assert_eq!(c.state().slashed.0, DEFAULT_WRONG_HASH_PENALTY);
}

#[test]
fn invalid_proof_matching_its_hash_is_penalized() {
    let mut c = contract(1);
    commit(&mut c, &ALICE, 0, b"garbage", F).unwrap();
    let events = c
        .submit_proof(&ALICE, SequenceId(0), b"garbage", F + T1)
        .unwrap();
    assert_eq!(
        penalties(&events),
        vec![(
            ALICE,
            PenaltyReason::InvalidProof("not a root proof".into()),
            DEFAULT_WRONG_HASH_PENALTY
        )]
    );
}

#[test]
fn proof_of_another_statement_is_penalized() {
    let mut c = contract(2);
    commit(&mut c, &ALICE, 0, &proof(1, 1), F).unwrap();
    let events = c
        .submit_proof(&ALICE, SequenceId(0), &proof(1, 1), F + T1)
        .unwrap();
    assert_eq!(
        penalties(&events),
        vec![(
            ALICE,
            PenaltyReason::WrongStatement {
                expected: statement(0),
                got: statement(1)
            },
            DEFAULT_WRONG_HASH_PENALTY
        )]
    );
    assert!(c.finalized(SequenceId(0)).is_none());
}

#[test]
fn hash_never_revealed_is_penalized_lazily_after_its_deadline() {
    let mut c = contract(1);
    commit(&mut c, &ALICE, 0, &proof(0, 1), F).unwrap();
    // REFERENCE §1.5: due once `block − hash_block > T1 + T2`.
    assert_eq!(c.settle(&ALICE, F + T1 + T2).unwrap(), vec![]);
    let events = c.settle(&ALICE, F + T1 + T2 + 1).unwrap();
    assert_eq!(
        penalties(&events),
        vec![(
            ALICE,
            PenaltyReason::NeverRevealed,
            DEFAULT_NO_REVEAL_PENALTY
        )]
    );
    assert_eq!(c.settle(&ALICE, F + T1 + T2 + 2).unwrap(), vec![]);
}

#[test]
fn hash_never_revealed_is_penalized_when_the_sender_next_commits() {
    let mut c = contract(2);
    c.deposit_stake(&ALICE, Amount(DEFAULT_NO_REVEAL_PENALTY));
    commit(&mut c, &ALICE, 0, &proof(0, 1), F).unwrap();
    let events = commit(&mut c, &ALICE, 1, &proof(1, 1), F + T1 + T2 + 1).unwrap();
    assert_eq!(
        penalties(&events),
        vec![(
            ALICE,
            PenaltyReason::NeverRevealed,
            DEFAULT_NO_REVEAL_PENALTY
        )]
    );
    assert!(matches!(
        events.last(),
        Some(SettlementEvent::ProofHashSubmitted {
            stake: Amount(DEFAULT_MIN_STAKE),
            ..
        })
    ));
}

#[test]
fn stake_is_locked_while_a_hash_is_unsettled() {
    let mut c = contract(1);
    commit(&mut c, &ALICE, 0, &proof(0, 1), F).unwrap();
    assert_eq!(
        c.withdraw_stake(&ALICE, Amount(1), F + 1),
        Err(SettlementError::StakeLocked { pending: 1 })
    );
}

#[test]
fn withdrawal_cannot_exceed_the_stake() {
    let mut c = contract(1);
    assert_eq!(
        c.withdraw_stake(&ALICE, Amount(DEFAULT_MIN_STAKE + 1), F),
        Err(SettlementError::WithdrawalExceedsStake {
            amount: Amount(DEFAULT_MIN_STAKE + 1),
            stake: Amount(DEFAULT_MIN_STAKE)
        })
    );
}

#[test]
fn stake_is_withdrawn_after_penalties_due() {
    let mut c = contract(1);
    commit(&mut c, &ALICE, 0, &proof(0, 1), F).unwrap();
    let rest = DEFAULT_MIN_STAKE - DEFAULT_NO_REVEAL_PENALTY;
    let events = c
        .withdraw_stake(&ALICE, Amount(rest), F + T1 + T2 + 1)
        .unwrap();
    assert_eq!(
        penalties(&events),
        vec![(
            ALICE,
            PenaltyReason::NeverRevealed,
            DEFAULT_NO_REVEAL_PENALTY
        )]
    );
    assert_eq!(c.account(&ALICE).stake.0, 0);
}

// ---- state ----

#[test]
fn state_round_trips_through_json() {
    let mut c = contract(2);
    commit(&mut c, &ALICE, 0, &proof(0, 1), F).unwrap();
    commit(&mut c, &BOB, 0, &proof(0, 2), F + 1).unwrap();
    c.submit_proof(&ALICE, SequenceId(0), &proof(0, 1), F + T1)
        .unwrap();
    let json = serde_json::to_string(c.state()).unwrap();
    let state: SettlementState = serde_json::from_str(&json).unwrap();
    assert_eq!(&state, c.state());
    let mut restored = SettlementContract::from_state(state, StubVerifier);
    let events = restored
        .submit_proof(&BOB, SequenceId(0), &proof(0, 2), F + T1 + 1)
        .unwrap();
    assert_eq!(paid(&events), vec![(BOB, DEFAULT_REWARD_PER_SEQUENCE / 2)]);
}

// ---- the real final key ----

pub(crate) fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../circuits/tests/fixtures")
        .join(name)
}

#[derive(serde::Deserialize)]
pub(crate) struct GoldenMeta {
    pub(crate) key_id: String,
    pub(crate) header: Header,
}

/// The final key of the circuits the golden root proof was made with, built once per binary.
pub(crate) fn final_key() -> &'static FinalKey {
    static KEY: OnceLock<FinalKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let settings = AggregationSettings {
            profile: Profile::Standard,
            arity: 2,
            final_zk: false,
        };
        let cache =
            ArtifactCache::new(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sheaf-circuits"));
        CircuitSet::load_or_build(settings, 6, Some(&cache))
            .unwrap()
            .aggregation
            .final_key()
    })
}

#[test]
fn real_root_proof_settles_a_sequence_end_to_end() {
    let key = final_key().clone();
    let bytes = std::fs::read(golden("golden_root.proof")).unwrap();
    let meta: GoldenMeta =
        serde_json::from_str(&std::fs::read_to_string(golden("golden_root.json")).unwrap())
            .unwrap();
    assert_eq!(meta.key_id, key.id().to_string(), "the final key changed");

    let mut c = SettlementContract::new(SettlementParams::default(), COORDINATOR, key).unwrap();
    c.register_sequence(&COORDINATOR, SequenceId(0), meta.header.statement)
        .unwrap();
    c.register_sequence(&COORDINATOR, SequenceId(1), statement(1))
        .unwrap();
    for sender in [ALICE, BOB] {
        c.deposit_stake(&sender, Amount(DEFAULT_MIN_STAKE));
    }
    let mut corrupt = bytes.clone();
    *corrupt.last_mut().unwrap() ^= 1;
    commit(&mut c, &ALICE, 0, &bytes, F).unwrap();
    commit(&mut c, &BOB, 0, &corrupt, F + 1).unwrap();

    let events = c
        .submit_proof(&BOB, SequenceId(0), &corrupt, F + T1)
        .unwrap();
    assert!(matches!(
        penalties(&events)[..],
        [(
            BOB,
            PenaltyReason::InvalidProof(_),
            DEFAULT_WRONG_HASH_PENALTY
        )]
    ));
    let events = c
        .submit_proof(&ALICE, SequenceId(0), &bytes, F + T1)
        .unwrap();
    assert_eq!(
        events[0],
        SettlementEvent::SequenceFinalized {
            sequence: SequenceId(0),
            commitment: meta.header.commitment,
            stats: meta.header.stats,
            sender: ALICE
        }
    );
    assert_eq!(
        paid(&events),
        vec![(ALICE, DEFAULT_REWARD_PER_SEQUENCE / 2)]
    );

    // The same valid proof cannot settle another sequence.
    commit(&mut c, &ALICE, 1, &bytes, F + T1 + 1).unwrap();
    let events = c
        .submit_proof(&ALICE, SequenceId(1), &bytes, F + 2 * T1 + 1)
        .unwrap();
    assert!(matches!(
        penalties(&events)[..],
        [(
            ALICE,
            PenaltyReason::WrongStatement { .. },
            DEFAULT_WRONG_HASH_PENALTY
        )]
    ));
    assert!(c.finalized(SequenceId(1)).is_none());
}
