//! Claims with real proofs under a network's real final key: two work sequences proved and
//! finalized, their provers' claims proved with the claim circuit and aggregated with Sheaf's
//! tree, then paid once, and every way to be paid what is not owed refused with nothing paid.

use std::sync::OnceLock;

use sheaf_chain::settlement::{ClaimEntry, PlannedJob, Position};
use sheaf_circuits::claim::{plan_path, ClaimInput, CLAIM_KIND};
use sheaf_circuits::leaf::work_units_for_rows;
use sheaf_circuits::work::WORK_LEAF_KIND;
use sheaf_circuits::{
    encode_proof, AggregationSettings, ArtifactCache, CircuitSet, FinalKey, JobInputs, Profile,
    Proof, TreePlan, TreeProver, WorkerSecret,
};

use super::*;

const ARITY: usize = 2;
const LEAF_ROWS_LOG2: usize = 6;
const LEAVES: usize = 3;
const EXIT: Address = Address([0xE1; 32]);
const RATE: u128 = settlement::DEFAULT_PROVER_REWARD_PER_UNIT.0;

fn secret(n: u64) -> WorkerSecret {
    WorkerSecret::from_digest(Digest([n, 0x5eaf, 1, 1]))
}

/// Who proved job `(level, index)` of sequence `s`: leaves 0 and 2 Alice (1), leaf 1 Bob (2),
/// every node Carol (3); in sequence 1, Carol's nodes are Bob's.
fn prover(s: u64, level: usize, index: usize) -> WorkerSecret {
    match (level, index) {
        (0, 1) => secret(2),
        (0, _) => secret(1),
        _ if s == 1 => secret(2),
        _ => secret(3),
    }
}

struct Network {
    set: CircuitSet,
    /// Each sequence's root proof and plan.
    sequences: Vec<(Vec<u8>, Vec<PlannedJob>)>,
}

/// The network's set (the work and claim kinds) and two proved work sequences, once per binary.
fn network() -> &'static Network {
    static N: OnceLock<Network> = OnceLock::new();
    N.get_or_init(|| {
        let settings = AggregationSettings {
            profile: Profile::Test,
            arity: ARITY,
            final_zk: false,
            final_compact: false,
        };
        let cache = ArtifactCache::new(env!("CARGO_TARGET_TMPDIR"));
        let set = CircuitSet::load_or_build(settings, LEAF_ROWS_LOG2, Some(&cache)).unwrap();
        let sequences = (0..2).map(|s| prove_sequence(&set, s)).collect();
        Network { set, sequences }
    })
}

/// Sequence `s`'s tree proved (nodes depth first), with its plan.
fn prove_sequence(set: &CircuitSet, s: u64) -> (Vec<u8>, Vec<PlannedJob>) {
    let work = set.kind(WORK_LEAF_KIND).unwrap();
    let plan = TreePlan::new(LEAVES, ARITY).unwrap();
    let leaf_key = work.leaf_verifier();
    let prover_of_nodes = prover(s, 1, 0);
    let tree = TreeProver::new(
        &set.aggregation,
        WORK_LEAF_KIND,
        &leaf_key.verifier_only,
        prover_of_nodes,
    );
    let root = tree
        .prove(
            &plan,
            &mut |i| {
                let fields = serde_json::json!({ "seed": s, "index": i });
                work.prove_job(
                    &JobInputs::leaf(WORK_LEAF_KIND, fields).unwrap(),
                    &prover(s, 0, i),
                )
            },
            &mut |_| {},
        )
        .unwrap();
    let node_units = set.aggregation.universal().weight();
    let mut jobs = Vec::new();
    for (level, &size) in plan.level_sizes().iter().enumerate() {
        for index in 0..size {
            jobs.push(PlannedJob {
                position: Position {
                    depth: (plan.root_level() - level) as u32,
                    index: index as u64,
                },
                units: if level == 0 {
                    work_units_for_rows(LEAF_ROWS_LOG2)
                } else {
                    node_units
                },
            });
        }
    }
    (encode_proof(&root), jobs)
}

fn key() -> FinalKey {
    network().set.aggregation.final_key()
}

/// A contract where both sequences are registered with their plans and finalized.
fn finalized() -> SettlementContract<FinalKey> {
    let n = network();
    let mut c = SettlementContract::new(SettlementParams::default(), COORDINATOR, key()).unwrap();
    for (s, (root, plan)) in n.sequences.iter().enumerate() {
        let header = key().verify_bytes(root).unwrap().header;
        c.register_sequence(
            &COORDINATOR,
            SequenceId(s as u64),
            header.statement,
            plan.clone(),
        )
        .unwrap();
    }
    c.deposit_stake(&ALICE, Amount(DEFAULT_MIN_STAKE));
    for (s, (root, _)) in n.sequences.iter().enumerate() {
        let block = F + (s as u64) * (T1 + T2);
        c.commit(&ALICE, s as u64, root, block).unwrap();
        c.reveal(&ALICE, s as u64, root, block + T1).unwrap();
    }
    c
}

/// The claim of job `(level, index)` of sequence `s` by `by`, paid to `exit`.
fn claim(s: u64, level: usize, index: usize, by: &WorkerSecret, exit: Address) -> ClaimInput {
    let plan = TreePlan::new(LEAVES, ARITY).unwrap();
    let path = plan_path(&plan, level, index, |l, i| prover(s, l, i).worker_pk()).unwrap();
    ClaimInput::new(by, SequenceId(s), path, exit, ARITY)
}

/// The claim tree's root proof over `claims`, proved and aggregated by `by`.
fn prove(claims: &[ClaimInput], by: &WorkerSecret) -> Vec<u8> {
    let set = &network().set;
    let kind = set.kind(CLAIM_KIND).unwrap();
    let leaf_key = kind.leaf_verifier();
    let tree = TreeProver::new(&set.aggregation, CLAIM_KIND, &leaf_key.verifier_only, *by);
    let plan = TreePlan::new(claims.len(), ARITY).unwrap();
    let root: Proof = tree
        .prove(
            &plan,
            &mut |i| {
                let fields = serde_json::to_value(&claims[i]).unwrap();
                kind.prove_job(&JobInputs::leaf(CLAIM_KIND, fields).unwrap(), by)
            },
            &mut |_| {},
        )
        .unwrap();
    encode_proof(&root)
}

/// What the chain is told of `claims`.
fn entries(claims: &[ClaimInput]) -> Vec<ClaimEntry> {
    claims
        .iter()
        .map(|c| {
            let s = c.statement(ARITY);
            ClaimEntry {
                sequence: s.sequence,
                position: s.position,
                nullifier: s.nullifier,
                exit: s.exit,
            }
        })
        .collect()
}

/// Asserts `entries` with `proof` are refused with `error`, paying nothing, changing nothing.
fn refused(
    c: &mut SettlementContract<FinalKey>,
    entries: &[ClaimEntry],
    proof: &[u8],
    error: impl Fn(&SettlementError) -> bool,
) {
    let before = c.state().clone();
    let err = c.claim_rewards(ARITY as u32, entries, proof).unwrap_err();
    assert!(error(&err), "{err:?}");
    assert_eq!(c.state(), &before, "a refused claim changed the state");
}

#[test]
fn real_claims_are_paid_once_and_a_replay_pays_nothing() {
    let alice = secret(1);
    let claims = [claim(0, 0, 0, &alice, EXIT), claim(0, 0, 2, &alice, EXIT)];
    let proof = prove(&claims, &alice);
    let mut c = finalized();
    let (credits, _) = c
        .claim_rewards(ARITY as u32, &entries(&claims), &proof)
        .unwrap();
    let leaf = work_units_for_rows(LEAF_ROWS_LOG2) as u128;
    assert_eq!(
        credits
            .iter()
            .map(|c| (c.account, c.amount.0))
            .collect::<Vec<_>>(),
        [(EXIT, leaf * RATE), (EXIT, leaf * RATE)]
    );
    // The same transaction again (a replay with a fresh nonce): its nullifiers are spent.
    refused(&mut c, &entries(&claims), &proof, |e| {
        matches!(e, SettlementError::NullifierSpent { .. })
    });
    // So is any later batch holding one of them.
    let again = [claim(0, 0, 2, &alice, EXIT)];
    refused(&mut c, &entries(&again), &prove(&again, &alice), |e| {
        matches!(e, SettlementError::NullifierSpent { .. })
    });
}

#[test]
fn a_valid_claim_resubmitted_with_another_exit_is_refused() {
    let alice = secret(1);
    let claims = [claim(0, 0, 0, &alice, EXIT)];
    let proof = prove(&claims, &alice);
    let mut moved = entries(&claims);
    moved[0].exit = BOB;
    refused(&mut finalized(), &moved, &proof, |e| {
        matches!(e, SettlementError::ClaimStatementMismatch { .. })
    });
}

#[test]
fn the_same_claim_twice_in_one_batch_is_refused() {
    let alice = secret(1);
    let claims = [claim(0, 0, 0, &alice, EXIT), claim(0, 0, 0, &alice, EXIT)];
    // The proof is real: the circuit cannot tell one claim from a copy; the chain must.
    let proof = prove(&claims, &alice);
    refused(&mut finalized(), &entries(&claims), &proof, |e| {
        matches!(e, SettlementError::DuplicateNullifier { .. })
    });
}

#[test]
fn a_tampered_position_is_refused() {
    let alice = secret(1);
    let claims = [claim(0, 0, 0, &alice, EXIT)];
    let proof = prove(&claims, &alice);
    // Bob's leaf is planned and worth the same: only the proof's statement tells them apart.
    let mut moved = entries(&claims);
    moved[0].position.index = 1;
    refused(&mut finalized(), &moved, &proof, |e| {
        matches!(e, SettlementError::ClaimStatementMismatch { .. })
    });
    // A node's position is worth more and planned too.
    moved[0].position = Position { depth: 1, index: 0 };
    refused(&mut finalized(), &moved, &proof, |e| {
        matches!(e, SettlementError::ClaimStatementMismatch { .. })
    });
}

#[test]
fn a_claim_verified_against_another_sequences_commitment_is_refused() {
    let alice = secret(1);
    // Alice proved leaf 0 of both sequences; her claim on sequence 0 listed as sequence 1's
    // is checked against sequence 1's root commitment and fails.
    let claims = [claim(0, 0, 0, &alice, EXIT)];
    let proof = prove(&claims, &alice);
    let mut other = entries(&claims);
    other[0].sequence = SequenceId(1);
    refused(&mut finalized(), &other, &proof, |e| {
        matches!(e, SettlementError::ClaimStatementMismatch { .. })
    });
}

#[test]
fn a_claim_on_an_unfinalized_sequence_is_refused() {
    let alice = secret(1);
    let n = network();
    let mut c = SettlementContract::new(SettlementParams::default(), COORDINATOR, key()).unwrap();
    let (root, plan) = &n.sequences[0];
    let header = key().verify_bytes(root).unwrap().header;
    c.register_sequence(&COORDINATOR, SequenceId(0), header.statement, plan.clone())
        .unwrap();
    let claims = [claim(0, 0, 0, &alice, EXIT)];
    refused(&mut c, &entries(&claims), &prove(&claims, &alice), |e| {
        matches!(e, SettlementError::SequenceNotFinalized(_))
    });
}

#[test]
fn a_claim_for_another_provers_job_cannot_be_made() {
    let (alice, mallory) = (secret(1), secret(9));
    let kind = network().set.kind(CLAIM_KIND).unwrap();
    // Mallory, without Alice's secret, names Alice's leaf: the prover refuses it natively, and
    // the circuit cannot be satisfied (tried without the native check).
    let stolen = claim(0, 0, 0, &mallory, Address([0x66; 32]));
    let fields = serde_json::to_value(&stolen).unwrap();
    let inputs = JobInputs::leaf(CLAIM_KIND, fields).unwrap();
    assert!(kind.prove_job(&inputs, &mallory).is_err());
    let leaf = sheaf_circuits::claim::ClaimLeaf::load_or_build(
        Profile::Test.leaf_config(),
        ARITY,
        Some(&ArtifactCache::new(env!("CARGO_TARGET_TMPDIR"))),
    )
    .unwrap();
    assert!(leaf.prove_unchecked(&stolen, &mallory).is_err());
    // Alice's real claim, resubmitted by Mallory to her own account, is refused (another exit).
    let claims = [claim(0, 0, 0, &alice, EXIT)];
    let mut redirected = entries(&claims);
    redirected[0].exit = Address([0x66; 32]);
    refused(
        &mut finalized(),
        &redirected,
        &prove(&claims, &alice),
        |e| matches!(e, SettlementError::ClaimStatementMismatch { .. }),
    );
}
