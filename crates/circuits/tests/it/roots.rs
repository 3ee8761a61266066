//! Roots of trees of every small size and both arities verify with one key each, and carry the
//! header recomputed natively.

use sheaf_circuits::wrap::{conjectured_security_bits, FinalWrap, WrapStyle};
use sheaf_circuits::{encode_proof, FinalKey, Profile, TreePlan};

use crate::fixture::{arity2, arity4, build, expected_root, prove_tree, shared_root, Fixture};

/// Tree sizes proved at each arity: one leaf, partial groups, and two levels of nodes over
/// full groups and a group of one (5: levels of 5, 3, 2, 1 at arity 2, and 5, 2, 1 at 4).
/// 8 leaves (26 proofs more, about 55 s of CI) add no shape these lack.
const SIZES: [usize; 4] = [1, 2, 3, 5];

fn roots_verify_with_the_exported_key(fx: &Fixture) {
    // The key as a verifier would hold it: exported to bytes and read back.
    let key = FinalKey::from_bytes(&fx.key.to_bytes().unwrap()).unwrap();
    for n in SIZES {
        let (root, proofs) = prove_tree(fx, n);
        let plan = TreePlan::new(n, fx.circuits.settings().arity).unwrap();
        assert_eq!(
            proofs,
            n + plan.aggregation_nodes(),
            "{n} leaves: one proof per planned node, no dummies"
        );
        let verified = key.verify_bytes(&encode_proof(&root)).unwrap();
        assert_eq!(verified.header, expected_root(fx, n), "{n} leaves");
        assert_eq!(verified.header.stats.leaf_jobs, n as u64);
        assert_eq!(
            verified.header.stats.aggregation_jobs,
            plan.aggregation_nodes() as u64
        );
    }
}

#[test]
fn roots_of_1_to_5_leaves_verify_with_one_key_at_arity_2() {
    roots_verify_with_the_exported_key(arity2());
}

#[test]
fn roots_of_1_to_5_leaves_verify_with_one_key_at_arity_4() {
    roots_verify_with_the_exported_key(arity4());
}

#[test]
fn leaf_and_universal_nodes_share_one_shape() {
    let fx = arity2();
    let leaf_node = fx.circuits.leaf_node("work").unwrap();
    assert_eq!(leaf_node.data.common, fx.circuits.universal().data.common);
    assert_ne!(
        leaf_node.data.verifier_only.circuit_digest,
        fx.circuits.universal().data.verifier_only.circuit_digest
    );
    assert_eq!(fx.circuits.whitelist().keys().len(), 2);
}

#[test]
fn zero_knowledge_wrap_keeps_the_roots_public_inputs() {
    let fx = arity2();
    let wrap = FinalWrap::build(
        WrapStyle::ZeroKnowledge,
        &Profile::Standard.node_config(),
        &fx.circuits.universal().data,
    );
    assert!(wrap.data().common.config.zero_knowledge);
    let wrapped = wrap.prove(shared_root()).unwrap();
    assert_eq!(wrapped.public_inputs, shared_root().public_inputs);
    wrap.data().verify(wrapped).unwrap();
}

#[test]
fn every_wrap_stage_keeps_100_bits_of_conjectured_security() {
    let node = Profile::Standard.node_config();
    for style in [
        WrapStyle::ZeroKnowledge,
        WrapStyle::Compact {
            zero_knowledge: false,
        },
        WrapStyle::Compact {
            zero_knowledge: true,
        },
    ] {
        let configs = style.stage_configs(&node);
        for config in &configs {
            assert!(
                conjectured_security_bits(&config.fri_config) >= 100,
                "{style:?}: {config:?}"
            );
        }
        // Zero knowledge, where asked, is in the first stage: every later proof is made from it.
        let zk = !matches!(
            style,
            WrapStyle::Compact {
                zero_knowledge: false
            }
        );
        assert_eq!(configs[0].zero_knowledge, zk, "{style:?}");
    }
    assert_eq!(conjectured_security_bits(&node.fri_config), 100);
}

/// The test profile the other crates' tests prove with: weaker by design (46 conjectured bits),
/// and for that its universal node fits half the rows; a tree of it proves and verifies.
#[test]
fn the_test_profile_trades_security_for_nodes_of_half_the_rows() {
    let node = Profile::Test.node_config();
    assert_eq!(conjectured_security_bits(&node.fri_config), 46);
    assert_eq!(node.security_bits, 46);
    let fx = build(2, Profile::Test);
    assert_eq!(fx.key.degree_bits(), 12, "the standard profile's is 13");
    assert_eq!(fx.key.security_bits(), 46);
    assert_eq!(arity2().key.degree_bits(), 13);

    let (root, proofs) = prove_tree(&fx, 2);
    assert_eq!(proofs, 2 + TreePlan::new(2, 2).unwrap().aggregation_nodes());
    let verified = fx.key.verify_bytes(&encode_proof(&root)).unwrap();
    assert_eq!(verified.header, expected_root(&fx, 2));
}
