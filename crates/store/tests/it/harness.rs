//! Runs a test body once per available engine, each time on a fresh database of its own, plus
//! helpers to plan trees and prove jobs.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sheaf_store::{
    JobCircuit, JobId, JobInputs, JobStatus, Lease, NewJob, NewOutboxTx, NewSequence, OutboxKind,
    RewardEntry, SequenceId, Store, StoreError, SubmitOutcome,
};
use sqlx::{Connection, Executor};

/// Admin URL of a PostgreSQL server to test against; unset, only SQLite runs.
pub const POSTGRES_URL_VAR: &str = "SHEAF_TEST_POSTGRES_URL";

/// A coordinator clock reading to start from (milliseconds).
pub const T0: i64 = 1_000_000;
/// Lease TTL used by the tests (milliseconds).
pub const TTL: i64 = 30_000;
/// Retry budget used by the tests.
pub const MAX_ATTEMPTS: i64 = 3;

/// A fresh, empty database on one engine.
pub struct TestDb {
    /// `sqlite` or `postgres`, for messages.
    pub engine: &'static str,
    /// URL to connect to.
    pub url: String,
    /// The SQLite data directory (holding `sheaf.db`), `None` on PostgreSQL.
    pub data_dir: Option<PathBuf>,
}

impl TestDb {
    /// Connects (and migrates) a new handle on this database.
    pub async fn connect(&self) -> Store {
        Store::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("[{}] connect: {e}", self.engine))
    }

    /// Two handles on this database, as two coordinator replicas would hold.
    pub async fn replicas(&self) -> [Store; 2] {
        [self.connect().await, self.connect().await]
    }

    /// Reads a column of integers from the database behind the store's back.
    pub async fn fetch_i64s(&self, sql: &str) -> Vec<i64> {
        if self.data_dir.is_some() {
            let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
        }
    }

    /// Runs one SQL statement on the database behind the store's back.
    pub async fn execute_raw(&self, sql: &str) {
        if self.data_dir.is_some() {
            let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
            conn.execute(sqlx::raw_sql(sql)).await.unwrap();
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            conn.execute(sqlx::raw_sql(sql)).await.unwrap();
        }
    }
}

/// Runs `test` on SQLite and, when [`POSTGRES_URL_VAR`] is set, on PostgreSQL.
pub async fn each_engine<F, Fut>(test: F)
where
    F: Fn(TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    each_engine_from(Start::Empty, test).await
}

/// Runs `test` as [`each_engine`] does, on databases of schema version 6 made by the store's
/// former migration runner: copies of `tests/fixtures/v6.sqlite` and `v6.postgres.sql`.
pub async fn each_v6_fixture<F, Fut>(test: F)
where
    F: Fn(TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    each_engine_from(Start::V6Fixture, test).await
}

/// What a test database holds before the test connects.
#[derive(Clone, Copy)]
enum Start {
    Empty,
    V6Fixture,
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

async fn each_engine_from<F, Fut>(start: Start, test: F)
where
    F: Fn(TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join(sheaf_store::SQLITE_FILE_NAME);
    if let Start::V6Fixture = start {
        std::fs::copy(format!("{FIXTURES}/v6.sqlite"), &file).expect("copy v6.sqlite");
    }
    let db = TestDb {
        engine: "sqlite",
        url: format!("sqlite://{}", file.display()),
        data_dir: Some(dir.path().to_owned()),
    };
    run(test(db), async {}).await;

    if let Some(admin_url) = postgres_admin_url() {
        let name = unique_database_name();
        admin(&admin_url, &format!("CREATE DATABASE {name}")).await;
        let db = TestDb {
            engine: "postgres",
            url: with_database(&admin_url, &name),
            data_dir: None,
        };
        if let Start::V6Fixture = start {
            db.execute_raw(&postgres_dump(&format!("{FIXTURES}/v6.postgres.sql")))
                .await;
        }
        let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        run(test(db), admin(&admin_url, &drop)).await;
    }
}

/// The PostgreSQL server's admin URL when the tests were built with [`POSTGRES_URL_VAR`]
/// (`cfg(sheaf_postgres)`, see build.rs), `None` otherwise: then `postgres_server_answers`
/// stands in the output as ignored, saying that every test ran on SQLite only.
pub fn postgres_admin_url() -> Option<String> {
    if cfg!(sheaf_postgres) {
        Some(std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
            panic!("the tests were built with {POSTGRES_URL_VAR} set, and it is unset now")
        }))
    } else {
        None
    }
}

/// A `pg_dump` file as SQL a driver runs: without the psql meta-commands (`\restrict`).
fn postgres_dump(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
        .lines()
        .filter(|line| !line.starts_with('\\'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs a test body on its own task, then `cleanup` even if the body panicked.
async fn run(body: impl Future<Output = ()> + Send + 'static, cleanup: impl Future<Output = ()>) {
    let result = tokio::spawn(body).await;
    cleanup.await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn admin(admin_url: &str, sql: &str) {
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .unwrap_or_else(|e| panic!("connect to {POSTGRES_URL_VAR}: {e}"));
    conn.execute(sqlx::raw_sql(sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn unique_database_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "sheaf_test_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `url` with its database name replaced by `name`, keeping any `?query`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[host_start..].find('/') {
        Some(slash) => &base[..host_start + slash],
        None => base,
    };
    format!("{base}/{name}{query}")
}

/// Jobs of a complete tree over `leaves` leaves: each level groups `arity` consecutive jobs of
/// the level below, until one root remains.
pub fn tree(sequence: u64, leaves: u64, arity: usize) -> Vec<NewJob> {
    let sequence = SequenceId(sequence);
    let mut jobs: Vec<NewJob> = (0..leaves)
        .map(|index| NewJob {
            id: JobId::new(sequence, 0, index),
            circuit: JobCircuit::Leaf {
                kind: "work".into(),
            },
            inputs: JobInputs::Work {
                seed: sequence.get(),
                index,
            },
            children: vec![],
        })
        .collect();
    let mut level_ids: Vec<JobId> = jobs.iter().map(|job| job.id).collect();
    let mut level = 0;
    while level_ids.len() > 1 {
        level += 1;
        let parents: Vec<NewJob> = (0u64..)
            .zip(level_ids.chunks(arity))
            .map(|(index, children)| NewJob {
                id: JobId::new(sequence, level, index),
                circuit: JobCircuit::Universal,
                inputs: JobInputs::Aggregate,
                children: children.to_vec(),
            })
            .collect();
        level_ids = parents.iter().map(|job| job.id).collect();
        jobs.extend(parents);
    }
    jobs
}

/// Plans sequence `sequence` as [`tree`]`(sequence, leaves, arity)`.
pub async fn plan(store: &Store, sequence: u64, leaves: u64, arity: usize) {
    let new = NewSequence {
        id: SequenceId(sequence),
        leaves: leaves as i64,
        created_ms: T0,
    };
    store
        .insert_sequence(new, &tree(sequence, leaves, arity))
        .await
        .expect("plan sequence");
}

/// The reward entry the tests submit for `prover`.
pub fn reward(prover: &str) -> RewardEntry {
    let mut worker_pk = [0u8; 32];
    worker_pk[..prover.len().min(32)].copy_from_slice(&prover.as_bytes()[..prover.len().min(32)]);
    RewardEntry {
        worker_pk,
        work_units: 10,
    }
}

/// Proof bytes that name their job, so mixed-up proofs show.
pub fn proof_for(job: JobId) -> Vec<u8> {
    format!("proof of {job}").into_bytes()
}

/// Leases the next ready job at `now`, asserting there is one.
pub async fn lease_at(store: &Store, prover: &str, now: i64) -> Lease {
    store
        .lease_next_job(prover, now, TTL)
        .await
        .expect("lease")
        .expect("a ready job")
}

/// Leases at `T0`, asserting the job is the one expected.
pub async fn lease_expecting(store: &Store, prover: &str, expected: JobId) -> Lease {
    let lease = lease_at(store, prover, T0).await;
    assert_eq!(lease.job, expected, "leased the wrong job");
    lease
}

/// Submits the proof of `lease` (as [`proof_for`] makes it) at `now`, as `prover`, with
/// `prover`'s [`reward`].
pub async fn submit_as(
    store: &Store,
    lease: &Lease,
    prover: &str,
    now: i64,
) -> Result<SubmitOutcome, StoreError> {
    store
        .submit_proof(
            lease.job,
            lease.token,
            prover,
            &proof_for(lease.job),
            reward(prover),
            now,
            None,
        )
        .await
}

/// Submits the proof of a lease at `T0`, as its holder.
pub async fn submit(store: &Store, lease: &Lease) -> SubmitOutcome {
    submit_as(store, lease, &lease.holder, T0)
        .await
        .unwrap_or_else(|e| panic!("submit {}: {e}", lease.job))
}

/// The status of `job`, which must exist.
pub async fn status_of(store: &Store, job: JobId) -> JobStatus {
    store.get_job(job).await.unwrap().expect("the job").status
}

/// Leases the next job and proves it at `T0`.
pub async fn prove_next(store: &Store, prover: &str) -> (Lease, SubmitOutcome) {
    let lease = lease_at(store, prover, T0).await;
    let outcome = submit(store, &lease).await;
    (lease, outcome)
}

/// An outbox transaction whose hash and bytes name all it was made from, `tag` telling apart
/// two of the same sequence, kind and attempt.
pub fn outbox_tx(sequence: u64, kind: OutboxKind, attempt: i64, tag: &str) -> NewOutboxTx {
    NewOutboxTx {
        sequence: SequenceId(sequence),
        kind,
        attempt,
        tx_hash: format!("hash-{sequence}-{kind}-{attempt}-{tag}"),
        tx: format!("signed {sequence} {kind} {attempt} {tag}").into_bytes(),
    }
}

/// The store holds no sequence 1 and no job: a refused plan left nothing behind.
pub async fn assert_nothing_planned(store: &Store) {
    assert_eq!(store.get_sequence(SequenceId(1)).await.unwrap(), None);
    assert!(store
        .list_jobs(sheaf_store::JobFilter::default())
        .await
        .unwrap()
        .is_empty());
}
