//! Sparse Merkle trees: membership and non-membership proofs verify, and fail when tampered.

use sheaf_circuits::Digest;
use sheaf_rollup::smt::{verify_path, MerklePath, SparseMerkleTree, EMPTY_LEAF};

const SET: [(u64, Digest); 3] = [
    (0, Digest([1, 0, 0, 0])),
    (0xdead_beef, Digest([2, 0, 0, 0])),
    (u32::MAX as u64, Digest([3, 0, 0, 0])),
];

fn tree32() -> SparseMerkleTree<32> {
    let mut tree = SparseMerkleTree::<32>::new();
    for (key, leaf) in SET {
        tree.insert(key, leaf);
    }
    tree
}

#[test]
fn membership_proofs_verify() {
    let tree = tree32();
    for (key, leaf) in SET {
        assert_eq!(tree.get(key), leaf);
        assert!(verify_path::<32>(tree.root(), key, leaf, &tree.path(key)));
    }
}

#[test]
fn non_membership_proof_verifies_for_an_empty_slot_only() {
    let tree = tree32();
    assert!(verify_path::<32>(tree.root(), 7, EMPTY_LEAF, &tree.path(7)));
    assert!(!verify_path::<32>(
        tree.root(),
        0,
        EMPTY_LEAF,
        &tree.path(0)
    ));
}

#[test]
fn tampered_proofs_fail() {
    let tree = tree32();
    let (key, leaf) = SET[1];
    let path = tree.path(key);
    assert!(!verify_path::<32>(
        tree.root(),
        key,
        Digest([9, 0, 0, 0]),
        &path
    ));
    assert!(!verify_path::<32>(tree.root(), key ^ 1, leaf, &path));
    let mut sibling = path.clone();
    sibling.siblings[17].0[2] ^= 1;
    assert!(!verify_path::<32>(tree.root(), key, leaf, &sibling));
    let short = MerklePath {
        siblings: path.siblings[..31].to_vec(),
    };
    assert!(!verify_path::<32>(tree.root(), key, leaf, &short));
    assert!(!verify_path::<32>(Digest([1; 4]), key, leaf, &path));
    // A key beyond the depth is never a slot, even if its low bits match.
    assert!(!verify_path::<32>(tree.root(), key | 1 << 32, leaf, &path));
}

#[test]
fn depth_64_tree_proves_membership_at_the_highest_keys() {
    let mut tree = SparseMerkleTree::<64>::new();
    let key = u64::MAX - 5;
    let leaf = Digest([4, 5, 6, 7]);
    tree.insert(key, leaf);
    let path = tree.path(key);
    assert!(verify_path::<64>(tree.root(), key, leaf, &path));
    assert!(verify_path::<64>(
        tree.root(),
        key - 1,
        EMPTY_LEAF,
        &tree.path(key - 1)
    ));
    assert!(!verify_path::<64>(tree.root(), key, EMPTY_LEAF, &path));
}

#[test]
fn a_path_taken_before_an_update_proves_the_root_after_it() {
    let mut tree = tree32();
    let path = tree.path(5);
    let new_leaf = Digest([8, 8, 8, 8]);
    tree.insert(5, new_leaf);
    assert_eq!(path.compute_root(5, new_leaf), tree.root());
}
