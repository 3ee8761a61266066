//! The merge and block kernels (node rules) over a block's tree, with a stand-in leaf of kind
//! `tx` that states a transaction's transition without checking the transaction: the rules are
//! tested here on their own, cheaply; the tx kernel's checks have their own tests.

use std::sync::{Arc, OnceLock};

use plonky2::iop::witness::PartialWitness;
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::CircuitData;
use serde::Deserialize;
use sheaf_circuits::leaf::LeafHeaderBuilder;
use sheaf_circuits::{
    AggregationSettings, ArtifactCache, CircuitError, CircuitSet, Digest, JobCircuit, JobInputs,
    KindRegistry, LeafCircuit, NodeRule, Profile, Proof, WorkerSecret, C, D, F,
};
use sheaf_rollup::kernel::{
    BlockFields, BlockRule, BlockTree, MergeFields, MergeRule, TransitionTarget, BLOCK_RULE,
    MERGE_RULE, TX_KIND,
};
use sheaf_rollup::{block_statement, ProducedBlock, Transaction, Transition, TxWitness};

use crate::support::{unauthenticated, world, World, ALICE, BOB, CAROL};

/// A leaf of kind `tx` whose statement is the digest of its job's transition, unchecked.
struct StandInTxLeaf {
    transition: TransitionTarget,
    header: LeafHeaderBuilder,
    data: CircuitData<F, C, D>,
}

impl std::fmt::Debug for StandInTxLeaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StandInTxLeaf")
    }
}

#[derive(Deserialize)]
struct StandInFields {
    transaction: Transaction,
    witness: TxWitness,
}

impl StandInTxLeaf {
    fn build() -> Self {
        let mut b = CircuitBuilder::<F, D>::new(Profile::Standard.leaf_config());
        let header = LeafHeaderBuilder::new(&mut b);
        let transition = TransitionTarget::add_virtual(&mut b);
        let statement = transition.digest(&mut b);
        header.finish(&mut b, statement, 4);
        let data = b.build::<C>();
        assert_eq!(data.common.degree_bits(), 4);
        StandInTxLeaf {
            transition,
            header,
            data,
        }
    }
}

impl LeafCircuit for StandInTxLeaf {
    type Input = Transition;
    type JobFields = StandInFields;

    fn job_input(&self, fields: StandInFields) -> Transition {
        Transition::of_tx(&fields.witness, fields.transaction.body.expiration)
    }

    fn kind(&self) -> &'static str {
        TX_KIND
    }

    fn circuit(&self) -> &CircuitData<F, C, D> {
        &self.data
    }

    fn statement(&self, input: &Transition) -> Digest {
        input.digest()
    }

    fn node_rule(&self) -> Option<Arc<dyn NodeRule>> {
        Some(Arc::new(MergeRule))
    }

    fn prove(&self, input: &Transition, worker: &WorkerSecret) -> sheaf_circuits::Result<Proof> {
        let mut pw = PartialWitness::new();
        self.header.set(&mut pw, worker)?;
        self.transition.set(&mut pw, input)?;
        self.data
            .prove(pw)
            .map_err(|e| CircuitError::Prove(e.to_string()))
    }
}

/// The stand-in tx kind with the merge and block kernels, arity 2.
fn set() -> &'static CircuitSet {
    static SET: OnceLock<CircuitSet> = OnceLock::new();
    SET.get_or_init(|| {
        let kinds = KindRegistry::new()
            .with(Box::new(StandInTxLeaf::build()))
            .unwrap();
        let cache = ArtifactCache::new(
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("rollup-kernels"),
        );
        let rules: Vec<Arc<dyn NodeRule>> = vec![Arc::new(MergeRule), Arc::new(BlockRule)];
        CircuitSet::from_parts(AggregationSettings::default(), kinds, &rules, Some(&cache)).unwrap()
    })
}

fn worker(i: u64) -> WorkerSecret {
    WorkerSecret::from_digest(Digest([i, 5, 5, 5]))
}

/// Block 1 of three transfers in batches of two: Alice pays Bob, Bob spends that note in the
/// same block, Carol pays Alice. Returns the world before it, the block and its transactions.
fn three_transfers() -> (World, Vec<Transaction>, ProducedBlock) {
    let mut w = world();
    let before = w.clone();
    let to_bob = w.note(BOB, 40);
    let t1 = w.tx(ALICE, &[], &[to_bob]);
    let to_carol = w.note(CAROL, 15);
    let t2 = w.tx(BOB, &[unauthenticated(to_bob)], &[to_carol]);
    let to_alice = w.note(ALICE, 5);
    let t3 = w.tx(CAROL, &[], &[to_alice]);
    let txs = vec![t1, t2, t3];
    let block = w.block_in_batches(&txs, 2).unwrap();
    (before, txs, block)
}

fn plan(before: &World, txs: &[Transaction], block: &ProducedBlock) -> BlockTree {
    let tip = before.state.tip();
    BlockTree::plan(
        tip,
        before.state.chain_path(tip.number),
        txs,
        &[],
        block,
        2,
        set().aggregation.settings().arity,
    )
    .unwrap()
}

/// The proved tree of the three transfers, shared by the tests.
fn proved() -> &'static (BlockTree, Vec<Proof>) {
    static PROVED: OnceLock<(BlockTree, Vec<Proof>)> = OnceLock::new();
    PROVED.get_or_init(|| {
        let (before, txs, block) = three_transfers();
        let tree = plan(&before, &txs, &block);
        let mut proofs: Vec<Proof> = Vec::new();
        for job in &tree.jobs {
            let children: Vec<(JobCircuit, Proof)> = job
                .children
                .iter()
                .map(|&c| (tree.jobs[c].circuit.clone(), proofs[c].clone()))
                .collect();
            let proof = set()
                .prove_job(
                    &job.circuit,
                    &job.inputs,
                    &children,
                    &worker(job.index as u64),
                )
                .unwrap();
            proofs.push(proof);
        }
        (tree, proofs)
    })
}

#[test]
fn a_block_tree_mixing_kernels_verifies_with_the_one_final_key() {
    let (tree, proofs) = proved();
    let circuits: Vec<String> = tree.jobs.iter().map(|j| j.circuit.to_string()).collect();
    // 3 leaves; batch 1 (2 txs) and batch 2 (1 tx) each under a tx leaf node; one merge across
    // the batches; the block node; the universal root.
    assert_eq!(
        circuits,
        [
            "leaf:tx",
            "leaf:tx",
            "leaf:tx",
            "node:tx",
            "node:tx",
            "kernel:merge",
            "kernel:block",
            "universal"
        ]
    );
    let root = proofs.last().unwrap();
    let verified = set().aggregation.final_key().verify(root).unwrap();
    let block_statement = block_statement(&tree.previous, &tree.header);
    assert_eq!(
        verified.header.statement,
        Digest::hash_digests(&[block_statement])
    );
    assert_eq!(verified.header.stats.leaf_jobs, 3);
    // Every proof carries the header the coordinator expects of its job.
    for (i, job) in tree.jobs.iter().enumerate() {
        let children: Vec<_> = job
            .children
            .iter()
            .map(|&c| sheaf_circuits::Header::from_public_inputs(&proofs[c].public_inputs).unwrap())
            .collect();
        let expected = set()
            .expected_header(
                &job.circuit,
                &job.inputs,
                &children,
                worker(job.index as u64).worker_pk(),
            )
            .unwrap();
        let got = sheaf_circuits::Header::from_public_inputs(&proofs[i].public_inputs).unwrap();
        assert_eq!(got, expected, "job {i} ({})", job.circuit);
    }
}

/// The proofs and transitions of the two tx leaf nodes (batch 1, batch 2).
fn batch_nodes() -> [(Proof, Transition); 2] {
    let (tree, proofs) = proved();
    [3, 4].map(|i| (proofs[i].clone(), tree.jobs[i].transition.unwrap()))
}

fn merge_inputs(children: &[Transition]) -> JobInputs {
    let fields = MergeFields {
        children: children.to_vec(),
    };
    JobInputs::leaf(MERGE_RULE, serde_json::to_value(fields).unwrap()).unwrap()
}

fn tx_node(proof: &Proof) -> (JobCircuit, Proof) {
    (
        JobCircuit::LeafNode {
            kind: TX_KIND.into(),
        },
        proof.clone(),
    )
}

#[test]
fn batches_out_of_order_do_not_chain_and_cannot_be_proven() {
    let [(p1, t1), (p2, t2)] = batch_nodes();
    let merge = JobCircuit::Kernel {
        name: MERGE_RULE.into(),
    };
    // In order, the merge proves.
    set()
        .prove_job(
            &merge,
            &merge_inputs(&[t1, t2]),
            &[tx_node(&p1), tx_node(&p2)],
            &worker(1),
        )
        .unwrap();
    // Swapped: batch 2 does not start where batch 1 ends. The native rule refuses first…
    let swapped = merge_inputs(&[t2, t1]);
    let children = [tx_node(&p2), tx_node(&p1)];
    let headers: Vec<_> = children
        .iter()
        .map(|(_, p)| sheaf_circuits::Header::from_public_inputs(&p.public_inputs).unwrap())
        .collect();
    assert!(matches!(
        set().expected_header(&merge, &swapped, &headers, worker(1).worker_pk()),
        Err(CircuitError::BadInputs { .. })
    ));
    // …and the circuit cannot prove it.
    assert!(matches!(
        set().prove_job(&merge, &swapped, &children, &worker(1)),
        Err(CircuitError::Prove(_))
    ));
}

#[test]
fn a_merge_witness_that_is_not_its_childs_statement_cannot_be_proven() {
    let [(p1, t1), (p2, t2)] = batch_nodes();
    let merge = JobCircuit::Kernel {
        name: MERGE_RULE.into(),
    };
    // Claim batch 2 created no note: its note tree unchanged. It would chain, but it is not what
    // the child proves.
    let mut forged = t2;
    forged.after.note_root = forged.before.note_root;
    forged.after.note_count = forged.before.note_count;
    assert_ne!(forged, t2);
    assert!(matches!(
        set().prove_job(
            &merge,
            &merge_inputs(&[t1, forged]),
            &[tx_node(&p1), tx_node(&p2)],
            &worker(1)
        ),
        Err(CircuitError::Prove(_))
    ));
}

#[test]
fn a_double_spend_across_batches_cannot_be_merged() {
    // Two alternative first batches from the same state spend Bob's note: each is valid on its
    // own against the block's start, but the second does not start where the first ends (the
    // account's nonce and the note's nullifier have moved).
    let mut w = world();
    let note = w.note(BOB, 10);
    let fund = w.tx(ALICE, &[], &[note]);
    let block1 = w.block(&[fund]).unwrap();
    let input = crate::support::committed(&block1, note);
    let mut a = w.clone();
    let mut b = w.clone();
    let spend_a = a.tx(BOB, &[input], &[]);
    let spend_b = {
        let change = b.note(CAROL, 10);
        b.tx(BOB, &[input], &[change])
    };
    let block_a = a.block(std::slice::from_ref(&spend_a)).unwrap();
    let block_b = b.block(std::slice::from_ref(&spend_b)).unwrap();
    let ta = Transition::of_tx(&block_a.witnesses[0], spend_a.body.expiration);
    let tb = Transition::of_tx(&block_b.witnesses[0], spend_b.body.expiration);
    // The native producer refuses the second after the first…
    let refused = w.refused_block(&[spend_a.clone(), spend_b.clone()], 1);
    assert!(matches!(
        refused,
        sheaf_rollup::BlockError::Transaction { index: 1, .. }
    ));
    // …and their proofs do not merge: the join fails natively and in the circuit.
    assert!(ta.join(&tb).is_err());
    let node = |t: Transition, tx: &Transaction, wit: &TxWitness| {
        let leaf = set()
            .prove_job(
                &JobCircuit::Leaf {
                    kind: TX_KIND.into(),
                },
                &JobInputs::leaf(
                    TX_KIND,
                    serde_json::json!({"transaction": tx, "witness": wit}),
                )
                .unwrap(),
                &[],
                &worker(7),
            )
            .unwrap();
        set()
            .prove_job(
                &JobCircuit::LeafNode {
                    kind: TX_KIND.into(),
                },
                &merge_inputs(&[t]),
                &[(
                    JobCircuit::Leaf {
                        kind: TX_KIND.into(),
                    },
                    leaf,
                )],
                &worker(7),
            )
            .unwrap()
    };
    let pa = node(ta, &spend_a, &block_a.witnesses[0]);
    let pb = node(tb, &spend_b, &block_b.witnesses[0]);
    assert!(matches!(
        set().prove_job(
            &JobCircuit::Kernel {
                name: MERGE_RULE.into()
            },
            &merge_inputs(&[ta, tb]),
            &[tx_node(&pa), tx_node(&pb)],
            &worker(7)
        ),
        Err(CircuitError::Prove(_))
    ));
}

fn block_job(fields: &BlockFields) -> JobInputs {
    JobInputs::leaf(BLOCK_RULE, serde_json::to_value(fields).unwrap()).unwrap()
}

#[test]
fn a_block_node_refuses_another_previous_header_or_an_earlier_time() {
    let (tree, proofs) = proved();
    let block_index = tree.jobs.len() - 2;
    let job = &tree.jobs[block_index];
    let child = job.children[0];
    let fields: BlockFields = serde_json::from_value(job.inputs.leaf_fields().unwrap()).unwrap();
    let children = [(tree.jobs[child].circuit.clone(), proofs[child].clone())];
    let block = JobCircuit::Kernel {
        name: BLOCK_RULE.into(),
    };
    let header = sheaf_circuits::Header::from_public_inputs(&proofs[child].public_inputs).unwrap();
    let mut other_previous = fields.clone();
    other_previous.previous.timestamp += 1;
    let mut earlier = fields.clone();
    earlier.timestamp = fields.previous.timestamp;
    let mut skipped = fields.clone();
    skipped.previous.number += 1;
    for bad in [other_previous, earlier, skipped] {
        assert!(matches!(
            set().expected_header(&block, &block_job(&bad), &[header], worker(1).worker_pk()),
            Err(CircuitError::BadInputs { .. })
        ));
        assert!(matches!(
            set().prove_job(&block, &block_job(&bad), &children, &worker(1)),
            Err(CircuitError::Prove(_))
        ));
    }
}

#[test]
fn kernel_nodes_do_not_grow_the_universal_shape() {
    // The same leaf kind without the rules: every node of the set is of the universal shape,
    // and admitting the merge and block kernels left that shape as it was.
    let plain = sheaf_circuits::AggregationCircuits::build(
        AggregationSettings::default(),
        &[StandInTxLeaf::build().verifier()],
    )
    .unwrap();
    let with_kernels = &set().aggregation;
    assert_eq!(
        with_kernels.universal().data.common,
        plain.universal().data.common
    );
    for rule in [MERGE_RULE, BLOCK_RULE] {
        let node = with_kernels.kernel_node(rule).unwrap();
        assert_eq!(node.data.common, plain.universal().data.common, "{rule}");
    }
    assert_eq!(with_kernels.whitelist().keys().len(), 4);
}
