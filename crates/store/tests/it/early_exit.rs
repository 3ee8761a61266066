//! A write whose work stops early, on a refusal after reading inside its transaction or on a
//! failure midway, is either committed or returns an error: nothing is half-applied, and
//! nothing reported as done is lost (each test reopens the store to look).

use sheaf_store::{JobFilter, JobId, JobStatus, LeaseOutcome, SequenceId, StoreError};

use crate::admission::prover;
use crate::harness::{
    assert_nothing_planned, each_engine, lease_at, plan, proof_for, reward, status_of, TestDb, T0,
    TTL,
};

/// Rate-limit epoch of these tests (milliseconds).
const EPOCH: i64 = 60_000;

/// Makes the database refuse inserts into `table` of rows with `id_column = id`, as a failing
/// disk or constraint would, midway through the store's transaction.
async fn refuse_insert(db: &TestDb, table: &str, id_column: &str, id: &str) {
    let sql = if db.data_dir.is_some() {
        format!(
            "CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} \
             WHEN NEW.{id_column} = '{id}' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
        )
    } else {
        format!(
            "CREATE OR REPLACE FUNCTION refuse_by_test() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$; \
             CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} FOR EACH ROW \
             WHEN (NEW.{id_column} = '{id}') EXECUTE FUNCTION refuse_by_test();"
        )
    };
    db.execute_raw(&sql).await;
}

async fn allow_inserts(db: &TestDb, table: &str) {
    let on = if db.data_dir.is_some() {
        String::new()
    } else {
        format!(" ON {table}")
    };
    db.execute_raw(&format!("DROP TRIGGER refuse_{table}{on}"))
        .await;
}

async fn lease_counts(db: &TestDb, prover: &str) -> Vec<i64> {
    db.fetch_i64s(&format!(
        "SELECT count FROM lease_counts WHERE prover = '{prover}' ORDER BY epoch"
    ))
    .await
}

#[tokio::test]
async fn lease_refused_by_the_concurrency_cap_changes_nothing_and_keeps_the_earlier_lease() {
    each_engine(|db| async move {
        let store = db.connect().await;
        store.upsert_prover(&prover("p", 10, 1)).await.unwrap();
        plan(&store, 1, 2, 2).await;
        let first = store.lease_admitted("p", T0, TTL, EPOCH).await.unwrap();
        assert!(matches!(first, LeaseOutcome::Leased(_)), "{first:?}");
        let before = store.list_jobs(JobFilter::default()).await.unwrap();

        // The refusal comes after the prover's row and its leases were read in the
        // transaction.
        let refused = store.lease_admitted("p", T0 + 1, TTL, EPOCH).await.unwrap();
        assert_eq!(
            refused,
            LeaseOutcome::TooManyLeases {
                active: 1,
                limit: 1
            }
        );
        store.close().await;

        let store = db.connect().await;
        assert_eq!(store.list_jobs(JobFilter::default()).await.unwrap(), before);
        let leased = store
            .get_job(JobId::new(SequenceId(1), 0, 0))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (leased.status, leased.lease_holder.as_deref()),
            (JobStatus::Leased, Some("p"))
        );
        assert_eq!(lease_counts(&db, "p").await, [1]);
    })
    .await;
}

#[tokio::test]
async fn lease_refused_by_the_rate_limit_changes_nothing_and_keeps_the_earlier_lease() {
    each_engine(|db| async move {
        let store = db.connect().await;
        store.upsert_prover(&prover("p", 1, 5)).await.unwrap();
        plan(&store, 1, 2, 2).await;
        let first = store.lease_admitted("p", T0, TTL, EPOCH).await.unwrap();
        assert!(matches!(first, LeaseOutcome::Leased(_)), "{first:?}");
        let before = store.list_jobs(JobFilter::default()).await.unwrap();

        let refused = store.lease_admitted("p", T0 + 1, TTL, EPOCH).await.unwrap();
        assert!(
            matches!(
                refused,
                LeaseOutcome::RateLimited {
                    used: 1,
                    limit: 1,
                    ..
                }
            ),
            "{refused:?}"
        );
        store.close().await;

        let store = db.connect().await;
        assert_eq!(store.list_jobs(JobFilter::default()).await.unwrap(), before);
        assert_eq!(lease_counts(&db, "p").await, [1]);
        // The next epoch admits the second lease, counted afresh.
        let next = store
            .lease_admitted("p", T0 + EPOCH, TTL, EPOCH)
            .await
            .unwrap();
        assert!(matches!(next, LeaseOutcome::Leased(_)), "{next:?}");
        assert_eq!(lease_counts(&db, "p").await, [1]);
    })
    .await;
}

#[tokio::test]
async fn plan_failing_midway_stores_no_sequence_and_no_job() {
    each_engine(|db| async move {
        let store = db.connect().await;
        // The root is inserted last, after the sequence and both leaves.
        refuse_insert(&db, "jobs", "id", "s1-l1-i0").await;
        let tree = crate::harness::tree(1, 2, 2);
        let sequence = sheaf_store::NewSequence {
            id: SequenceId(1),
            leaves: 2,
            created_ms: T0,
        };
        let err = store
            .insert_sequence(sequence.clone(), &tree)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Database(_)), "{err:?}");
        assert_nothing_planned(&store).await;

        // Nothing was left behind to collide with: planning again succeeds.
        allow_inserts(&db, "jobs").await;
        store.insert_sequence(sequence, &tree).await.unwrap();
        store.close().await;
        let store = db.connect().await;
        assert_eq!(
            store.list_jobs(JobFilter::default()).await.unwrap().len(),
            3
        );
    })
    .await;
}

#[tokio::test]
async fn submission_failing_midway_stores_no_proof_and_keeps_the_lease() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 2, 2).await;
        let lease = lease_at(&store, "p", T0).await;
        // The reward is written after the blob and the job's new state.
        refuse_insert(&db, "rewards", "job", &lease.job.to_string()).await;
        let proof = proof_for(lease.job);
        let submit = || {
            store.submit_proof(
                lease.job,
                lease.token,
                "p",
                &proof,
                reward("p"),
                T0 + 1,
                None,
            )
        };
        let err = submit().await.unwrap_err();
        // SQLite stores it in a group commit of its own connection (rusqlite), PostgreSQL
        // through sqlx.
        assert!(
            matches!(err, StoreError::Database(_) | StoreError::Sqlite(_)),
            "{err:?}"
        );
        let job = store.get_job(lease.job).await.unwrap().unwrap();
        assert_eq!(
            (job.status, job.lease_token, job.proof_hash),
            (JobStatus::Leased, lease.token, None)
        );
        assert_eq!(store.proof_of(lease.job).await.unwrap(), None);
        assert_eq!(store.stored_proofs().await.unwrap().count, 0);
        assert!(store.rewards(SequenceId(1)).await.unwrap().is_empty());

        // The lease is still current: the same submission goes through once the database
        // accepts it, and stays done after a restart.
        allow_inserts(&db, "rewards").await;
        let outcome = submit().await.unwrap();
        assert_eq!(outcome.parent_ready, None);
        store.close().await;
        let store = db.connect().await;
        assert_eq!(status_of(&store, lease.job).await, JobStatus::Proved);
        assert_eq!(
            store.proof_of(lease.job).await.unwrap(),
            Some(proof_for(lease.job))
        );
        assert_eq!(store.rewards(SequenceId(1)).await.unwrap().len(), 1);
    })
    .await;
}
