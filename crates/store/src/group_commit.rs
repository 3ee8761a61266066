//! Leases and submissions on SQLite, committed in groups on a connection of their own.
//!
//! sqlx runs a SQLite connection on a worker thread of its own and hands it each statement:
//! a round trip of context switches and wake-ups per statement, about a dozen per
//! lease→submit cycle, and a submission's commit waits for an fsync of the WAL. A profile of
//! `sheaf bench store` at 8 clients found the store's one writer spending its cycles on those
//! hand-offs and that fsync, not on SQL. The two writes on every prover's path therefore run
//! here instead:
//!
//! ```text
//!  lease_admitted, submit_proof ─▶ queue ─▶ committer task
//!        (await their answer)                1. takes the write pool's one connection: the
//!                                               store's write lock, so no other write runs
//!                                            2. drains the queue, up to GROUP_MAX requests
//!                                            3. one call to a blocking thread, one transaction
//!                                               on the group's connection (rusqlite):
//!                                                 BEGIN IMMEDIATE
//!                                                 SAVEPOINT; a request; RELEASE or ROLLBACK TO  × n
//!                                                 COMMIT, not flushed (synchronous = NORMAL)
//!                                            4. gives the lock back, answers the leases, and
//!                                               goes on to the next group, while
//!                                            5. a blocking thread fdatasyncs the WAL (one flush
//!                                               for as many groups as committed before it began)
//!                                               and then answers the group's submissions
//! ```
//!
//! Flushing the WAL outside the lock (early lock release, as databases with a log do) lets
//! the next group's statements run during the flush, and answers a lease without waiting for
//! a flush at all: a lease commits lazily anyway ([`crate::Store::begin_lazy_write`] says why
//! losing one to an OS crash is safe). What another reader sees between the commit and the
//! flush may still be lost to an OS crash (not to the process's: the bytes are in the page
//! cache); the WAL is written in order, so a flush that covers a later commit covers every
//! earlier one, and every write that acts outside the store (the sender's outbox, the ledger)
//! commits with `synchronous = FULL`, whose flush covers the groups before it. A submission
//! is answered only once it is on disk. A failed flush stops the committer: every later group
//! is refused until the store is reopened ([`crate::flush`] says why).
//!
//! A request's own refusal or failure (a stale lease, an insert the database refuses) rolls
//! back its savepoint only; the others commit. A commit that fails fails every request of the
//! group, and none took effect. Requests that arrive while a group commits form the next one,
//! so a lone request waits for no timer, and under load one flush serves many submissions.
//! A request whose caller is cancelled once it is queued still runs: a submission then takes
//! effect (its prover's retry finds the job proved), a lease is granted to nobody listening
//! and expires, as a lease whose answer was lost on the network does.
//!
//! The statements are `lease.rs`'s and `submit.rs`'s constants, which PostgreSQL runs as the
//! functions of migration 0014 (one call per transaction there); their `$N` parameters are
//! bound by number, as sqlx does. The group's
//! connection has the store's pragmas. It is a connection apart from the pool's because
//! sqlx's `Any` connection gives no access to its SQLite handle; holding the pool's connection
//! while it writes keeps the store at one writer, so no write waits in SQLite's busy handler.
//! (Another process writing the same file, an operator's `sheaf jobs`, is waited for up to
//! [`crate::SQLITE_BUSY_TIMEOUT`] as before.)

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::types::ToSql;
use rusqlite::{CachedStatement, Connection, TransactionBehavior};
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use sheaf_types::{JobCircuit, JobInputs};

use crate::error::{Result, StoreError};
use crate::flush::SharedFlush;
use crate::lease::{claim_sql, Admission, Standing, COUNT_LEASE, FORGET_PAST_EPOCHS, STANDING};
use crate::model::{JobStatus, Lease, LeaseOutcome, SubmitOutcome};
use crate::proofs::{row_form, Placed, INSERT_PROOF_ROW};
use crate::store::Engine;
use crate::submit::{
    not_proved, Submission, INSERT_REWARD, PROVE_JOB, RELEASE_PARENT, RESET_BACKOFF,
    SEQUENCE_PROVED, STATUS_OF_JOB, TOP_PROOF_INTO_ROW,
};

/// Most requests committed in one transaction. Past a few dozen a larger group saves little
/// (one fsync is shared already) and its first request waits longer for its answer.
pub(crate) const GROUP_MAX: usize = 64;

/// Requests waiting for the committer; a sender waits when it is full.
const QUEUE_DEPTH: usize = 1024;

/// One write the committer runs.
enum Request {
    Lease(Admission),
    Submit(Submission),
}

/// What a request answers.
enum Answer {
    Lease(LeaseOutcome),
    Submit(SubmitOutcome),
}

struct Pending {
    request: Request,
    answer: oneshot::Sender<Result<Answer>>,
}

/// The SQLite store's committer of leases and submissions: a handle on its queue. Cheap to
/// clone; the task ends, closing its connection, when the last handle is dropped.
#[derive(Clone)]
pub(crate) struct GroupCommit {
    queue: mpsc::Sender<Pending>,
    /// The database's WAL, which the committer flushes.
    wal: Arc<SharedFlush>,
}

impl GroupCommit {
    /// Opens the group's connection to the database file at `path` with `pragmas` and starts
    /// the committer on the current runtime. `write` is the store's write pool of one
    /// connection, held as the write lock while a group runs.
    pub(crate) fn start(path: &Path, pragmas: &str, write: AnyPool) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.execute_batch(pragmas)?;
        // SQLite does not flush this connection's commits; the committer flushes the WAL
        // itself, after it lets go of the write lock.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::GroupCommit(format!(
                "the database is in journal mode {mode}, not WAL"
            )));
        }
        // A read opens the WAL (creating it if no connection had); it stays, the same file,
        // while any connection is open, and this one is until the committer ends.
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
        let wal = Arc::new(SharedFlush::new(File::open(wal_path(path))?));
        let (queue, requests) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(run(
            requests,
            Arc::new(Mutex::new(conn)),
            wal.clone(),
            write,
        ));
        Ok(GroupCommit { queue, wal })
    }

    /// Leases under `admission` in the next group: what [`crate::Store::lease_admitted`] does.
    pub(crate) async fn lease(&self, admission: Admission) -> Result<LeaseOutcome> {
        match self.call(Request::Lease(admission)).await? {
            Answer::Lease(outcome) => Ok(outcome),
            Answer::Submit(_) => unreachable!("a lease is answered with a lease outcome"),
        }
    }

    /// Stores a submission in the next group: what [`crate::Store::submit_proof`] does once
    /// its blob is placed.
    pub(crate) async fn submit(&self, submission: Submission) -> Result<SubmitOutcome> {
        match self.call(Request::Submit(submission)).await? {
            Answer::Submit(outcome) => Ok(outcome),
            Answer::Lease(_) => unreachable!("a submission is answered with a submit outcome"),
        }
    }

    async fn call(&self, request: Request) -> Result<Answer> {
        if self.wal.failed() {
            return Err(StoreError::GroupCommit(WAL_FAILED.into()));
        }
        let (answer, answered) = oneshot::channel();
        let gone = || StoreError::GroupCommit("the store's committer has stopped".into());
        self.queue
            .send(Pending { request, answer })
            .await
            .map_err(|_| gone())?;
        answered.await.map_err(|_| gone())?
    }
}

/// The committer: a group at a time, until every handle is dropped. A group's leases are
/// answered once it commits; its submissions once a flush of the WAL that began after the
/// commit ends, which runs on a thread of its own while the next group commits.
async fn run(
    mut requests: mpsc::Receiver<Pending>,
    conn: Arc<Mutex<Connection>>,
    wal: Arc<SharedFlush>,
    write: AnyPool,
) {
    let mut group = Vec::with_capacity(GROUP_MAX);
    while requests.recv_many(&mut group, GROUP_MAX).await > 0 {
        // The write lock; requests that come while it is awaited join this group.
        let lock = write.acquire().await;
        while group.len() < GROUP_MAX {
            match requests.try_recv() {
                Ok(pending) => group.push(pending),
                Err(_) => break,
            }
        }
        let (requests_of_group, answers): (Vec<Request>, Vec<_>) = group
            .drain(..)
            .map(|pending| (pending.request, pending.answer))
            .unzip();
        let submits: Vec<bool> = requests_of_group
            .iter()
            .map(|request| matches!(request, Request::Submit(_)))
            .collect();
        let (results, commit) = match lock {
            Ok(_) if wal.failed() => (failed(answers.len(), &WAL_FAILED), None),
            Ok(lock) => {
                let (conn, wal) = (conn.clone(), wal.clone());
                let committed = tokio::task::spawn_blocking(move || {
                    let mut conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    commit_group(&mut conn, &wal, requests_of_group)
                })
                .await;
                drop(lock);
                committed.unwrap_or_else(|e| {
                    tracing::error!(target: "sheaf::store", error = %e, "a group commit panicked; its requests took no effect");
                    (failed(answers.len(), &e), None)
                })
            }
            Err(e) => (failed(answers.len(), &e), None),
        };
        let mut flushed_first = Vec::new();
        for ((answer, result), submit) in answers.into_iter().zip(results).zip(submits) {
            match commit {
                Some(_) if submit => flushed_first.push((answer, result)),
                // A caller that went away (a request timed out) no longer wants its answer.
                _ => drop(answer.send(result)),
            }
        }
        if let (Some(commit), false) = (commit, flushed_first.is_empty()) {
            let wal = wal.clone();
            tokio::task::spawn_blocking(move || answer_once_flushed(&wal, commit, flushed_first));
        }
    }
}

/// Why a group is refused once a flush of the WAL failed.
const WAL_FAILED: &str = "a flush of the SQLite WAL failed, so commits since the last one that \
     succeeded may be lost: the store takes no more leases or submissions until it is reopened";

/// Flushes the WAL through commit `commit` (or waits for a flush that covers it) and then
/// sends `answers`; if the flush fails, each is that failure instead (and the committer
/// refuses every later group).
fn answer_once_flushed(
    wal: &SharedFlush,
    commit: u64,
    answers: Vec<(oneshot::Sender<Result<Answer>>, Result<Answer>)>,
) {
    let flushed = wal.flush_through(commit);
    if let Err(e) = &flushed {
        tracing::error!(target: "sheaf::store", error = %e, "{WAL_FAILED}");
    }
    for (answer, result) in answers {
        let result = match &flushed {
            Ok(_) => result,
            Err(e) => Err(StoreError::GroupCommit(format!("{WAL_FAILED} ({e})"))),
        };
        let _ = answer.send(result);
    }
}

/// The answers of a group of `n` requests that failed as a whole with `e`: none took effect.
fn failed(n: usize, e: &dyn std::fmt::Display) -> Vec<Result<Answer>> {
    (0..n)
        .map(|_| Err(StoreError::GroupCommit(e.to_string())))
        .collect()
}

/// Runs `requests` in one transaction, each in a savepoint of its own, and commits; returns
/// each request's answer, in order, and once it committed, the commit's number among the
/// WAL's writes.
fn commit_group(
    conn: &mut Connection,
    wal: &SharedFlush,
    requests: Vec<Request>,
) -> (Vec<Result<Answer>>, Option<u64>) {
    match run_group(conn, &requests) {
        // Numbered after SQLite wrote the commit's frames, under the write lock.
        Ok(answers) => (answers, Some(wal.wrote())),
        Err(e) => {
            tracing::warn!(target: "sheaf::store", error = %e, requests = requests.len(), "a group's commit failed; none of its requests took effect");
            (failed(requests.len(), &e), None)
        }
    }
}

fn run_group(conn: &mut Connection, requests: &[Request]) -> Result<Vec<Result<Answer>>> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut answers = Vec::with_capacity(requests.len());
    for request in requests {
        let savepoint = tx.savepoint()?;
        let answer = match request {
            Request::Lease(admission) => admit_and_claim(&savepoint, admission).map(Answer::Lease),
            Request::Submit(submission) => store_proof(&savepoint, submission).map(Answer::Submit),
        };
        if answer.is_ok() {
            savepoint.commit()?;
        }
        // Dropped otherwise: rolled back to where the request began.
        answers.push(answer);
    }
    let leases = requests.iter().any(|r| matches!(r, Request::Lease(_)));
    let submits = requests.iter().any(|r| matches!(r, Request::Submit(_)));
    if leases {
        fail::fail_point!("store::lease::before_commit");
    }
    if submits {
        fail::fail_point!("store::submit::before_commit");
    }
    tx.commit()?;
    if leases {
        fail::fail_point!("store::lease::after_commit");
    }
    if submits {
        fail::fail_point!("store::submit::after_commit");
    }
    Ok(answers)
}

/// SQLite's WAL for the database file at `db`: its name with `-wal` appended.
fn wal_path(db: &Path) -> PathBuf {
    let mut name = OsString::from(db.as_os_str());
    name.push("-wal");
    PathBuf::from(name)
}

/// [`crate::lease`]'s `admit_and_claim`, on the group's connection.
fn admit_and_claim(conn: &Connection, a: &Admission) -> Result<LeaseOutcome> {
    let standing = {
        let mut statement = prepare(conn, STANDING, &[&a.prover, &a.now_ms, &a.epoch])?;
        let mut rows = statement.raw_query();
        match rows.next()? {
            None => return Err(StoreError::UnknownProver(a.prover.clone())),
            Some(row) => Standing {
                rate_limit: row.get("rate_limit")?,
                max_concurrent: row.get("max_concurrent")?,
                abandoned_in_row: row.get("abandoned_in_row")?,
                suspended_until_ms: row.get("suspended_until_ms")?,
                active: row.get("active")?,
                used: row.get("used")?,
            },
        }
    };
    if let Some(refusal) = standing.refusal(a) {
        return Ok(refusal);
    }
    let claimed = {
        let claim = claim_sql(Engine::Sqlite);
        let mut statement = prepare(conn, &claim, &[&a.prover, &a.expires_ms, &a.now_ms])?;
        let mut rows = statement.raw_query();
        match rows.next()? {
            None => None,
            Some(row) => Some(Lease {
                job: parse(row.get::<_, String>("id")?)?,
                token: row.get("lease_token")?,
                attempt: row.get("attempts")?,
                holder: a.prover.clone(),
                expires_ms: a.expires_ms,
                circuit: parse::<JobCircuit>(row.get::<_, String>("circuit")?)?,
                inputs: JobInputs::from_bytes(&row.get::<_, Vec<u8>>("inputs")?)
                    .map_err(|e| StoreError::Corrupt(format!("stored job inputs: {e}")))?,
            }),
        }
    };
    let Some(lease) = claimed else {
        return Ok(LeaseOutcome::NoWork);
    };
    prepare(conn, COUNT_LEASE, &[&a.prover, &a.epoch])?.raw_execute()?;
    if standing.used.is_none() {
        prepare(conn, FORGET_PAST_EPOCHS, &[&a.prover, &a.epoch])?.raw_execute()?;
    }
    Ok(LeaseOutcome::Leased(lease))
}

/// [`crate::submit`]'s `store_proof`, on the group's connection.
fn store_proof(conn: &Connection, s: &Submission) -> Result<SubmitOutcome> {
    let job = s.job.to_string();
    let sequence = i64::try_from(s.job.sequence.0).map_err(|_| {
        StoreError::InvalidArgument(format!("sequence {} overflows", s.job.sequence))
    })?;
    let size = i64::try_from(s.proof.len())
        .map_err(|_| StoreError::InvalidArgument("a proof larger than 2^63 bytes".into()))?;
    let row = row_form(&s.proof, s.placed);
    let args: [&dyn ToSql; 6] = [
        &s.hash,
        &row.bytes,
        &row.stored,
        &size,
        &row.segment,
        &row.offset,
    ];
    prepare(conn, INSERT_PROOF_ROW, &args)?.raw_execute()?;
    let proved: Option<Option<String>> = {
        let args: [&dyn ToSql; 6] = [&job, &s.token, &s.prover, &s.now_ms, &s.hash, &s.prove_ms];
        let mut statement = prepare(conn, PROVE_JOB, &args)?;
        let mut rows = statement.raw_query();
        rows.next()?.map(|row| row.get(0)).transpose()?
    };
    let Some(parent) = proved else {
        let status: Option<String> = prepare(conn, STATUS_OF_JOB, &[&job])?
            .raw_query()
            .next()?
            .map(|row| row.get(0))
            .transpose()?;
        let status = status.map(parse::<JobStatus>).transpose()?;
        return Err(not_proved(s.job, s.token, status));
    };
    if parent.is_none() && s.placed != Placed::Row {
        prepare(conn, TOP_PROOF_INTO_ROW, &[&s.hash, &s.proof])?.raw_execute()?;
    }
    prepare(conn, RESET_BACKOFF, &[&s.prover])?.raw_execute()?;
    let args: [&dyn ToSql; 6] = [
        &job,
        &sequence,
        &s.prover,
        &s.reward.worker_pk.as_slice(),
        &s.reward.work_units,
        &s.now_ms,
    ];
    prepare(conn, INSERT_REWARD, &args)?.raw_execute()?;
    let mut outcome = SubmitOutcome {
        proof_hash: s.hash.clone(),
        parent_ready: None,
        sequence_proved: false,
    };
    match parent {
        Some(parent) => {
            let released: Option<String> = prepare(conn, RELEASE_PARENT, &[&parent])?
                .raw_query()
                .next()?
                .map(|row| row.get(0))
                .transpose()?;
            outcome.parent_ready = released.map(parse).transpose()?;
        }
        None => {
            prepare(conn, SEQUENCE_PROVED, &[&sequence, &s.now_ms])?.raw_execute()?;
            outcome.sequence_proved = true;
        }
    }
    Ok(outcome)
}

/// `sql`, prepared (and cached on the connection), with its `$N` parameters bound to
/// `args[N - 1]`, as sqlx numbers them. SQLite numbers named parameters in order of first
/// appearance, which is not always `$N`'s order.
fn prepare<'c>(
    conn: &'c Connection,
    sql: &str,
    args: &[&dyn ToSql],
) -> rusqlite::Result<CachedStatement<'c>> {
    let mut statement = conn.prepare_cached(sql)?;
    for index in 1..=statement.parameter_count() {
        let name = statement.parameter_name(index).unwrap_or_default();
        let arg = name
            .strip_prefix('$')
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| n.checked_sub(1))
            .and_then(|n| args.get(n))
            .ok_or_else(|| rusqlite::Error::InvalidParameterName(name.to_owned()))?;
        statement.raw_bind_parameter(index, arg)?;
    }
    Ok(statement)
}

/// A stored text value in its type; one that does not parse is [`StoreError::Corrupt`].
fn parse<T>(text: String) -> Result<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("stored value {text:?}: {e}")))
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::IntegralValueOutOfRange(..) => StoreError::Corrupt(e.to_string()),
            e => StoreError::Sqlite(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sheaf_types::{JobCircuit, JobId, JobInputs, SequenceId};

    use super::{Answer, SharedFlush};
    use crate::model::{
        JobStatus, LeaseOutcome, NewJob, NewSequence, Prover, RewardEntry, SubmitOutcome,
    };
    use crate::{Store, StoreError};

    const T0: i64 = 1_000_000;

    const REWARD: RewardEntry = RewardEntry {
        worker_pk: [2; 32],
        work_units: 1,
    };

    /// A sequence of three leaves under one node, and one lease per leaf to `prover`.
    async fn three_leases(store: &Store, prover: &str) -> Vec<crate::Lease> {
        let sequence = SequenceId(1);
        let leaf = |index| NewJob {
            id: JobId::new(sequence, 0, index),
            circuit: JobCircuit::Leaf {
                kind: "work".into(),
            },
            inputs: JobInputs::Work { seed: 1, index },
            children: vec![],
        };
        let root = NewJob {
            id: JobId::new(sequence, 1, 0),
            circuit: JobCircuit::Universal,
            inputs: JobInputs::Aggregate,
            children: (0..3).map(|index| JobId::new(sequence, 0, index)).collect(),
        };
        let new = NewSequence {
            id: sequence,
            leaves: 3,
            created_ms: T0,
        };
        store
            .insert_sequence(new, &[leaf(0), leaf(1), leaf(2), root])
            .await
            .unwrap();
        store
            .upsert_prover(&Prover {
                id: prover.into(),
                public_key: [1; 32],
                worker_pk: [2; 32],
                rate_limit: 100,
                max_concurrent: 100,
            })
            .await
            .unwrap();
        let mut leases = Vec::new();
        for _ in 0..3 {
            match store
                .lease_admitted(prover, T0, 60_000, 1_000)
                .await
                .unwrap()
            {
                LeaseOutcome::Leased(lease) => leases.push(lease),
                other => panic!("no lease: {other:?}"),
            }
        }
        leases
    }

    /// Submissions queued while another write holds the lock commit together once it is let
    /// go: the one under a stale token is refused and rolls back alone, the others are proved,
    /// and the last of them releases the parent only because both others are in too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_request_rolls_back_alone_in_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_data_dir(dir.path()).await.unwrap();
        let leases = three_leases(&store, "p").await;

        let lock = store.db.write.acquire().await.unwrap();
        let submits: Vec<_> = leases
            .iter()
            .enumerate()
            .map(|(i, lease)| {
                let store = store.clone();
                let lease = lease.clone();
                // The second submits under a token that is not its lease's.
                let token = if i == 1 { lease.token + 7 } else { lease.token };
                tokio::spawn(async move {
                    store
                        .submit_proof(
                            lease.job,
                            token,
                            "p",
                            format!("proof {i}").as_bytes(),
                            RewardEntry {
                                worker_pk: [2; 32],
                                work_units: 1,
                            },
                            T0 + 1,
                            None,
                        )
                        .await
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;
        for lease in &leases {
            let job = store.get_job(lease.job).await.unwrap().unwrap();
            assert_eq!(
                job.status,
                JobStatus::Leased,
                "committed while the lock was held"
            );
        }
        drop(lock);

        let mut results = Vec::new();
        for submit in submits {
            results.push(submit.await.unwrap());
        }
        assert!(results[0].is_ok(), "{:?}", results[0]);
        assert!(
            matches!(results[1], Err(StoreError::StaleLease { .. })),
            "{:?}",
            results[1]
        );
        assert!(results[2].is_ok(), "{:?}", results[2]);
        let statuses: Vec<JobStatus> =
            futures::future::join_all(leases.iter().map(|lease| store.get_job(lease.job)))
                .await
                .into_iter()
                .map(|job| job.unwrap().unwrap().status)
                .collect();
        assert_eq!(
            statuses,
            [JobStatus::Proved, JobStatus::Leased, JobStatus::Proved]
        );
        let root = store.get_job(JobId::new(SequenceId(1), 1, 0)).await;
        assert_eq!(
            root.unwrap().unwrap().status,
            JobStatus::Waiting,
            "released with a child unproved"
        );
        assert_eq!(store.rewards(SequenceId(1)).await.unwrap().len(), 2);
        store.close().await;
    }

    /// Submits a proof for `lease`, held by prover `p`.
    async fn submit(store: &Store, lease: &crate::Lease) -> Result<SubmitOutcome, StoreError> {
        let proof = b"proof";
        let now = T0 + 1;
        store
            .submit_proof(lease.job, lease.token, "p", proof, REWARD, now, None)
            .await
    }

    /// A lease is answered at its group's commit, before any flush of the WAL; a submission
    /// only once a flush that covers its commit (and every commit before it) has ended.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_submission_is_answered_once_the_wal_is_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_data_dir(dir.path()).await.unwrap();
        let leases = three_leases(&store, "p").await;
        let wal = store.db.group.as_ref().unwrap().wal.clone();
        assert_eq!(wal.unflushed(), 3, "each lease's commit, none flushed");

        submit(&store, &leases[0]).await.unwrap();
        assert_eq!(
            wal.unflushed(),
            0,
            "answered before the flush of its commit"
        );
        store.close().await;
    }

    /// Once a flush of the WAL failed, the committer refuses every lease and submission (an
    /// OS may have dropped the pages that flush was to write), and none takes effect.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_wal_flush_refuses_every_later_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_data_dir(dir.path()).await.unwrap();
        let leases = three_leases(&store, "p").await;
        store.db.group.as_ref().unwrap().wal.fail();

        let submitted = submit(&store, &leases[0]).await;
        assert!(
            matches!(&submitted, Err(e @ StoreError::GroupCommit(m)) if m.contains("WAL failed") && e.is_unavailable()),
            "{submitted:?}"
        );
        let leased = store.lease_admitted("p", T0 + 2, 60_000, 1_000).await;
        assert!(
            matches!(&leased, Err(StoreError::GroupCommit(m)) if m.contains("WAL failed")),
            "{leased:?}"
        );
        let job = store.get_job(leases[0].job).await.unwrap().unwrap();
        assert_eq!(
            job.status,
            JobStatus::Leased,
            "the refused submission took effect"
        );
        store.close().await;
    }

    /// A group whose WAL flush fails answers its submissions with the failure, not with what
    /// they did before it: their commit may be lost. `/dev/null` refuses `fdatasync`.
    #[test]
    fn a_submission_whose_flush_fails_is_answered_with_the_failure() {
        let wal = SharedFlush::new(
            std::fs::File::options()
                .write(true)
                .open("/dev/null")
                .unwrap(),
        );
        let commit = wal.wrote();
        let (answer, mut answered) = tokio::sync::oneshot::channel();
        let outcome = SubmitOutcome {
            proof_hash: "00".into(),
            parent_ready: None,
            sequence_proved: false,
        };
        super::answer_once_flushed(&wal, commit, vec![(answer, Ok(Answer::Submit(outcome)))]);
        let answer = answered.try_recv().unwrap();
        assert!(
            matches!(&answer, Err(StoreError::GroupCommit(m)) if m.contains("WAL failed")),
            "answered {:?}",
            answer.map(|_| ())
        );
        assert!(wal.failed());
    }

    /// `$N` parameters are bound by their number, not by where they first appear: a
    /// statement naming `$2` before `$1` gets each its own argument.
    #[test]
    fn parameters_are_bound_by_number() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut statement =
            super::prepare(&conn, "SELECT $2 || '-' || $1 || '-' || $2", &[&"a", &"b"]).unwrap();
        let text: String = statement
            .raw_query()
            .next()
            .unwrap()
            .unwrap()
            .get(0)
            .unwrap();
        assert_eq!(text, "b-a-b");
        let missing = super::prepare(&conn, "SELECT $3", &[&"a"]);
        assert!(
            matches!(missing, Err(rusqlite::Error::InvalidParameterName(ref name)) if name == "$3"),
            "{:?}",
            missing.err()
        );
    }
}
