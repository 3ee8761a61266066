//! End to end over loopback: real provers (the `sheaf-prover` library) prove a sequence.

use sheaf_circuits::{FinalKey, KindCatalog};
use sheaf_coordinator::CoordinatorConfig;
use sheaf_prover::ProverKey;
use sheaf_store::{JobFilter, JobStatus};

use crate::harness::{prove_until, registered_key, start};
use sheaf_types::SequenceId;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_provers_prove_a_sequence_of_five_leaves() {
    let keys = [ProverKey::generate(), ProverKey::generate()];
    let net = start(
        vec![
            registered_key("alice", &keys[0]),
            registered_key("bob", &keys[1]),
        ],
        CoordinatorConfig::default(),
    )
    .await;
    net.coordinator.plan(SequenceId(1), 5).await.unwrap();
    let reports = prove_until(
        &net,
        &keys,
        KindCatalog::standard(),
        "the sequence",
        || async { net.sequence_one().await.proved_ms.is_some() },
    )
    .await;
    assert!(reports.iter().all(|r| r.submissions_rejected == 0));
    let proved_by_provers: u64 = reports.iter().map(|r| r.jobs_proved).sum();

    // 5 leaves, 3 leaf nodes, 2 universal nodes, the root: each proved once, one reward each.
    let jobs = net.store.list_jobs(JobFilter::default()).await.unwrap();
    assert_eq!(jobs.len(), 11);
    assert!(jobs.iter().all(|j| j.status == JobStatus::Proved));
    assert_eq!(proved_by_provers, 11);
    assert_eq!(net.rewards_of_sequence_one().await.len(), 11);
    assert_eq!(net.store.stored_proofs().await.unwrap().count, 11);

    // The root verifies with the exported (written and re-read) final key.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("final.key");
    net.coordinator
        .circuits()
        .aggregation
        .final_key()
        .write(&path)
        .unwrap();
    let sequence = net.sequence_one().await;
    let root = net.store.proof_of(sequence.root).await.unwrap().unwrap();
    let verified = FinalKey::read(&path).unwrap().verify_bytes(&root).unwrap();
    assert_eq!(verified.header.stats.leaf_jobs, 5);
    assert_eq!(verified.header.stats.aggregation_jobs, 6);
    // The statement the chain registers before any proof exists is the one the root proves.
    let statement = net.coordinator.circuits().sequence_statement(5, 1).unwrap();
    assert_eq!(verified.header.statement, statement);
    assert_ne!(
        net.coordinator.circuits().sequence_statement(5, 2).unwrap(),
        statement
    );
    net.stop().await;
}
