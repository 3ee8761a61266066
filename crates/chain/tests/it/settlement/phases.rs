//! The two-step window block by block: the hash phase, the proof phase, finalization in order and
//! reopening a window that settled nothing.

use super::*;

#[test]
fn first_hash_opens_the_window() {
    let mut c = contract(1);
    let events = c.commit(&ALICE, 0, &proof(0, 1), F).unwrap();
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

/// Bob's hash after Alice opened the window at `F`: the hash phase is its first `T1` blocks.
#[test]
fn hash_is_accepted_only_in_the_hash_phase() {
    let closed = Err(SettlementError::HashWindowClosed {
        sequence: SequenceId(0),
        closed_at: F + T1,
    });
    let cases = [
        ("the last block of the hash phase", F + T1 - 1, Ok(())),
        ("the first block of the proof phase", F + T1, closed.clone()),
        ("the last block of the proof phase", F + T1 + T2 - 1, closed),
    ];
    for (when, block, expected) in cases {
        let mut c = committed();
        let result = c.commit(&BOB, 0, &proof(0, 2), block);
        match expected {
            Ok(()) => assert!(
                matches!(
                    result.as_deref(),
                    Ok([SettlementEvent::ProofHashSubmitted { .. }])
                ),
                "accepted in {when}"
            ),
            Err(e) => assert_eq!(result, Err(e), "refused in {when}"),
        }
    }
}

/// A refused call: what is wrong with it, the contract, the call (sender, sequence, proof,
/// block) and the error.
type Refusal = (
    &'static str,
    SettlementContract<StubVerifier>,
    (Address, u64, Vec<u8>, u64),
    SettlementError,
);

fn assert_refused<const N: usize>(
    cases: [Refusal; N],
    step: impl Fn(&mut SettlementContract<StubVerifier>, &Address, u64, &[u8], u64) -> Events,
) {
    for (case, mut c, (sender, sequence, proof, block), expected) in cases {
        assert_eq!(
            step(&mut c, &sender, sequence, &proof, block),
            Err(expected),
            "refused {case}"
        );
    }
}

#[test]
fn hash_and_proof_are_refused_for_an_unknown_sequence() {
    let unknown = Err(SettlementError::UnknownSequence(SequenceId(1)));
    assert_eq!(contract(1).commit(&ALICE, 1, &proof(1, 1), F), unknown);
    assert_eq!(contract(1).reveal(&ALICE, 1, &proof(1, 1), F), unknown);
}

#[test]
fn hash_is_refused_out_of_turn() {
    let poor = Address([9; 32]);
    let mut poorly_staked = contract(1);
    poorly_staked.deposit_stake(&poor, Amount(DEFAULT_MIN_STAKE - 1));
    let mut finalized = committed();
    finalized.reveal(&ALICE, 0, &proof(0, 1), F + T1).unwrap();
    let cases = [
        (
            "below the minimum stake",
            poorly_staked,
            (poor, 0, proof(0, 1), F),
            SettlementError::InsufficientStake {
                stake: Amount(DEFAULT_MIN_STAKE - 1),
                min_stake: Amount(DEFAULT_MIN_STAKE),
            },
        ),
        (
            "a second time from the same sender in the window",
            committed(),
            (ALICE, 0, proof(0, 2), F + 1),
            SettlementError::DuplicateProofHash(SequenceId(0)),
        ),
        (
            "for a finalized sequence",
            finalized,
            (BOB, 0, proof(0, 2), F + T1 + T2),
            SettlementError::SequenceAlreadyFinalized(SequenceId(0)),
        ),
        (
            "when blocks go backwards",
            committed(),
            (BOB, 0, proof(0, 2), F - 1),
            SettlementError::BlockWentBackwards {
                block: F - 1,
                last: F,
            },
        ),
    ];
    assert_refused(cases, Steps::commit);
}

/// Alice's reveal of the hash she sent at `F`: the proof phase is the `T2` blocks after the
/// hash phase.
#[test]
fn proof_is_accepted_only_in_the_proof_phase() {
    let cases = [
        (
            "the last block of the hash phase",
            F + T1 - 1,
            Err(SettlementError::ProofTooEarly {
                sequence: SequenceId(0),
                opens_at: F + T1,
            }),
        ),
        ("the first block of the proof phase", F + T1, Ok(())),
        ("the last block of the proof phase", F + T1 + T2 - 1, Ok(())),
        (
            "the first block after the proof phase",
            F + T1 + T2,
            Err(SettlementError::ProofTooLate {
                sequence: SequenceId(0),
                closed_at: F + T1 + T2,
            }),
        ),
    ];
    for (when, block, expected) in cases {
        let mut c = committed();
        let result = c.reveal(&ALICE, 0, &proof(0, 1), block);
        match expected {
            Ok(()) => assert!(finalizes_first(&result.unwrap(), 0), "accepted in {when}"),
            Err(e) => assert_eq!(result, Err(e), "refused in {when}"),
        }
    }
}

#[test]
fn proof_is_refused_out_of_turn() {
    let mut revealed = committed();
    revealed.reveal(&ALICE, 0, &proof(0, 1), F + T1).unwrap();
    let mut second_only = contract(2);
    second_only.commit(&ALICE, 1, &proof(1, 1), F).unwrap();
    let cases = [
        (
            "before any hash",
            contract(1),
            (ALICE, 0, proof(0, 1), F),
            SettlementError::WindowNotOpen(SequenceId(0)),
        ),
        (
            "from a sender without a hash",
            committed(),
            (BOB, 0, proof(0, 2), F + T1),
            SettlementError::NoProofHash(SequenceId(0)),
        ),
        (
            "when already revealed",
            revealed,
            (ALICE, 0, proof(0, 1), F + T1 + 1),
            SettlementError::AlreadyRevealed(SequenceId(0)),
        ),
        (
            "while the previous sequence is not finalized",
            second_only,
            (ALICE, 1, proof(1, 1), F + T1),
            SettlementError::PreviousSequenceNotFinalized {
                sequence: SequenceId(1),
                next: SequenceId(0),
            },
        ),
    ];
    assert_refused(cases, Steps::reveal);
}

#[test]
fn first_valid_proof_finalizes_and_records_commitment_and_stats() {
    let mut c = alice_finalized_bob_pending(1);
    let events = c.reveal(&BOB, 0, &proof(0, 2), F + T1 + 1).unwrap();
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
    c.commit(&ALICE, 0, &proof(0, 1), F).unwrap();
    c.commit(&ALICE, 1, &proof(1, 1), F + 1).unwrap();
    c.reveal(&ALICE, 0, &proof(0, 1), F + T1).unwrap();
    c.reveal(&ALICE, 1, &proof(1, 1), F + T1 + 1).unwrap();
    assert_eq!(c.state().next_to_finalize, SequenceId(2));
    assert!(c.finalized(SequenceId(0)).is_some() && c.finalized(SequenceId(1)).is_some());
}

#[test]
fn window_with_no_valid_proof_reopens_with_the_next_hash() {
    let mut c = committed();
    c.reveal(&ALICE, 0, b"garbage", F + T1).unwrap();
    let reopen = F + T1 + T2;
    let events = c.commit(&BOB, 0, &proof(0, 2), reopen).unwrap();
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
        c.reveal(&BOB, 0, &proof(0, 2), reopen + T1 - 1),
        Err(SettlementError::ProofTooEarly {
            sequence: SequenceId(0),
            opens_at: reopen + T1
        })
    );
    let events = c.reveal(&BOB, 0, &proof(0, 2), reopen + T1).unwrap();
    assert!(finalizes_first(&events, 0));
    assert_eq!(
        paid(&events),
        vec![(BOB, DEFAULT_REWARD_PER_SEQUENCE)],
        "the stakes of the closed window no longer count"
    );
}

#[test]
fn a_sender_may_commit_again_in_a_reopened_window() {
    let mut c = committed();
    let reopen = F + T1 + T2;
    c.commit(&ALICE, 0, &proof(0, 1), reopen).unwrap();
    let events = c.reveal(&ALICE, 0, &proof(0, 1), reopen + T1).unwrap();
    assert_eq!(paid(&events), vec![(ALICE, DEFAULT_REWARD_PER_SEQUENCE)]);
}

#[test]
fn hash_of_a_closed_window_cannot_be_revealed_in_the_reopened_one() {
    let mut c = committed();
    let reopen = F + T1 + T2;
    c.commit(&BOB, 0, &proof(0, 2), reopen).unwrap();
    assert_eq!(
        c.reveal(&ALICE, 0, &proof(0, 1), reopen + T1),
        Err(SettlementError::NoProofHash(SequenceId(0)))
    );
}
