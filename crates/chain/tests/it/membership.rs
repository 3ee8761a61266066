//! Membership registry tests: REFERENCE §3.3 transitions at their exact boundaries, each revert
//! reason of §3.4, index reuse, rate accounting and the Merkle tree.

use sheaf_chain::membership::{
    rate_commitment, Address, Amount, MembershipError, MembershipEvent, MembershipParams,
    MembershipRegistry, MembershipState, MerkleTree, MAX_MEMBERSHIP_SET_SIZE, MERKLE_TREE_DEPTH,
};
use sheaf_circuits::Digest;

const ALICE: Address = Address([1; 32]);
const BOB: Address = Address([2; 32]);
/// Registration time of every membership below.
const T0: u64 = 1_000;
const ACTIVE: u64 = 100;
const GRACE: u64 = 10;
/// Grace-period start of a membership registered at `T0`.
const GPS: u64 = T0 + ACTIVE;
/// Expiration of a membership registered at `T0`.
const EXP: u64 = GPS + GRACE;

fn params() -> MembershipParams {
    MembershipParams {
        max_total_rate_limit: 1_000,
        min_membership_rate_limit: 20,
        max_membership_rate_limit: 600,
        active_duration: ACTIVE,
        grace_period: GRACE,
        price_per_message: Amount(7),
        tree_depth: MERKLE_TREE_DEPTH,
    }
}

fn registry() -> MembershipRegistry {
    MembershipRegistry::new(params()).unwrap()
}

fn id(n: u64) -> Digest {
    Digest([n, 0, 0, 0])
}

/// A registry where ALICE holds `id(1)` at rate 100, registered at `T0`.
fn with_alice() -> MembershipRegistry {
    let mut reg = registry();
    reg.register(ALICE, id(1), 100, &[], T0).unwrap();
    reg
}

/// The root recomputed from scratch: hash every level in full, empty leaves zero.
fn native_root(leaves: &[Digest], depth: u32) -> Digest {
    let mut level: Vec<Digest> = leaves.to_vec();
    let mut zero = Digest::ZERO;
    for _ in 0..depth {
        if level.len() % 2 == 1 {
            level.push(zero);
        }
        level = level
            .chunks(2)
            .map(|p| Digest::two_to_one(p[0], p[1]))
            .collect();
        if level.is_empty() {
            level.push(Digest::two_to_one(zero, zero));
        }
        zero = Digest::two_to_one(zero, zero);
    }
    level[0]
}

// ---- §3.3 states, at their exact boundaries ----

#[test]
fn membership_is_active_until_grace_period_start_exclusive() {
    let reg = with_alice();
    assert_eq!(reg.state(&id(1), T0), Some(MembershipState::Active));
    assert_eq!(reg.state(&id(1), GPS - 1), Some(MembershipState::Active));
    assert_eq!(reg.state(&id(1), GPS), Some(MembershipState::GracePeriod));
    assert_eq!(
        reg.state(&id(1), GPS + 1),
        Some(MembershipState::GracePeriod)
    );
}

#[test]
fn membership_expires_at_grace_period_end_inclusive() {
    let reg = with_alice();
    assert_eq!(
        reg.state(&id(1), EXP - 1),
        Some(MembershipState::GracePeriod)
    );
    assert_eq!(reg.state(&id(1), EXP), Some(MembershipState::Expired));
    assert_eq!(reg.state(&id(1), EXP + 1), Some(MembershipState::Expired));
    assert_eq!(reg.membership_expiration_timestamp(&id(1)), Some(EXP));
    assert!(reg.is_in_grace_period(&id(1), EXP - 1));
    assert!(reg.is_expired(&id(1), EXP));
}

#[test]
fn zero_grace_period_goes_straight_from_active_to_expired() {
    let mut reg = MembershipRegistry::new(MembershipParams {
        grace_period: 0,
        ..params()
    })
    .unwrap();
    reg.register(ALICE, id(1), 100, &[], T0).unwrap();
    assert_eq!(reg.state(&id(1), GPS - 1), Some(MembershipState::Active));
    assert_eq!(reg.state(&id(1), GPS), Some(MembershipState::Expired));
    assert_eq!(
        reg.extend(ALICE, &[id(1)], GPS),
        Err(MembershipError::CannotExtendNonGracePeriodMembership(id(1)))
    );
}

#[test]
fn active_or_grace_admits_until_expiry() {
    let reg = with_alice();
    assert!(reg.is_active_or_grace(&id(1), T0));
    assert!(reg.is_active_or_grace(&id(1), EXP - 1));
    assert!(!reg.is_active_or_grace(&id(1), EXP));
    assert!(!reg.is_active_or_grace(&id(2), T0));
    assert_eq!(reg.state(&id(2), T0), None);
}

#[test]
fn parameter_changes_apply_to_new_memberships_only() {
    let mut reg = with_alice();
    reg.set_active_duration(500).unwrap();
    reg.set_grace_period(0).unwrap();
    reg.register(BOB, id(2), 100, &[], T0).unwrap();
    assert_eq!(reg.membership_expiration_timestamp(&id(1)), Some(EXP));
    assert_eq!(reg.membership_expiration_timestamp(&id(2)), Some(T0 + 500));
}

// ---- register ----

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
    assert_eq!(
        reg.register(ALICE, id(3), 20, &[], T0),
        Err(MembershipError::CannotExceedMaxTotalRateLimit {
            requested: 20,
            available: 0
        })
    );
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
fn register_rejects_erase_list_with_active_membership_and_changes_nothing() {
    let mut reg = with_alice();
    let before = reg.clone();
    assert_eq!(
        reg.register(BOB, id(2), 100, &[id(1)], GPS - 1),
        Err(MembershipError::CannotEraseActiveMembership(id(1)))
    );
    assert_eq!(reg, before);
}

#[test]
fn register_rejects_erase_list_with_other_holders_grace_membership() {
    let mut reg = with_alice();
    assert_eq!(
        reg.register(BOB, id(2), 100, &[id(1)], GPS),
        Err(MembershipError::NonHolderCannotEraseGracePeriodMembership(
            id(1)
        ))
    );
}

#[test]
fn register_rejects_erase_list_with_unknown_membership() {
    let mut reg = with_alice();
    assert_eq!(
        reg.register(BOB, id(2), 100, &[id(9)], GPS),
        Err(MembershipError::MembershipDoesNotExist(id(9)))
    );
}

#[test]
fn failed_register_after_valid_erase_list_erases_nothing() {
    let mut reg = with_alice();
    let before = reg.clone();
    assert_eq!(
        reg.register(BOB, id(2), 601, &[id(1)], EXP),
        Err(MembershipError::InvalidMembershipRateLimit(601))
    );
    assert_eq!(reg, before);
}

// ---- extend ----

#[test]
fn extend_rejects_active_membership_just_before_grace() {
    let mut reg = with_alice();
    assert_eq!(
        reg.extend(ALICE, &[id(1)], GPS - 1),
        Err(MembershipError::CannotExtendNonGracePeriodMembership(id(1)))
    );
}

#[test]
fn extend_at_grace_start_keeps_the_remaining_grace() {
    let mut reg = with_alice();
    let events = reg.extend(ALICE, &[id(1)], GPS).unwrap();
    let new_gps = GPS + GRACE + ACTIVE;
    assert_eq!(
        events,
        vec![MembershipEvent::MembershipExtended {
            id_commitment: id(1),
            rate_limit: 100,
            index: 0,
            new_grace_period_start: new_gps
        }]
    );
    assert_eq!(
        reg.state(&id(1), new_gps - 1),
        Some(MembershipState::Active)
    );
    assert_eq!(
        reg.state(&id(1), new_gps),
        Some(MembershipState::GracePeriod)
    );
}

#[test]
fn extend_at_last_grace_second_succeeds() {
    let mut reg = with_alice();
    reg.extend(ALICE, &[id(1)], EXP - 1).unwrap();
    assert_eq!(reg.state(&id(1), EXP), Some(MembershipState::Active));
}

#[test]
fn extend_rejects_expired_membership() {
    let mut reg = with_alice();
    assert_eq!(
        reg.extend(ALICE, &[id(1)], EXP),
        Err(MembershipError::CannotExtendNonGracePeriodMembership(id(1)))
    );
}

#[test]
fn extend_rejects_unknown_membership() {
    let mut reg = with_alice();
    assert_eq!(
        reg.extend(ALICE, &[id(9)], GPS),
        Err(MembershipError::CannotExtendNonGracePeriodMembership(id(9)))
    );
}

#[test]
fn extend_rejects_non_holder() {
    let mut reg = with_alice();
    assert_eq!(
        reg.extend(BOB, &[id(1)], GPS),
        Err(MembershipError::NonHolderCannotExtend(id(1)))
    );
}

#[test]
fn extend_rejects_an_id_named_twice_and_changes_nothing() {
    let mut reg = with_alice();
    let before = reg.clone();
    assert_eq!(
        reg.extend(ALICE, &[id(1), id(1)], GPS),
        Err(MembershipError::CannotExtendNonGracePeriodMembership(id(1)))
    );
    assert_eq!(reg, before);
}

// ---- erase ----

#[test]
fn erase_rejects_active_membership_just_before_grace() {
    let mut reg = with_alice();
    assert_eq!(
        reg.erase(ALICE, &[id(1)], false, GPS - 1),
        Err(MembershipError::CannotEraseActiveMembership(id(1)))
    );
}

#[test]
fn erase_in_grace_by_holder_emits_erased_only() {
    let mut reg = with_alice();
    let events = reg.erase(ALICE, &[id(1)], false, GPS).unwrap();
    assert_eq!(
        events,
        vec![MembershipEvent::MembershipErased {
            id_commitment: id(1),
            rate_limit: 100,
            index: 0
        }]
    );
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
            MembershipEvent::MembershipErased {
                id_commitment: id(1),
                rate_limit: 100,
                index: 0
            },
        ]
    );
    // The deposit goes to the holder, not to the eraser.
    assert_eq!(reg.deposit_to_withdraw(&ALICE), Amount(700));
    assert_eq!(reg.deposit_to_withdraw(&BOB), Amount::ZERO);
}

#[test]
fn erase_rejects_unknown_membership() {
    let mut reg = with_alice();
    assert_eq!(
        reg.erase(ALICE, &[id(9)], false, EXP),
        Err(MembershipError::MembershipDoesNotExist(id(9)))
    );
}

#[test]
fn erase_rejects_an_id_named_twice_and_changes_nothing() {
    let mut reg = with_alice();
    let before = reg.clone();
    assert_eq!(
        reg.erase(ALICE, &[id(1), id(1)], false, EXP),
        Err(MembershipError::MembershipDoesNotExist(id(1)))
    );
    assert_eq!(reg, before);
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

// ---- withdraw ----

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

// ---- views ----

#[test]
fn rate_commitments_in_range_requires_start_le_end_lt_next_free_index() {
    let mut reg = with_alice();
    reg.register(ALICE, id(2), 100, &[], T0).unwrap();
    assert_eq!(
        reg.rate_commitments_in_range(0, 1).unwrap(),
        vec![rate_commitment(id(1), 100), rate_commitment(id(2), 100)]
    );
    assert_eq!(
        reg.rate_commitments_in_range(1, 0),
        Err(MembershipError::InvalidPaginationQuery { start: 1, end: 0 })
    );
    assert_eq!(
        reg.rate_commitments_in_range(0, 2),
        Err(MembershipError::InvalidPaginationQuery { start: 0, end: 2 })
    );
}

#[test]
fn merkle_proof_rejects_index_outside_the_tree() {
    let reg = registry();
    assert_eq!(
        reg.merkle_proof(1 << 20),
        Err(MembershipError::LeafIndexOutOfRange(1 << 20))
    );
    assert!(reg.merkle_proof((1 << 20) - 1).is_ok());
}

// ---- the Merkle tree ----

#[test]
fn root_equals_native_recomputation_and_paths_verify() {
    for depth in [4, MERKLE_TREE_DEPTH] {
        let mut reg = MembershipRegistry::new(MembershipParams {
            tree_depth: depth,
            ..params()
        })
        .unwrap();
        for n in 0..11 {
            reg.register(ALICE, id(n + 1), 20 + n as u32, &[], T0)
                .unwrap();
        }
        reg.erase(ALICE, &[id(3)], true, EXP).unwrap();
        reg.erase(ALICE, &[id(5)], false, EXP).unwrap();
        reg.register(BOB, id(20), 42, &[], EXP).unwrap();

        let leaves = reg.rate_commitments_in_range(0, 10).unwrap();
        assert_eq!(leaves[2], Digest::ZERO);
        assert_eq!(leaves[4], rate_commitment(id(20), 42));
        assert_eq!(reg.root(), native_root(&leaves, depth), "depth {depth}");

        let root = reg.root();
        for (i, leaf) in leaves.iter().enumerate() {
            let proof = reg.merkle_proof(i as u64).unwrap();
            assert_eq!(proof.siblings.len(), depth as usize);
            assert!(proof.verify(root, *leaf, i as u64));
            assert!(!proof.verify(root, *leaf, i as u64 ^ 1));
            assert!(!proof.verify(root, rate_commitment(id(99), 20), i as u64));
        }
        // An empty leaf has a path too.
        assert!(reg.merkle_proof(11).unwrap().verify(root, Digest::ZERO, 11));
    }
}

#[test]
fn empty_tree_root_is_the_zero_subtree_hash() {
    assert_eq!(registry().root(), native_root(&[], MERKLE_TREE_DEPTH));
}

#[test]
fn ten_thousand_registrations_match_native_root() {
    let mut reg = MembershipRegistry::new(MembershipParams {
        max_total_rate_limit: u32::MAX,
        ..params()
    })
    .unwrap();
    let started = std::time::Instant::now();
    for n in 0..10_000 {
        reg.register(ALICE, id(n + 1), 20, &[], T0).unwrap();
    }
    eprintln!("10,000 registrations took {:?}", started.elapsed());
    let leaves = reg.rate_commitments_in_range(0, 9_999).unwrap();
    assert_eq!(reg.root(), native_root(&leaves, MERKLE_TREE_DEPTH));
}

// ---- parameters and persistence ----

#[test]
fn parameters_reject_broken_invariants() {
    let invalid = |p: MembershipParams| {
        assert!(matches!(
            MembershipRegistry::new(p),
            Err(MembershipError::InvalidParameters { .. })
        ))
    };
    invalid(MembershipParams {
        min_membership_rate_limit: 0,
        ..params()
    });
    invalid(MembershipParams {
        min_membership_rate_limit: 601,
        ..params()
    });
    invalid(MembershipParams {
        max_membership_rate_limit: 1_001,
        ..params()
    });
    invalid(MembershipParams {
        active_duration: 0,
        ..params()
    });
    invalid(MembershipParams {
        tree_depth: 0,
        ..params()
    });

    let mut reg = registry();
    for result in [
        reg.set_max_total_rate_limit(599),
        reg.set_max_membership_rate_limit(19),
        reg.set_min_membership_rate_limit(0),
        reg.set_min_membership_rate_limit(601),
        reg.set_active_duration(0),
    ] {
        assert!(matches!(
            result,
            Err(MembershipError::InvalidParameters { .. })
        ));
    }
    assert_eq!(reg.params(), &params());
}

#[test]
fn lowered_total_cap_refuses_new_rate_without_underflow() {
    let mut reg = registry();
    reg.register(ALICE, id(1), 600, &[], T0).unwrap();
    reg.register(ALICE, id(2), 400, &[], T0).unwrap();
    reg.set_max_total_rate_limit(600).unwrap();
    assert_eq!(
        reg.register(ALICE, id(3), 20, &[], T0),
        Err(MembershipError::CannotExceedMaxTotalRateLimit {
            requested: 20,
            available: 0
        })
    );
}

#[test]
fn registry_state_round_trips_through_json() {
    let mut reg = with_alice();
    reg.register(BOB, id(2), 60, &[], T0).unwrap();
    reg.erase(ALICE, &[id(1)], false, EXP).unwrap();
    let json = serde_json::to_string(&reg).unwrap();
    let back: MembershipRegistry = serde_json::from_str(&json).unwrap();
    assert_eq!(back, reg);
    assert_eq!(back.root(), reg.root());
}
