//! Connecting, migrating, and restarting on the same database.

use sheaf_store::{
    JobFilter, JobId, JobStatus, SequenceId, Store, StoreError, SCHEMA_VERSION, SQLITE_FILE_NAME,
};

use crate::harness::{
    each_engine, lease_expecting, plan, proof_for, prove_next, submit_as, T0, TTL,
};

#[tokio::test]
async fn reopening_the_store_keeps_everything() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 2, 2).await;
        let (proved, _) = prove_next(&store, "alice").await;
        let leased = lease_expecting(&store, "bob", JobId::new(SequenceId(1), 0, 1)).await;
        let before = store.list_jobs(JobFilter::default()).await.unwrap();
        // A coordinator killed now: the handle goes away without any shutdown step.
        drop(store);

        let store = match &db.data_dir {
            Some(dir) => Store::open_data_dir(dir).await.unwrap(),
            None => db.connect().await,
        };
        assert_eq!(store.list_jobs(JobFilter::default()).await.unwrap(), before);
        assert_eq!(
            store.proof_of(proved.job).await.unwrap(),
            Some(proof_for(proved.job))
        );
        assert_eq!(store.rewards(SequenceId(1)).await.unwrap().len(), 1);
        // It carries on: the lease granted before the restart is still current.
        let outcome = submit_as(&store, &leased, "bob", T0 + 1).await.unwrap();
        assert_eq!(outcome.parent_ready, Some(JobId::new(SequenceId(1), 1, 0)));
    })
    .await;
}

#[tokio::test]
async fn migrations_are_idempotent_on_reconnect() {
    each_engine(|db| async move {
        let store = db.connect().await;
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
        plan(&store, 1, 2, 2).await;
        store.close().await;
        for _ in 0..3 {
            let store = db.connect().await;
            assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
            assert_eq!(
                store
                    .get_job(JobId::new(SequenceId(1), 0, 0))
                    .await
                    .unwrap()
                    .unwrap()
                    .status,
                JobStatus::Ready
            );
            store.close().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_starting_together_migrate_once() {
    each_engine(|db| async move {
        let db = std::sync::Arc::new(db);
        let connects: Vec<_> = (0..4)
            .map(|_| {
                let db = db.clone();
                tokio::spawn(async move { db.connect().await })
            })
            .collect();
        for connect in connects {
            let store = connect.await.unwrap();
            assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
        }
        let store = db.connect().await;
        plan(&store, 1, 1, 2).await;
        assert!(store.lease_next_job("p", T0, TTL).await.unwrap().is_some());
    })
    .await;
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    each_engine(|db| async move {
        db.connect().await.close().await;
        let no_checksum = if db.data_dir.is_some() {
            "X''"
        } else {
            "'\\x'::bytea"
        };
        db.execute_raw(&format!(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
             execution_time) VALUES (999, 'future', TRUE, {no_checksum}, 0)"
        ))
        .await;
        match Store::connect(&db.url).await {
            Err(StoreError::SchemaTooNew { found, supported }) => {
                assert_eq!((found, supported), (999, SCHEMA_VERSION))
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn an_unsupported_url_is_refused() {
    for url in ["mysql://localhost/sheaf", "sheaf.db", ""] {
        let err = Store::connect(url).await.unwrap_err();
        assert!(
            matches!(err, StoreError::UnsupportedUrl(_)),
            "{url}: {err:?}"
        );
    }
}

#[tokio::test]
async fn sqlite_data_dir_is_created_in_wal_mode() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("nested").join("data");
    let store = Store::open_data_dir(&data_dir).await.unwrap();
    store.close().await;
    let url = format!("sqlite://{}", data_dir.join(SQLITE_FILE_NAME).display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn a_version_1_database_is_upgraded_in_place() {
    each_engine(|db| async move {
        let inputs = r#"'{"kind":"work","seed":1,"index":0}'"#;
        let (init, inputs) = match &db.data_dir {
            Some(dir) => {
                // An empty file is an empty SQLite database.
                std::fs::File::create(dir.join(SQLITE_FILE_NAME)).unwrap();
                (
                    include_str!("../../migrations/sqlite/0001_init.sql"),
                    format!("CAST({inputs} AS BLOB)"),
                )
            }
            None => (
                include_str!("../../migrations/postgres/0001_init.sql"),
                format!("convert_to({inputs}, 'UTF8')"),
            ),
        };
        db.execute_raw(init).await;
        db.execute_raw(&format!(
            "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL); \
             INSERT INTO schema_migrations (version, name) VALUES (1, 'init'); \
             INSERT INTO sequences (id, leaves, root_job, created_ms) \
             VALUES (1, 1, 's1-l0-i0', 5); \
             INSERT INTO jobs (id, sequence, level, idx, circuit, inputs, status) \
             VALUES ('s1-l0-i0', 1, 0, 0, 'leaf:work', {inputs}, 'ready');"
        ))
        .await;
        let store = db.connect().await;
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
        let job = store
            .get_job(JobId::new(SequenceId(1), 0, 0))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (job.status, job.leased_ms, job.prove_ms),
            (JobStatus::Ready, None, None)
        );
        let lease = lease_expecting(&store, "p", job.id).await;
        assert_eq!(
            store.get_job(lease.job).await.unwrap().unwrap().leased_ms,
            Some(T0)
        );
    })
    .await;
}

#[tokio::test]
async fn sqlite_wal_is_copied_into_the_database_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_data_dir(dir.path()).await.unwrap();
    crate::harness::plan(&store, 1, 1, 2).await;
    let file = dir.path().join(SQLITE_FILE_NAME);
    let before = std::fs::metadata(&file).unwrap().len();
    let lease = lease_expecting(&store, "p", JobId::new(SequenceId(1), 0, 0)).await;
    let blob = vec![7u8; 1 << 20];
    store
        .submit_proof(
            lease.job,
            lease.token,
            "p",
            &blob,
            crate::harness::reward("p"),
            T0,
            None,
        )
        .await
        .unwrap();
    // Far below SQLite's own checkpoint threshold: only the background checkpointer copies
    // the megabyte from the WAL into the database file.
    let deadline = std::time::Instant::now() + 20 * sheaf_store::SQLITE_CHECKPOINT_INTERVAL;
    while std::fs::metadata(&file).unwrap().len() < before + blob.len() as u64 {
        assert!(
            std::time::Instant::now() < deadline,
            "the WAL was not checkpointed"
        );
        tokio::time::sleep(sheaf_store::SQLITE_CHECKPOINT_INTERVAL).await;
    }
    store.close().await;
}
