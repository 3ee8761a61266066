//! Membership registry tests: REFERENCE §3.3 transitions at their exact boundaries, each revert
//! reason of §3.4, index reuse, rate accounting and the Merkle tree; and the chain's proof of
//! possession that a registration carries. This module holds what they share.

mod erase;
mod extend;
mod possession;
mod register;
mod states;
mod tree;

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

/// A new membership at the minimum rate (`id(3)`, at `T0`) is refused: the total cap is reached.
fn assert_no_rate_left(reg: &mut MembershipRegistry) {
    assert_eq!(
        reg.register(ALICE, id(3), 20, &[], T0),
        Err(MembershipError::CannotExceedMaxTotalRateLimit {
            requested: 20,
            available: 0
        })
    );
}

type Outcome = Result<Vec<MembershipEvent>, MembershipError>;

/// A call the registry refuses: what is wrong with it, the call, and the error.
type Rejection = (
    &'static str,
    fn(&mut MembershipRegistry) -> Outcome,
    MembershipError,
);

/// Runs each call on a registry where ALICE holds `id(1)`: it fails with its error and changes
/// nothing.
fn assert_rejected_by_alices_registry<const N: usize>(cases: [Rejection; N]) {
    for (case, call, expected) in cases {
        let mut reg = with_alice();
        let before = reg.clone();
        assert_eq!(call(&mut reg), Err(expected), "rejects {case}");
        assert_eq!(reg, before, "rejecting {case} changes nothing");
    }
}
