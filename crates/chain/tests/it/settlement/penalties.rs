//! Penalties for a wrong hash, a proof that does not verify or proves another statement, a hash
//! never revealed; the stake they are taken from, locked while a hash is unsettled.

use super::*;

#[test]
fn wrong_hash_is_penalized() {
    let mut c = committed();
    let events = c.reveal(&ALICE, 0, &proof(0, 2), F + T1).unwrap();
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

/// Alice reveals a proof matching her hash that the verifier refuses, or that proves the
/// statement of another sequence.
#[test]
fn proof_that_does_not_prove_the_sequence_is_penalized() {
    let cases = [
        (
            b"garbage".to_vec(),
            PenaltyReason::InvalidProof("not a root proof".into()),
        ),
        (
            proof(1, 1),
            PenaltyReason::WrongStatement {
                expected: statement(0),
                got: statement(1),
            },
        ),
    ];
    for (bytes, reason) in cases {
        let mut c = contract(2);
        c.commit(&ALICE, 0, &bytes, F).unwrap();
        let events = c.reveal(&ALICE, 0, &bytes, F + T1).unwrap();
        assert_eq!(
            penalties(&events),
            vec![(ALICE, reason, DEFAULT_WRONG_HASH_PENALTY)]
        );
        assert!(c.finalized(SequenceId(0)).is_none());
    }
}

#[test]
fn hash_never_revealed_is_penalized_lazily_after_its_deadline() {
    let mut c = committed();
    // REFERENCE §1.5: due once `block − hash_block > T1 + T2`.
    assert_eq!(c.settle(&ALICE, F + T1 + T2).unwrap(), vec![]);
    let events = c.settle(&ALICE, F + T1 + T2 + 1).unwrap();
    assert_eq!(penalties(&events), never_revealed(ALICE));
    assert_eq!(c.settle(&ALICE, F + T1 + T2 + 2).unwrap(), vec![]);
}

/// The penalty a hash never revealed is due is taken when the sender next calls, and a hash
/// it then cannot afford is refused with nothing taken: the stake a sender sees must already
/// be net of it, or a sender at the minimum sends refused hashes for ever (seen in
/// `sheaf bench chaos`: 5,491 of them).
#[test]
fn a_senders_stake_is_seen_net_of_the_penalties_due() {
    let mut c = contract(2);
    c.commit(&ALICE, 0, &proof(0, 1), F).unwrap();
    let due = F + T1 + T2 + 1;
    assert_eq!(c.account_at(&ALICE, due - 1).stake.0, DEFAULT_MIN_STAKE);
    let seen = c.account_at(&ALICE, due);
    assert_eq!(seen.stake.0, DEFAULT_MIN_STAKE - DEFAULT_NO_REVEAL_PENALTY);
    assert!(seen.pending.is_empty(), "the due hash is no longer pending");
    assert!(matches!(
        c.commit(&ALICE, 1, &proof(1, 1), due),
        Err(SettlementError::InsufficientStake { .. })
    ));
    assert_eq!(
        c.account(&ALICE).stake.0,
        DEFAULT_MIN_STAKE,
        "a refused hash takes nothing: the stake as recorded still has the penalty in it"
    );
    assert_eq!(
        c.account_at(&ALICE, due).stake.0,
        DEFAULT_MIN_STAKE - DEFAULT_NO_REVEAL_PENALTY
    );
}

#[test]
fn hash_never_revealed_is_penalized_when_the_sender_next_commits() {
    let mut c = contract(2);
    c.deposit_stake(&ALICE, Amount(DEFAULT_NO_REVEAL_PENALTY));
    c.commit(&ALICE, 0, &proof(0, 1), F).unwrap();
    let events = c.commit(&ALICE, 1, &proof(1, 1), F + T1 + T2 + 1).unwrap();
    assert_eq!(penalties(&events), never_revealed(ALICE));
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
    let mut c = committed();
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
    let mut c = committed();
    let rest = DEFAULT_MIN_STAKE - DEFAULT_NO_REVEAL_PENALTY;
    let events = c
        .withdraw_stake(&ALICE, Amount(rest), F + T1 + T2 + 1)
        .unwrap();
    assert_eq!(penalties(&events), never_revealed(ALICE));
    assert_eq!(c.account(&ALICE).stake.0, 0);
}
