//! Each way a proof can be wrong is refused with its own typed error.

use plonky2::field::types::Field;
use sheaf_circuits::verify_job::{verify_job_proof, Expected};
use sheaf_circuits::work::WorkLeaf;
use sheaf_circuits::{encode_proof, Child, CircuitError, HeaderField, LeafCircuit, Profile, F};

use crate::fixture::{
    arity2, leaf_header, leaf_proof, leaf_worker, node_worker, shared_root, worker,
};

#[test]
fn root_with_tampered_public_input_fails_verification() {
    let fx = arity2();
    let mut root = shared_root().clone();
    root.public_inputs[8] += F::ONE; // one more leaf job than proved
    assert!(matches!(
        fx.key.verify(&root),
        Err(CircuitError::VerificationFailed(_))
    ));
}

#[test]
fn root_with_another_whitelist_root_is_refused() {
    let fx = arity2();
    let mut root = shared_root().clone();
    root.public_inputs[15] += F::ONE;
    assert!(matches!(
        fx.key.verify(&root),
        Err(CircuitError::WhitelistMismatch)
    ));
}

#[test]
fn final_key_rejects_a_leaf_node_proof_of_the_same_shape() {
    let fx = arity2();
    let leaf_node = fx.circuits.leaf_node("work").unwrap();
    let proof = leaf_node
        .prove(
            &[Child {
                proof: &leaf_proof(fx, 0),
                key: &fx.leaf.circuit().verifier_only,
            }],
            &worker(9),
            fx.circuits.whitelist(),
        )
        .unwrap();
    assert!(matches!(
        fx.key.verify(&proof),
        Err(CircuitError::VerificationFailed(_))
    ));
}

#[test]
fn non_whitelisted_circuit_of_identical_shape_is_rejected() {
    let fx = arity2();
    // Another leaf kind (a longer chain) gets a leaf node of exactly the universal shape, but
    // its key is not in the whitelist.
    let other_leaf = WorkLeaf::build(
        Profile::Standard.leaf_config(),
        crate::fixture::LEAF_ROWS_LOG2 + 1,
    )
    .unwrap();
    let outsider = fx.circuits.build_leaf_node(&other_leaf.verifier()).unwrap();
    assert_eq!(outsider.data.common, fx.circuits.universal().data.common);
    let other_proof = other_leaf
        .prove(&crate::fixture::leaf_input(0), &worker(0))
        .unwrap();
    let outsider_proof = outsider
        .prove(
            &[Child {
                proof: &other_proof,
                key: &other_leaf.circuit().verifier_only,
            }],
            &worker(1),
            fx.circuits.whitelist(),
        )
        .unwrap();
    let child = Child {
        proof: &outsider_proof,
        key: &outsider.data.verifier_only,
    };
    let universal = fx.circuits.universal();
    assert!(matches!(
        universal.prove(&[child], &worker(2), fx.circuits.whitelist()),
        Err(CircuitError::NotWhitelisted { index: 0 })
    ));
    // Past the native check, the circuit itself refuses: no whitelist path leads to its key.
    for position in 0..2 {
        assert!(matches!(
            universal.prove_unchecked(
                &[child],
                &[position],
                &worker(2),
                fx.circuits.whitelist(),
                None
            ),
            Err(CircuitError::Prove(_))
        ));
    }
}

#[test]
fn leaf_proof_carrying_another_workers_pk_is_refused() {
    let fx = arity2();
    let bytes = encode_proof(&leaf_proof(fx, 0));
    let mut expected = leaf_header(fx, 0);
    // The job was leased to another prover than the one whose key the proof carries.
    let leased_to = worker(42).worker_pk();
    assert_ne!(leased_to, leaf_worker(0).worker_pk());
    expected.worker_pk = leased_to;
    expected.commitment = leased_to;
    let err = verify_job_proof(
        &bytes,
        &fx.leaf.circuit().verifier_data(),
        &Expected {
            header: expected,
            whitelist_root: None,
        },
    )
    .unwrap_err();
    assert!(matches!(
        err,
        CircuitError::HeaderMismatch {
            field: HeaderField::Commitment | HeaderField::WorkerPk
        }
    ));
}

#[test]
fn node_over_swapped_children_is_refused() {
    let fx = arity2();
    let leaf_node = fx.circuits.leaf_node("work").unwrap();
    let (a, b) = (leaf_proof(fx, 0), leaf_proof(fx, 1));
    let key = &fx.leaf.circuit().verifier_only;
    let swapped = leaf_node
        .prove(
            &[Child { proof: &b, key }, Child { proof: &a, key }],
            &node_worker(1, 0),
            fx.circuits.whitelist(),
        )
        .unwrap();
    let in_order = leaf_node.header(
        &[leaf_header(fx, 0), leaf_header(fx, 1)],
        node_worker(1, 0).worker_pk(),
    );
    let expected = Expected {
        header: in_order,
        whitelist_root: Some(fx.circuits.whitelist().root()),
    };
    let verifier = leaf_node.data.verifier_data();
    assert!(matches!(
        verify_job_proof(&encode_proof(&swapped), &verifier, &expected),
        Err(CircuitError::HeaderMismatch {
            field: HeaderField::Commitment
        })
    ));
    // The same children in order pass every check.
    let ordered = leaf_node
        .prove(
            &[Child { proof: &a, key }, Child { proof: &b, key }],
            &node_worker(1, 0),
            fx.circuits.whitelist(),
        )
        .unwrap();
    verify_job_proof(&encode_proof(&ordered), &verifier, &expected).unwrap();
}

#[test]
fn node_refuses_no_children_and_too_many() {
    let fx = arity2();
    let proof = leaf_proof(fx, 0);
    let child = Child {
        proof: &proof,
        key: &fx.leaf.circuit().verifier_only,
    };
    let node = fx.circuits.leaf_node("work").unwrap();
    for children in [vec![], vec![child; 3]] {
        assert!(matches!(
            node.prove(&children, &worker(0), fx.circuits.whitelist()),
            Err(CircuitError::BadChildCount { arity: 2, .. })
        ));
    }
}
