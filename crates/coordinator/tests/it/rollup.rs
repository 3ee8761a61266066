//! The rollup on the network. A block proved by the network: a coordinator serving the rollup's circuit set (work
//! leaf, tx kernel, merge and block kernels), two library provers that build that set from the
//! rollup's catalog when the hello names it, and the block's tree (tx leaves, tx leaf nodes,
//! merges, the block node, the root) stored as one sequence. And the rollup node over the
//! coordinator's store: blocks published before they are proven, proved by the network, and
//! replayed by a restart. And a rollup coordinator with a sender: blocks registered on a real
//! chain when published and finalized in order once proved.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ed25519_dalek::SigningKey;

use sheaf_api::ErrorCode;
use sheaf_circuits::{CircuitSet, Digest};
use sheaf_coordinator::rollup::{
    BlockView, RollupConfig, RollupError, RollupNode, RollupStatus, DEFAULT_CONCURRENT_BLOCKS,
    MAX_TRANSACTION_BYTES,
};
use sheaf_coordinator::{
    CoordinatorConfig, CoordinatorService, RollupOptions, SenderConfig, ServiceOptions,
    SettlementOptions, StaticRegistry,
};
use sheaf_prover::ProverKey;
use sheaf_rollup::demo::DemoRollup;
use sheaf_rollup::kernel::BlockTree;
use sheaf_rollup::MempoolConfig;
use sheaf_store::{JobFilter, JobStatus, NewJob, NewSequence};
use sheaf_types::clock::now_ms;
use sheaf_types::{JobId, SequenceId};

use crate::harness::{
    prove_until, prove_until_at, registered_key, sqlite_store, start_on, start_with_circuits,
    test_cache, Answer, Net, LEAF_ROWS_LOG2,
};
use crate::settlement::TestChain;

/// A coordinator serving the rollup's circuits on a fresh SQLite store, admitting two library
/// provers: the coordinator (with its store), the store's directory, and the provers' keys.
async fn rollup_net() -> (Net, tempfile::TempDir, [ProverKey; 2]) {
    let circuits = rollup_circuits().await;
    let keys = [ProverKey::generate(), ProverKey::generate()];
    let (store, dir) = sqlite_store().await;
    let registry = Arc::new(StaticRegistry(vec![
        registered_key("alice", &keys[0]),
        registered_key("bob", &keys[1]),
    ]));
    let net = start_with_circuits(
        store.clone(),
        registry,
        CoordinatorConfig::default(),
        circuits,
    )
    .await;
    (net, dir, keys)
}

/// The rollup's circuit set, built (or loaded from the tests' cache) once per binary.
async fn rollup_circuits() -> Arc<CircuitSet> {
    static CIRCUITS: OnceLock<Arc<CircuitSet>> = OnceLock::new();
    tokio::task::spawn_blocking(|| {
        CIRCUITS
            .get_or_init(|| {
                let set = sheaf_rollup::kernel::circuit_set(
                    crate::harness::settings(),
                    LEAF_ROWS_LOG2,
                    Some(&test_cache()),
                );
                Arc::new(set.expect("the rollup's circuits"))
            })
            .clone()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_provers_prove_a_rollup_block() {
    let (net, _dir, keys) = rollup_net().await;
    let spec = net.coordinator.spec();
    assert_eq!(spec.kernels, ["merge", "block"]);
    assert!(spec.kinds.iter().any(|k| k.name == "tx"));

    // Block 1: three transfers in batches of two; the second consumes the note the first made.
    let mut demo = DemoRollup::new(3, 4, 1_000).unwrap();
    let previous = *demo.state.tip();
    let chain_path = demo.state.chain_path(previous.number);
    let txs = demo.transfers(3).unwrap();
    let block = demo.state.apply_block(&txs, 2_000, 2).unwrap();
    let tree = BlockTree::plan(&previous, chain_path, &txs, &[], &block, 2, 2).unwrap();
    let id = |job: usize| {
        let job = &tree.jobs[job];
        JobId::new(SequenceId(1), job.level as u32, job.index as u64)
    };
    let jobs: Vec<NewJob> = (0..tree.jobs.len())
        .map(|i| NewJob {
            id: id(i),
            circuit: tree.jobs[i].circuit.clone(),
            inputs: tree.jobs[i].inputs.clone(),
            children: tree.jobs[i].children.iter().map(|&c| id(c)).collect(),
        })
        .collect();
    net.store
        .insert_sequence(
            NewSequence {
                id: SequenceId(1),
                leaves: txs.len() as i64,
                created_ms: now_ms(),
            },
            &jobs,
        )
        .await
        .unwrap();

    let reports = prove_until(
        &net,
        &keys,
        sheaf_rollup::kernel::catalog(),
        "the block",
        || async { net.sequence_one().await.proved_ms.is_some() },
    )
    .await;
    assert!(reports.iter().all(|r| r.submissions_rejected == 0));
    let proved_by_provers: u64 = reports.iter().map(|r| r.jobs_proved).sum();

    // 3 tx leaves, 2 tx leaf nodes, 1 merge, the block node, the root: each proved once.
    let stored = net.store.list_jobs(JobFilter::default()).await.unwrap();
    assert_eq!(stored.len(), 8);
    assert!(stored.iter().all(|j| j.status == JobStatus::Proved));
    assert_eq!(proved_by_provers, 8);
    assert_eq!(net.rewards_of_sequence_one().await.len(), 8);

    // The root verifies with the rollup set's final key and proves the block's statement.
    let root = net
        .store
        .proof_of(net.sequence_one().await.root)
        .await
        .unwrap()
        .unwrap();
    let verified = net
        .coordinator
        .circuits()
        .aggregation
        .final_key()
        .verify_bytes(&root)
        .unwrap();
    let statement = sheaf_rollup::block_statement(&previous, &block.header);
    assert_eq!(
        verified.header.statement,
        Digest::hash_digests(&[statement])
    );
    assert_eq!(verified.header.stats.leaf_jobs, 3);
    // The plan the sender registers covers the block's tree: its units are the root's.
    let plan =
        crate::claims::plan_of(&net.store, &net.coordinator.circuits_arc(), SequenceId(1)).await;
    crate::claims::assert_plan_matches_root(&plan, &verified.header.stats);
    // Once settled, each job of the block's irregular tree is claimable by the key that
    // proved it, with a path that climbs to the root at its planned position.
    net.store
        .mark_sequences_settled(SequenceId(1), SequenceId(2), now_ms())
        .await
        .unwrap();
    crate::claims::assert_claims_climb_to_root(&net, &keys, &verified.header).await;
    net.stop().await;
}

/// Blocks of up to two batches of two transactions, binary trees, at most `concurrent_blocks`
/// blocks awaiting their proof.
fn blocks_of_two_batches_of_two(concurrent_blocks: usize) -> RollupConfig {
    RollupConfig {
        mempool: MempoolConfig {
            max_txs_per_batch: 2,
            max_batches_per_block: 2,
            ..MempoolConfig::default()
        },
        arity: 2,
        concurrent_blocks,
    }
}

/// A rollup node over the coordinator's store: transactions submitted, blocks published with
/// their trees before any proof, the network proves them, and a reopened node (a restart)
/// replays the published blocks to the same state and readmits what was pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollup_node_publishes_blocks_the_network_proves_and_a_restart_replays_them() {
    let (net, _dir, keys) = rollup_net().await;
    let store = net.store.clone();
    let mut demo = DemoRollup::new(3, 16, 1_000).unwrap();
    let genesis = demo.state.clone();
    // Both blocks may wait for their proof, not a third.
    let config = blocks_of_two_batches_of_two(2);
    let node = RollupNode::open(store.clone(), genesis.clone(), config.clone())
        .await
        .unwrap();

    // Bad input changes nothing.
    assert!(matches!(
        node.submit(b"{\"not\": \"a transaction\"}").await,
        Err(RollupError::Malformed(_))
    ));
    assert!(matches!(
        node.submit(&vec![b' '; MAX_TRANSACTION_BYTES + 1]).await,
        Err(RollupError::TooLarge { .. })
    ));
    let txs = demo.transfers(7).unwrap();
    for tx in &txs[..6] {
        node.submit(&serde_json::to_vec(tx).unwrap()).await.unwrap();
    }
    assert!(matches!(
        node.submit(&serde_json::to_vec(&txs[0]).unwrap()).await,
        Err(RollupError::Refused(_))
    ));
    assert_eq!(node.pending().await, 6);

    // Two blocks, published before any proof: 4 then 2 transactions.
    node.select_batches().await;
    let first = node.build_and_publish(2_000).await.unwrap().unwrap();
    node.select_batches().await;
    let second = node.build_and_publish(3_000).await.unwrap().unwrap();
    assert_eq!((first.number, second.number), (1, 2));
    assert!(node.build_and_publish(4_000).await.unwrap().is_none());
    let tip = store.rollup_tip().await.unwrap().unwrap();
    assert_eq!(tip.number, 2);
    assert_eq!(store.rollup_proven_tip().await.unwrap(), None);

    // One more transaction waits when the node stops.
    node.submit(&serde_json::to_vec(&txs[6]).unwrap())
        .await
        .unwrap();
    // Two published blocks wait for their proof: the proving backlog is full, the third block
    // waits with its transaction in the mempool.
    node.select_batches().await;
    assert!(node.build_and_publish(4_500).await.unwrap().is_none());
    assert_eq!(node.pending().await, 1);
    assert_eq!(store.rollup_tip().await.unwrap().unwrap().number, 2);
    let state = node.state().await;
    drop(node);

    // The network proves both blocks.
    let reports = prove_until(
        &net,
        &keys,
        sheaf_rollup::kernel::catalog(),
        "both blocks",
        || async { store.rollup_proven_tip().await.unwrap() == Some(2) },
    )
    .await;
    assert!(reports.iter().all(|r| r.submissions_rejected == 0));
    for (previous, header) in [(*genesis.tip(), first), (first, second)] {
        verified_block_root(&net, &previous, &header).await;
    }

    // A restart: the same state, the waiting transaction readmitted.
    let reopened = RollupNode::open(store.clone(), genesis, config)
        .await
        .unwrap();
    assert_eq!(reopened.state().await, state);
    assert_eq!(reopened.pending().await, 1);
    reopened.select_batches().await;
    let third = reopened.build_and_publish(5_000).await.unwrap().unwrap();
    assert_eq!(third.number, 3);
    net.stop().await;
}

/// Local transactions over the real API: the proof of the signed half that the client made is
/// checked on receipt like any proof, and every refusal (another prover's key, a proof of
/// another transaction, one that does not verify, bytes that are no proof) has its code and
/// changes nothing. An accepted one's half is stored proved when its block is published, no
/// prover leases it, and the block, mixing local and network transactions, proves to a root the
/// final key verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_transactions_are_checked_on_receipt_and_their_blocks_prove_with_the_clients_halves()
{
    use sheaf_circuits::{encode_proof, WorkerSecret};
    use sheaf_coordinator::rollup::{LocalTransaction, LOCAL_PROVER};
    use sheaf_rollup::Transaction;

    let (net, _dir, keys) = rollup_net().await;
    let store = net.store.clone();
    let mut demo = DemoRollup::new(3, 16, 1_000).unwrap();
    let genesis = demo.state.clone();
    let config = blocks_of_two_batches_of_two(DEFAULT_CONCURRENT_BLOCKS);
    let node = RollupNode::open(store.clone(), genesis.clone(), config)
        .await
        .unwrap();
    net.coordinator.attach_rollup(node.clone());
    let txs = demo.transfers(4).unwrap();
    let circuits = net.coordinator.circuits_arc();
    let client = WorkerSecret::from_digest(Digest([7, 7, 7, 7]));
    let prove_local = |tx: &Transaction| {
        let circuits = circuits.clone();
        let tx = tx.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let inputs = LocalTransaction::inputs(&tx).unwrap();
                let proof = circuits
                    .prove_job(&LocalTransaction::circuit(), &inputs, &[], &client)
                    .unwrap();
                (tx, proof)
            })
            .await
            .unwrap()
        }
    };
    let local = |tx: &Transaction, proof: &sheaf_circuits::Proof| LocalTransaction {
        transaction: tx.clone(),
        prover: client.worker_pk(),
        proof: encode_proof(proof),
    };
    let path = "/v1/rollup/transactions/local";
    let (tx0, proof0) = prove_local(&txs[0]).await;
    let good = local(&tx0, &proof0);
    let mut unsound = proof0.clone();
    unsound.proof.openings.wires[0].0[0] +=
        <sheaf_circuits::F as plonky2::field::types::Field>::ONE;
    let refusals = [
        (
            "another prover's key",
            LocalTransaction {
                prover: WorkerSecret::from_digest(Digest([8, 8, 8, 8])).worker_pk(),
                ..good.clone()
            },
            ErrorCode::WrongWorker,
        ),
        (
            "a proof of another transaction",
            LocalTransaction {
                transaction: txs[1].clone(),
                ..good.clone()
            },
            ErrorCode::HeaderMismatch,
        ),
        (
            "a proof that does not verify",
            local(&tx0, &unsound),
            ErrorCode::InvalidProof,
        ),
        (
            "bytes that are no proof",
            LocalTransaction {
                proof: b"not a proof".to_vec(),
                ..good.clone()
            },
            ErrorCode::MalformedProof,
        ),
    ];
    for (what, refused, code) in refusals {
        let answer = post_raw(&net, path, serde_json::to_vec(&refused).unwrap()).await;
        assert_eq!(
            answer.code(),
            code,
            "{what}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        assert_eq!(node.pending().await, 0, "{what} changed the mempool");
        assert!(store
            .pending_rollup_transactions()
            .await
            .unwrap()
            .is_empty());
    }
    assert_eq!(
        post_raw(&net, path, b"{}".to_vec()).await.code(),
        ErrorCode::BadRequest
    );

    // Local, network, local: in one block of two batches.
    let answer = post_raw(&net, path, serde_json::to_vec(&good).unwrap()).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let network = post_raw(
        &net,
        "/v1/rollup/transactions",
        serde_json::to_vec(&txs[1]).unwrap(),
    )
    .await;
    assert_eq!(network.status, 200);
    let (tx2, proof2) = prove_local(&txs[2]).await;
    let answer = post_raw(
        &net,
        path,
        serde_json::to_vec(&local(&tx2, &proof2)).unwrap(),
    )
    .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    node.select_batches().await;
    let header = node.build_and_publish(2_000).await.unwrap().unwrap();
    let jobs = store
        .list_jobs(JobFilter {
            sequence: Some(SequenceId(1)),
            ..JobFilter::default()
        })
        .await
        .unwrap();
    let by_client: Vec<_> = jobs
        .iter()
        .filter(|j| j.proved_by.as_deref() == Some(LOCAL_PROVER))
        .collect();
    assert_eq!(
        by_client.len(),
        2,
        "the two clients' halves are stored proved"
    );
    assert!(by_client.iter().all(|j| j.status == JobStatus::Proved));

    let reports = prove_until(
        &net,
        &keys,
        sheaf_rollup::kernel::catalog(),
        "the block",
        || async { store.rollup_proven_tip().await.unwrap() == Some(1) },
    )
    .await;
    assert!(reports.iter().all(|r| r.submissions_rejected == 0));
    let jobs = store
        .list_jobs(JobFilter {
            sequence: Some(SequenceId(1)),
            ..JobFilter::default()
        })
        .await
        .unwrap();
    assert!(
        jobs.iter()
            .filter(|j| j.proved_by.as_deref() == Some(LOCAL_PROVER))
            .all(|j| j.attempts == 0),
        "no prover leased a client's half"
    );
    let verified = verified_block_root(&net, genesis.tip(), &header).await;
    assert_eq!(
        verified.header.stats.leaf_jobs, 5,
        "1 network leaf, 2 × 2 halves"
    );

    // A block of one local transaction: its pair node is the block node's only child. It
    // consumes the note the last transaction of block 1 made (note 2 of block 1), by now
    // committed (the origin is not signed).
    let mut last = txs[3].clone();
    last.body.input_notes[0].origin = sheaf_rollup::NoteOrigin::Committed { block: 1, index: 2 };
    let (tx3, proof3) = prove_local(&last).await;
    let answer = post_raw(
        &net,
        path,
        serde_json::to_vec(&local(&tx3, &proof3)).unwrap(),
    )
    .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    node.select_batches().await;
    let second = node.build_and_publish(3_000).await.unwrap().unwrap();
    let reports = prove_until(
        &net,
        &keys,
        sheaf_rollup::kernel::catalog(),
        "the block of one local transaction",
        || async { store.rollup_proven_tip().await.unwrap() == Some(2) },
    )
    .await;
    assert!(reports.iter().all(|r| r.submissions_rejected == 0));
    let verified = verified_block_root(&net, &header, &second).await;
    assert_eq!(verified.header.stats.leaf_jobs, 2, "the two halves");
    net.stop().await;
}

/// The root of block `header`'s sequence, verified with the set's final key, after checking
/// that it states the block built on `previous`.
async fn verified_block_root(
    net: &Net,
    previous: &sheaf_rollup::BlockHeader,
    header: &sheaf_rollup::BlockHeader,
) -> sheaf_circuits::VerifiedRoot {
    let block = net
        .store
        .rollup_block(header.number as i64)
        .await
        .unwrap()
        .expect("published");
    let sequence = net
        .store
        .get_sequence(block.sequence)
        .await
        .unwrap()
        .unwrap();
    let root = net
        .store
        .proof_of(sequence.root)
        .await
        .unwrap()
        .expect("root proved");
    let verified = net
        .coordinator
        .circuits()
        .aggregation
        .final_key()
        .verify_bytes(&root)
        .unwrap();
    let statement = sheaf_rollup::block_statement(previous, header);
    assert_eq!(
        verified.header.statement,
        Digest::hash_digests(&[statement])
    );
    verified
}

/// `POST` raw bytes to the coordinator, unsigned.
pub(crate) async fn post_raw(net: &crate::harness::Net, path: &str, body: Vec<u8>) -> Answer {
    let response = net
        .http
        .post(format!("{}{path}", net.url))
        .body(body)
        .send()
        .await
        .expect("request");
    Answer::read(response).await
}

/// The rollup API over HTTP: transactions in, status out; every refusal a clear code that
/// changes nothing; a coordinator without a rollup says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rollup_api_takes_transactions_and_refuses_bad_ones_with_clear_codes() {
    let (store, _dir) = sqlite_store().await;
    let net = start_on(store.clone(), Vec::new(), CoordinatorConfig::default()).await;
    let transactions = "/v1/rollup/transactions";
    let no_rollup = post_raw(&net, transactions, b"{}".to_vec()).await;
    assert_eq!(no_rollup.code(), ErrorCode::NotFound);
    assert_eq!(
        net.get("/v1/rollup/status").await.code(),
        ErrorCode::NotFound
    );

    let mut demo = DemoRollup::new(3, 16, 1_000).unwrap();
    let config = RollupConfig {
        mempool: MempoolConfig {
            capacity: 2,
            ..MempoolConfig::default()
        },
        arity: 2,
        concurrent_blocks: DEFAULT_CONCURRENT_BLOCKS,
    };
    let node = RollupNode::open(store.clone(), demo.state.clone(), config)
        .await
        .unwrap();
    net.coordinator.attach_rollup(node.clone());
    let txs = demo.transfers(3).unwrap();

    let accepted = post_raw(&net, transactions, serde_json::to_vec(&txs[0]).unwrap()).await;
    assert_eq!(
        accepted.status,
        200,
        "{}",
        String::from_utf8_lossy(&accepted.body)
    );
    let id: serde_json::Value = accepted.json();
    assert_eq!(id["id"], serde_json::to_value(txs[0].id()).unwrap());

    let refusals = [
        (b"not json".to_vec(), ErrorCode::BadRequest),
        (
            vec![b' '; MAX_TRANSACTION_BYTES + 1],
            ErrorCode::PayloadTooLarge,
        ),
        // Twice: the mempool has it.
        (serde_json::to_vec(&txs[0]).unwrap(), ErrorCode::BadRequest),
    ];
    for (body, code) in refusals {
        let answer = post_raw(&net, transactions, body).await;
        assert_eq!(answer.code(), code);
        assert_eq!(node.pending().await, 1, "a refusal changed the mempool");
        assert_eq!(store.pending_rollup_transactions().await.unwrap().len(), 1);
    }
    // At capacity: 503-class, with a Retry-After.
    let second = post_raw(&net, transactions, serde_json::to_vec(&txs[1]).unwrap()).await;
    assert_eq!(second.status, 200);
    let full = post_raw(&net, transactions, serde_json::to_vec(&txs[2]).unwrap()).await;
    assert_eq!(full.code(), ErrorCode::Overloaded);
    assert!(full.retry_after.is_some());
    assert_eq!(node.pending().await, 2);

    node.select_batches().await;

    node.build_and_publish(2_000).await.unwrap().unwrap();
    // The published block: its transactions, the notes they made, the nullifier the second
    // spent (it consumed the first's note, made in the same block).
    let block: BlockView = net.get("/v1/rollup/blocks/1").await.json();
    assert_eq!(block.header.number, 1);
    assert_eq!(block.commitment, block.header.commitment());
    assert_eq!(block.transactions, [txs[0].id(), txs[1].id()]);
    assert_eq!(
        block.created_notes,
        [txs[0].body.output_notes[0], txs[1].body.output_notes[0]]
    );
    assert_eq!(block.spent_nullifiers, txs[1].body.nullifiers());
    assert!(!block.proved);
    assert!(!block.settled);
    assert_eq!(
        net.get("/v1/rollup/blocks/2").await.code(),
        ErrorCode::NotFound
    );
    assert_eq!(
        net.get("/v1/rollup/blocks/one").await.code(),
        ErrorCode::BadRequest
    );
    let status: RollupStatus = net.get("/v1/rollup/status").await.json();
    assert_eq!(
        status,
        RollupStatus {
            published_tip: Some(1),
            proven_tip: None,
            settled_tip: None,
            pending: 0
        }
    );
    net.stop().await;
}

/// A coordinator started with a rollup genesis and a sender key, as `sheaf coordinator
/// --rollup-genesis … --sender-key …` assembles it, on a real chain that verifies with the rollup
/// set's final key: each block's statement is registered when the block is published, before
/// any proof; once the provers prove both blocks, both are finalized on chain in order, and the
/// status's settled tip and each block's `settled` follow what the sender saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollup_coordinator_with_a_sender_settles_its_blocks_on_chain_in_order() {
    let circuits = rollup_circuits().await;
    let sender_key = SigningKey::from_bytes(&[9; 32]);
    let chain = TestChain::with_final_key(circuits.aggregation.final_key(), &sender_key).await;
    chain.resume();
    let keys = [ProverKey::generate(), ProverKey::generate()];
    let (store, _dir) = sqlite_store().await;
    let mut demo = DemoRollup::new(3, 16, 1_000).unwrap();
    let genesis = demo.state.clone();
    let service = CoordinatorService::start(ServiceOptions {
        store: store.clone(),
        circuits,
        leaf_rows_log2: LEAF_ROWS_LOG2,
        config: CoordinatorConfig::default(),
        registry: Some(Arc::new(StaticRegistry(vec![
            registered_key("alice", &keys[0]),
            registered_key("bob", &keys[1]),
        ]))),
        sequences: 0,
        leaves: 1,
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: None,
        settlement: Some(SettlementOptions {
            chain: chain.client.clone(),
            key: sender_key,
            config: SenderConfig {
                poll_interval: Duration::from_millis(50),
                resend_after: Duration::from_secs(1),
                role_ttl: Duration::from_secs(1),
            },
        }),
        rollup: Some(RollupOptions {
            genesis: genesis.clone(),
            // One transaction a block: two transactions make two blocks.
            config: RollupConfig {
                mempool: MempoolConfig {
                    max_txs_per_batch: 1,
                    max_batches_per_block: 1,
                    ..MempoolConfig::default()
                },
                arity: 2,
                concurrent_blocks: DEFAULT_CONCURRENT_BLOCKS,
            },
            block_interval: Duration::from_millis(200),
            batch_interval: Duration::from_millis(100),
        }),
    })
    .await
    .expect("a rollup coordinator with a sender starts");
    let url = service.url();
    let http = reqwest::Client::new();
    let status = || async {
        let answer = http
            .get(format!("{url}/v1/rollup/status"))
            .send()
            .await
            .expect("status");
        answer.json::<RollupStatus>().await.expect("status JSON")
    };
    let block = |number: i64| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let answer = http
                .get(format!("{url}/v1/rollup/blocks/{number}"))
                .send()
                .await
                .expect("block");
            answer.json::<BlockView>().await.expect("block JSON")
        }
    };

    // The second transaction spends the note the first makes: it waits for block 1.
    for tx in demo.transfers(2).unwrap() {
        let answer = http
            .post(format!("{url}/v1/rollup/transactions"))
            .body(serde_json::to_vec(&tx).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    }

    // Both blocks published and registered on chain, with the statements their roots must
    // prove, before any proof.
    wait_for("two blocks published and registered", || async {
        chain
            .client
            .sequence(SequenceId(2))
            .await
            .unwrap()
            .is_some()
    })
    .await;
    let published = status().await;
    assert_eq!(published.published_tip, Some(2));
    assert_eq!(published.settled_tip, None);
    let headers = [block(1).await, block(2).await];
    assert!(headers.iter().all(|b| !b.settled));
    let mut previous = *genesis.tip();
    let mut expected = Vec::new();
    for (number, view) in (1u64..).zip(&headers) {
        let statement =
            Digest::hash_digests(&[sheaf_rollup::block_statement(&previous, &view.header)]);
        let on_chain = chain
            .client
            .sequence(SequenceId(number))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(on_chain.statement, statement, "block {number}'s statement");
        assert!(on_chain.finalized.is_none());
        expected.push(statement);
        previous = view.header;
    }

    // The network proves both blocks; the sender settles them.
    let reports = prove_until_at(
        &url,
        &keys,
        sheaf_rollup::kernel::catalog(),
        "both blocks proved",
        || async { store.rollup_proven_tip().await.unwrap() == Some(2) },
    )
    .await;
    assert!(reports.iter().all(|r| r.submissions_rejected == 0));
    wait_for("the settled tip at block 2", || async {
        status().await.settled_tip == Some(2)
    })
    .await;

    // Finalized on chain in order, each with its block's statement, by the coordinator's key.
    let mut finalized_at = Vec::new();
    for (number, statement) in (1u64..).zip(&expected) {
        let finalized = chain
            .client
            .finalized(SequenceId(number))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&finalized.statement, statement);
        assert_eq!(
            finalized.sender.0,
            SigningKey::from_bytes(&[9; 32]).verifying_key().to_bytes()
        );
        finalized_at.push(finalized.block);
    }
    assert!(finalized_at[0] <= finalized_at[1], "{finalized_at:?}");
    assert!(block(1).await.settled && block(2).await.settled);
    let settled = status().await;
    assert_eq!(
        (
            settled.published_tip,
            settled.proven_tip,
            settled.settled_tip
        ),
        (Some(2), Some(2), Some(2))
    );
    service.stop().await.unwrap();
}

/// Wait (at most 10 minutes, polling every 100 ms) until `done`, failing with `what`.
async fn wait_for<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "{what} not in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
