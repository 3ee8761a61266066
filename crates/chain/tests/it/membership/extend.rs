//! Extending a membership in its grace period.

use super::*;

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
fn extend_rejects_memberships_out_of_their_grace_period_or_of_others() {
    use MembershipError::*;
    assert_rejected_by_alices_registry([
        (
            "an active membership just before grace",
            |r| r.extend(ALICE, &[id(1)], GPS - 1),
            CannotExtendNonGracePeriodMembership(id(1)),
        ),
        (
            "an expired membership",
            |r| r.extend(ALICE, &[id(1)], EXP),
            CannotExtendNonGracePeriodMembership(id(1)),
        ),
        (
            "an unknown membership",
            |r| r.extend(ALICE, &[id(9)], GPS),
            CannotExtendNonGracePeriodMembership(id(9)),
        ),
        (
            "a non-holder",
            |r| r.extend(BOB, &[id(1)], GPS),
            NonHolderCannotExtend(id(1)),
        ),
        (
            "an id named twice",
            |r| r.extend(ALICE, &[id(1), id(1)], GPS),
            CannotExtendNonGracePeriodMembership(id(1)),
        ),
    ]);
}
