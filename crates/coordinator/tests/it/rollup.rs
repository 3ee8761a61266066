//! A rollup block proved by the network: a coordinator serving the rollup's circuit set (work
//! leaf, tx kernel, merge and block kernels), two library provers that build that set from the
//! rollup's catalog when the hello names it, and the block's tree (tx leaves, tx leaf nodes,
//! merges, the block node, the root) stored as one sequence.

use std::sync::Arc;
use std::time::Duration;

use sheaf_circuits::{AggregationSettings, Digest};
use sheaf_coordinator::{CoordinatorConfig, StaticRegistry};
use sheaf_prover::ProverKey;
use sheaf_rollup::demo::DemoRollup;
use sheaf_rollup::kernel::BlockTree;
use sheaf_store::{JobFilter, JobStatus, NewJob, NewSequence, Prover};
use sheaf_types::clock::now_ms;
use sheaf_types::{JobId, SequenceId};

use crate::harness::{
    prover_config, sqlite_store, start_with_circuits, test_cache, LEAF_ROWS_LOG2,
};

fn registered(name: &str, key: &ProverKey) -> Prover {
    Prover {
        id: name.to_owned(),
        public_key: key.signing.verifying_key().to_bytes(),
        worker_pk: key.worker_pk().to_bytes(),
        rate_limit: 1_000,
        max_concurrent: 2,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_provers_prove_a_rollup_block() {
    let circuits = tokio::task::spawn_blocking(|| {
        sheaf_rollup::kernel::circuit_set(
            AggregationSettings::default(),
            LEAF_ROWS_LOG2,
            Some(&test_cache()),
        )
        .map(Arc::new)
    })
    .await
    .unwrap()
    .expect("the rollup's circuits");
    let keys = [ProverKey::generate(), ProverKey::generate()];
    let (store, _dir) = sqlite_store().await;
    let registry = Arc::new(StaticRegistry(vec![
        registered("alice", &keys[0]),
        registered("bob", &keys[1]),
    ]));
    let net = start_with_circuits(store, registry, CoordinatorConfig::default(), circuits).await;
    let spec = net.coordinator.spec();
    assert_eq!(spec.kernels, ["merge", "block"]);
    assert!(spec.kinds.iter().any(|k| k.name == "tx"));

    // Block 1: three transfers in batches of two; the second consumes the note the first made.
    let mut demo = DemoRollup::new(3, 4, 1_000).unwrap();
    let previous = *demo.state.tip();
    let chain_path = demo.state.chain_path(previous.number);
    let txs = demo.transfers(3).unwrap();
    let block = demo.state.apply_block(&txs, 2_000, 2).unwrap();
    let tree = BlockTree::plan(&previous, chain_path, &txs, &block, 2, 2).unwrap();
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

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let provers: Vec<_> = keys
        .iter()
        .map(|key| {
            let mut config = prover_config(&net, key);
            config.kinds = sheaf_rollup::kernel::catalog();
            let mut stopped = stopped.clone();
            tokio::spawn(sheaf_prover::run(config, async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            }))
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    while net.sequence_one().await.proved_ms.is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "block not proved in time"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.send_replace(true);
    let mut proved_by_provers = 0;
    for prover in provers {
        let report = prover.await.unwrap().expect("prover ran");
        assert_eq!(report.submissions_rejected, 0);
        proved_by_provers += report.jobs_proved;
    }

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
    net.stop().await;
}
