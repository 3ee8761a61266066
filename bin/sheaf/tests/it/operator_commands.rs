//! The operator commands of issue 11 — `status`, `jobs requeue --sequence`, `provers list`,
//! `proof export` and `key show` — run as processes against SQLite stores prepared through the
//! store's API (one PostgreSQL test), and one devnet whose root proof is exported, verified and
//! looked up on its restarted chain.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{free_port, sheaf, succeeded, text, Process};
use sheaf_store::{
    JobCircuit, JobId, JobInputs, JobStatus, NewJob, NewSequence, Prover, RewardEntry, SequenceId,
    Store,
};
use sheaf_types::clock::now_ms;

const TTL_MS: i64 = 30_000;
/// Work units alice earns per proof.
const UNITS: i64 = 3;
/// A registered prover with no activity, named long enough to widen its column.
const IDLE: &str = "dave-the-idle-prover-with-a-long-name";

fn job(sequence: u64, level: u32, index: u64) -> JobId {
    JobId::new(SequenceId(sequence), level, index)
}

fn leaf(sequence: u64, index: u64) -> NewJob {
    NewJob {
        id: job(sequence, 0, index),
        circuit: JobCircuit::Leaf {
            kind: "work".into(),
        },
        inputs: JobInputs::Work {
            seed: sequence,
            index,
        },
        children: vec![],
    }
}

fn root(sequence: u64, leaves: u64) -> NewJob {
    NewJob {
        id: job(sequence, 1, 0),
        circuit: JobCircuit::LeafNode {
            kind: "work".into(),
        },
        inputs: JobInputs::Aggregate,
        children: (0..leaves).map(|i| job(sequence, 0, i)).collect(),
    }
}

/// A store holding:
/// - sequence 1, three leaves under a root: `s1-l0-i0` proved by alice, `s1-l0-i1` and
///   `s1-l0-i2` dead after bob's leases expired, the root waiting;
/// - sequence 2, two leaves under a root: `s2-l0-i0` leased by carol, `s2-l0-i1` cancelled;
/// - sequence 3, one job (its root), proved by alice: [`Fixture::root_proof`];
/// - alice and [`IDLE`] registered.
struct Fixture {
    dir: tempfile::TempDir,
    url: String,
    root_proof: Vec<u8>,
}

impl Fixture {
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

async fn sqlite_fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}",
        dir.path().join(sheaf_store::SQLITE_FILE_NAME).display()
    );
    let root_proof = populate(&url).await;
    Fixture {
        dir,
        url,
        root_proof,
    }
}

/// Fills the store at `url` as [`Fixture`] describes; returns sequence 3's root proof.
async fn populate(url: &str) -> Vec<u8> {
    let store = Store::connect(url).await.unwrap();
    let now = now_ms();
    let plans = [
        (1, vec![leaf(1, 0), leaf(1, 1), leaf(1, 2), root(1, 3)]),
        (2, vec![leaf(2, 0), leaf(2, 1), root(2, 2)]),
        (3, vec![leaf(3, 0)]),
    ];
    for (id, jobs) in plans {
        let sequence = NewSequence {
            id: SequenceId(id),
            leaves: jobs.len() as i64,
            created_ms: now,
        };
        store.insert_sequence(sequence, &jobs).await.unwrap();
    }
    let reward = RewardEntry {
        worker_pk: [1; 32],
        work_units: UNITS,
    };
    let prove = |job: JobId, proof: Vec<u8>| {
        let store = &store;
        let reward = reward.clone();
        async move {
            let lease = store
                .lease_next_job("alice", now, TTL_MS)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(lease.job, job);
            store
                .submit_proof(job, lease.token, "alice", &proof, reward, now, None)
                .await
                .unwrap();
        }
    };
    prove(job(1, 0, 0), b"proof of s1-l0-i0".to_vec()).await;
    for index in [1, 2] {
        let lease = store
            .lease_next_job("bob", now, TTL_MS)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(lease.job, job(1, 0, index));
    }
    let expired = store.requeue_expired(now + TTL_MS, 1).await.unwrap();
    assert_eq!(expired.dead, vec![job(1, 0, 1), job(1, 0, 2)]);
    let lease = store
        .lease_next_job("carol", now_ms(), TTL_MS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lease.job, job(2, 0, 0));
    store.cancel_job(job(2, 0, 1)).await.unwrap();
    let root_proof = b"root proof of sequence 3".to_vec();
    prove(job(3, 0, 0), root_proof.clone()).await;
    for (id, key) in [("alice", 2), (IDLE, 3)] {
        let prover = Prover {
            id: id.to_owned(),
            public_key: [key; 32],
            worker_pk: [1; 32],
            rate_limit: 10,
            max_concurrent: 2,
        };
        store.upsert_prover(&prover).await.unwrap();
    }
    for reason in ["invalid_proof", "stale_lease", "invalid_proof"] {
        store
            .record_rejection("alice", reason, now_ms())
            .await
            .unwrap();
    }
    store.close().await;
    root_proof
}

/// `sheaf ARGS` on the store at `url` (through SHEAF_DB).
fn on_store(url: &str, args: &[&str]) -> Output {
    sheaf()
        .args(args)
        .env("SHEAF_DB", url)
        .env_remove("SHEAF_CHAIN")
        .output()
        .expect("sheaf runs")
}

/// The one-line error of a run that exited with `code`.
fn failed_with(output: &Output, code: i32) -> String {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    stderr
}

async fn statuses(url: &str, jobs: &[JobId]) -> Vec<JobStatus> {
    let store = Store::connect(url).await.unwrap();
    let mut statuses = Vec::new();
    for job in jobs {
        statuses.push(store.get_job(*job).await.unwrap().unwrap().status);
    }
    store.close().await;
    statuses
}

/// Every job of the fixture.
fn all_jobs() -> Vec<JobId> {
    vec![
        job(1, 0, 0),
        job(1, 0, 1),
        job(1, 0, 2),
        job(1, 1, 0),
        job(2, 0, 0),
        job(2, 0, 1),
        job(2, 1, 0),
        job(3, 0, 0),
    ]
}

/// The row of a table that starts with `first`, split into its cells.
fn row<'a>(table: &'a str, first: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&first))
        .unwrap_or_else(|| panic!("no row {first:?} in\n{table}"))
}

// ---- status ----

#[tokio::test]
async fn status_counts_each_sequences_jobs_by_state_and_lists_the_blocked_ones() {
    let fx = sqlite_fixture().await;
    let out = succeeded(&on_store(&fx.url, &["status"]));
    let header = out.lines().next().unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        [
            "SEQUENCE",
            "JOBS",
            "WAITING",
            "READY",
            "LEASED",
            "PROVED",
            "DEAD",
            "CANCELLED",
            "ROOT",
            "CHAIN"
        ],
        "{out}"
    );
    assert_eq!(
        row(&out, "1"),
        ["1", "4", "1", "0", "0", "1", "2", "0", "not", "proved", "-"],
        "{out}"
    );
    assert_eq!(
        row(&out, "2"),
        ["2", "3", "1", "0", "1", "0", "0", "1", "not", "proved", "-"],
        "{out}"
    );
    assert_eq!(
        row(&out, "3"),
        ["3", "1", "0", "0", "0", "1", "0", "0", "proved", "-"],
        "{out}"
    );
    assert!(
        out.contains("3 sequences; on-chain state not shown: pass --chain URL"),
        "{out}"
    );
    assert!(out.contains("blocked: 3 dead or cancelled jobs"), "{out}");
    assert_eq!(row(&out, "s1-l0-i1"), ["s1-l0-i1", "dead", "1"]);
    assert_eq!(row(&out, "s1-l0-i2"), ["s1-l0-i2", "dead", "1"]);
    assert_eq!(row(&out, "s2-l0-i1"), ["s2-l0-i1", "cancelled", "0"]);
    assert!(
        !out.contains("s2-l0-i0"),
        "a leased job is not blocked: {out}"
    );
}

#[tokio::test]
async fn status_writes_nothing_to_the_store() {
    let fx = sqlite_fixture().await;
    let before = statuses(&fx.url, &all_jobs()).await;
    succeeded(&on_store(&fx.url, &["status"]));
    assert_eq!(statuses(&fx.url, &all_jobs()).await, before);
}

#[tokio::test]
async fn status_watch_reprints_under_timestamps_until_ctrl_c() {
    let fx = sqlite_fixture().await;
    let child = sheaf()
        .args(["status", "--watch", "--interval-ms", "100"])
        .env("SHEAF_DB", &fx.url)
        .env_remove("SHEAF_CHAIN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let output = child.wait_with_output().unwrap();
    let out = succeeded(&output);
    let separators: Vec<&str> = out.lines().filter(|l| l.starts_with("--- ")).collect();
    assert!(separators.len() >= 3, "{out}");
    assert!(separators[0].ends_with(" UTC ---"), "{out}");
    assert_eq!(
        out.matches("SEQUENCE").count(),
        separators.len(),
        "one report per separator: {out}"
    );
    assert!(!out.contains("\x1b["), "no terminal codes into a pipe");
}

#[tokio::test]
async fn status_with_an_interval_but_no_watch_prints_one_report() {
    let fx = sqlite_fixture().await;
    let out = sheaf()
        .arg("status")
        .env("SHEAF_DB", &fx.url)
        .env("SHEAF_STATUS_INTERVAL_MS", "100")
        .env_remove("SHEAF_CHAIN")
        .output()
        .unwrap();
    let out = succeeded(&out);
    assert_eq!(out.matches("SEQUENCE").count(), 1, "{out}");
    assert!(!out.contains("--- "), "{out}");
}

#[tokio::test]
async fn status_with_an_unreachable_chain_is_a_one_line_error_naming_it() {
    let fx = sqlite_fixture().await;
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = on_store(&fx.url, &["status", "--chain", &url]);
    let stderr = failed_with(&out, 1);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("asking the chain at {url}")),
        "{stderr}"
    );
}

#[test]
fn status_of_a_missing_store_is_an_error_and_creates_none() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.db");
    let out = on_store(&format!("sqlite://{}", missing.display()), &["status"]);
    let stderr = failed_with(&out, 1);
    assert!(stderr.contains("no SQLite store at"), "{stderr}");
    assert!(!missing.exists());
}

#[tokio::test]
async fn status_to_a_reader_that_closed_the_pipe_exits_quietly() {
    let fx = sqlite_fixture().await;
    let mut child = sheaf()
        .arg("status")
        .env("SHEAF_DB", &fx.url)
        .env_remove("SHEAF_CHAIN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(!text(&output.stderr).contains("panicked"));
}

// ---- jobs requeue --sequence ----

#[tokio::test]
async fn requeue_by_sequence_revives_every_dead_job_of_it_and_names_them() {
    let fx = sqlite_fixture().await;
    let out = succeeded(&on_store(
        &fx.url,
        &["jobs", "requeue", "--sequence", "1", "--status", "dead"],
    ));
    assert!(
        out.starts_with("requeued 2 dead jobs of sequence 1:"),
        "{out}"
    );
    assert_eq!(row(&out, "s1-l0-i1"), ["s1-l0-i1", "ready"]);
    assert_eq!(row(&out, "s1-l0-i2"), ["s1-l0-i2", "ready"]);
    use JobStatus::*;
    assert_eq!(
        statuses(&fx.url, &all_jobs()).await,
        [Proved, Ready, Ready, Waiting, Leased, Cancelled, Waiting, Proved]
    );
    let again = succeeded(&on_store(
        &fx.url,
        &["jobs", "requeue", "--sequence", "1", "--status", "dead"],
    ));
    assert_eq!(again.trim(), "no dead jobs in sequence 1: nothing requeued");
}

#[tokio::test]
async fn requeue_by_sequence_revives_cancelled_jobs() {
    let fx = sqlite_fixture().await;
    let out = succeeded(&on_store(
        &fx.url,
        &[
            "jobs",
            "requeue",
            "--sequence",
            "2",
            "--status",
            "cancelled",
        ],
    ));
    assert!(
        out.starts_with("requeued 1 cancelled jobs of sequence 2:"),
        "{out}"
    );
    assert_eq!(
        statuses(&fx.url, &[job(2, 0, 1), job(1, 0, 1)]).await,
        [JobStatus::Ready, JobStatus::Dead]
    );
}

#[tokio::test]
async fn requeue_by_sequence_refuses_leased_jobs_and_changes_nothing() {
    let fx = sqlite_fixture().await;
    let before = statuses(&fx.url, &all_jobs()).await;
    let out = on_store(
        &fx.url,
        &["jobs", "requeue", "--sequence", "2", "--status", "leased"],
    );
    let stderr = failed_with(&out, 1);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("only dead or cancelled jobs are requeued by sequence, not leased ones"),
        "{stderr}"
    );
    assert_eq!(statuses(&fx.url, &all_jobs()).await, before);
}

#[tokio::test]
async fn requeue_by_sequence_of_an_unknown_sequence_is_an_error() {
    let fx = sqlite_fixture().await;
    let out = on_store(
        &fx.url,
        &["jobs", "requeue", "--sequence", "9", "--status", "dead"],
    );
    let stderr = failed_with(&out, 1);
    assert!(stderr.contains("unknown sequence 9"), "{stderr}");
}

#[tokio::test]
async fn requeue_refuses_a_job_and_a_sequence_together_and_changes_nothing() {
    let fx = sqlite_fixture().await;
    let before = statuses(&fx.url, &all_jobs()).await;
    let out = on_store(
        &fx.url,
        &[
            "jobs",
            "requeue",
            "s1-l0-i1",
            "--sequence",
            "1",
            "--status",
            "dead",
        ],
    );
    let stderr = failed_with(&out, 2);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    assert_eq!(statuses(&fx.url, &all_jobs()).await, before);
}

#[tokio::test]
async fn requeue_needs_a_job_or_a_sequence() {
    let fx = sqlite_fixture().await;
    let stderr = failed_with(&on_store(&fx.url, &["jobs", "requeue"]), 2);
    assert!(stderr.contains("required"), "{stderr}");
}

#[tokio::test]
async fn requeue_by_sequence_needs_a_status() {
    let fx = sqlite_fixture().await;
    let out = on_store(&fx.url, &["jobs", "requeue", "--sequence", "1"]);
    let stderr = failed_with(&out, 2);
    assert!(stderr.contains("--status"), "{stderr}");
    assert_eq!(statuses(&fx.url, &[job(1, 0, 1)]).await, [JobStatus::Dead]);
}

#[tokio::test]
async fn requeue_of_one_job_still_works() {
    let fx = sqlite_fixture().await;
    let out = succeeded(&on_store(&fx.url, &["jobs", "requeue", "s1-l0-i2"]));
    assert_eq!(out.trim(), "requeued s1-l0-i2: now ready");
    assert_eq!(
        statuses(&fx.url, &[job(1, 0, 1), job(1, 0, 2)]).await,
        [JobStatus::Dead, JobStatus::Ready]
    );
}

#[cfg_attr(
    not(sheaf_postgres),
    ignore = "needs SHEAF_TEST_POSTGRES_URL (PostgreSQL)"
)]
#[tokio::test]
async fn requeue_by_sequence_on_postgres_revives_every_dead_job_and_refuses_leased_ones() {
    use sqlx::{Connection, Executor};
    let (admin, server) = crate::common::postgres_server();
    let name = format!("sheaf_ops_{}_{}", std::process::id(), rand::random::<u32>());
    let mut conn = sqlx::PgConnection::connect(&admin).await.expect("postgres");
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create database");
    let url = format!("{server}/{name}");
    populate(&url).await;

    let refused = on_store(
        &url,
        &["jobs", "requeue", "--sequence", "2", "--status", "leased"],
    );
    failed_with(&refused, 1);
    let out = succeeded(&on_store(
        &url,
        &["jobs", "requeue", "--sequence", "1", "--status", "dead"],
    ));
    assert!(
        out.starts_with("requeued 2 dead jobs of sequence 1:"),
        "{out}"
    );
    use JobStatus::*;
    assert_eq!(
        statuses(&url, &all_jobs()).await,
        [Proved, Ready, Ready, Waiting, Leased, Cancelled, Waiting, Proved]
    );
    let provers = succeeded(&on_store(&url, &["provers", "list"]));
    assert_eq!(
        row(&provers, "alice")[1..5],
        ["yes", "0", "2", &(2 * UNITS).to_string()]
    );
    conn.execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
        .await
        .expect("drop database");
}

// ---- provers list ----

#[tokio::test]
async fn provers_list_shows_leases_proofs_work_and_last_seen_of_each_prover() {
    let fx = sqlite_fixture().await;
    let out = succeeded(&on_store(&fx.url, &["provers", "list"]));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("PROVER"), "{out}");
    let names: Vec<&str> = lines[1..lines.len() - 1]
        .iter()
        .map(|line| line.split_whitespace().next().unwrap())
        .collect();
    // bob's leases expired unproved: nothing of his is left in the store.
    assert_eq!(names, ["alice", "carol", IDLE], "{out}");
    let alice = row(&out, "alice");
    assert_eq!(alice[1..5], ["yes", "0", "2", &(2 * UNITS).to_string()]);
    assert!(alice.ends_with(&["ago", "-"]), "{out}");
    // Refused submissions, most frequent reason first.
    assert!(
        lines[1].contains("  3 (invalid_proof 2, stale_lease 1)  "),
        "{out}"
    );
    let carol = row(&out, "carol");
    assert_eq!(carol[1..6], ["no", "1", "0", "0", "0"]);
    assert!(carol.ends_with(&["ago", "-"]), "{out}");
    assert_eq!(
        row(&out, IDLE)[1..],
        ["yes", "0", "0", "0", "0", "never", "-"]
    );
    assert_eq!(
        lines.last().unwrap(),
        &"3 provers; membership not shown: pass --chain URL (or SHEAF_CHAIN)"
    );
    // Every column starts where its header does, the long name included.
    for header in ["REGISTERED", "REJECTED", "LAST SEEN", "MEMBERSHIP"] {
        let at = lines[0].find(header).unwrap();
        for line in &lines[1..lines.len() - 1] {
            assert_eq!(&line[at - 2..at], "  ", "{header} out of line:\n{out}");
            assert_ne!(&line[at..at + 1], " ", "{header} out of line:\n{out}");
        }
    }
    for header in ["LEASES", "PROVED", "WORK UNITS"] {
        // Numbers end where their header does.
        let end = lines[0].find(header).unwrap() + header.len();
        for line in &lines[1..lines.len() - 1] {
            assert_ne!(&line[end - 1..end], " ", "{header} out of line:\n{out}");
            assert_eq!(&line[end..end + 2], "  ", "{header} out of line:\n{out}");
        }
    }
}

// ---- proof export ----

/// `sheaf proof export --sequence SEQUENCE --out FILE` on the store at `url`.
fn export_proof(url: &str, sequence: u64, file: &Path) -> Output {
    let sequence = sequence.to_string();
    on_store(
        url,
        &[
            "proof",
            "export",
            "--sequence",
            &sequence,
            "--out",
            file.to_str().unwrap(),
        ],
    )
}

#[tokio::test]
async fn proof_export_writes_the_stored_root_proof() {
    let fx = sqlite_fixture().await;
    let file = fx.path().join("root.proof");
    let out = succeeded(&export_proof(&fx.url, 3, &file));
    assert!(out.contains("wrote the root proof of sequence 3"), "{out}");
    assert_eq!(std::fs::read(&file).unwrap(), fx.root_proof);
}

#[tokio::test]
async fn proof_export_of_an_unproved_sequence_is_an_error_and_writes_nothing() {
    let fx = sqlite_fixture().await;
    let file = fx.path().join("root.proof");
    let out = export_proof(&fx.url, 1, &file);
    let stderr = failed_with(&out, 1);
    assert!(
        stderr.contains("sequence 1 is not proved yet (its root s1-l1-i0 has no proof"),
        "{stderr}"
    );
    assert!(!file.exists());
}

#[tokio::test]
async fn proof_export_of_an_unknown_sequence_is_an_error() {
    let fx = sqlite_fixture().await;
    let file = fx.path().join("root.proof");
    let out = export_proof(&fx.url, 7, &file);
    let stderr = failed_with(&out, 1);
    assert!(stderr.contains("unknown sequence 7"), "{stderr}");
    assert!(!file.exists());
}

#[tokio::test]
async fn proof_export_refuses_to_overwrite_a_file() {
    let fx = sqlite_fixture().await;
    let file = fx.path().join("root.proof");
    std::fs::write(&file, "keep me").unwrap();
    let out = export_proof(&fx.url, 3, &file);
    let stderr = failed_with(&out, 1);
    assert!(
        stderr.contains(&format!(
            "writing {}: the file exists; refusing to overwrite it",
            file.display()
        )),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}

// ---- key show ----

#[test]
fn key_show_prints_a_prover_keys_public_parts_and_never_its_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("alice.key");
    let made = sheaf()
        .args(["keygen", "--name", "alice", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    let made = succeeded(&made);
    let public_key = made
        .lines()
        .find_map(|l| l.strip_prefix("public key: "))
        .unwrap();
    let worker_pk = made
        .lines()
        .find_map(|l| l.strip_prefix("worker_pk:  "))
        .unwrap();

    let output = sheaf()
        .args(["key", "show", "--name", "alice"])
        .arg(&key)
        .output()
        .unwrap();
    let out = succeeded(&output);
    assert!(out.contains("prover key"), "{out}");
    assert!(
        out.contains(&format!("public key      {public_key}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("chain address   {public_key}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("worker_pk       {worker_pk}")),
        "{out}"
    );
    assert!(out.contains("[[prover]]\nname = \"alice\""), "{out}");

    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&key).unwrap()).unwrap();
    let stderr = text(&output.stderr);
    for secret in ["signing_key", "worker_secret"] {
        let secret = file[secret].as_str().unwrap();
        assert_eq!(secret.len(), 64);
        assert!(!out.contains(secret), "secret in the output:\n{out}");
        assert!(!stderr.contains(secret), "secret in the errors:\n{stderr}");
    }
}

#[test]
fn key_show_of_a_garbage_file_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = private_file(dir.path(), "garbage.key", b"\x00\x9f not a key at all");
    let output = sheaf()
        .args(["key", "show"])
        .arg(&garbage)
        .output()
        .unwrap();
    let stderr = failed_with(&output, 1);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("{} is not a Sheaf key file", garbage.display())),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn key_show_of_a_truncated_final_key_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let truncated = private_file(dir.path(), "final.key", b"SHEAFKEY\x01\x00");
    let output = sheaf()
        .args(["key", "show"])
        .arg(&truncated)
        .output()
        .unwrap();
    let stderr = failed_with(&output, 1);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("is not a usable final key"), "{stderr}");
}

#[test]
fn key_show_of_a_missing_file_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.key");
    let output = sheaf()
        .args(["key", "show"])
        .arg(&missing)
        .output()
        .unwrap();
    let stderr = failed_with(&output, 1);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
    assert!(stderr.contains("No such file or directory"), "{stderr}");
}

/// A file readable by its owner only (a key file's mode, so reading it warns of nothing).
fn private_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

// ---- a real network ----

/// A devnet proves and settles one sequence; its root proof, exported from the store, verifies
/// with its final key; and its chain, restarted on its data, shows the sequence finalized and
/// the prover an active member.
#[test]
fn a_devnet_root_proof_exports_and_verifies_and_its_chain_shows_it_settled() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("devnet");
    let output = sheaf()
        .args(["devnet", "--workload", "work", "--provers", "1"])
        .args([
            "--sequences",
            "1",
            "--leaves",
            "1",
            "--threads",
            "1",
            "--json",
        ])
        .arg("--data-dir")
        .arg(&data)
        .output()
        .expect("sheaf devnet runs");
    succeeded(&output);
    let db = format!(
        "sqlite://{}",
        data.join("store")
            .join(sheaf_store::SQLITE_FILE_NAME)
            .display()
    );
    let final_key = data.join("final.key");
    let proof = dir.path().join("root.proof");

    succeeded(&on_store(
        &db,
        &[
            "proof",
            "export",
            "--sequence",
            "1",
            "--out",
            proof.to_str().unwrap(),
        ],
    ));
    let verified = sheaf()
        .args(["verify", "--key"])
        .arg(&final_key)
        .arg("--proof")
        .arg(&proof)
        .output()
        .unwrap();
    assert!(succeeded(&verified).starts_with("valid: 1 leaves"));

    let shown = succeeded(
        &sheaf()
            .args(["key", "show"])
            .arg(&final_key)
            .output()
            .unwrap(),
    );
    assert!(shown.contains("final verifier key"), "{shown}");
    assert!(shown.contains("whitelist root  "), "{shown}");

    let port = free_port();
    let chain_url = format!("http://127.0.0.1:{port}");
    let mut chain = Process::spawn(
        "chain",
        sheaf()
            .args(["chain", "--manual-blocks", "--admin-token", "operator-test"])
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--key")
            .arg(&final_key)
            .arg("--data")
            .arg(data.join("chain")),
        dir.path(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        chain.assert_running(dir.path());
        let output = on_store(&db, &["status", "--chain", &chain_url]);
        if output.status.success() {
            break text(&output.stdout);
        }
        assert!(
            Instant::now() < deadline,
            "chain not answering: {}",
            text(&output.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // SEQUENCE JOBS WAITING READY LEASED PROVED DEAD CANCELLED ROOT CHAIN
    let settled = row(&status, "1");
    assert_eq!(settled[1], settled[5], "every job proved: {status}");
    assert_eq!(settled[2..5], ["0", "0", "0"], "{status}");
    assert_eq!(
        settled[6..11],
        ["0", "0", "proved", "finalized", "in"],
        "{status}"
    );
    assert!(
        status.contains(&format!("chain {chain_url} at height")),
        "{status}"
    );

    let provers = succeeded(&on_store(&db, &["provers", "list", "--chain", &chain_url]));
    // Admitted from the chain's registry, the prover is named after its membership.
    let lines: Vec<&str> = provers.lines().collect();
    assert_eq!(lines.len(), 3, "one prover: {provers}");
    let prover: Vec<&str> = lines[1].split_whitespace().collect();
    assert!(prover[0].starts_with("member-"), "{provers}");
    assert_eq!(prover[1..4], ["yes", "0", settled[1]], "{provers}");
    assert_eq!(prover.last(), Some(&"active"), "{provers}");
    chain.kill();
}
