//! Erasing memberships, reusing their indices, and withdrawing their deposits.

use super::*;

/// The event of ALICE's `id(1)` (rate 100, index 0) leaving the set.
fn alices_erasure() -> MembershipEvent {
    MembershipEvent::MembershipErased {
        id_commitment: id(1),
        rate_limit: 100,
        index: 0,
    }
}

#[test]
fn erase_in_grace_by_holder_emits_erased_only() {
    let mut reg = with_alice();
    let events = reg.erase(ALICE, &[id(1)], false, GPS).unwrap();
    assert_eq!(events, vec![alices_erasure()]);
    assert_eq!(reg.current_total_rate_limit(), 0);
    assert_eq!(reg.state(&id(1), GPS), None);
}

#[test]
fn erase_rejects_non_holder_in_grace_up_to_its_last_second() {
    let mut reg = with_alice();
    for now in [GPS, EXP - 1] {
        assert_eq!(
            reg.erase(BOB, &[id(1)], false, now),
            Err(MembershipError::NonHolderCannotEraseGracePeriodMembership(
                id(1)
            ))
        );
    }
}

#[test]
fn erase_of_expired_membership_by_anyone_emits_expired_then_erased() {
    let mut reg = with_alice();
    let events = reg.erase(BOB, &[id(1)], false, EXP).unwrap();
    assert_eq!(
        events,
        vec![
            MembershipEvent::MembershipExpired {
                id_commitment: id(1),
                rate_limit: 100,
                index: 0
            },
            alices_erasure(),
        ]
    );
    // The deposit goes to the holder, not to the eraser.
    assert_eq!(reg.deposit_to_withdraw(&ALICE), Amount(700));
    assert_eq!(reg.deposit_to_withdraw(&BOB), Amount::ZERO);
}

#[test]
fn erase_rejects_memberships_in_use_or_unknown() {
    use MembershipError::*;
    assert_rejected_by_alices_registry([
        (
            "an active membership just before grace",
            |r| r.erase(ALICE, &[id(1)], false, GPS - 1),
            CannotEraseActiveMembership(id(1)),
        ),
        (
            "an unknown membership",
            |r| r.erase(ALICE, &[id(9)], false, EXP),
            MembershipDoesNotExist(id(9)),
        ),
        (
            "an id named twice",
            |r| r.erase(ALICE, &[id(1), id(1)], false, EXP),
            MembershipDoesNotExist(id(1)),
        ),
    ]);
}

#[test]
fn erase_rejects_already_erased_membership() {
    let mut reg = with_alice();
    reg.erase(ALICE, &[id(1)], false, EXP).unwrap();
    assert_eq!(
        reg.erase(ALICE, &[id(1)], false, EXP),
        Err(MembershipError::MembershipDoesNotExist(id(1)))
    );
}

#[test]
fn erased_indices_are_reused_last_in_first_out() {
    let mut reg = registry();
    for n in 0..5 {
        reg.register(ALICE, id(n + 1), 20, &[], T0).unwrap();
    }
    // Indices 1 and 3 (ids 2 and 4), erased in that order.
    reg.erase(ALICE, &[id(2), id(4)], false, EXP).unwrap();
    assert_eq!(reg.erased_indices(), &[1, 3]);
    let index_of = |events: Vec<MembershipEvent>| match events.last() {
        Some(MembershipEvent::MembershipRegistered { index, .. }) => *index,
        other => panic!("expected a registration, got {other:?}"),
    };
    assert_eq!(
        index_of(reg.register(BOB, id(10), 20, &[], EXP).unwrap()),
        3
    );
    assert_eq!(
        index_of(reg.register(BOB, id(11), 20, &[], EXP).unwrap()),
        1
    );
    assert_eq!(
        index_of(reg.register(BOB, id(12), 20, &[], EXP).unwrap()),
        5
    );
    assert_eq!(reg.next_free_index(), 6);
}

#[test]
fn lazy_erase_keeps_the_leaf_until_reuse() {
    let mut reg = with_alice();
    let root = reg.root();
    reg.erase(ALICE, &[id(1)], false, EXP).unwrap();
    assert_eq!(reg.tree().leaf(0), rate_commitment(id(1), 100));
    assert_eq!(reg.root(), root);
    reg.register(BOB, id(2), 50, &[], EXP).unwrap();
    assert_eq!(reg.tree().leaf(0), rate_commitment(id(2), 50));
}

#[test]
fn cleanup_zeroes_the_erased_leaf() {
    let mut reg = with_alice();
    reg.register(ALICE, id(2), 100, &[], T0).unwrap();
    reg.erase(ALICE, &[id(1)], true, EXP).unwrap();
    assert_eq!(reg.tree().leaf(0), Digest::ZERO);
    assert_eq!(
        reg.root(),
        native_root(
            &[Digest::ZERO, rate_commitment(id(2), 100)],
            MERKLE_TREE_DEPTH
        )
    );
    // Clean-up changes neither rate accounting nor index reuse.
    assert_eq!(reg.current_total_rate_limit(), 100);
    assert_eq!(reg.erased_indices(), &[0]);
    reg.erase(ALICE, &[id(2)], true, EXP).unwrap();
    assert_eq!(reg.root(), MerkleTree::new(MERKLE_TREE_DEPTH).root());
}

#[test]
fn withdraw_pays_the_erased_deposits_once() {
    let mut reg = with_alice();
    reg.register(ALICE, id(2), 50, &[], T0).unwrap();
    reg.erase(ALICE, &[id(1), id(2)], false, EXP).unwrap();
    assert_eq!(reg.withdraw(ALICE), Ok(Amount(150 * 7)));
    assert_eq!(
        reg.withdraw(ALICE),
        Err(MembershipError::InsufficientDepositBalance)
    );
}

#[test]
fn withdraw_rejects_holder_with_nothing_erased() {
    let mut reg = with_alice();
    assert_eq!(
        reg.withdraw(ALICE),
        Err(MembershipError::InsufficientDepositBalance)
    );
}
