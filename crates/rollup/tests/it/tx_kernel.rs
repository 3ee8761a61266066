//! The tx kernel: the proofs of a valid block's transactions verify with the expected header,
//! and every broken rule is refused twice, by the native check before proving and by the circuit
//! itself (`prove_unchecked`).
//!
//! The kernel is built once per test binary and the valid block is proved once; the refusals
//! fail during witness generation and cost no proof.

use std::sync::OnceLock;
use std::time::Instant;

use plonky2::field::types::{Field, Field64};
use sheaf_circuits::{
    ArtifactCache, CircuitError, Digest, Header, JobInputs, LeafCircuit, LeafKind, Profile, Proof,
    WorkerSecret, F,
};
use sheaf_rollup::chain::NoteTree;
use sheaf_rollup::kernel::{TxJob, TxKernel, TxMode, TX_KIND};
use sheaf_rollup::transition::{applied_tx_statement, local_tx_statement};
use sheaf_rollup::{
    AccountId, InputNote, InputNoteWitness, Note, NoteOrigin, ProducedBlock, RollupState,
    Transaction, TransactionBody, TreeUpdate, TxWitness,
};
use sheaf_types::Amount;

use crate::support::{committed, signing_key, unauthenticated, world, ALICE, BOB, CAROL};

fn kernel() -> &'static TxKernel {
    static KERNEL: OnceLock<TxKernel> = OnceLock::new();
    KERNEL.get_or_init(|| TxKernel::build(Profile::Standard.leaf_config()).unwrap())
}

fn worker() -> WorkerSecret {
    WorkerSecret::from_digest(Digest([7, 7, 7, 7]))
}

/// Two blocks: in block 1 Alice sends a note to Bob and one to Carol; in block 2 Bob consumes
/// his (authenticated through the chain) and sends Carol a note, which Carol consumes in the
/// same block (unauthenticated) to send Alice one.
struct Scenario {
    /// The state after block 1 (before block 2).
    state1: RollupState,
    /// The state after block 2.
    state2: RollupState,
    block1: ProducedBlock,
    note_to_bob: Note,
    note_to_carol: Note,
    /// Alice's send (block 1), Bob's receive and Carol's spend (block 2).
    jobs: Vec<TxJob>,
}

fn scenario() -> &'static Scenario {
    static SCENARIO: OnceLock<Scenario> = OnceLock::new();
    SCENARIO.get_or_init(|| {
        let mut world = world();
        let note_to_bob = world.note(BOB, 300);
        let note_to_carol = world.note(CAROL, 200);
        let send = world.tx(ALICE, &[], &[note_to_bob, note_to_carol]);
        let block1 = world.block(std::slice::from_ref(&send)).unwrap();
        let state1 = world.state.clone();
        let forward = world.note(CAROL, 120);
        let receive = world.tx(BOB, &[committed(&block1, note_to_bob)], &[forward]);
        let tip = world.note(ALICE, 20);
        let spend = world.tx(CAROL, &[unauthenticated(forward)], &[tip]);
        let block2 = world.block(&[receive.clone(), spend.clone()]).unwrap();
        let jobs = vec![
            job(send, &block1.witnesses[0]),
            job(receive, &block2.witnesses[0]),
            job(spend, &block2.witnesses[1]),
        ];
        Scenario {
            state1,
            state2: world.state,
            block1,
            note_to_bob,
            note_to_carol,
            jobs,
        }
    })
}

fn job(transaction: Transaction, witness: &TxWitness) -> TxJob {
    TxJob {
        transaction,
        witness: witness.clone(),
        mode: TxMode::Network,
    }
}

/// The proofs of the scenario's jobs, in order.
fn proved() -> &'static [Proof] {
    static PROOFS: OnceLock<Vec<Proof>> = OnceLock::new();
    PROOFS.get_or_init(|| {
        scenario()
            .jobs
            .iter()
            .map(|job| kernel().prove(job, &worker()).unwrap())
            .collect()
    })
}

/// The body of a transaction of `from` at its state in `state`: consume `inputs`, create
/// `outputs`, keep the rest (as `World::body`).
fn body_at(
    state: &RollupState,
    from: AccountId,
    inputs: &[InputNote],
    outputs: &[Note],
) -> TransactionBody {
    let account = *state.account(from).unwrap();
    let received: u128 = inputs.iter().map(|n| n.note.amount.0).sum();
    let sent: u128 = outputs.iter().map(|n| n.amount.0).sum();
    TransactionBody {
        account,
        input_notes: inputs.to_vec(),
        output_notes: outputs.to_vec(),
        final_balance: Amount(account.balance.0 + received - sent),
        expiration: state.tip().number + 10,
    }
}

/// Sign with a fresh signer of the account's keys: tests may sign a second message with a key.
fn resign(body: TransactionBody) -> Transaction {
    let mut key = signing_key(body.account.id);
    body.sign(&mut key).unwrap()
}

fn note(recipient: AccountId, amount: u128, serial: u64) -> Note {
    Note {
        recipient,
        amount: Amount(amount),
        serial: Digest([serial, 99, 99, 99]),
    }
}

/// The job of `transaction` as the first transaction of the block after `state`, with every
/// path taken from `state` whether or not a rule holds (the producer would refuse it). Every
/// nullifier path is taken against `state`'s nullifier root, which is right for one input.
fn forge_job(state: &RollupState, transaction: Transaction) -> TxJob {
    let body = &transaction.body;
    let key = body.account.id.0 as u64;
    let path = state.account_path(body.account.id);
    let account_update = TreeUpdate {
        key,
        root_before: state.account_root(),
        root_after: path.compute_root(key, body.final_account().commitment()),
        path,
    };
    let input_notes = body
        .input_notes
        .iter()
        .map(|input| match input.origin {
            NoteOrigin::Committed { block, index } => {
                InputNoteWitness::Committed(Box::new(state.note_inclusion(block, index).unwrap().1))
            }
            NoteOrigin::Unauthenticated => panic!("a forged job is first in its block"),
        })
        .collect();
    let nullifier_inserts: Vec<_> = body
        .nullifiers()
        .into_iter()
        .map(|nullifier| {
            let path = state.nullifier_path(nullifier);
            let update = TreeUpdate {
                key: nullifier.slot(),
                root_before: state.nullifier_root(),
                root_after: path.compute_root(nullifier.slot(), nullifier.0),
                path,
            };
            (nullifier, update)
        })
        .collect();
    let nullifier_root_after = nullifier_inserts
        .last()
        .map_or(state.nullifier_root(), |(_, u)| u.root_after);
    let mut notes = NoteTree::new();
    let note_root_before = notes.root();
    let note_inserts = body
        .output_notes
        .iter()
        .enumerate()
        .map(|(j, note)| {
            let (key, root_before, path) = (j as u64, notes.root(), notes.path(j as u64));
            notes.insert(key, note.id().0);
            let update = TreeUpdate {
                key,
                path,
                root_before,
                root_after: notes.root(),
            };
            (note.id(), update)
        })
        .collect();
    let witness = TxWitness {
        tx: transaction.id(),
        account_before: body.account,
        account_after: body.final_account(),
        account_update,
        input_notes,
        nullifier_inserts,
        note_inserts,
        note_root_before,
        note_root_after: notes.root(),
        note_count_before: 0,
        nullifier_root_before: state.nullifier_root(),
        nullifier_root_after,
        tx_accumulator_before: Digest::ZERO,
        block: state.tip().number + 1,
        chain_root: state.chain_root(),
    };
    TxJob {
        transaction,
        witness,
        mode: TxMode::Network,
    }
}

/// Refused by the native check, naming `rule`, and by the circuit itself.
fn assert_refused(job: &TxJob, rule: &str) {
    let kernel = kernel();
    match kernel.prove(job, &worker()) {
        Err(CircuitError::BadInputs { kind, reason }) => {
            assert_eq!(kind, TX_KIND);
            assert!(
                reason.contains(rule),
                "expected the rule {rule:?}, got {reason:?}"
            );
        }
        other => panic!("expected the native check to refuse ({rule}), got {other:?}"),
    }
    // plonky2 refuses an unsatisfiable witness while generating it (a wire set twice to two
    // values, a number too large for its bits): an error, not a panic, not a proof.
    match kernel.prove_unchecked(job, &worker()) {
        Err(CircuitError::Prove(_)) => {}
        Ok(proof) => panic!(
            "the circuit proved a job breaking {rule:?} (verifies: {:?})",
            kernel.circuit().verify(proof).is_ok()
        ),
        Err(other) => panic!("expected the circuit to refuse ({rule}), got {other:?}"),
    }
}

#[test]
fn kernel_fits_its_row_budget() {
    let kernel = kernel();
    assert!(
        kernel.rows_log2() <= 13,
        "the tx kernel takes 2^{} rows ({} gates)",
        kernel.rows_log2(),
        kernel.gates()
    );
    assert!(kernel.gates() > 1 << (kernel.rows_log2() - 1));
    assert_eq!(kernel.kind(), "tx");
}

#[test]
fn valid_block_proofs_verify_with_the_expected_headers() {
    let scenario = scenario();
    let kernel = kernel();
    let committed_input = &scenario.jobs[1].witness.input_notes[0];
    let same_block_input = &scenario.jobs[2].witness.input_notes[0];
    assert!(matches!(committed_input, InputNoteWitness::Committed(_)));
    assert!(matches!(
        same_block_input,
        InputNoteWitness::Unauthenticated { .. }
    ));
    for (job, proof) in scenario.jobs.iter().zip(proved()) {
        kernel.circuit().verify(proof.clone()).unwrap();
        let header = Header::from_public_inputs(&proof.public_inputs).unwrap();
        assert_eq!(header, kernel.expected_header(job, &worker()));
        assert_eq!(header.statement, job.transition().digest());
        assert_eq!(header.worker_pk, worker().worker_pk());
    }
    // The block's transitions chain: what merge nodes over these proofs will join.
    let (receive, spend) = (&scenario.jobs[1], &scenario.jobs[2]);
    let block = receive.transition().join(&spend.transition()).unwrap();
    assert_eq!(block.after.account_root, scenario.state2.account_root());
    assert_eq!(block.after.nullifier_root, scenario.state2.nullifier_root());
}

#[test]
fn proof_with_another_statement_does_not_verify() {
    let mut proof = proved()[1].clone();
    proof.public_inputs[11] += F::ONE;
    assert!(kernel().circuit().verify(proof).is_err());
}

#[test]
fn job_inputs_of_the_tx_kind_give_the_expected_header() {
    let job = &scenario().jobs[1];
    let fields = serde_json::to_value(job).unwrap();
    let inputs = JobInputs::leaf(TX_KIND, fields).unwrap();
    let kernel = kernel();
    let header = kernel
        .expected_job_header(&inputs, &[], worker().worker_pk())
        .unwrap();
    assert_eq!(header, kernel.expected_header(job, &worker()));
}

#[test]
fn forged_jobs_match_the_producers_witness() {
    let scenario = scenario();
    let receive = &scenario.jobs[1];
    let forged = forge_job(&scenario.state1, receive.transaction.clone());
    assert_eq!(forged.witness, receive.witness);
    forged.check().unwrap();
}

#[test]
fn kernel_loaded_from_the_cache_proves_under_the_built_key() {
    let dir = tempfile::tempdir().unwrap();
    let cache = ArtifactCache::new(dir.path());
    let config = Profile::Standard.leaf_config();
    TxKernel::load_or_build(config.clone(), Some(&cache)).unwrap();
    // The circuit and its verifier side.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "stored");
    let loaded = TxKernel::load_or_build(config, Some(&cache)).unwrap();
    let built = kernel();
    assert_eq!(
        loaded.circuit().verifier_only.circuit_digest,
        built.circuit().verifier_only.circuit_digest
    );
    let job = &scenario().jobs[2];
    let proof = loaded.prove(job, &worker()).unwrap();
    built.circuit().verify(proof.clone()).unwrap();
    let header = Header::from_public_inputs(&proof.public_inputs).unwrap();
    assert_eq!(header, built.expected_header(job, &worker()));
}

/// A local transaction's two halves: the client's signed half needs no state and states
/// `H(LocalTx ‖ id)`; the network's state half needs no signature and states
/// `H(AppliedTx ‖ transition ‖ id)`. Neither is a transition: no merge node takes one alone.
#[test]
fn a_local_transactions_halves_prove_their_own_statements() {
    let network = &scenario().jobs[1];
    let id = network.transaction.id();
    let signed = TxJob::local(network.transaction.clone());
    let applied = TxJob {
        mode: TxMode::Apply,
        ..network.clone()
    };
    let kernel = kernel();
    for (job, statement) in [
        (&signed, local_tx_statement(id)),
        (&applied, applied_tx_statement(&network.transition(), id)),
    ] {
        let proof = kernel.prove(job, &worker()).unwrap();
        kernel.circuit().verify(proof.clone()).unwrap();
        let header = Header::from_public_inputs(&proof.public_inputs).unwrap();
        assert_eq!(header.statement, statement, "{:?}", job.mode);
        assert_eq!(header, kernel.expected_header(job, &worker()));
        assert_ne!(header.statement, network.transition().digest());
    }
}

#[test]
fn a_signed_half_with_a_tampered_signature_is_refused() {
    let mut job = TxJob::local(scenario().jobs[1].transaction.clone());
    job.transaction.signature.chains[5].0[0] ^= 1;
    assert_refused(&job, "bad signature");
}

#[test]
fn a_signed_half_creating_value_is_refused() {
    let scenario = scenario();
    let mut body = body_at(&scenario.state1, ALICE, &[], &[note(BOB, 10, 1)]);
    body.output_notes[0].amount.0 += 1;
    assert_refused(&TxJob::local(resign(body)), "value not conserved");
}

#[test]
fn a_state_half_spending_a_spent_nullifier_is_refused() {
    // As `nullifier_already_in_the_tree_is_refused`, the state half alone: it checks the
    // nullifier tree whatever the signature.
    let scenario = scenario();
    let again = committed(&scenario.block1, scenario.note_to_bob);
    let tx = resign(body_at(&scenario.state2, BOB, &[again], &[]));
    let job = TxJob {
        mode: TxMode::Apply,
        ..forge_job(&scenario.state2, tx)
    };
    assert_refused(&job, "not shown empty under the nullifier root");
}

#[test]
fn tampered_signature_chain_value_is_refused() {
    let mut job = scenario().jobs[1].clone();
    job.transaction.signature.chains[5].0[0] ^= 1;
    assert_refused(&job, "bad signature");
}

#[test]
fn nullifier_already_in_the_tree_is_refused() {
    // Bob spends his note again in block 3, from his current account: only the nullifier
    // repeats, so its slot's path shows the nullifier, not an empty leaf.
    let scenario = scenario();
    let again = committed(&scenario.block1, scenario.note_to_bob);
    let tx = resign(body_at(&scenario.state2, BOB, &[again], &[]));
    let job = forge_job(&scenario.state2, tx);
    assert_refused(&job, "not shown empty under the nullifier root");
}

#[test]
fn note_consumed_twice_in_one_transaction_is_refused() {
    // The second insertion reuses the first one's path: its slot is no longer empty.
    let scenario = scenario();
    let input = committed(&scenario.block1, scenario.note_to_bob);
    let tx = resign(body_at(&scenario.state1, BOB, &[input, input], &[]));
    let job = forge_job(&scenario.state1, tx);
    assert_refused(&job, "input 1: its nullifier's slot is not shown empty");
}

#[test]
fn input_note_that_does_not_exist_is_refused() {
    let scenario = scenario();
    let mut input = committed(&scenario.block1, scenario.note_to_bob);
    input.note.serial.0[1] += 1;
    let tx = resign(body_at(&scenario.state1, BOB, &[input], &[]));
    let job = forge_job(&scenario.state1, tx);
    assert_refused(&job, "input 0 does not exist");
}

#[test]
fn note_of_another_account_is_refused() {
    // Carol's note exists in block 1; Bob claims it.
    let scenario = scenario();
    let input = committed(&scenario.block1, scenario.note_to_carol);
    let tx = resign(body_at(&scenario.state1, BOB, &[input], &[]));
    let job = forge_job(&scenario.state1, tx);
    assert_refused(&job, "input 0 belongs to account 3, not to account 2");
}

#[test]
fn value_from_nothing_without_resigning_is_refused() {
    let mut job = scenario().jobs[0].clone();
    job.transaction.body.final_balance.0 += 1;
    assert_refused(&job, "value not conserved");
}

#[test]
fn value_from_nothing_resigned_is_refused() {
    // Signed and witnessed consistently: only the value equation is broken.
    let scenario = scenario();
    let mut body = body_at(&scenario.state1, ALICE, &[], &[note(BOB, 10, 1)]);
    body.output_notes[0].amount.0 += 1;
    let job = forge_job(&scenario.state1, resign(body));
    assert_refused(
        &job,
        "value not conserved: 500 in (balance and notes), 501 out",
    );
}

#[test]
fn amount_that_wraps_the_field_is_refused() {
    // `p − 50` is `−50` in the field: the field sum balances, only the range check refuses.
    let scenario = scenario();
    let mut body = body_at(&scenario.state1, ALICE, &[], &[]);
    body.output_notes = vec![note(CAROL, (F::ORDER - 50) as u128, 2)];
    body.final_balance.0 += 50;
    let job = forge_job(&scenario.state1, resign(body));
    assert_refused(&job, "amount out of range: output 0's amount");
}

#[test]
fn expired_transaction_is_refused() {
    let scenario = scenario();
    let mut body = body_at(&scenario.state1, ALICE, &[], &[note(BOB, 10, 3)]);
    body.expiration = scenario.state1.tip().number;
    let job = forge_job(&scenario.state1, resign(body));
    assert_eq!(job.witness.block, job.transaction.body.expiration + 1);
    assert_refused(&job, "expired");
}

#[test]
fn stale_initial_account_commitment_is_refused() {
    // Alice claims a balance she does not have; the path of her real leaf does not prove it.
    let scenario = scenario();
    let mut body = body_at(&scenario.state1, ALICE, &[], &[note(BOB, 10, 4)]);
    body.account.balance.0 += 5_000;
    body.final_balance.0 += 5_000;
    let job = forge_job(&scenario.state1, resign(body));
    assert_refused(&job, "stale initial account commitment");
}

#[test]
fn signature_of_another_transaction_is_refused() {
    // Bob's key for this nonce signed another transaction (another output): a valid one-time
    // signature, of another message.
    let scenario = scenario();
    let mut job = scenario.jobs[1].clone();
    let mut other = job.transaction.body.clone();
    other.output_notes[0].serial = Digest([5, 5, 5, 5]);
    assert_ne!(other.id(), job.transaction.id());
    job.transaction.signature = resign(other).signature;
    assert_refused(&job, "bad signature");
}

#[test]
fn duplicate_transaction_is_refused() {
    // Alice's send of block 1, applied again in block 2: it starts from her account as it was,
    // which the account tree no longer holds.
    let scenario = scenario();
    let job = forge_job(&scenario.state1, scenario.jobs[0].transaction.clone());
    assert_refused(&job, "stale initial account commitment");
}

#[test]
fn output_beyond_the_note_tree_is_refused() {
    // A block whose note tree is full: the next note's index has more than 16 bits.
    let mut job = scenario().jobs[0].clone();
    job.witness.note_count_before = 1 << 16;
    assert_refused(&job, "output 0: slot 65536");
}

#[test]
fn malformed_jobs_are_typed_errors() {
    let kernel = kernel();
    let valid = &scenario().jobs[1];
    let mut short_path = valid.clone();
    short_path.witness.account_update.path.siblings.pop();
    let mut too_many = valid.clone();
    let input = too_many.transaction.body.input_notes[0];
    too_many.transaction.body.input_notes = vec![input; 17];
    let mut missing_chain = valid.clone();
    missing_chain.transaction.signature.chains.pop();
    let mut unwitnessed = valid.clone();
    unwitnessed.witness.nullifier_inserts.clear();
    let mut huge_count = valid.clone();
    huge_count.witness.note_count_before = u32::MAX;
    for (job, rule) in [
        (short_path, "the account path has 31 siblings"),
        (too_many, "17 input notes"),
        (missing_chain, "66 chains"),
        (unwitnessed, "nullifies 0 notes"),
    ] {
        // The statement is defined for any job; neither path to a proof panics.
        let _ = kernel.statement(&job);
        for result in [
            kernel.prove(&job, &worker()),
            kernel.prove_unchecked(&job, &worker()),
        ] {
            match result {
                Err(CircuitError::BadInputs { reason, .. }) => {
                    assert!(reason.contains(rule), "expected {rule:?}, got {reason:?}");
                }
                other => panic!("expected a shape error ({rule}), got {other:?}"),
            }
        }
    }
    let _ = kernel.statement(&huge_count);
    assert!(matches!(
        kernel.prove(&huge_count, &worker()),
        Err(CircuitError::BadInputs { .. })
    ));
}

#[test]
#[ignore = "measures the kernel: cargo test -p sheaf-rollup --test it tx_kernel_size -- --ignored --nocapture"]
fn tx_kernel_size_and_prove_time() {
    let config = Profile::Standard.leaf_config();
    for (inputs, outputs) in [(16, 16), (16, 8), (8, 16), (8, 8), (4, 4)] {
        let (gates, degree) = TxKernel::measure(&config, inputs, outputs);
        println!("slots {inputs}/{outputs}: {gates} gates, 2^{degree} rows");
    }
    let start = Instant::now();
    let kernel = TxKernel::build(config).unwrap();
    println!("build: {:.2?}, {kernel:?}", start.elapsed());
    let job = &scenario().jobs[1];
    for _ in 0..3 {
        let start = Instant::now();
        let proof = kernel.prove(job, &worker()).unwrap();
        let proved = start.elapsed();
        let start = Instant::now();
        kernel.circuit().verify(proof).unwrap();
        println!("prove: {proved:.2?}, verify: {:.2?}", start.elapsed());
    }
}
