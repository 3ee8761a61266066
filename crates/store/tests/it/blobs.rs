//! Proof blobs in an object store: a local directory, and a real S3-compatible server
//! (`s3s-fs`'s, built as this crate's `s3_server` example) that the tests start as a process of
//! its own, and kill in the middle of an upload.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sheaf_store::{JobId, JobStatus, ProofBlobs, SequenceId, Store, StoreError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

use crate::harness::{
    each_engine, lease_at, plan, proof_for, prove_next, reward, status_of, submit, T0,
};

/// A store on `db` with its blobs in a fresh directory.
async fn with_directory(store: Store) -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let blobs = ProofBlobs::open(&dir.path().display().to_string()).unwrap();
    (store.with_proof_blobs(blobs), dir)
}

/// The files in a directory store's folder `folder` (`proofs`, `segments`).
fn files_in(dir: &Path, folder: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join(folder))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The one segment file of a directory store.
fn only_segment(dir: &Path) -> PathBuf {
    let names = files_in(dir, "segments");
    assert_eq!(names.len(), 1, "one segment per opened store: {names:?}");
    dir.join("segments").join(&names[0])
}

#[tokio::test]
async fn blobs_are_appended_to_a_segment_file_and_the_top_proof_stays_in_its_row() {
    each_engine(|db| async move {
        let (store, dir) = with_directory(db.connect().await).await;
        plan(&store, 1, 2, 2).await;
        let (first, _) = prove_next(&store, "p").await;
        assert_eq!(
            std::fs::read(only_segment(dir.path())).unwrap(),
            proof_for(first.job),
            "the leaf's blob is the segment's first bytes"
        );
        let (second, _) = prove_next(&store, "p").await;
        assert_eq!(
            std::fs::read(only_segment(dir.path())).unwrap(),
            [proof_for(first.job), proof_for(second.job)].concat(),
            "the next blob follows it"
        );
        assert!(
            files_in(dir.path(), "proofs").is_empty(),
            "no file per blob"
        );
        let root = JobId::new(SequenceId(1), 1, 0);
        let children = store.child_proofs(root).await.unwrap();
        assert_eq!(
            children,
            vec![
                (first.job, proof_for(first.job)),
                (second.job, proof_for(second.job)),
            ]
        );
        let (_, top) = prove_next(&store, "p").await;
        assert!(top.sequence_proved);
        // The top proof is read without the proof store (`sheaf proof` and the chain's
        // sender do); the others need the proof store.
        let plain = db.connect().await;
        assert_eq!(plain.proof_of(root).await.unwrap(), Some(proof_for(root)));
        assert!(matches!(
            plain.proof_of(first.job).await,
            Err(StoreError::Blobs(_))
        ));
        assert_eq!(
            store.proof_of(first.job).await.unwrap(),
            Some(proof_for(first.job))
        );
        let stored = store.stored_proofs().await.unwrap();
        assert_eq!(stored.count, 3);
        assert_eq!(
            stored.bytes,
            [first.job, second.job, root]
                .iter()
                .map(|job| proof_for(*job).len() as i64)
                .sum::<i64>()
        );
    })
    .await;
}

#[tokio::test]
async fn a_damaged_segment_gives_a_corrupt_error_not_a_wrong_proof() {
    each_engine(|db| async move {
        let (store, dir) = with_directory(db.connect().await).await;
        plan(&store, 1, 2, 2).await;
        let (first, _) = prove_next(&store, "p").await;
        let segment = only_segment(dir.path());
        let mut bytes = std::fs::read(&segment).unwrap();
        bytes[10] ^= 1;
        std::fs::write(&segment, &bytes).unwrap();
        assert!(matches!(
            store.proof_of(first.job).await,
            Err(StoreError::Corrupt(_))
        ));
        std::fs::write(&segment, &bytes[..bytes.len() - 1]).unwrap();
        assert!(
            matches!(store.proof_of(first.job).await, Err(StoreError::Blobs(e)) if e.contains("segment")),
            "a segment cut short"
        );
        std::fs::remove_file(&segment).unwrap();
        assert!(matches!(
            store.proof_of(first.job).await,
            Err(StoreError::Blobs(_))
        ));
    })
    .await;
}

#[tokio::test]
async fn collecting_a_settled_sequence_deletes_all_but_its_top_proof_and_closes_its_claims() {
    each_engine(|db| async move {
        let dir = tempfile::tempdir().unwrap();
        // A segment per blob, so that the sweep has whole segments to delete.
        let blobs = ProofBlobs::open_directory(dir.path(), 1).unwrap();
        let store = db.connect().await.with_proof_blobs(blobs);
        for sequence in [1, 2] {
            plan(&store, sequence, 2, 2).await;
            for _ in 0..3 {
                prove_next(&store, "p").await;
            }
        }
        store
            .mark_sequences_settled(SequenceId(1), SequenceId(3), T0)
            .await
            .unwrap();
        let worker = reward("p").worker_pk;
        assert_eq!(
            store
                .claimable_rewards(&worker, None, 100)
                .await
                .unwrap()
                .len(),
            6
        );
        assert_eq!(
            files_in(dir.path(), "segments").len(),
            6,
            "a segment per blob, the roots' included"
        );
        let before = files_in(dir.path(), "segments");
        // Settled at T0: a window ending at T0 collects nothing, one just past it both.
        let later = sheaf_types::clock::now_ms() + 60_000;
        let none = store.collect_proofs(T0, 0, T0).await.unwrap();
        assert_eq!((none.sequences, none.proofs, none.swept), (0, 0, 0));
        let collected = store.collect_proofs(T0 + 1, later, T0 + 1).await.unwrap();
        assert_eq!((collected.sequences, collected.proofs), (2, 4));
        assert_eq!(
            collected.swept, 5,
            "the leaves' segments and the first root's (its proof is in its row); not the open one"
        );
        let left = files_in(dir.path(), "segments");
        assert_eq!(left.len(), 1);
        assert!(before.contains(&left[0]));
        let root = JobId::new(SequenceId(1), 1, 0);
        assert!(matches!(
            store.child_proofs(root).await,
            Err(StoreError::ProofCollected(_))
        ));
        assert_eq!(store.proof_of(root).await.unwrap(), Some(proof_for(root)));
        assert!(store
            .claimable_rewards(&worker, None, 100)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(store.stored_proofs().await.unwrap().count, 2);
        // A second pass finds nothing more.
        let again = store.collect_proofs(T0 + 1, later, T0 + 1).await.unwrap();
        assert_eq!((again.sequences, again.proofs, again.swept), (0, 0, 0));
    })
    .await;
}

#[tokio::test]
async fn the_sweep_deletes_a_sealed_segment_no_row_names_only_once_past_its_grace() {
    each_engine(|db| async move {
        let dir = tempfile::tempdir().unwrap();
        let store = db
            .connect()
            .await
            .with_proof_blobs(ProofBlobs::open_directory(dir.path(), 1).unwrap());
        plan(&store, 1, 2, 2).await;
        let (named, _) = prove_next(&store, "p").await;
        // Another process's open segment, which no row names yet: held under a shared lock,
        // as an appending process holds its own.
        let other = dir.path().join("segments").join("00000000000000cd.seg");
        std::fs::write(&other, b"appending").unwrap();
        let held = std::fs::File::open(&other).unwrap();
        held.lock_shared().unwrap();
        // A segment no process holds: a put whose transaction never committed, then a crash.
        let unnamed = dir.path().join("segments").join("00000000000000ab.seg");
        std::fs::write(&unnamed, b"orphan").unwrap();
        assert_eq!(files_in(dir.path(), "segments").len(), 3);
        let now = sheaf_types::clock::now_ms();
        let young = store.collect_proofs(0, now - 60_000, now).await.unwrap();
        assert_eq!(young.swept, 0, "written less than the grace ago");
        let old = store.collect_proofs(0, now + 60_000, now).await.unwrap();
        assert_eq!(old.swept, 1, "neither the named one nor the open one");
        assert!(!unnamed.exists());
        assert!(other.exists());
        assert_eq!(files_in(dir.path(), "segments").len(), 2);
        drop(held);
        let closed = store.collect_proofs(0, now + 60_000, now).await.unwrap();
        assert_eq!(closed.swept, 1, "once no process holds it");
        assert!(!other.exists());
        assert_eq!(
            store.proof_of(named.job).await.unwrap(),
            Some(proof_for(named.job))
        );
    })
    .await;
}

#[tokio::test]
async fn the_sweep_deletes_an_object_no_row_names_only_once_past_its_grace() {
    each_engine(|db| async move {
        let (store, dir) = with_directory(db.connect().await).await;
        plan(&store, 1, 2, 2).await;
        prove_next(&store, "p").await;
        // A blob a directory got as a file of its own (before segments) that no row names.
        let unnamed = "ab".repeat(32);
        std::fs::write(dir.path().join("proofs").join(&unnamed), b"orphan").unwrap();
        let now = sheaf_types::clock::now_ms();
        let young = store.collect_proofs(0, now - 60_000, now).await.unwrap();
        assert_eq!(young.swept, 0, "written less than the grace ago");
        let old = store.collect_proofs(0, now + 60_000, now).await.unwrap();
        assert_eq!(old.swept, 1);
        assert!(files_in(dir.path(), "proofs").is_empty());
    })
    .await;
}

/// The hashes of the blobs `blobs` holds.
async fn hashes(blobs: &ProofBlobs) -> Vec<String> {
    blobs
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.hash)
        .collect()
}

/// The store's `s3_server` example (s3s-fs's server), which `cargo test` builds beside this
/// binary; `SHEAF_TEST_S3=required` (CI) makes its absence fail.
fn s3_server() -> Option<PathBuf> {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/it-<hash> → target/<profile>/examples/s3_server
    let server = exe.parent()?.parent()?.join("examples").join("s3_server");
    if server.is_file() {
        return Some(server);
    }
    assert_ne!(
        std::env::var("SHEAF_TEST_S3").as_deref(),
        Ok("required"),
        "SHEAF_TEST_S3=required but {} is not built (cargo build -p sheaf-store --example s3_server)",
        server.display()
    );
    eprintln!(
        "SKIPPED: {} is not built (`cargo test --workspace` builds it; alone: cargo build -p \
         sheaf-store --example s3_server); the S3 proof store is not tested",
        server.display()
    );
    None
}

/// An S3-compatible server of our own: s3s-fs on a data folder, with one bucket.
struct S3Server {
    bin: PathBuf,
    root: tempfile::TempDir,
    port: u16,
    child: Child,
}

const BUCKET: &str = "sheaf-proofs";
const ACCESS_KEY: &str = "sheaf-test";
const SECRET_KEY: &str = "sheaf-test-secret";

impl S3Server {
    async fn start(bin: PathBuf) -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(BUCKET)).unwrap();
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let child = spawn_s3s(&bin, root.path(), port).await;
        S3Server {
            bin,
            root,
            port,
            child,
        }
    }

    /// Starts it again on the same data and port after it was killed.
    async fn restart(&mut self) {
        let _ = self.child.wait().await;
        self.child = spawn_s3s(&self.bin, self.root.path(), self.port).await;
    }

    /// The store's blobs in this server's bucket under `prefix`, reached through `port`.
    fn blobs(&self, port: u16, prefix: &str) -> ProofBlobs {
        let endpoint = format!("http://127.0.0.1:{port}");
        ProofBlobs::open_with(
            &format!("s3://{BUCKET}/{prefix}"),
            &[
                ("aws_endpoint", &endpoint),
                ("aws_access_key_id", ACCESS_KEY),
                ("aws_secret_access_key", SECRET_KEY),
                ("aws_region", "us-east-1"),
                ("aws_allow_http", "true"),
                ("aws_virtual_hosted_style_request", "false"),
            ],
        )
        .unwrap()
    }
}

async fn spawn_s3s(bin: &Path, root: &Path, port: u16) -> Child {
    let child = Command::new(bin)
        .arg(root)
        .args([&port.to_string(), ACCESS_KEY, SECRET_KEY])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the S3 server");
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the S3 server did not listen on port {port}");
}

#[tokio::test]
async fn proofs_round_trip_through_a_real_s3_server_and_are_collected_there() {
    let Some(bin) = s3_server() else { return };
    let server = S3Server::start(bin).await;
    each_engine(move |db| {
        let blobs = server.blobs(server.port, db.engine);
        async move {
            let store = db.connect().await.with_proof_blobs(blobs.clone());
            plan(&store, 1, 2, 2).await;
            let (leaf, outcome) = prove_next(&store, "p").await;
            let listed = hashes(&blobs).await;
            assert!(listed.contains(&outcome.proof_hash), "{listed:?}");
            prove_next(&store, "p").await;
            let root = JobId::new(SequenceId(1), 1, 0);
            let children = store.child_proofs(root).await.unwrap();
            assert_eq!(children[0], (leaf.job, proof_for(leaf.job)));
            prove_next(&store, "p").await;
            store
                .mark_sequences_settled(SequenceId(1), SequenceId(2), T0)
                .await
                .unwrap();
            let collected = store.collect_proofs(T0 + 1, 0, T0 + 1).await.unwrap();
            assert_eq!(collected.proofs, 2);
            let left = hashes(&blobs).await;
            assert!(!left.contains(&outcome.proof_hash), "{left:?}");
        }
    })
    .await;
}

/// Forwards connections to `to`; once `after` bytes of requests went through, kills `server`
/// and cuts the connection: the server goes away in the middle of an upload.
async fn cutting_proxy(to: u16, after: usize, server: Arc<tokio::sync::Mutex<Option<u32>>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let cut = Arc::new(AtomicBool::new(false));
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let (server, cut) = (server.clone(), cut.clone());
            tokio::spawn(async move {
                let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", to)).await else {
                    return;
                };
                let (mut client_read, mut client_write) = client.split();
                let (mut up_read, mut up_write) = upstream.split();
                let requests = async {
                    let mut sent = 0;
                    let mut chunk = vec![0u8; 16 * 1024];
                    loop {
                        let n = client_read.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        if up_write.write_all(&chunk[..n]).await.is_err() {
                            return;
                        }
                        sent += n;
                        if sent > after && !cut.swap(true, Ordering::SeqCst) {
                            if let Some(pid) = server.lock().await.take() {
                                let _ = std::process::Command::new("kill")
                                    .args(["-KILL", &pid.to_string()])
                                    .status();
                            }
                            return;
                        }
                    }
                };
                let answers = tokio::io::copy(&mut up_read, &mut client_write);
                tokio::select! {
                    () = requests => {}
                    _ = answers => {}
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn an_s3_server_gone_mid_upload_leaves_nothing_referenced() {
    let Some(bin) = s3_server() else { return };
    let mut server = S3Server::start(bin).await;
    let pid = Arc::new(tokio::sync::Mutex::new(server.child.id()));
    let proxy = cutting_proxy(server.port, 256 * 1024, pid.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}/sheaf.db", dir.path().display()))
        .await
        .unwrap()
        .with_proof_blobs(server.blobs(proxy, "cut"));
    plan(&store, 1, 2, 2).await;
    let lease = lease_at(&store, "p", T0).await;
    // A proof of several MiB: the server dies a quarter MiB into its upload.
    let proof: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let refused = store
        .submit_proof(lease.job, lease.token, "p", &proof, reward("p"), T0, None)
        .await;
    assert!(matches!(refused, Err(StoreError::Blobs(_))), "{refused:?}");
    assert_eq!(status_of(&store, lease.job).await, JobStatus::Leased);
    assert_eq!(store.proof_of(lease.job).await.unwrap(), None);
    assert_eq!(store.stored_proofs().await.unwrap().count, 0);
    // Back up: the same submission goes through whole.
    server.restart().await;
    *pid.lock().await = None;
    store
        .submit_proof(lease.job, lease.token, "p", &proof, reward("p"), T0, None)
        .await
        .expect("the resubmission once the server is back");
    assert_eq!(store.proof_of(lease.job).await.unwrap(), Some(proof));
    submit(&store, &lease_at(&store, "p", T0).await).await;
}
