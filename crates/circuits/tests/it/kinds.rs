//! Leaf kinds: a second, test-only kind (a Poseidon preimage) registered beside the work leaf.
//! A tree mixes both; the coordinator's expected-header rule goes through each kind; the root
//! verifies with the set's one final key.

use std::sync::OnceLock;

use plonky2::gates::noop::NoopGate;
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::CircuitData;
use serde::Deserialize;
use sheaf_circuits::leaf::LeafHeaderBuilder;
use sheaf_circuits::whitelist::key_digest;
use sheaf_circuits::work::WorkLeaf;
use sheaf_circuits::{
    encode_proof, verify_job_proof, AggregationSettings, ArtifactCache, CircuitError, CircuitSet,
    Digest, Expected, Header, HeaderField, JobCircuit, JobInputs, KindCatalog, KindParams,
    KindRegistry, LeafCircuit, LeafKind, Profile, Proof, WorkerSecret, C, D, F,
};

use crate::fixture::{worker, LEAF_ROWS_LOG2};

const PREIMAGE: &str = "preimage";
/// Rows of the preimage leaf: as small as the work leaf may be.
const PREIMAGE_ROWS_LOG2: usize = 5;

/// A leaf proving knowledge of a preimage of its statement: `statement = H(preimage)`.
struct PreimageLeaf {
    preimage: HashOutTarget,
    header: LeafHeaderBuilder,
    data: CircuitData<F, C, D>,
}

impl std::fmt::Debug for PreimageLeaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreimageLeaf")
    }
}

#[derive(Deserialize)]
struct PreimageFields {
    preimage: [u64; 4],
}

impl PreimageLeaf {
    fn build() -> Self {
        let mut builder = CircuitBuilder::<F, D>::new(Profile::Standard.leaf_config());
        let header = LeafHeaderBuilder::new(&mut builder);
        let preimage = builder.add_virtual_hash();
        let statement = builder.hash_n_to_hash_no_pad::<PoseidonHash>(preimage.elements.to_vec());
        header.finish(&mut builder, statement, PREIMAGE_ROWS_LOG2);
        while builder.num_gates() <= 1 << (PREIMAGE_ROWS_LOG2 - 1) {
            builder.add_gate(NoopGate, vec![]);
        }
        let data = builder.build::<C>();
        assert_eq!(data.common.degree_bits(), PREIMAGE_ROWS_LOG2);
        PreimageLeaf {
            preimage,
            header,
            data,
        }
    }
}

impl LeafCircuit for PreimageLeaf {
    type Input = Digest;
    type JobFields = PreimageFields;

    fn job_input(&self, fields: PreimageFields) -> Digest {
        Digest(fields.preimage)
    }

    fn kind(&self) -> &'static str {
        PREIMAGE
    }

    fn circuit(&self) -> &CircuitData<F, C, D> {
        &self.data
    }

    fn statement(&self, input: &Digest) -> Digest {
        Digest::hash(&input.to_fields())
    }

    fn prove(&self, input: &Digest, worker: &WorkerSecret) -> sheaf_circuits::Result<Proof> {
        let mut pw = PartialWitness::new();
        self.header.set(&mut pw, worker)?;
        pw.set_hash_target(self.preimage, input.to_hash_out())
            .map_err(|e| CircuitError::Prove(e.to_string()))?;
        self.data
            .prove(pw)
            .map_err(|e| CircuitError::Prove(e.to_string()))
    }
}

/// The work leaf and the preimage leaf, with the aggregation circuits over both.
fn mixed() -> &'static CircuitSet {
    static SET: OnceLock<CircuitSet> = OnceLock::new();
    SET.get_or_init(|| {
        let work = WorkLeaf::build(Profile::Standard.leaf_config(), LEAF_ROWS_LOG2).unwrap();
        let kinds = KindRegistry::new()
            .with(Box::new(work))
            .and_then(|kinds| kinds.with(Box::new(PreimageLeaf::build())))
            .unwrap();
        let cache =
            ArtifactCache::new(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("kinds"));
        let settings = AggregationSettings {
            profile: Profile::Standard,
            arity: 2,
            final_zk: false,
            final_compact: false,
        };
        CircuitSet::from_kinds(settings, kinds, Some(&cache)).unwrap()
    })
}

fn preimage_inputs(preimage: [u64; 4]) -> JobInputs {
    JobInputs::leaf(PREIMAGE, serde_json::json!({ "preimage": preimage })).unwrap()
}

fn leaf(kind: &str) -> JobCircuit {
    JobCircuit::Leaf { kind: kind.into() }
}

fn node(kind: &str) -> JobCircuit {
    JobCircuit::LeafNode { kind: kind.into() }
}

/// Check `proof` of `circuit` as the coordinator does: the expected header by the kind registry
/// over `inputs` and `children`, then verification.
fn coordinator_check(
    set: &CircuitSet,
    circuit: &JobCircuit,
    inputs: &JobInputs,
    children: &[Header],
    worker_pk: Digest,
    proof: &Proof,
) -> sheaf_circuits::Result<Header> {
    let expected = Expected {
        header: set.expected_header(circuit, inputs, children, worker_pk)?,
        whitelist_root: set.whitelist_root(circuit),
    };
    verify_job_proof(
        &encode_proof(proof),
        &set.verifier_data(circuit)?,
        &expected,
    )?;
    Ok(expected.header)
}

#[test]
fn whitelist_holds_a_leaf_node_per_registered_kind() {
    let set = mixed();
    let names: Vec<&str> = set.kinds().iter().map(LeafKind::name).collect();
    assert_eq!(names, ["preimage", "work"]);
    let whitelist = set.aggregation.whitelist();
    assert_eq!(
        whitelist.keys().len(),
        3,
        "the universal node and two leaf nodes"
    );
    for kind in ["work", PREIMAGE] {
        let key = key_digest(&set.aggregation.leaf_node(kind).unwrap().data.verifier_only);
        assert!(whitelist.position(&key).is_some(), "node:{kind}");
    }
}

#[test]
fn a_tree_mixing_two_kinds_verifies_with_the_one_final_key() {
    let set = mixed();
    let (alice, bob, carol) = (worker(1), worker(2), worker(3));
    let work_inputs = JobInputs::Work { seed: 1, index: 0 };
    let preimage = preimage_inputs([1, 2, 3, 4]);

    let work_leaf = set
        .prove_job(&leaf("work"), &work_inputs, &[], &alice)
        .unwrap();
    let preimage_leaf = set
        .prove_job(&leaf(PREIMAGE), &preimage, &[], &bob)
        .unwrap();
    let h_work = coordinator_check(
        set,
        &leaf("work"),
        &work_inputs,
        &[],
        alice.worker_pk(),
        &work_leaf,
    )
    .unwrap();
    let h_preimage = coordinator_check(
        set,
        &leaf(PREIMAGE),
        &preimage,
        &[],
        bob.worker_pk(),
        &preimage_leaf,
    )
    .unwrap();
    assert_eq!(
        h_preimage.statement,
        Digest::hash(&Digest([1, 2, 3, 4]).to_fields())
    );

    let node_work = set
        .prove_job(
            &node("work"),
            &JobInputs::Aggregate,
            &[(leaf("work"), work_leaf)],
            &carol,
        )
        .unwrap();
    let node_preimage = set
        .prove_job(
            &node(PREIMAGE),
            &JobInputs::Aggregate,
            &[(leaf(PREIMAGE), preimage_leaf)],
            &carol,
        )
        .unwrap();
    let h_node_work = coordinator_check(
        set,
        &node("work"),
        &JobInputs::Aggregate,
        &[h_work],
        carol.worker_pk(),
        &node_work,
    )
    .unwrap();
    let h_node_preimage = coordinator_check(
        set,
        &node(PREIMAGE),
        &JobInputs::Aggregate,
        &[h_preimage],
        carol.worker_pk(),
        &node_preimage,
    )
    .unwrap();

    let root = set
        .prove_job(
            &JobCircuit::Universal,
            &JobInputs::Aggregate,
            &[(node("work"), node_work), (node(PREIMAGE), node_preimage)],
            &alice,
        )
        .unwrap();
    let h_root = coordinator_check(
        set,
        &JobCircuit::Universal,
        &JobInputs::Aggregate,
        &[h_node_work, h_node_preimage],
        alice.worker_pk(),
        &root,
    )
    .unwrap();
    let verified = set
        .aggregation
        .final_key()
        .verify_bytes(&encode_proof(&root))
        .unwrap();
    assert_eq!(verified.header, h_root);
    assert_eq!(verified.header.stats.leaf_jobs, 2);
}

#[test]
fn a_kinds_expected_header_refuses_another_statement_and_other_inputs() {
    let set = mixed();
    let bob = worker(2);
    let proof = set
        .prove_job(&leaf(PREIMAGE), &preimage_inputs([5, 6, 7, 8]), &[], &bob)
        .unwrap();
    let err = coordinator_check(
        set,
        &leaf(PREIMAGE),
        &preimage_inputs([5, 6, 7, 9]),
        &[],
        bob.worker_pk(),
        &proof,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            CircuitError::HeaderMismatch {
                field: HeaderField::Statement
            }
        ),
        "{err:?}"
    );
    let err = set
        .expected_header(
            &leaf(PREIMAGE),
            &JobInputs::Work { seed: 1, index: 0 },
            &[],
            bob.worker_pk(),
        )
        .unwrap_err();
    assert!(
        matches!(&err, CircuitError::BadInputs { kind, .. } if kind == PREIMAGE),
        "{err:?}"
    );
    let err = set
        .expected_header(
            &leaf(PREIMAGE),
            &JobInputs::leaf(PREIMAGE, serde_json::json!({ "preimage": "x" })).unwrap(),
            &[],
            bob.worker_pk(),
        )
        .unwrap_err();
    assert!(matches!(err, CircuitError::BadInputs { .. }), "{err:?}");
}

#[test]
fn an_unregistered_kind_is_refused_everywhere() {
    let set = mixed();
    let inputs = JobInputs::leaf("ballot", serde_json::json!({})).unwrap();
    let pk = worker(1).worker_pk();
    for circuit in [leaf("ballot"), node("ballot")] {
        assert!(
            matches!(set.verifier_data(&circuit), Err(CircuitError::UnknownKind(k)) if k == "ballot"),
            "{circuit}"
        );
    }
    assert!(matches!(
        set.expected_header(&leaf("ballot"), &inputs, &[], pk),
        Err(CircuitError::UnknownKind(k)) if k == "ballot"
    ));
    let params = KindParams {
        profile: Profile::Standard,
        leaf_rows_log2: LEAF_ROWS_LOG2,
        arity: 2,
    };
    let err = KindCatalog::standard()
        .build(["work", "ballot"], &params, None)
        .unwrap_err();
    assert!(
        matches!(&err, CircuitError::UnknownKind(k) if k == "ballot"),
        "{err:?}"
    );
}
