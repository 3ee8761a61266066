//! The store bench: what it counts is what it stored.

use std::time::Duration;

use sheaf_store::bench::{run_store_bench, BenchLength, StoreBenchConfig};
use sheaf_store::{JobFilter, JobStatus, StoreError};

use crate::harness::{each_engine, plan, submit, T0, TTL};

fn config(clients: usize, length: BenchLength) -> StoreBenchConfig {
    StoreBenchConfig {
        clients,
        length,
        blob_bytes: 4_096,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bench_cycles_equal_the_proofs_it_stored() {
    each_engine(|db| async move {
        let store = db.connect().await;
        let report = run_store_bench(&store, config(3, BenchLength::CyclesPerClient(20)))
            .await
            .unwrap();
        assert_eq!((report.clients, report.cycles), (3, 60));
        assert!(report.cycles_per_second > 0.0 && report.p50_ms <= report.p99_ms);
        let stored = store.stored_proofs().await.unwrap();
        assert_eq!(stored.count, 60, "every blob is distinct");
        assert_eq!(stored.bytes, 60 * 4_096);
        // Its unfinished jobs are cancelled, so the next run starts clean.
        let jobs = store.list_jobs(JobFilter::default()).await.unwrap();
        assert!(jobs
            .iter()
            .all(|job| matches!(job.status, JobStatus::Proved | JobStatus::Cancelled)));
        let again = run_store_bench(&store, config(2, BenchLength::CyclesPerClient(5)))
            .await
            .unwrap();
        assert_eq!(again.cycles, 10);
        assert!(again.sequences[0] > report.sequences[0]);
        assert_eq!(store.stored_proofs().await.unwrap().count, 70);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bench_for_a_duration_counts_every_stored_proof() {
    each_engine(|db| async move {
        let store = db.connect().await;
        let length = BenchLength::Duration(Duration::from_millis(300));
        let report = run_store_bench(&store, config(2, length)).await.unwrap();
        assert!(report.cycles > 0);
        assert!(report.seconds >= 0.3);
        assert_eq!(
            store.stored_proofs().await.unwrap().count,
            report.cycles as i64
        );
    })
    .await;
}

#[tokio::test]
async fn bench_refuses_a_store_with_jobs_not_its_own() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 2, 2).await;
        // Even when all of them are proved: the store is somebody's.
        while let Some(lease) = store.lease_next_job("p", T0, TTL).await.unwrap() {
            submit(&store, &lease).await;
        }
        let err = run_store_bench(&store, config(1, BenchLength::CyclesPerClient(1)))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidArgument(_)), "{err:?}");
        assert_eq!(store.list_sequences().await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn bench_carries_on_after_an_interrupted_run() {
    each_engine(|db| async move {
        let store = db.connect().await;
        let first = run_store_bench(&store, config(1, BenchLength::CyclesPerClient(3)))
            .await
            .unwrap();
        // As if a bench were killed mid-run: its jobs left ready.
        db.execute_raw("UPDATE jobs SET status = 'ready' WHERE status = 'cancelled'")
            .await;
        let second = run_store_bench(&store, config(1, BenchLength::CyclesPerClient(3)))
            .await
            .unwrap();
        assert_eq!(second.cycles, 3);
        assert!(second.sequences[0] > first.sequences[0]);
    })
    .await;
}

/// Runs the bench with `cfg` and asserts it is refused without planning anything.
async fn assert_refused(cfg: StoreBenchConfig) {
    each_engine(move |db| async move {
        let store = db.connect().await;
        let err = run_store_bench(&store, cfg).await.unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidArgument(_)),
            "{cfg:?}: {err:?}"
        );
        assert!(store.list_sequences().await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn bench_refuses_zero_clients() {
    assert_refused(config(0, BenchLength::CyclesPerClient(1))).await;
}

#[tokio::test]
async fn bench_refuses_a_zero_length() {
    assert_refused(config(1, BenchLength::CyclesPerClient(0))).await;
    assert_refused(config(1, BenchLength::Duration(Duration::ZERO))).await;
}

#[tokio::test]
async fn bench_refuses_blobs_too_small_to_make_distinct() {
    assert_refused(StoreBenchConfig {
        blob_bytes: sheaf_store::bench::BENCH_MIN_BLOB_BYTES - 1,
        ..config(1, BenchLength::CyclesPerClient(1))
    })
    .await;
}
