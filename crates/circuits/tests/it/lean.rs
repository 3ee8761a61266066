//! A claimant's lean set: only the claim leaf, its leaf node and the universal node in full,
//! every other circuit as a key, and still the network's whitelist and final key. And a
//! coordinator's verifier-only set: every circuit without its prover data.

use std::fs;
use std::sync::OnceLock;

use sheaf_circuits::cache::can_prove;
use sheaf_circuits::claim::{plan_path, ClaimInput, CLAIM_KIND};
use sheaf_circuits::work::WORK_LEAF_KIND;
use sheaf_circuits::{
    encode_proof, verify_job_proof, AggregationSettings, ArtifactCache, CircuitError, CircuitSet,
    Digest, Expected, JobCircuit, JobInputs, KindCatalog, Profile, TreePlan, TreeProver,
    WorkerSecret,
};
use sheaf_types::{Address, SequenceId};

use crate::fixture::{worker, LEAF_ROWS_LOG2};

const ARITY: usize = 2;
const SETTINGS: AggregationSettings = AggregationSettings {
    profile: Profile::Standard,
    arity: ARITY,
    final_zk: false,
    final_compact: false,
};

fn lean(cache: &ArtifactCache) -> CircuitSet {
    CircuitSet::load_lean(
        SETTINGS,
        &KindCatalog::standard(),
        [WORK_LEAF_KIND, CLAIM_KIND],
        LEAF_ROWS_LOG2,
        &[],
        cache,
        &[CLAIM_KIND],
    )
    .unwrap()
}

/// `alice`'s claims to the first two leaves of a tree of four.
fn claims(alice: &WorkerSecret) -> Vec<ClaimInput> {
    let plan = TreePlan::new(4, ARITY).unwrap();
    let pk = |level: usize, index: usize| match (level, index) {
        (0, 0 | 1) => alice.worker_pk(),
        (l, i) => worker(100 + (l * 10 + i) as u64).worker_pk(),
    };
    (0..2)
        .map(|i| {
            let path = plan_path(&plan, 0, i, pk).unwrap();
            ClaimInput::new(alice, SequenceId(3), path, Address([9; 32]), ARITY)
        })
        .collect()
}

fn prove_claims(set: &CircuitSet, alice: &WorkerSecret) -> sheaf_circuits::Proof {
    let kind = set.kind(CLAIM_KIND).unwrap();
    let leaf_key = kind.leaf_verifier();
    let inputs = claims(alice);
    let prover = TreeProver::new(
        &set.aggregation,
        CLAIM_KIND,
        &leaf_key.verifier_only,
        *alice,
    );
    let plan = TreePlan::new(inputs.len(), ARITY).unwrap();
    prover
        .prove(
            &plan,
            &mut |i| {
                let fields = serde_json::to_value(&inputs[i]).unwrap();
                kind.prove_job(&JobInputs::leaf(CLAIM_KIND, fields).unwrap(), alice)
            },
            &mut |_| {},
        )
        .unwrap()
}

/// The full set, built once for this binary's lean tests into a cache of its own.
fn full() -> &'static (tempfile::TempDir, CircuitSet) {
    static FULL: OnceLock<(tempfile::TempDir, CircuitSet)> = OnceLock::new();
    FULL.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let cache = ArtifactCache::new(dir.path());
        let set = CircuitSet::load_or_build(SETTINGS, LEAF_ROWS_LOG2, Some(&cache)).unwrap();
        (dir, set)
    })
}

/// Copy the artifacts of the cache `from` to `to`: its verifier artifacts (`verifiers`) or all
/// the others; how many verifier artifacts `from` holds.
fn copy_cache(from: &std::path::Path, to: &std::path::Path, verifiers: bool) -> usize {
    let mut verifier_artifacts = 0;
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        let is_verifier = name.to_string_lossy().contains("-verifier-");
        verifier_artifacts += usize::from(is_verifier);
        if is_verifier == verifiers {
            fs::copy(&path, to.join(name)).unwrap();
        }
    }
    verifier_artifacts
}

#[test]
fn a_lean_claimant_set_has_the_full_sets_keys_and_its_claims_verify_under_the_final_key() {
    let (dir, full) = full();
    let cache = ArtifactCache::new(dir.path());
    let full_key = full.aggregation.final_key();

    let from_side_artifacts = lean(&cache);
    // Without the verifier artifacts (an older cache) every other node is loaded alone for its
    // key: from a copy of the cache without them.
    let older = tempfile::tempdir().unwrap();
    let verifiers = copy_cache(dir.path(), older.path(), false);
    assert!(verifiers > 0, "the full set stores its verifier sides");
    let from_nodes = lean(&ArtifactCache::new(older.path()));

    for set in [&from_side_artifacts, &from_nodes] {
        let key = set.aggregation.final_key();
        assert_eq!(key.id(), full_key.id());
        assert_eq!(key.whitelist_root(), full_key.whitelist_root());
        assert!(
            set.kind(WORK_LEAF_KIND).is_err(),
            "the work leaf is not held"
        );
        assert!(set.aggregation.leaf_node(WORK_LEAF_KIND).is_err());
        for name in [WORK_LEAF_KIND, CLAIM_KIND] {
            assert_eq!(set.kind_key(name), full.kind_key(name));
        }
    }
    assert!(full.kind_key(WORK_LEAF_KIND).is_some());

    let alice = worker(0);
    let lean_root = prove_claims(&from_side_artifacts, &alice);
    let full_root = prove_claims(full, &alice);
    assert_eq!(lean_root.public_inputs, full_root.public_inputs);
    let verified = full_key.verify(&lean_root).unwrap();
    assert_ne!(verified.header.statement, Digest::default());
}

#[test]
fn a_verifier_only_set_checks_what_the_full_set_proves_and_refuses_to_prove() {
    let (dir, full) = full();
    // Only the verifier artifacts: the set loads from them alone, builds nothing, and writes no
    // circuit.
    let verifiers = tempfile::tempdir().unwrap();
    copy_cache(dir.path(), verifiers.path(), true);
    let listing = || {
        let mut names: Vec<_> = fs::read_dir(verifiers.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let before = listing();
    assert!(before.len() >= 5, "{before:?}");
    let cache = ArtifactCache::new(verifiers.path()).verifier_only();
    let lean = CircuitSet::load_or_build(SETTINGS, LEAF_ROWS_LOG2, Some(&cache)).unwrap();
    assert!(lean.aggregation.from_cache());
    assert_eq!(listing(), before, "nothing was built");
    assert!(lean.is_verifier_only() && !full.is_verifier_only());

    let (key, full_key) = (lean.aggregation.final_key(), full.aggregation.final_key());
    assert_eq!(key.id(), full_key.id());
    assert_eq!(key.whitelist_root(), full_key.whitelist_root());
    let circuits = [
        JobCircuit::Leaf {
            kind: WORK_LEAF_KIND.into(),
        },
        JobCircuit::LeafNode {
            kind: WORK_LEAF_KIND.into(),
        },
        JobCircuit::Universal,
    ];
    for circuit in &circuits {
        let (l, f) = (
            lean.verifier_data(circuit).unwrap(),
            full.verifier_data(circuit).unwrap(),
        );
        assert_eq!(l.common, f.common, "{circuit}");
        assert_eq!(l.verifier_only, f.verifier_only, "{circuit}");
    }
    assert!(!can_prove(&lean.aggregation.universal().data));
    assert!(!can_prove(lean.kind(WORK_LEAF_KIND).unwrap().leaf_data()));
    assert!(can_prove(&full.aggregation.universal().data));

    // A leaf proved by the full set is checked by the lean one, header and all.
    let alice = worker(0);
    let inputs = JobInputs::Work { seed: 7, index: 1 };
    let circuit = &circuits[0];
    let proof = full.prove_job(circuit, &inputs, &[], &alice).unwrap();
    let expected = Expected {
        header: lean
            .expected_header(circuit, &inputs, &[], alice.worker_pk())
            .unwrap(),
        whitelist_root: lean.whitelist_root(circuit),
    };
    let bytes = encode_proof(&proof);
    verify_job_proof(&bytes, &lean.verifier_data(circuit).unwrap(), &expected).unwrap();
    let other = Expected {
        header: lean
            .expected_header(circuit, &inputs, &[], worker(1).worker_pk())
            .unwrap(),
        ..expected
    };
    assert!(verify_job_proof(&bytes, &lean.verifier_data(circuit).unwrap(), &other).is_err());

    assert!(matches!(
        lean.prove_job(circuit, &inputs, &[], &alice),
        Err(CircuitError::VerifierOnly)
    ));
}
