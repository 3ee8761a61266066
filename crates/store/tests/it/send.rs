//! Every store future is `Send`, so the coordinator can spawn it and hold it across the awaits
//! of a web handler. Checked by the compiler: this module only has to build.

use sheaf_store::{JobFilter, JobId, Prover, RewardEntry, SequenceId, Store};

fn assert_send<T: Send>(_: T) {}

#[allow(dead_code)]
fn store_futures_are_send(store: Store, prover: Prover) {
    let job = JobId::new(SequenceId(0), 0, 0);
    let reward = RewardEntry {
        worker_pk: [0; 32],
        work_units: 1,
    };
    assert_send(Store::connect("sqlite://x"));
    assert_send(Store::open_data_dir("x"));
    assert_send(store.schema_version());
    assert_send(store.close());
    assert_send(store.insert_sequence(
        sheaf_store::NewSequence {
            id: SequenceId(0),
            leaves: 0,
            created_ms: 0,
        },
        &[],
    ));
    assert_send(store.lease_next_job("p", 0, 1));
    assert_send(store.count_active_leases("p", 0));
    assert_send(store.heartbeat(job, 1, 0, 1));
    assert_send(store.submit_proof(job, 1, "p", b"", reward, 0, None));
    assert_send(store.requeue_expired(0, 1));
    assert_send(store.get_job(job));
    assert_send(store.list_jobs(JobFilter::default()));
    assert_send(store.requeue_job(job));
    assert_send(store.cancel_job(job));
    assert_send(store.proof_of(job));
    assert_send(store.child_proofs(job));
    assert_send(store.get_sequence(SequenceId(0)));
    assert_send(store.rewards(SequenceId(0)));
    assert_send(store.counts_by_status());
    assert_send(store.stored_proofs());
    assert_send(store.upsert_prover(&prover));
    assert_send(store.get_prover("p"));
    assert_send(store.lease_admitted("p", 0, 1, 1));
    assert_send(store.remember_nonce("k", "n", 0));
    assert_send(store.prune_nonces(0));
    assert_send(store.list_sequences());
    assert_send(store.sync_provers(std::slice::from_ref(&prover)));
    assert_send(store.prover_by_key(&[0; 32]));
    let transaction = sheaf_store::NewRollupTransaction {
        id: [0; 32],
        body: vec![],
        local_proof: None,
        local_reward: None,
        received_ms: 0,
    };
    assert_send(store.insert_rollup_transaction(&transaction));
    assert_send(store.pending_rollup_transactions());
    assert_send(store.rollup_transaction([0; 32]));
    let block = sheaf_store::PublishedBlock {
        number: 1,
        commitment: [0; 32],
        header: vec![],
        transactions: vec![],
        sequence: sheaf_store::NewSequence {
            id: SequenceId(0),
            leaves: 0,
            created_ms: 0,
        },
        jobs: vec![],
        proved: Vec::new(),
        published_ms: 0,
    };
    assert_send(store.publish_rollup_block(&block));
    assert_send(store.revert_rollup_transactions(&[[0; 32]], "r"));
    assert_send(store.rollup_tip());
    assert_send(store.rollup_proven_tip());
    assert_send(store.rollup_block(1));
    assert_send(store.rollup_blocks(1, 1));
    assert_send(store.rollup_block_transactions(1));
}
