//! Rewards pro rata to stake, paid once, and none for a sender who copies another's proof.

use super::*;

#[test]
fn two_honest_senders_are_both_paid_pro_rata_to_stake() {
    let mut c = contract(1);
    c.deposit_stake(&BOB, Amount(2 * DEFAULT_MIN_STAKE)); // Bob stakes 3×, Alice 1×
    c.commit(&ALICE, 0, &proof(0, 1), F).unwrap();
    c.commit(&BOB, 0, &proof(0, 2), F + T1 - 1).unwrap();
    let alice = c.reveal(&ALICE, 0, &proof(0, 1), F + T1).unwrap();
    let bob = c.reveal(&BOB, 0, &proof(0, 2), F + T1 + 1).unwrap();
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
        c.commit(sender, 0, &proof(0, i as u8), F).unwrap();
    }
    let mut rewards = Vec::new();
    for (i, sender) in [ALICE, BOB, CAROL].iter().enumerate() {
        let events = c.reveal(sender, 0, &proof(0, i as u8), F + T1).unwrap();
        rewards.extend(paid(&events));
    }
    assert_eq!(
        rewards,
        vec![(ALICE, 4 * UNIT / 10), (BOB, UNIT), (CAROL, 6 * UNIT / 10)]
    );
}

#[test]
fn withdrawn_rewards_are_paid_out_once() {
    let mut c = committed();
    c.reveal(&ALICE, 0, &proof(0, 1), F + T1).unwrap();
    assert_eq!(c.withdraw_rewards(&ALICE).0 .0, DEFAULT_REWARD_PER_SEQUENCE);
    assert_eq!(c.withdraw_rewards(&ALICE).0, Amount::ZERO);
}

#[test]
fn copier_cannot_commit_to_a_revealed_proof() {
    let mut c = committed();
    // Bob sees Alice's reveal pending for block F+T1 and races to commit to its proof in the
    // same block: the hash phase is over.
    assert_eq!(
        c.commit(&BOB, 0, &proof(0, 1), F + T1),
        Err(SettlementError::HashWindowClosed {
            sequence: SequenceId(0),
            closed_at: F + T1
        })
    );
    c.reveal(&ALICE, 0, &proof(0, 1), F + T1).unwrap();
    assert_eq!(
        c.reveal(&BOB, 0, &proof(0, 1), F + T1),
        Err(SettlementError::NoProofHash(SequenceId(0)))
    );
    assert_eq!(c.account(&BOB).rewards.0, 0);
}

#[test]
fn copier_with_a_hash_of_its_own_gets_nothing_and_is_penalized() {
    let mut c = committed();
    // Bob commits to something in the window, hoping to swap in whatever Alice reveals.
    c.submit_proof_hash(&BOB, SequenceId(0), [0xAB; 32], F + 1)
        .unwrap();
    c.reveal(&ALICE, 0, &proof(0, 1), F + T1).unwrap();
    let events = c.reveal(&BOB, 0, &proof(0, 1), F + T1).unwrap();
    assert!(paid(&events).is_empty());
    assert_eq!(
        penalties(&events),
        vec![(BOB, PenaltyReason::WrongHash, DEFAULT_WRONG_HASH_PENALTY)]
    );
    assert_eq!(c.account(&BOB).rewards.0, 0);
}
