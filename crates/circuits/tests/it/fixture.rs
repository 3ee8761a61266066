//! Circuits and proofs shared by the tests of this binary.

use std::sync::OnceLock;

use sheaf_circuits::work::work_input;
use sheaf_circuits::{
    AggregationCircuits, AggregationSettings, Digest, FinalKey, Header, LeafCircuit, Profile,
    Proof, TreePlan, TreeProver, WorkLeaf, WorkerSecret,
};

/// Leaves of 2^6 rows: the smallest realistic shape, cheap to prove.
pub const LEAF_ROWS_LOG2: usize = 6;

pub struct Fixture {
    pub leaf: WorkLeaf,
    pub circuits: AggregationCircuits,
    pub key: FinalKey,
}

/// A work leaf and the aggregation circuits over it, of `arity` and `profile`.
pub fn build(arity: usize, profile: Profile) -> Fixture {
    let leaf = WorkLeaf::build(profile.leaf_config(), LEAF_ROWS_LOG2).unwrap();
    let settings = AggregationSettings {
        profile,
        arity,
        final_zk: false,
        final_compact: false,
    };
    let circuits = AggregationCircuits::build(settings, &[leaf.verifier()]).unwrap();
    let key = circuits.final_key();
    Fixture {
        leaf,
        circuits,
        key,
    }
}

pub fn arity2() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| build(2, Profile::Standard))
}

/// Arity 4 in the test profile: what arity 4 changes is the tree's shape, which a profile does
/// not; the standard profile's proofs are arity 2's to test (half the proving of arity 4's).
pub fn arity4() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| build(4, Profile::Test))
}

/// The `i`-th test worker.
pub fn worker(i: u64) -> WorkerSecret {
    WorkerSecret::from_digest(Digest([i + 1, 17, 0, 0]))
}

/// Worker of leaf `i`: three provers take turns.
pub fn leaf_worker(i: usize) -> WorkerSecret {
    worker(i as u64 % 3)
}

/// Worker of node `index` at `level`.
pub fn node_worker(level: usize, index: usize) -> WorkerSecret {
    worker(100 + (level * 10 + index) as u64)
}

pub fn leaf_input(i: usize) -> Digest {
    work_input(1, i as u64)
}

pub fn leaf_proof(fx: &Fixture, i: usize) -> Proof {
    fx.leaf.prove(&leaf_input(i), &leaf_worker(i)).unwrap()
}

pub fn leaf_header(fx: &Fixture, i: usize) -> Header {
    fx.leaf.expected_header(&leaf_input(i), &leaf_worker(i))
}

/// Prove a tree of `n` leaves whose nodes are all proved by `node_worker(0, 0)`, counting the
/// proofs made.
pub fn prove_tree(fx: &Fixture, n: usize) -> (Proof, usize) {
    let plan = TreePlan::new(n, fx.circuits.settings().arity).unwrap();
    let leaf_key = fx.leaf.verifier();
    let prover = TreeProver::new(
        &fx.circuits,
        &leaf_key.kind,
        &leaf_key.verifier_only,
        node_worker(0, 0),
    );
    let mut proofs = 0;
    let root = prover
        .prove(&plan, &mut |i| Ok(leaf_proof(fx, i)), &mut |_| proofs += 1)
        .unwrap();
    (root, proofs)
}

/// The root header of `prove_tree(fx, n)`, computed natively.
pub fn expected_root(fx: &Fixture, n: usize) -> Header {
    let plan = TreePlan::new(n, fx.circuits.settings().arity).unwrap();
    let leaves: Vec<Header> = (0..n).map(|i| leaf_header(fx, i)).collect();
    plan.expected_root_header(&leaves, fx.circuits.universal().weight(), |_, _| {
        node_worker(0, 0).worker_pk()
    })
}

/// A two-leaf arity-2 root, shared by the rejection tests.
pub fn shared_root() -> &'static Proof {
    static ROOT: OnceLock<Proof> = OnceLock::new();
    ROOT.get_or_init(|| prove_tree(arity2(), 2).0)
}

pub fn shared_root_bytes() -> Vec<u8> {
    sheaf_circuits::encode_proof(shared_root())
}
