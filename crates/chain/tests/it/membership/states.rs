//! REFERENCE §3.3 states at their exact boundaries, the parameters and the state as JSON.

use super::*;

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
    assert_no_rate_left(&mut reg);
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
