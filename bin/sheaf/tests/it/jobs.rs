//! `sheaf jobs` against a SQLite store prepared through the store's API: listing, showing,
//! requeueing, cancelling, and the errors an operator can run into.

use crate::common::{succeeded, text};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sheaf_store::{
    JobCircuit, JobId, JobInputs, JobStatus, NewJob, NewSequence, RewardEntry, SequenceId, Store,
};
use sheaf_types::clock::now_ms;

const TTL_MS: i64 = 30_000;
const PROVE_MS: i64 = 1_234;

/// A store with sequence 1 (two leaves under one root): `s1-l0-i0` proved by alice,
/// `s1-l0-i1` dead after bob's lease expired, the root waiting.
struct Fixture {
    _dir: tempfile::TempDir,
    file: PathBuf,
    url: String,
    proof: Vec<u8>,
}

fn leaf(index: u64) -> JobId {
    JobId::new(SequenceId(1), 0, index)
}

const ROOT: JobId = JobId {
    sequence: SequenceId(1),
    level: 1,
    index: 0,
};

fn leaf_circuit() -> JobCircuit {
    JobCircuit::Leaf {
        kind: "work".into(),
    }
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(sheaf_store::SQLITE_FILE_NAME);
    let url = format!("sqlite://{}", file.display());
    let store = Store::connect(&url).await.unwrap();
    let jobs = vec![
        NewJob {
            id: leaf(0),
            circuit: leaf_circuit(),
            inputs: JobInputs::Work { seed: 1, index: 0 },
            children: vec![],
        },
        NewJob {
            id: leaf(1),
            circuit: leaf_circuit(),
            inputs: JobInputs::Work { seed: 1, index: 1 },
            children: vec![],
        },
        NewJob {
            id: ROOT,
            circuit: JobCircuit::LeafNode {
                kind: "work".into(),
            },
            inputs: JobInputs::Aggregate,
            children: vec![leaf(0), leaf(1)],
        },
    ];
    let now = now_ms();
    let sequence = NewSequence {
        id: SequenceId(1),
        leaves: 2,
        created_ms: now,
    };
    store.insert_sequence(sequence, &jobs).await.unwrap();
    let proof = b"proof of s1-l0-i0".to_vec();
    let lease = store
        .lease_next_job("alice", now, TTL_MS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lease.job, leaf(0));
    let reward = RewardEntry {
        worker_pk: [1; 32],
        work_units: 1,
    };
    store
        .submit_proof(
            lease.job,
            lease.token,
            "alice",
            &proof,
            reward,
            now,
            Some(PROVE_MS),
        )
        .await
        .unwrap();
    let lease = store
        .lease_next_job("bob", now, TTL_MS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lease.job, leaf(1));
    let expired = store.requeue_expired(lease.expires_ms, 1).await.unwrap();
    assert_eq!(expired.dead, vec![leaf(1)]);
    store.close().await;
    Fixture {
        _dir: dir,
        file,
        url,
        proof,
    }
}

fn sheaf(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sheaf"))
        .args(args)
        .env("SHEAF_DB", url)
        .output()
        .expect("sheaf runs")
}

async fn status_of(file: &Path, job: JobId) -> JobStatus {
    let store = Store::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    let status = store.get_job(job).await.unwrap().unwrap().status;
    store.close().await;
    status
}

#[tokio::test]
async fn list_shows_every_job_in_tree_order() {
    let fx = fixture().await;
    let out = succeeded(&sheaf(&fx.url, &["jobs", "list"]));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("JOB"), "{out}");
    let rows: Vec<Vec<&str>> = lines[1..4]
        .iter()
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows.iter().map(|r| (r[0], r[1])).collect::<Vec<_>>(),
        vec![
            ("s1-l0-i0", "proved"),
            ("s1-l0-i1", "dead"),
            ("s1-l1-i0", "waiting")
        ],
        "{out}"
    );
    let hash = sheaf_store::proof_hash(&fx.proof);
    assert!(rows[0].contains(&&hash[..12]), "{out}");
    assert_eq!(lines[4], "3 jobs");
}

#[tokio::test]
async fn list_filters_by_sequence_and_status_as_json() {
    let fx = fixture().await;
    let out = succeeded(&sheaf(
        &fx.url,
        &[
            "jobs",
            "list",
            "--status",
            "dead",
            "--sequence",
            "1",
            "--json",
        ],
    ));
    let jobs: serde_json::Value = serde_json::from_str(&out).unwrap();
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{out}");
    assert_eq!(jobs[0]["id"], "s1-l0-i1");
    assert_eq!(jobs[0]["status"], "dead");
    assert_eq!(jobs[0]["attempts"], 1);
    assert_eq!(jobs[0]["lease_token"], 1);

    let out = succeeded(&sheaf(
        &fx.url,
        &["jobs", "list", "--sequence", "2", "--json"],
    ));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap(),
        serde_json::json!([])
    );
}

#[tokio::test]
async fn show_prints_the_lease_the_proof_and_the_tree_links() {
    let fx = fixture().await;
    let out = succeeded(&sheaf(&fx.url, &["jobs", "show", "s1-l0-i0"]));
    let hash = sheaf_store::proof_hash(&fx.proof);
    for expected in [
        "status         proved",
        "parent         s1-l1-i0",
        "attempts       1",
        "lease token    1",
        "proved by      alice",
        &format!("proof sha256   {hash}"),
        &format!("proving time   {PROVE_MS} ms"),
        "inputs         34 bytes",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in\n{out}");
    }

    let out = succeeded(&sheaf(&fx.url, &["jobs", "show", "s1-l1-i0", "--json"]));
    let root: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(root["status"], "waiting");
    assert_eq!(
        root["children"],
        serde_json::json!(["s1-l0-i0", "s1-l0-i1"])
    );
    assert_eq!(root["parent"], serde_json::Value::Null);

    let out = succeeded(&sheaf(&fx.url, &["jobs", "show", "s1-l0-i0", "--json"]));
    let job: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        job["inputs_hex"],
        "7b226b696e64223a22776f726b222c2273656564223a312c22696e646578223a307d"
    );
    assert_eq!(job["prove_ms"], PROVE_MS);
    assert!(job["leased_ms"].as_i64().is_some());
}

#[tokio::test]
async fn requeue_revives_a_dead_job() {
    let fx = fixture().await;
    let out = succeeded(&sheaf(&fx.url, &["jobs", "requeue", "s1-l0-i1"]));
    assert_eq!(out.trim(), "requeued s1-l0-i1: now ready");
    assert_eq!(status_of(&fx.file, leaf(1)).await, JobStatus::Ready);
}

#[tokio::test]
async fn cancel_withdraws_a_job() {
    let fx = fixture().await;
    let out = succeeded(&sheaf(&fx.url, &["jobs", "cancel", "s1-l1-i0"]));
    assert_eq!(out.trim(), "cancelled s1-l1-i0");
    assert_eq!(status_of(&fx.file, ROOT).await, JobStatus::Cancelled);
}

#[tokio::test]
async fn an_unknown_job_is_an_error_naming_it() {
    let fx = fixture().await;
    for action in ["show", "requeue", "cancel"] {
        let out = sheaf(&fx.url, &["jobs", action, "s9-l0-i0"]);
        assert_eq!(out.status.code(), Some(1), "{action}");
        assert!(
            text(&out.stderr).contains("unknown job s9-l0-i0"),
            "{action}: {}",
            text(&out.stderr)
        );
    }
}

#[tokio::test]
async fn a_malformed_job_id_is_a_usage_error() {
    let fx = fixture().await;
    let out = sheaf(&fx.url, &["jobs", "show", "job-1"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("invalid job id \"job-1\""), "{stderr}");
}

#[tokio::test]
async fn a_refused_transition_is_an_error() {
    let fx = fixture().await;
    let out = sheaf(&fx.url, &["jobs", "requeue", "s1-l0-i0"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot requeue job s1-l0-i0 in state proved"),
        "{stderr}"
    );
    assert_eq!(status_of(&fx.file, leaf(0)).await, JobStatus::Proved);
}

#[test]
fn a_missing_sqlite_store_is_an_error_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.db");
    let url = format!("sqlite://{}", missing.display());
    let out = sheaf(&url, &["jobs", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no SQLite store at"),
        "{}",
        text(&out.stderr)
    );
    assert!(!missing.exists());
}

#[tokio::test]
async fn the_db_flag_overrides_the_environment() {
    let fx = fixture().await;
    let out = Command::new(env!("CARGO_BIN_EXE_sheaf"))
        .args(["jobs", "list", "--db", &fx.url, "--json"])
        .env("SHEAF_DB", "sqlite:///nonexistent/sheaf.db")
        .output()
        .unwrap();
    let out = succeeded(&out);
    let jobs: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(jobs.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn list_to_a_reader_that_closed_the_pipe_exits_quietly() {
    let fixture = fixture().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sheaf"))
        .args(["jobs", "list"])
        .env("SHEAF_DB", &fixture.url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sheaf runs");
    // `| head -0`: the reader is gone before the first line is written.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status,
        text(&output.stderr)
    );
    assert!(!text(&output.stderr).contains("panicked"));
}
