//! Reward claims with real proofs: a job's path to its tree's root commitment, the nullifier,
//! claims aggregated under one final key, and claims that cannot be made.

use std::sync::OnceLock;

use sheaf_circuits::claim::{
    batch_statement, nullifier, plan_path, ClaimInput, ClaimLeaf, ClaimStatement, Position,
};
use sheaf_circuits::{
    AggregationCircuits, AggregationSettings, CircuitError, Digest, FinalKey, LeafCircuit, Profile,
    TreePlan, TreeProver, WorkerSecret,
};
use sheaf_types::{Address, SequenceId};

use crate::fixture::worker;

const ARITY: usize = 2;

struct Claims {
    leaf: ClaimLeaf,
    circuits: AggregationCircuits,
    key: FinalKey,
}

fn claims() -> &'static Claims {
    static C: OnceLock<Claims> = OnceLock::new();
    C.get_or_init(|| {
        let leaf = ClaimLeaf::load_or_build(Profile::Standard.leaf_config(), ARITY, None).unwrap();
        let settings = AggregationSettings {
            profile: Profile::Standard,
            arity: ARITY,
            final_zk: false,
            final_compact: false,
        };
        let circuits = AggregationCircuits::build(settings, &[leaf.verifier()]).unwrap();
        let key = circuits.final_key();
        Claims {
            leaf,
            circuits,
            key,
        }
    })
}

/// The tree the claims are about: 5 leaves proved by three workers in turn, node (1, 0) by
/// worker 0 too, every other node by a worker of its own.
fn tree() -> TreePlan {
    TreePlan::new(5, ARITY).unwrap()
}

fn worker_of(level: usize, index: usize) -> WorkerSecret {
    match (level, index) {
        (0, i) => worker(i as u64 % 3),
        (1, 0) => worker(0),
        (l, i) => worker(100 + (l * 10 + i) as u64),
    }
}

fn pk_of(level: usize, index: usize) -> Digest {
    worker_of(level, index).worker_pk()
}

fn root_commitment() -> Digest {
    let plan = tree();
    plan_path(&plan, plan.root_level(), 0, pk_of)
        .unwrap()
        .root(ARITY)
        .unwrap()
}

fn exit(byte: u8) -> Address {
    Address([byte; 32])
}

fn claim_of(level: usize, index: usize, by: &WorkerSecret, to: Address) -> ClaimInput {
    let path = plan_path(&tree(), level, index, pk_of).unwrap();
    ClaimInput::new(by, SequenceId(7), path, to, ARITY)
}

#[test]
fn a_claim_is_a_small_leaf() {
    // 24 levels of path at arity 2 fit in 2^10 rows: a claim costs a phone little next to the
    // 2^13-row nodes that aggregate it.
    assert!(claims().leaf.rows_log2() <= 10, "{:?}", claims().leaf);
}

#[test]
fn a_jobs_position_is_its_level_and_index_read_from_the_root() {
    let plan = tree();
    for level in 0..plan.depth() {
        for index in 0..plan.level_sizes()[level] {
            let path = plan_path(&plan, level, index, pk_of).unwrap();
            assert_eq!(path.root(ARITY).unwrap(), root_commitment());
            assert_eq!(
                path.position(ARITY),
                Position {
                    depth: (plan.root_level() - level) as u32,
                    index: index as u64,
                },
                "job ({level}, {index})"
            );
        }
    }
}

#[test]
fn claims_prove_their_jobs_and_aggregate_under_one_key() {
    let c = claims();
    let alice = worker(0);
    let to = exit(9);
    let inputs = [
        claim_of(0, 0, &alice, to),
        claim_of(0, 3, &alice, to),
        claim_of(1, 0, &alice, to),
    ];
    let statements: Vec<ClaimStatement> = inputs.iter().map(|i| i.statement(ARITY)).collect();
    for s in &statements {
        assert_eq!(s.root, root_commitment());
        assert_eq!(s.nullifier, nullifier(&alice, SequenceId(7), s.position));
    }
    let proofs: Vec<_> = inputs
        .iter()
        .map(|input| c.leaf.prove(input, &alice).unwrap())
        .collect();
    for (proof, input) in proofs.iter().zip(&inputs) {
        c.leaf.circuit().verify(proof.clone()).unwrap();
        let header = sheaf_circuits::Header::from_public_inputs(&proof.public_inputs).unwrap();
        assert_eq!(header, c.leaf.expected_header(input, &alice));
    }
    let plan = TreePlan::new(proofs.len(), ARITY).unwrap();
    let leaf_key = c.leaf.verifier();
    let prover = TreeProver::new(&c.circuits, "claim", &leaf_key.verifier_only, alice);
    let root = prover
        .prove(&plan, &mut |i| Ok(proofs[i].clone()), &mut |_| {})
        .unwrap();
    let verified = c.key.verify(&root).unwrap();
    assert_eq!(
        verified.header.statement,
        batch_statement(&statements, ARITY).unwrap()
    );
    // Another exit or another order is another statement.
    let mut moved = statements.clone();
    moved[1].exit = exit(8);
    assert_ne!(
        verified.header.statement,
        batch_statement(&moved, ARITY).unwrap()
    );
    let mut swapped = statements.clone();
    swapped.swap(0, 1);
    assert_ne!(
        verified.header.statement,
        batch_statement(&swapped, ARITY).unwrap()
    );
}

#[test]
fn a_claim_for_another_provers_job_cannot_be_proved() {
    let c = claims();
    let (alice, mallory) = (worker(0), worker(1));
    // Mallory names Alice's leaf with her own nullifier: refused before proving ...
    let input = claim_of(0, 0, &mallory, exit(6));
    let err = c.leaf.prove(&input, &mallory).unwrap_err();
    assert!(matches!(err, CircuitError::BadInputs { .. }), "{err:?}");
    // ... and the circuit itself cannot be satisfied without Alice's secret.
    let err = c.leaf.prove_unchecked(&input, &mallory).unwrap_err();
    assert!(matches!(err, CircuitError::Prove(_)), "{err:?}");
    // Alice's own nullifier in Mallory's claim does not help either.
    let mut with_alices = input.clone();
    with_alices.nullifier = nullifier(&alice, SequenceId(7), input.path.position(ARITY));
    assert!(c.leaf.prove_unchecked(&with_alices, &mallory).is_err());
}

#[test]
fn a_path_that_does_not_climb_to_its_root_is_refused() {
    let c = claims();
    let alice = worker(0);
    let mut input = claim_of(0, 3, &alice, exit(1));
    input.path.steps[0].slot = 0;
    assert!(input.path.root(ARITY).is_err());
    assert!(matches!(
        c.leaf.prove(&input, &alice),
        Err(CircuitError::BadInputs { .. })
    ));
    // Unchecked, the circuit refuses it too: the slot's commitment is not the path's.
    assert!(c.leaf.prove_unchecked(&input, &alice).is_err());
}
