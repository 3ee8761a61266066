//! The rollup node's faults with real processes: a `sheaf coordinator` running a rollup node on a
//! SQLite file, `sheaf prover`s proving its blocks, and the coordinator killed with SIGKILL while
//! blocks are built, with a block published but unproven, and with blocks half-proven. After
//! each restart: no published block is lost or changed (`GET /v1/rollup/blocks/{n}` before and
//! after), every transaction accepted is in exactly one block, a native replay of the published
//! blocks gives every account the balance and nonce of its last transaction (no balance moves
//! twice), and, where provers run, every job of every block is proved once and each block's root
//! verifies with the rollup set's final key, for that block's statement. And the proving
//! backlog (`--concurrent-blocks`) holds blocks back across a kill until the provers catch up.
//!
//! Tiny blocks (one batch of at most two transfers), one prover thread. Settlement on a chain
//! after a restart is the sender's, tested in `settlement.rs` and the coordinator's tests.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{free_port, rollup_coordinator, sheaf, Process};
use sheaf_circuits::{Digest, FinalKey};
use sheaf_coordinator::rollup::BlockView;
use sheaf_prover::ProverKey;
use sheaf_rollup::demo::DemoRollup;
use sheaf_rollup::producer::BlockProducer;
use sheaf_rollup::{AccountId, BlockHeader, NoteOrigin, RollupState, Transaction, TxId};
use sheaf_store::{JobFilter, JobStatus, Store};

/// Longest any wait may take (the first coordinator may build the rollup's circuits).
const DEADLINE: Duration = Duration::from_secs(600);

/// The node's knobs: blocks of one batch of at most two transfers, batches cut often, a short
/// lease so a killed prover's job goes to the next one soon.
const NODE_ARGS: &[&str] = &[
    "--block-interval-ms",
    "300",
    "--batch-interval-ms",
    "100",
    "--max-txs-per-batch",
    "2",
    "--max-batches-per-block",
    "1",
    "--lease-ttl-ms",
    "3000",
    "--heartbeat-ms",
    "500",
];

/// A rollup under test: its directory (genesis, store, prover key, logs), its demo accounts and
/// where its coordinator listens.
struct Rollup {
    dir: tempfile::TempDir,
    genesis: PathBuf,
    state: RollupState,
    demo: DemoRollup,
    port: u16,
    url: String,
    http: reqwest::Client,
}

impl Rollup {
    fn new() -> Rollup {
        let dir = tempfile::tempdir().expect("tempdir");
        let demo = DemoRollup::new(3, 16, 1_000).expect("demo");
        let genesis = dir.path().join("genesis.json");
        std::fs::write(&genesis, serde_json::to_vec(demo.genesis()).unwrap()).unwrap();
        let key = ProverKey::generate();
        key.write(&dir.path().join("prover.key"), false)
            .expect("key file");
        std::fs::write(
            dir.path().join("provers.toml"),
            key.registry_entry("prover"),
        )
        .expect("provers file");
        let port = free_port();
        Rollup {
            genesis,
            state: demo.state.clone(),
            demo,
            port,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            dir,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn coordinator(&self) -> Process {
        self.coordinator_with(&[])
    }

    /// The coordinator with `extra` flags besides [`NODE_ARGS`].
    fn coordinator_with(&self, extra: &[&str]) -> Process {
        let provers = self.path().join("provers.toml");
        let mut args = NODE_ARGS.to_vec();
        args.extend(["--provers", provers.to_str().unwrap()]);
        args.extend(extra);
        rollup_coordinator(self.path(), self.port, &self.genesis, &args)
    }

    fn prover(&self) -> Process {
        Process::spawn(
            "prover",
            sheaf()
                .arg("prover")
                .args(["--coordinator", &self.url])
                .arg("--key")
                .arg(self.path().join("prover.key"))
                .args(["--threads", "1", "--lease-wait-ms", "1000"]),
            self.path(),
        )
    }

    async fn status(&self) -> Option<serde_json::Value> {
        let response = self
            .http
            .get(format!("{}/v1/rollup/status", self.url))
            .send()
            .await
            .ok()?;
        response.json().await.ok()
    }

    /// The status once `ready` holds of it, the processes running meanwhile.
    async fn status_until(
        &self,
        processes: &mut [&mut Process],
        what: &str,
        ready: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let start = Instant::now();
        loop {
            for process in processes.iter_mut() {
                process.assert_running(self.path());
            }
            if let Some(status) = self.status().await {
                if ready(&status) {
                    return status;
                }
            }
            assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Submit `tx` until the node answers (it may be restarting); the answer's status and body.
    async fn submit(&self, tx: &Transaction, node: &mut Process) -> (u16, String) {
        let start = Instant::now();
        loop {
            node.assert_running(self.path());
            let sent = self
                .http
                .post(format!("{}/v1/rollup/transactions", self.url))
                .body(serde_json::to_vec(tx).unwrap())
                .send()
                .await;
            match sent {
                Ok(answer) if answer.status() != 503 => {
                    let status = answer.status().as_u16();
                    return (status, answer.text().await.unwrap_or_default());
                }
                _ => {
                    assert!(
                        start.elapsed() < DEADLINE,
                        "the node never took a transaction"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Submit `tx` as a client does: an input note it names unauthenticated (made by a
    /// transaction in the mempool) that a published block holds by now is named by its block
    /// and index instead (the origin is not signed: the same transaction). Must be taken.
    async fn submit_as_client(&self, tx: &Transaction, node: &mut Process) -> Transaction {
        let mut tx = tx.clone();
        loop {
            let (status, body) = self.submit(&tx, node).await;
            if status == 200 {
                return tx;
            }
            assert!(
                status == 400 && body.contains("is not an output of a transaction in the mempool"),
                "{status}: {body}"
            );
            let blocks = self.blocks().await;
            for input in &mut tx.body.input_notes {
                if input.origin != NoteOrigin::Unauthenticated {
                    continue;
                }
                let published = blocks.iter().find_map(|b| {
                    let index = b.created_notes.iter().position(|n| *n == input.note)?;
                    Some((b.header.number, index as u32))
                });
                let (block, index) = published.expect("the note is in a published block");
                input.origin = NoteOrigin::Committed { block, index };
            }
        }
    }

    /// Every published block, as the API serves it.
    async fn blocks(&self) -> Vec<BlockView> {
        let tip = self
            .status()
            .await
            .expect("status")
            .get("published_tip")
            .and_then(|t| t.as_i64())
            .unwrap_or(0);
        let mut blocks = Vec::new();
        for number in 1..=tip {
            let block = self
                .http
                .get(format!("{}/v1/rollup/blocks/{number}", self.url))
                .send()
                .await
                .expect("block")
                .json::<BlockView>()
                .await
                .expect("a block view");
            blocks.push(block);
        }
        blocks
    }

    fn store_url(&self) -> String {
        format!("sqlite://{}", self.path().join("sheaf.db").display())
    }
}

/// The published blocks in `before` are in `after`, unchanged (their proof and settlement flags
/// aside, which only move forward).
fn assert_unchanged(before: &[BlockView], after: &[BlockView]) {
    assert!(after.len() >= before.len(), "a published block was lost");
    for (old, new) in before.iter().zip(after) {
        assert_eq!(
            (
                &old.header,
                &old.commitment,
                &old.transactions,
                &old.created_notes,
                &old.spent_nullifiers
            ),
            (
                &new.header,
                &new.commitment,
                &new.transactions,
                &new.created_notes,
                &new.spent_nullifiers
            ),
            "published block {} changed",
            old.header.number
        );
        assert!(!old.proved || new.proved, "a proved block is not any more");
    }
}

/// Every transaction of `txs` is in exactly one published block and nothing else is; a native
/// replay of the blocks from genesis gives their headers, and every account the balance and
/// nonce of its last transaction.
fn assert_replays(rollup: &Rollup, blocks: &[BlockView], txs: &[Transaction]) {
    let by_id: BTreeMap<TxId, &Transaction> = txs.iter().map(|tx| (tx.id(), tx)).collect();
    let mut seen = HashSet::new();
    let mut published: Vec<(BlockHeader, Vec<Transaction>)> = Vec::new();
    for block in blocks {
        let mut block_txs = Vec::new();
        for id in &block.transactions {
            assert!(seen.insert(*id), "{id:?} is in two blocks");
            block_txs.push((*by_id.get(id).expect("a transaction the test sent")).clone());
        }
        published.push((block.header, block_txs));
    }
    assert_eq!(
        seen.len(),
        txs.len(),
        "an accepted transaction is in no block"
    );
    let state = BlockProducer::replay(rollup.state.clone(), published, 2)
        .expect("the published blocks replay natively");
    for account in rollup.state.accounts() {
        let own: Vec<&Transaction> = txs
            .iter()
            .filter(|tx| tx.body.account.id == account.id)
            .collect();
        let expected = own
            .iter()
            .max_by_key(|tx| tx.body.account.nonce)
            .map_or(account.balance, |tx| tx.body.final_balance);
        let now = state.account(account.id).expect("account");
        assert_eq!(now.balance, expected, "balance of {}", account.id);
        assert_eq!(
            now.nonce,
            account.nonce + own.len() as u64,
            "{}",
            account.id
        );
    }
    assert!(state.account(AccountId(4)).is_none());
}

/// Every job of every published block is proved, once (one reward each), and each block's root
/// verifies with the rollup set's final key, for the block's statement.
async fn assert_proved_once(rollup: &Rollup, blocks: &[BlockView]) {
    let key_path = rollup.path().join("rollup.key");
    let export = sheaf()
        .args(["export-key", "--rollup", "--out"])
        .arg(&key_path)
        .output()
        .expect("export-key");
    assert!(export.status.success(), "{export:?}");
    let key = FinalKey::read(&key_path).expect("the rollup's final key");
    let store = Store::connect(&rollup.store_url()).await.expect("store");
    let mut previous = *rollup.state.tip();
    for block in blocks {
        let row = store
            .rollup_block(i64::from(block.header.number))
            .await
            .unwrap()
            .expect("published in the store");
        let jobs = store
            .list_jobs(JobFilter {
                sequence: Some(row.sequence),
                status: None,
            })
            .await
            .unwrap();
        assert!(jobs.iter().all(|j| j.status == JobStatus::Proved));
        let rewards = store.rewards(row.sequence).await.unwrap();
        let rewarded: HashSet<_> = rewards.iter().map(|r| r.job).collect();
        assert_eq!(
            rewards.len(),
            jobs.len(),
            "a job of block {} proved twice",
            row.number
        );
        assert_eq!(rewarded.len(), jobs.len());
        let sequence = store.get_sequence(row.sequence).await.unwrap().unwrap();
        let root = store.proof_of(sequence.root).await.unwrap().expect("root");
        let verified = key.verify_bytes(&root).expect("the root verifies");
        let statement = sheaf_rollup::block_statement(&previous, &block.header);
        assert_eq!(
            verified.header.statement,
            Digest::hash_digests(&[statement])
        );
        previous = block.header;
    }
    store.close().await;
}

/// Killed (SIGKILL) at random moments while a stream of transfers arrives and blocks are
/// built from it, then restarted at once: every block published before a kill is published
/// after it unchanged, every transfer is taken (each once, in one block), and the blocks replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_killed_while_blocks_are_built_loses_and_repeats_nothing() {
    let seed: u64 = std::env::var("SHEAF_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("kill schedule seed: {seed} (set SHEAF_TEST_SEED to replay)");
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let mut rollup = Rollup::new();
    // Eight transfers: they expire at block 10, and blocks of one or two take them by block 8.
    let txs = rollup.demo.transfers(8).unwrap();
    let mut node = rollup.coordinator();
    rollup
        .status_until(&mut [&mut node], "the node", |_| true)
        .await;
    let mut snapshots = Vec::new();
    for (i, tx) in txs.iter().enumerate() {
        // A kill before every other transfer, at a random moment after the one before.
        if i % 2 == 1 {
            tokio::time::sleep(Duration::from_millis(rand::Rng::gen_range(
                &mut rng,
                0..400,
            )))
            .await;
            snapshots.push(rollup.blocks().await);
            node.kill();
            node = rollup.coordinator();
        }
        // Every transfer is taken: none is lost by a restart, none refused because one was.
        rollup.submit_as_client(tx, &mut node).await;
        tokio::time::sleep(Duration::from_millis(rand::Rng::gen_range(
            &mut rng,
            0..150,
        )))
        .await;
    }
    rollup
        .status_until(&mut [&mut node], "every transfer published", |s| {
            s["pending"] == 0
        })
        .await;
    // Once more, after the last block, and back.
    snapshots.push(rollup.blocks().await);
    node.kill();
    node = rollup.coordinator();
    rollup
        .status_until(&mut [&mut node], "the node", |_| true)
        .await;
    let blocks = rollup.blocks().await;
    for before in &snapshots {
        assert_unchanged(before, &blocks);
    }
    assert_replays(&rollup, &blocks, &txs);
}

/// Killed with its blocks published and none proven (no prover ran), restarted with a prover:
/// the same blocks are proved, each job once, and nothing is published twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_killed_with_blocks_published_but_unproven_proves_them_once() {
    let mut rollup = Rollup::new();
    let txs = rollup.demo.transfers(3).unwrap();
    let mut node = rollup.coordinator();
    for tx in &txs {
        rollup.submit_as_client(tx, &mut node).await;
    }
    let status = rollup
        .status_until(&mut [&mut node], "the transfers published", |s| {
            s["pending"] == 0
        })
        .await;
    assert!(status["proven_tip"].is_null());
    let before = rollup.blocks().await;
    assert_replays(&rollup, &before, &txs);
    node.kill();

    let mut node = rollup.coordinator();
    let mut prover = rollup.prover();
    let published = before.len() as i64;
    rollup
        .status_until(&mut [&mut node, &mut prover], "every block proved", |s| {
            s["proven_tip"].as_i64() == Some(published)
        })
        .await;
    let after = rollup.blocks().await;
    assert_eq!(after.len(), before.len(), "a block was published again");
    assert_unchanged(&before, &after);
    assert_replays(&rollup, &after, &txs);
    assert_proved_once(&rollup, &after).await;
}

/// Killed, with its prover, once some jobs are proved and some not: restarted with a new
/// prover, the rest is proved, no job twice, and the blocks are the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_killed_with_blocks_half_proven_finishes_them_once() {
    let mut rollup = Rollup::new();
    let txs = rollup.demo.transfers(4).unwrap();
    let mut node = rollup.coordinator();
    let mut prover = rollup.prover();
    for tx in &txs {
        rollup.submit_as_client(tx, &mut node).await;
    }
    rollup
        .status_until(
            &mut [&mut node, &mut prover],
            "the transfers published",
            |s| s["pending"] == 0,
        )
        .await;
    // Wait for a first proof, then kill both.
    let store_url = rollup.store_url();
    let start = Instant::now();
    loop {
        node.assert_running(rollup.path());
        let store = Store::connect(&store_url).await.expect("store");
        let proved = store
            .list_jobs(JobFilter {
                sequence: None,
                status: Some(JobStatus::Proved),
            })
            .await
            .unwrap()
            .len();
        store.close().await;
        if proved > 0 {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "no job proved in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = rollup.blocks().await;
    prover.kill();
    node.kill();
    let store = Store::connect(&store_url).await.expect("store");
    let jobs = store.list_jobs(JobFilter::default()).await.unwrap();
    store.close().await;
    let proved = jobs
        .iter()
        .filter(|j| j.status == JobStatus::Proved)
        .count();
    assert!(
        proved > 0 && proved < jobs.len(),
        "killed half-proven: {proved} of {} jobs proved",
        jobs.len()
    );

    let mut node = rollup.coordinator();
    let mut prover = rollup.prover();
    let after = {
        let status = rollup
            .status_until(&mut [&mut node, &mut prover], "every block proved", |s| {
                s["pending"] == 0 && s["proven_tip"] == s["published_tip"]
            })
            .await;
        assert!(status["published_tip"].as_i64().unwrap() >= before.len() as i64);
        rollup.blocks().await
    };
    assert_unchanged(&before, &after);
    assert_replays(&rollup, &after, &txs);
    assert_proved_once(&rollup, &after).await;
}

/// `--concurrent-blocks 1`: with block 1 unproven no second block is published, across a kill
/// and a restart, and the transfers wait in the mempool; once a prover runs, the blocks follow
/// one at a time, never more than one ahead of the proven tip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_proving_backlog_holds_blocks_back_across_a_restart() {
    let mut rollup = Rollup::new();
    let txs = rollup.demo.transfers(4).unwrap();
    let backlog = ["--concurrent-blocks", "1"];
    let mut node = rollup.coordinator_with(&backlog);
    for tx in &txs {
        rollup.submit_as_client(tx, &mut node).await;
    }
    let status = rollup
        .status_until(&mut [&mut node], "block 1 published", |s| {
            s["published_tip"] == 1
        })
        .await;
    // Two batch and three block intervals later, still one block: the rest waits.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let held = rollup.status().await.expect("status");
    assert_eq!(held["published_tip"], 1);
    assert_eq!(held["pending"], status["pending"]);
    assert!(held["pending"].as_u64().unwrap() >= 2);
    let before = rollup.blocks().await;
    node.kill();

    let mut node = rollup.coordinator_with(&backlog);
    let restarted = rollup
        .status_until(&mut [&mut node], "the node", |_| true)
        .await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(restarted["published_tip"], 1, "{restarted}");
    let mut prover = rollup.prover();
    let start = Instant::now();
    loop {
        node.assert_running(rollup.path());
        prover.assert_running(rollup.path());
        let status = rollup.status().await.expect("status");
        let published = status["published_tip"].as_i64().unwrap_or(0);
        let proven = status["proven_tip"].as_i64().unwrap_or(0);
        assert!(published - proven <= 1, "{status}");
        if status["pending"] == 0 && published == proven {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "the backlog never cleared");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = rollup.blocks().await;
    assert!(after.len() >= 2);
    assert_unchanged(&before, &after);
    assert_replays(&rollup, &after, &txs);
    assert_proved_once(&rollup, &after).await;
}
