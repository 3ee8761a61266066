//! PostgreSQL: identical concurrent submissions store one proof and never fail with a 5xx; a
//! lease that ran out while the store was away is not taken back.

use sheaf_coordinator::CoordinatorConfig;
use sheaf_store::Store;
use sqlx::{Connection, Executor};

use crate::harness::{prove_leaf, start_on, TestProver};
use sheaf_types::SequenceId;

/// Admin URL of the PostgreSQL server. The tests that need it are compiled in when it is set at
/// build time (`cfg(sheaf_postgres)`, see build.rs) and reported as ignored, with the reason,
/// otherwise.
const POSTGRES_URL_VAR: &str = "SHEAF_TEST_POSTGRES_URL";

/// A fresh database for one test: its URL and the admin URL. Panics when the server does not
/// answer: a test that needs PostgreSQL never passes without it.
pub(crate) async fn fresh_database() -> (String, String) {
    let admin = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
        panic!("the tests were built with {POSTGRES_URL_VAR} set, and it is unset now")
    });
    let name = format!(
        "sheaf_coord_{}_{}",
        std::process::id(),
        rand::random::<u32>()
    );
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin} does not answer: {e}"));
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create database");
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base);
    (format!("{base}/{name}"), admin)
}

pub(crate) async fn drop_database(admin: &str, url: &str) {
    let name = url.rsplit('/').next().unwrap_or_default();
    if let Ok(mut conn) = sqlx::PgConnection::connect(admin).await {
        let _ = conn
            .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await;
    }
}

#[cfg_attr(
    not(sheaf_postgres),
    ignore = "needs SHEAF_TEST_POSTGRES_URL (PostgreSQL)"
)]
#[tokio::test]
async fn hundred_identical_concurrent_submissions_store_one_proof() {
    let (url, admin) = fresh_database().await;
    let alice = TestProver::new("alice");
    let store = Store::connect(&url).await.expect("store");
    // A hundred at once is over one prover's request rate: this is about the submissions'
    // race in the store, so no rate (the rate has its own test).
    let config = CoordinatorConfig {
        prover_request_rate: 0,
        ..CoordinatorConfig::default()
    };
    let net = start_on(store, vec![alice.registered()], config).await;
    net.coordinator.plan(SequenceId(1), 1).await.unwrap();
    let job = net.lease(&alice).await;
    let bytes = prove_leaf(&job, &alice.worker);
    let net = std::sync::Arc::new(net);
    let alice = std::sync::Arc::new(alice);
    let submissions: Vec<_> = (0..100)
        .map(|_| {
            let (net, alice, job, bytes) = (net.clone(), alice.clone(), job.clone(), bytes.clone());
            tokio::spawn(async move { net.submit(&alice, &job.job, job.token, bytes).await })
        })
        .collect();
    let mut accepted = 0;
    for submission in submissions {
        let answer = submission.await.unwrap();
        assert!(
            !answer.status.is_server_error(),
            "{}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
        if answer.status.is_success() {
            accepted += 1;
        } else {
            assert_eq!(answer.code(), sheaf_api::ErrorCode::AlreadyProved);
        }
    }
    assert!(accepted >= 1);
    assert_eq!(net.store.stored_proofs().await.unwrap().count, 1);
    assert_eq!(net.rewards_of_sequence_one().await.len(), 1);
    let net = std::sync::Arc::into_inner(net).expect("all submissions done");
    net.stop().await;
    drop_database(&admin, &url).await;
}

#[cfg_attr(
    not(sheaf_postgres),
    ignore = "needs SHEAF_TEST_POSTGRES_URL (PostgreSQL)"
)]
#[tokio::test]
async fn a_lease_that_ran_out_while_the_store_was_away_can_be_renewed() {
    let (url, admin) = fresh_database().await;
    let name = url.rsplit('/').next().expect("a database name").to_owned();
    let alice = TestProver::new("alice");
    let store = Store::connect(&url).await.expect("store");
    let config = CoordinatorConfig {
        lease_ttl: std::time::Duration::from_millis(300),
        sweep_interval: std::time::Duration::from_millis(50),
        ..CoordinatorConfig::default()
    };
    let net = start_on(store, vec![alice.registered()], config).await;
    net.coordinator.plan(SequenceId(1), 1).await.unwrap();
    let job = net.lease(&alice).await;

    // The database refuses connections for longer than the lease and its open ones are cut:
    // no heartbeat of alice's could be stored meanwhile.
    let mut admin_conn = sqlx::PgConnection::connect(&admin).await.expect("admin");
    admin_conn
        .execute(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false").as_str())
        .await
        .expect("refuse connections");
    admin_conn
        .execute(
            format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            )
            .as_str(),
        )
        .await
        .expect("cut connections");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    admin_conn
        .execute(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true").as_str())
        .await
        .expect("allow connections");

    // Her first heartbeat the store takes renews the lease: the outage was the coordinator's.
    let path = sheaf_api::heartbeat_path(job.job);
    let body = serde_json::to_vec(&sheaf_api::HeartbeatRequest { token: job.token }).unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let beat = net.post(&alice, &path, body.clone()).await;
        if beat.status.is_success() {
            break;
        }
        assert!(
            beat.status.is_server_error(),
            "heartbeat refused: {:?}",
            beat.code()
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the store never came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let stored = net.stored_job(&job.job).await;
    assert_eq!(stored.status, sheaf_store::JobStatus::Leased);
    assert_eq!(stored.lease_token, job.token);
    net.stop().await;
    drop_database(&admin, &url).await;
}
