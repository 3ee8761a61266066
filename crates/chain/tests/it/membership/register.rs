//! Registering a membership, with each revert reason of §3.4 and the erase list.

use super::*;

#[test]
fn register_emits_registered_and_records_the_membership() {
    let mut reg = registry();
    let events = reg.register(ALICE, id(1), 100, &[], T0).unwrap();
    assert_eq!(
        events,
        vec![MembershipEvent::MembershipRegistered {
            id_commitment: id(1),
            rate_limit: 100,
            index: 0
        }]
    );
    let m = reg.membership(&id(1)).unwrap();
    assert_eq!((m.holder, m.rate_limit, m.index), (ALICE, 100, 0));
    assert_eq!(m.grace_period_start, GPS);
    assert_eq!(m.deposit_amount, Amount(700));
    assert_eq!(reg.current_total_rate_limit(), 100);
    assert_eq!(reg.next_free_index(), 1);
    assert!(reg.is_in_membership_set(&id(1)));
    assert_eq!(reg.tree().leaf(0), rate_commitment(id(1), 100));
}

#[test]
fn register_rejects_zero_id_commitment() {
    assert_eq!(
        registry().register(ALICE, Digest::ZERO, 100, &[], T0),
        Err(MembershipError::InvalidIdCommitment(Digest::ZERO))
    );
}

#[test]
fn register_rejects_non_canonical_id_commitment() {
    let bad = Digest([u64::MAX, 0, 0, 0]);
    assert_eq!(
        registry().register(ALICE, bad, 100, &[], T0),
        Err(MembershipError::InvalidIdCommitment(bad))
    );
}

#[test]
fn register_rejects_duplicate_id_commitment() {
    let mut reg = with_alice();
    assert_eq!(
        reg.register(BOB, id(1), 100, &[], T0),
        Err(MembershipError::DuplicateIdCommitment(id(1)))
    );
}

#[test]
fn register_rejects_rate_limit_outside_bounds() {
    let mut reg = registry();
    assert_eq!(
        reg.register(ALICE, id(1), 19, &[], T0),
        Err(MembershipError::InvalidMembershipRateLimit(19))
    );
    assert_eq!(
        reg.register(ALICE, id(1), 601, &[], T0),
        Err(MembershipError::InvalidMembershipRateLimit(601))
    );
    reg.register(ALICE, id(1), 20, &[], T0).unwrap();
    reg.register(ALICE, id(2), 600, &[], T0).unwrap();
}

#[test]
fn register_rejects_exceeding_max_total_rate_limit() {
    let mut reg = registry();
    reg.register(ALICE, id(1), 600, &[], T0).unwrap();
    assert_eq!(
        reg.register(ALICE, id(2), 401, &[], T0),
        Err(MembershipError::CannotExceedMaxTotalRateLimit {
            requested: 401,
            available: 400
        })
    );
    reg.register(ALICE, id(2), 400, &[], T0).unwrap();
    assert_eq!(reg.current_total_rate_limit(), 1_000);
    assert_no_rate_left(&mut reg);
}

#[test]
fn register_rejects_full_set_even_with_erased_indices() {
    let mut reg = MembershipRegistry::new(MembershipParams {
        tree_depth: 2,
        ..params()
    })
    .unwrap();
    for n in 1..=4 {
        reg.register(ALICE, id(n), 20, &[], T0).unwrap();
    }
    assert_eq!(
        reg.register(ALICE, id(5), 20, &[], T0),
        Err(MembershipError::MembershipSetIsFull)
    );
    reg.erase(BOB, &[id(1)], false, EXP).unwrap();
    assert_eq!(reg.erased_indices(), &[0]);
    assert_eq!(
        reg.register(ALICE, id(5), 20, &[], EXP),
        Err(MembershipError::MembershipSetIsFull)
    );
    assert_eq!(
        reg.register(ALICE, id(5), 20, &[id(2)], EXP),
        Err(MembershipError::MembershipSetIsFull)
    );
}

#[test]
fn default_set_size_is_two_to_the_depth() {
    assert_eq!(MAX_MEMBERSHIP_SET_SIZE, 1 << 20);
    assert_eq!(
        MembershipParams::default().max_membership_set_size(),
        u64::from(MAX_MEMBERSHIP_SET_SIZE)
    );
    MembershipParams::default().validate().unwrap();
}

#[test]
fn register_erases_list_and_reuses_its_rate_and_index() {
    let mut reg = registry();
    reg.register(ALICE, id(1), 600, &[], T0).unwrap();
    reg.register(ALICE, id(2), 400, &[], T0).unwrap();
    // The cap is reached: only erasing id(1) makes room.
    let events = reg.register(BOB, id(3), 600, &[id(1)], EXP).unwrap();
    assert_eq!(
        events,
        vec![
            MembershipEvent::MembershipExpired {
                id_commitment: id(1),
                rate_limit: 600,
                index: 0
            },
            MembershipEvent::MembershipErased {
                id_commitment: id(1),
                rate_limit: 600,
                index: 0
            },
            MembershipEvent::MembershipRegistered {
                id_commitment: id(3),
                rate_limit: 600,
                index: 0
            },
        ]
    );
    assert_eq!(reg.current_total_rate_limit(), 1_000);
    assert!(!reg.is_in_membership_set(&id(1)));
    assert_eq!(reg.tree().leaf(0), rate_commitment(id(3), 600));
    assert_eq!(reg.deposit_to_withdraw(&ALICE), Amount(600 * 7));
}

#[test]
fn register_rejects_a_bad_erase_list_or_a_bad_rate_after_it_and_erases_nothing() {
    use MembershipError::*;
    assert_rejected_by_alices_registry([
        (
            "an erase list with an active membership",
            |r| r.register(BOB, id(2), 100, &[id(1)], GPS - 1),
            CannotEraseActiveMembership(id(1)),
        ),
        (
            "an erase list with another holder's grace membership",
            |r| r.register(BOB, id(2), 100, &[id(1)], GPS),
            NonHolderCannotEraseGracePeriodMembership(id(1)),
        ),
        (
            "an erase list with an unknown membership",
            |r| r.register(BOB, id(2), 100, &[id(9)], GPS),
            MembershipDoesNotExist(id(9)),
        ),
        (
            "a rate out of bounds after a valid erase list",
            |r| r.register(BOB, id(2), 601, &[id(1)], EXP),
            InvalidMembershipRateLimit(601),
        ),
    ]);
}
