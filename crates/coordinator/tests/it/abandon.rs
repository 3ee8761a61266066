//! Abandoned leases over HTTP: the prover that walks away is suspended (a retryable 429 with a
//! Retry-After), the job it walked away from is not killed by it.

use std::time::Duration;

use sheaf_api::{ErrorCode, JobAssignment};
use sheaf_coordinator::CoordinatorConfig;
use sheaf_store::JobStatus;
use sheaf_types::SequenceId;

use crate::harness::{
    circuits, serve_coordinator, sqlite_store, start, start_on, Net, TestProver, LEAF_ROWS_LOG2,
};

/// Leases of 200 ms swept every 50 ms, suspensions of `backoff`.
fn config(backoff: Duration) -> CoordinatorConfig {
    CoordinatorConfig {
        lease_ttl: Duration::from_millis(200),
        sweep_interval: Duration::from_millis(50),
        abandon_backoff_base: backoff,
        abandon_backoff_max: backoff,
        ..CoordinatorConfig::default()
    }
}

/// Waits until the sweeper took `job`'s lease back.
async fn until_ready(net: &Net, job: &impl std::fmt::Display) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while net.stored_job(job).await.status != JobStatus::Ready {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lease of {job} was never taken back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_abandoning_prover_is_refused_for_its_backoff_then_admitted() {
    let [alice, bob] = ["alice", "bob"].map(TestProver::new);
    let net = start(
        vec![alice.registered(), bob.registered()],
        config(Duration::from_millis(1_500)),
    )
    .await;
    net.coordinator.plan(SequenceId(1), 2).await.unwrap();
    let abandoned = net.lease(&alice).await;
    until_ready(&net, &abandoned.job).await;

    // Alice walked away: refused, retryably, with the time left to wait.
    let refused = net.try_lease(&alice, 0).await;
    assert_eq!(refused.code(), ErrorCode::RateLimited);
    assert!(ErrorCode::RateLimited.is_retryable());
    let retry_after: u64 = refused
        .retry_after
        .as_deref()
        .expect("a Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
    // The job is not held back: bob takes it at once.
    let bobs = net.lease(&bob).await;
    assert_eq!(bobs.job, abandoned.job);

    // Once the back-off is served, alice is admitted again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let again = loop {
        let answer = net.try_lease(&alice, 0).await;
        if answer.status.is_success() {
            break answer.json::<JobAssignment>();
        }
        assert_eq!(answer.code(), ErrorCode::RateLimited);
        assert!(
            tokio::time::Instant::now() < deadline,
            "never admitted again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(again.job.sequence, SequenceId(1));
    net.stop().await;
}

#[tokio::test]
async fn one_prover_abandoning_a_job_again_and_again_does_not_kill_it() {
    let [alice, bob] = ["alice", "bob"].map(TestProver::new);
    let net = start(
        vec![alice.registered(), bob.registered()],
        config(Duration::from_millis(1)),
    )
    .await;
    net.coordinator.plan(SequenceId(1), 1).await.unwrap();
    let max_attempts = net.coordinator.config().max_attempts;
    let mut last = None;
    for attempt in 1..=max_attempts + 2 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let lease = loop {
            let answer = net.try_lease(&alice, 1_000).await;
            if answer.status.is_success() {
                break answer.json::<JobAssignment>();
            }
            assert!(tokio::time::Instant::now() < deadline, "no lease");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(lease.attempt, attempt);
        until_ready(&net, &lease.job).await;
        last = Some(lease);
    }
    let last = last.expect("leased");
    assert_eq!(net.stored_job(&last.job).await.status, JobStatus::Ready);
    let bobs = net.lease(&bob).await;
    assert_eq!((bobs.job, bobs.attempt), (last.job, max_attempts + 3));
    net.stop().await;
}

/// A store on which alice holds a lease of a coordinator since stopped: the store (and its
/// directory) and the lease.
async fn lease_left_by_a_stopped_coordinator(
    alice: &TestProver,
) -> (sheaf_store::Store, tempfile::TempDir, JobAssignment) {
    let (store, dir) = sqlite_store().await;
    let net = start_on(
        store.clone(),
        vec![alice.registered()],
        config(Duration::from_secs(60)),
    )
    .await;
    net.coordinator.plan(SequenceId(1), 1).await.unwrap();
    let job = net.lease(alice).await;
    net.stop().await;
    (store, dir, job)
}

/// Alice's heartbeat of `job` renews her lease.
async fn heartbeat_renews(net: &Net, alice: &TestProver, job: &JobAssignment) {
    let path = sheaf_api::heartbeat_path(job.job);
    let body = serde_json::to_vec(&sheaf_api::HeartbeatRequest { token: job.token }).unwrap();
    let beat = net.post(alice, &path, body).await;
    assert!(
        beat.status.is_success(),
        "heartbeat refused: {:?}",
        beat.code()
    );
    let stored = net.stored_job(&job.job).await;
    assert_eq!(stored.status, JobStatus::Leased);
    assert_eq!(stored.lease_token, job.token);
}

#[tokio::test]
async fn a_lease_held_across_a_coordinator_restart_can_be_renewed() {
    let alice = TestProver::new("alice");
    let (store, _dir, job) = lease_left_by_a_stopped_coordinator(&alice).await;
    // The coordinator is down for longer than the lease: alice cannot heartbeat meanwhile.
    tokio::time::sleep(Duration::from_millis(400)).await;

    let net = start_on(
        store,
        vec![alice.registered()],
        config(Duration::from_secs(60)),
    )
    .await;
    heartbeat_renews(&net, &alice, &job).await;
    net.stop().await;
}

#[tokio::test]
async fn a_lease_that_ran_out_while_a_coordinator_was_starting_can_be_renewed() {
    let alice = TestProver::new("alice");
    let (store, _dir, job) = lease_left_by_a_stopped_coordinator(&alice).await;

    // The next coordinator is made, then takes longer than the lease to serve (a real one
    // waits for the chain meanwhile): alice cannot heartbeat until it does.
    let coordinator = std::sync::Arc::new(
        sheaf_coordinator::Coordinator::new(
            store.clone(),
            tokio::task::spawn_blocking(circuits).await.unwrap(),
            LEAF_ROWS_LOG2,
            config(Duration::from_secs(60)),
            Some(std::sync::Arc::new(sheaf_coordinator::StaticRegistry(
                vec![alice.registered()],
            ))),
        )
        .await
        .unwrap(),
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let net = serve_coordinator(coordinator, store).await;
    heartbeat_renews(&net, &alice, &job).await;
    net.stop().await;
}
