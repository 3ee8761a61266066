//! The Merkle tree of rate commitments and its views.

use super::*;

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
