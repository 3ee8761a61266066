//! Leases over HTTP: acceptance, heartbeats, expiry, fencing, long-polls, the attempts cap.

use std::time::Duration;

use sheaf_api::{ErrorCode, HeartbeatResponse, SubmitResponse};
use sheaf_coordinator::CoordinatorConfig;
use sheaf_store::{JobId, JobStatus};

use crate::harness::{alice_leasing, prove_leaf, start, TestProver};
use sheaf_types::SequenceId;

fn short_leases(ttl_ms: u64) -> CoordinatorConfig {
    CoordinatorConfig {
        lease_ttl: Duration::from_millis(ttl_ms),
        sweep_interval: Duration::from_millis(50),
        ..CoordinatorConfig::default()
    }
}

#[tokio::test]
async fn accepted_leaf_proof_is_stored_once_with_its_reward() {
    let (alice, net, job) = alice_leasing(CoordinatorConfig::default(), 2).await;
    let bytes = prove_leaf(&job, &alice.worker);
    let accepted: SubmitResponse = net
        .submit(&alice, &job.job, job.token, bytes.clone())
        .await
        .json();
    assert_eq!(accepted.proof_hash, sheaf_store::proof_hash(&bytes));
    assert_eq!(accepted.parent_ready, None, "the sibling is not proved yet");
    // A retry of the same submission is answered alike and stores nothing more.
    let retried: SubmitResponse = net.submit(&alice, &job.job, job.token, bytes).await.json();
    assert_eq!(retried.proof_hash, accepted.proof_hash);
    let rewards = net.rewards_of_sequence_one().await;
    assert_eq!(rewards.len(), 1);
    assert_eq!(rewards[0].prover, "alice");
    assert_eq!(rewards[0].worker_pk, alice.worker.worker_pk().to_bytes());
    assert_eq!(net.store.stored_proofs().await.unwrap().count, 1);

    // The sibling's proof readies their parent.
    let sibling = net.lease(&alice).await;
    let bytes = prove_leaf(&sibling, &alice.worker);
    let accepted: SubmitResponse = net
        .submit(&alice, &sibling.job, sibling.token, bytes)
        .await
        .json();
    assert_eq!(
        accepted.parent_ready.map(|p| p.to_string()).as_deref(),
        Some("s1-l1-i0")
    );
    let parent = net.lease(&alice).await;
    assert_eq!(parent.job.to_string(), "s1-l1-i0");
    assert_eq!(parent.children.len(), 2);
    net.stop().await;
}

#[tokio::test]
async fn submission_after_the_lease_moved_on_is_refused() {
    let alice = TestProver::new("alice");
    let bob = TestProver::new("bob");
    let net = start(
        vec![alice.registered(), bob.registered()],
        short_leases(1_500),
    )
    .await;
    net.coordinator.plan(SequenceId(1), 1).await.unwrap();
    let alices = net.lease(&alice).await;
    // Both proofs are made up front, so bob's submission comes well within his lease.
    let alices_proof = prove_leaf(&alices, &alice.worker);
    let bobs_proof = prove_leaf(&alices, &bob.worker);
    // Alice goes quiet; the sweeper takes the job back and bob gets it.
    let bobs: sheaf_api::JobAssignment = net.try_lease(&bob, 10_000).await.json();
    assert_eq!(bobs.job, alices.job);
    assert!(bobs.token > alices.token);
    let late = net
        .submit(&alice, &alices.job, alices.token, alices_proof)
        .await;
    assert_eq!(late.code(), ErrorCode::StaleLease);
    let job: JobId = bobs.job.to_string().parse().unwrap();
    assert_eq!(
        net.store
            .get_job(job)
            .await
            .unwrap()
            .unwrap()
            .lease_holder
            .as_deref(),
        Some("bob")
    );
    net.submit(&bob, &bobs.job, bobs.token, bobs_proof)
        .await
        .json::<SubmitResponse>();
    let rewards = net.rewards_of_sequence_one().await;
    assert_eq!(rewards.len(), 1);
    assert_eq!(rewards[0].prover, "bob");
    net.stop().await;
}

#[tokio::test]
async fn heartbeats_keep_a_lease_alive() {
    let (alice, net, job) = alice_leasing(short_leases(2_000), 1).await;
    let proof = prove_leaf(&job, &alice.worker);
    let path = sheaf_api::heartbeat_path(job.job);
    let body = serde_json::to_vec(&sheaf_api::HeartbeatRequest { token: job.token }).unwrap();
    let mut expires = job.expires_ms;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let beat: HeartbeatResponse = net.post(&alice, &path, body.clone()).await.json();
        assert!(beat.expires_ms > expires);
        expires = beat.expires_ms;
    }
    // 2.8 s after a 2 s lease began, it is still alice's.
    let stored = net.stored_job(&job.job).await;
    assert_eq!(stored.status, JobStatus::Leased);
    assert_eq!(stored.lease_token, job.token);
    net.submit(&alice, &job.job, job.token, proof)
        .await
        .json::<SubmitResponse>();
    // A heartbeat after the proof is stale.
    let late = net.post(&alice, &path, body).await;
    assert_eq!(late.code(), ErrorCode::StaleLease);
    net.stop().await;
}

#[tokio::test]
async fn lease_waits_for_a_job_planned_later() {
    let alice = TestProver::new("alice");
    let net = start(vec![alice.registered()], CoordinatorConfig::default()).await;
    let empty = net.try_lease(&alice, 0).await;
    assert_eq!(empty.status, 204);
    let coordinator = net.coordinator.clone();
    let planner = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        coordinator.plan(SequenceId(1), 1).await.unwrap();
    });
    let job: sheaf_api::JobAssignment = net.try_lease(&alice, 10_000).await.json();
    assert_eq!(job.job.to_string(), "s1-l0-i0");
    planner.await.unwrap();
    net.stop().await;
}

#[tokio::test]
async fn job_is_dead_after_its_attempts_and_leases_no_more() {
    let config = CoordinatorConfig {
        max_attempts: 2,
        ..short_leases(200)
    };
    let [alice, bob, carol] = ["alice", "bob", "carol"].map(TestProver::new);
    let net = start(
        vec![alice.registered(), bob.registered(), carol.registered()],
        config,
    )
    .await;
    net.coordinator.plan(SequenceId(1), 1).await.unwrap();
    let first = net.lease(&alice).await;
    // Two distinct provers let the lease expire: attempts used up.
    let second: sheaf_api::JobAssignment = net.try_lease(&bob, 5_000).await.json();
    assert_eq!((first.attempt, second.attempt), (1, 2));
    let none = net.try_lease(&carol, 1_000).await;
    assert_eq!(none.status, 204);
    let job = net.stored_job(&first.job).await;
    assert_eq!(job.status, JobStatus::Dead);
    net.stop().await;
}

#[tokio::test]
async fn metrics_count_leases_and_rejections() {
    let (alice, net, job) = alice_leasing(CoordinatorConfig::default(), 1).await;
    let refused = net.submit(&alice, &job.job, job.token, vec![0; 10]).await;
    assert_eq!(refused.code(), ErrorCode::MalformedProof);
    let text = reqwest::get(format!("{}/metrics", net.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("sheaf_leases_granted_total{prover=\"alice\"}"),
        "{text}"
    );
    assert!(
        text.contains("sheaf_requests_rejected_total{reason=\"malformed_proof\"}"),
        "{text}"
    );
    assert!(
        text.contains("sheaf_jobs{status=\"leased\",level=\"0\"} 1"),
        "{text}"
    );
    net.stop().await;
}
