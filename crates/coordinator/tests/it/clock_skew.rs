//! Replicas on one PostgreSQL database time leases by the database's clock: a replica whose own
//! clock runs ahead by more than the lease TTL does not take back another replica's live lease.

use sheaf_api::{HeartbeatRequest, HeartbeatResponse};
use sheaf_coordinator::config::Clock;
use sheaf_coordinator::CoordinatorConfig;
use sheaf_store::{JobStatus, Store};
use sheaf_types::clock::{millis, now_ms};
use sheaf_types::SequenceId;

use crate::harness::{start_on, TestProver};
use crate::postgres::{drop_database, fresh_database};

#[cfg_attr(
    not(sheaf_postgres),
    ignore = "needs SHEAF_TEST_POSTGRES_URL (PostgreSQL)"
)]
#[tokio::test]
async fn a_replica_whose_clock_runs_ahead_does_not_requeue_a_live_lease() {
    let (url, admin) = fresh_database().await;
    let alice = TestProver::new("alice");
    let config = CoordinatorConfig::default();
    let ttl_ms = millis(config.lease_ttl);
    let honest = start_on(
        Store::connect(&url).await.expect("store"),
        vec![alice.registered()],
        config.clone(),
    )
    .await;
    let ahead = start_on(
        Store::connect(&url).await.expect("store"),
        vec![alice.registered()],
        CoordinatorConfig {
            clock: Clock::skewed(3 * ttl_ms),
            ..config
        },
    )
    .await;
    honest.coordinator.plan(SequenceId(1), 1).await.unwrap();
    let job = honest.lease(&alice).await;

    // By its own clock the lease expired two TTLs ago; by the shared one it is live.
    ahead.coordinator.sweep().await.unwrap();
    let stored = honest.stored_job(&job.job).await;
    assert_eq!(
        (
            stored.status,
            stored.lease_token,
            stored.lease_holder.as_deref()
        ),
        (JobStatus::Leased, job.token, Some("alice"))
    );
    // It extends the lease from the shared clock too, not by three TTLs more.
    let body = serde_json::to_vec(&HeartbeatRequest { token: job.token }).unwrap();
    let beat: HeartbeatResponse = ahead
        .post(&alice, &sheaf_api::heartbeat_path(job.job), body)
        .await
        .json();
    assert!(beat.expires_ms >= job.expires_ms);
    assert!(
        beat.expires_ms < now_ms() + 2 * ttl_ms,
        "expiry {} set by the skewed clock",
        beat.expires_ms
    );

    for net in [honest, ahead] {
        let store = net.store.clone();
        net.stop().await;
        store.close().await;
    }
    drop_database(&admin, &url).await;
}
