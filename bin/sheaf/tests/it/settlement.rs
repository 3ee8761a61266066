//! Settlement of root proofs with real processes over loopback: a `sheaf chain` whose blocks
//! the test produces by hand, a `sheaf coordinator` that settles its sequences with
//! `--sender-key`, and a `sheaf prover` admitted from the chain's membership registry. The
//! coordinator is killed with SIGKILL between its proof hash and its reveal; a rollup
//! coordinator is killed with its first block's hash on chain and settles every block once, in
//! order, after its restart.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use sheaf_chain::settlement::{Address, Amount, SequenceId, UNIT};
use sheaf_chain::ChainClient;
use sheaf_prover::ProverKey;
use sheaf_store::{OutboxKind, OutboxStatus, Store};

use crate::common::{free_port, output_text as text, sheaf, Process};

/// T1: blocks of the hash phase. Few, so the test can stop the chain inside it.
const T1: u64 = 4;
/// T2: blocks of the proof phase. The first valid reveal finalizes, so a long phase costs
/// nothing and leaves the restarted coordinator ample time to reveal.
const T2: u64 = 60;
const REWARD: u128 = 2 * UNIT.0;
const MIN_STAKE: u128 = 10 * UNIT.0;
/// The coordinator's stake: above the minimum.
const STAKE: u128 = 2 * MIN_STAKE;
/// Genesis balance of the coordinator and the prover: covers the membership deposit (rate limit
/// × the default price of 0.05 tokens) and the stake.
const BALANCE: u128 = 1_000 * UNIT.0;
/// The sequence settled: the coordinator plans sequences from 1.
const SEQUENCE: SequenceId = SequenceId(1);
/// A block every this long while the test drives the chain.
const BLOCK_EVERY: Duration = Duration::from_millis(200);
/// The chain's admin token (`chain_produceBlock` needs it).
const ADMIN_TOKEN: &str = "settlement-test";
/// Longest any step may take (proving the 1-leaf sequence is the slowest, tens of seconds).
const DEADLINE: Duration = Duration::from_secs(240);

/// The test's directory, the chain's client and a runtime to call it from.
struct Harness {
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    chain: ChainClient,
    chain_url: String,
}

impl Harness {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fail with `what` and every process log.
    fn fail(&self, what: &str) -> ! {
        let mut logs = String::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.path())
            .expect("test directory")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            logs.push_str(&format!("==== {}\n{text}\n", file.display()));
        }
        panic!("{what}\n{logs}");
    }

    fn produce_block(&self) -> u64 {
        match self.rt.block_on(self.chain.produce_block(ADMIN_TOKEN)) {
            Ok(block) => block.number,
            Err(e) => self.fail(&format!("chain_produceBlock: {e}")),
        }
    }

    fn height(&self) -> u64 {
        self.rt.block_on(self.chain.height()).expect("chain height")
    }

    /// Run `command` to its end, producing a block every [`BLOCK_EVERY`] meanwhile so the
    /// transaction it waits for is included.
    fn run_with_blocks(&self, command: &mut Command) -> Output {
        std::thread::scope(|scope| {
            let running = scope.spawn(|| command.output().expect("sheaf runs"));
            while !running.is_finished() {
                self.produce_block();
                std::thread::sleep(BLOCK_EVERY);
            }
            running.join().expect("command thread")
        })
    }

    /// Produce a block every [`BLOCK_EVERY`] (none when `blocks` is false) until `done` holds,
    /// failing when a process exits or the deadline passes.
    fn drive_until(
        &self,
        what: &str,
        blocks: bool,
        processes: &mut [&mut Process],
        mut done: impl FnMut(&Harness) -> bool,
    ) {
        let start = Instant::now();
        loop {
            if done(self) {
                return;
            }
            for process in processes.iter_mut() {
                if let Some(exit) = process.exited() {
                    self.fail(&format!("{exit} while waiting for {what}"));
                }
            }
            if start.elapsed() > DEADLINE {
                self.fail(&format!("timed out waiting for {what}"));
            }
            if blocks {
                self.produce_block();
            }
            std::thread::sleep(BLOCK_EVERY);
        }
    }

    /// Whether `sender`'s proof hash for `sequence` is on chain.
    fn hash_on_chain(&self, sequence: SequenceId, sender: &Address) -> bool {
        self.rt
            .block_on(self.chain.sequence(sequence))
            .ok()
            .flatten()
            .and_then(|s| s.window)
            .is_some_and(|w| w.commitment(sender).is_some())
    }

    fn sqlite_url(&self) -> String {
        format!(
            "sqlite://{}",
            self.path().join("store").join("sheaf.db").display()
        )
    }

    /// The coordinator with the chain's membership registry and the settlement sender.
    fn coordinator(&self, name: &str, port: u16) -> Process {
        Process::spawn(
            name,
            sheaf()
                .arg("coordinator")
                .args(["--db", &self.sqlite_url()])
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .args(["--chain", &self.chain_url])
                .arg("--sender-key")
                .arg(self.path().join("coordinator.key"))
                .args(["--sequences", "1", "--leaves", "1"])
                .args(["--sender-poll-ms", "50", "--chain-poll-ms", "200"])
                // The killed coordinator's role lease must run out before its restart sends.
                .args(["--sender-role-ttl-ms", "2000"]),
            self.path(),
        )
    }

    /// The sender role of `address` as stored: `(holder, token)`.
    fn sender_role(&self, address: &Address) -> Option<(String, i64)> {
        self.rt.block_on(async {
            let store = Store::connect(&self.sqlite_url()).await.ok()?;
            let role = store
                .role(&format!("sender:{address}"))
                .await
                .ok()
                .flatten();
            store.close().await;
            role.map(|r| (r.holder, r.token))
        })
    }

    /// The store's outbox as `(sequence, kind, attempt, status)`, or `None` while the store
    /// does not open.
    fn outbox(&self) -> Option<Vec<(i64, OutboxKind, i64, OutboxStatus)>> {
        self.rt.block_on(async {
            let store = Store::connect(&self.sqlite_url()).await.ok()?;
            let rows = store.outbox_all().await.ok();
            store.close().await;
            let rows = rows?;
            for row in &rows {
                if let Some(error) = &row.error {
                    eprintln!(
                        "outbox {} {} {}: {error}",
                        row.sequence, row.kind, row.attempt
                    );
                }
            }
            Some(
                rows.into_iter()
                    .map(|t| (t.sequence.get() as i64, t.kind, t.attempt, t.status))
                    .collect(),
            )
        })
    }
}

fn address(key: &ProverKey) -> Address {
    Address(key.signing.verifying_key().to_bytes())
}

/// A chain (manual blocks) verifying with the final key of the work set, or of the rollup set
/// when `rollup`, a prover registered as a member and a coordinator that staked: the harness,
/// the chain's process and the coordinator's key.
fn chain_with_member_and_stake(rollup: bool) -> (Harness, Process, ProverKey) {
    let dir = tempfile::tempdir().expect("tempdir");
    let prover_key = ProverKey::generate();
    let coordinator_key = ProverKey::generate();
    prover_key
        .write(&dir.path().join("prover.key"), false)
        .expect("prover key file");
    coordinator_key
        .write(&dir.path().join("coordinator.key"), false)
        .expect("coordinator key file");
    let mut export = sheaf();
    export
        .arg("export-key")
        .arg("--out")
        .arg(dir.path().join("final.key"));
    if rollup {
        export.arg("--rollup");
    }
    let exported = export.output().expect("export-key runs");
    assert!(exported.status.success(), "{}", text(&exported));
    std::fs::write(
        dir.path().join("genesis.json"),
        format!(
            r#"{{
  "coordinator": "{coordinator}",
  "allocations": [
    {{"address": "{coordinator}", "balance": {BALANCE}}},
    {{"address": "{prover}", "balance": {BALANCE}}}
  ],
  "settlement": {{
    "hash_window_blocks": {T1},
    "proof_window_blocks": {T2},
    "reward_per_sequence": {REWARD},
    "min_stake": {MIN_STAKE},
    "wrong_hash_penalty": {unit},
    "no_reveal_penalty": {unit}
  }}
}}"#,
            coordinator = coordinator_key.public_key_hex(),
            prover = prover_key.public_key_hex(),
            unit = UNIT.0,
        ),
    )
    .expect("genesis file");

    let chain_port = free_port();
    let chain_url = format!("http://127.0.0.1:{chain_port}");
    let h = Harness {
        rt: tokio::runtime::Runtime::new().expect("runtime"),
        chain: ChainClient::new(chain_url.clone()).unwrap(),
        chain_url,
        dir,
    };
    let mut chain = Process::spawn(
        "chain",
        sheaf()
            .arg("chain")
            .arg("--manual-blocks")
            .args(["--admin-token", ADMIN_TOKEN])
            .arg("--key")
            .arg(h.path().join("final.key"))
            .arg("--genesis")
            .arg(h.path().join("genesis.json"))
            .arg("--data")
            .arg(h.path().join("chain"))
            .args(["--listen", &format!("127.0.0.1:{chain_port}")]),
        h.path(),
    );
    h.drive_until("the chain's RPC", false, &mut [&mut chain], |h| {
        h.rt.block_on(h.chain.height()).is_ok()
    });

    // The prover becomes a member; the coordinator stakes (its first transaction, nonce 0).
    let as_user = |key: &str, args: &[&str]| {
        h.run_with_blocks(
            sheaf()
                .args(args)
                .args(["--chain", &h.chain_url, "--wait-s", "60"])
                .arg("--key")
                .arg(h.path().join(key)),
        )
    };
    let registered = as_user("prover.key", &["member", "register", "--rate-limit", "20"]);
    assert!(registered.status.success(), "{}", text(&registered));
    let staked = as_user(
        "coordinator.key",
        &["stake", "deposit", &(STAKE / UNIT.0).to_string()],
    );
    assert!(staked.status.success(), "{}", text(&staked));
    let before =
        h.rt.block_on(h.chain.account(&address(&coordinator_key)))
            .expect("coordinator account");
    assert_eq!((before.nonce, before.stake), (1, Amount(STAKE)));

    (h, chain, coordinator_key)
}

#[test]
fn coordinator_killed_between_hash_and_reveal_reveals_in_the_window_and_sends_nothing_twice() {
    let (h, mut chain, coordinator_key) = chain_with_member_and_stake(false);
    let coordinator_port = free_port();
    let mut coordinator = h.coordinator("coordinator", coordinator_port);
    let mut prover = Process::spawn(
        "prover",
        sheaf()
            .arg("prover")
            .args([
                "--coordinator",
                &format!("http://127.0.0.1:{coordinator_port}"),
            ])
            .arg("--key")
            .arg(h.path().join("prover.key"))
            .args(["--threads", "1", "--lease-wait-ms", "1000"]),
        h.path(),
    );

    // Blocks until the coordinator's hash is on chain, then none: the chain stays in the hash
    // phase of the window that hash opened while the coordinator dies.
    let sender = address(&coordinator_key);
    h.drive_until(
        "the coordinator's proof hash on chain",
        true,
        &mut [&mut chain, &mut coordinator, &mut prover],
        |h| h.hash_on_chain(SEQUENCE, &sender),
    );
    coordinator.kill();
    prover.kill();
    let window =
        h.rt.block_on(h.chain.sequence(SEQUENCE))
            .expect("sequence")
            .expect("sequence registered")
            .window
            .expect("window opened");
    let killed_at = h.height();
    assert!(
        killed_at < window.opened_at + T1,
        "killed at block {killed_at}, in the hash phase of the window opened at {}",
        window.opened_at
    );
    let (killed_holder, killed_token) = h.sender_role(&sender).expect("the sender role");
    let outbox = h.outbox().expect("outbox");
    eprintln!(
        "coordinator killed at block {killed_at}, window opened at {}, outbox {outbox:?}",
        window.opened_at
    );
    assert!(
        !outbox.iter().any(|r| r.1 == OutboxKind::Proof),
        "no reveal before the kill: {outbox:?}"
    );

    // The restarted coordinator (same store) reveals in the proof phase of that window.
    let mut coordinator = h.coordinator("coordinator-restarted", coordinator_port);
    h.drive_until(
        "sequence 1 finalized and nothing in flight",
        true,
        &mut [&mut chain, &mut coordinator],
        |h| {
            h.rt.block_on(h.chain.finalized(SEQUENCE))
                .ok()
                .flatten()
                .is_some()
                && h.outbox().is_some_and(|rows| {
                    rows.iter()
                        .all(|r| matches!(r.3, OutboxStatus::Included | OutboxStatus::Failed))
                })
        },
    );
    coordinator.kill();
    // The restarted process took the role over once the killed one's lease ran out.
    let (holder, token) = h.sender_role(&sender).expect("the sender role");
    assert_ne!(holder, killed_holder);
    assert_eq!(token, killed_token + 1);

    let finalized =
        h.rt.block_on(h.chain.finalized(SEQUENCE))
            .expect("finalized")
            .expect("sequence 1 finalized");
    eprintln!("sequence {SEQUENCE} finalized at block {}", finalized.block);
    assert_eq!(finalized.sender, sender);
    assert!(
        finalized.block >= window.opened_at + T1 && finalized.block < window.opened_at + T1 + T2,
        "finalized in block {}, not in the proof phase of the window opened at {}",
        finalized.block,
        window.opened_at
    );
    let settled =
        h.rt.block_on(h.chain.sequence(SEQUENCE))
            .expect("sequence")
            .expect("sequence registered")
            .window
            .expect("window");
    assert_eq!(settled.opened_at, window.opened_at, "no second window");
    assert_eq!(settled.commitments.len(), 1, "{:?}", settled.commitments);
    assert!(settled.commitments[0].1.revealed);
    assert_eq!(
        h.outbox().expect("outbox"),
        vec![
            (1, OutboxKind::Register, 0, OutboxStatus::Included),
            (1, OutboxKind::ProofHash, 0, OutboxStatus::Included),
            (1, OutboxKind::Proof, 0, OutboxStatus::Included),
        ]
    );
    let account =
        h.rt.block_on(h.chain.account(&sender))
            .expect("coordinator account");
    assert_eq!(
        account.nonce,
        1 + 3,
        "the stake deposit, then one registration, one hash and one reveal: nothing sent twice"
    );
    assert_eq!(account.rewards, Amount(REWARD));
    assert_eq!(account.pending_reveals, 0);
}

/// A rollup coordinator with a sender, killed with SIGKILL once its first block's proof hash is
/// on chain (and its prover with it): the restarted coordinator, on the same store, settles
/// every block exactly once and strictly in order, and the node's settled tip follows.
#[test]
fn a_rollup_coordinator_killed_mid_settlement_settles_every_block_once_in_order() {
    let (h, mut chain, coordinator_key) = chain_with_member_and_stake(true);
    let mut demo = sheaf_rollup::demo::DemoRollup::new(3, 16, 1_000).expect("demo rollup");
    let genesis = h.path().join("rollup.json");
    std::fs::write(&genesis, serde_json::to_vec(demo.genesis()).unwrap()).unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let coordinator = |name: &str| {
        Process::spawn(
            name,
            sheaf()
                .arg("coordinator")
                .args(["--db", &h.sqlite_url()])
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .args(["--chain", &h.chain_url])
                .arg("--sender-key")
                .arg(h.path().join("coordinator.key"))
                .arg("--rollup-genesis")
                .arg(&genesis)
                // Blocks of one batch of at most two transfers.
                .args(["--block-interval-ms", "300", "--batch-interval-ms", "100"])
                .args(["--max-txs-per-batch", "2", "--max-batches-per-block", "1"])
                .args(["--sender-poll-ms", "50", "--chain-poll-ms", "200"])
                .args(["--sender-role-ttl-ms", "2000"]),
            h.path(),
        )
    };
    let prover = |name: &str| {
        Process::spawn(
            name,
            sheaf()
                .arg("prover")
                .args(["--coordinator", &url])
                .arg("--key")
                .arg(h.path().join("prover.key"))
                .args(["--threads", "1", "--lease-wait-ms", "1000"]),
            h.path(),
        )
    };
    let http = reqwest::Client::new();
    let status = |h: &Harness| -> Option<serde_json::Value> {
        h.rt.block_on(async {
            let response = http
                .get(format!("{url}/v1/rollup/status"))
                .send()
                .await
                .ok()?;
            response.json().await.ok()
        })
    };
    let mut node = coordinator("coordinator");
    h.drive_until("the rollup node", true, &mut [&mut chain, &mut node], |h| {
        status(h).is_some()
    });
    // Three transfers, each consuming the note of the one before: blocks 1 (two) and 2 (one).
    for tx in demo.transfers(3).expect("transfers") {
        let answer = h.rt.block_on(
            http.post(format!("{url}/v1/rollup/transactions"))
                .json(&tx)
                .send(),
        );
        let answer = answer.expect("the node answers");
        assert!(answer.status().is_success(), "{answer:?}");
    }
    let mut proving = prover("prover");
    let sender = address(&coordinator_key);
    h.drive_until(
        "block 1's proof hash on chain",
        true,
        &mut [&mut chain, &mut node, &mut proving],
        |h| h.hash_on_chain(SEQUENCE, &sender),
    );
    node.kill();
    proving.kill();
    let outbox = h.outbox().expect("outbox");
    eprintln!("killed with the hash of block 1 on chain; outbox {outbox:?}");
    assert!(
        !outbox
            .iter()
            .any(|r| r.0 == 1 && r.1 == OutboxKind::Proof && r.3 == OutboxStatus::Included),
        "block 1 was not yet revealed when the coordinator died: {outbox:?}"
    );

    let mut node = coordinator("coordinator-restarted");
    let mut proving = prover("prover-restarted");
    let two = SequenceId(2);
    h.drive_until(
        "blocks 1 and 2 finalized, the settled tip at 2",
        true,
        &mut [&mut chain, &mut node, &mut proving],
        |h| {
            status(h).is_some_and(|s| s["settled_tip"] == 2)
                && h.outbox().is_some_and(|rows| {
                    rows.iter()
                        .all(|r| matches!(r.3, OutboxStatus::Included | OutboxStatus::Failed))
                })
        },
    );
    let status = status(&h).expect("status");
    assert_eq!(status["published_tip"], 2, "{status}");
    assert_eq!(status["proven_tip"], 2, "{status}");
    node.kill();
    proving.kill();

    let first = h.rt.block_on(h.chain.finalized(SEQUENCE)).unwrap().unwrap();
    let second = h.rt.block_on(h.chain.finalized(two)).unwrap().unwrap();
    assert!(
        first.block <= second.block,
        "block 1 finalized in chain block {}, block 2 in {}",
        first.block,
        second.block
    );
    for sequence in [SEQUENCE, two] {
        let window =
            h.rt.block_on(h.chain.sequence(sequence))
                .unwrap()
                .unwrap()
                .window
                .expect("window");
        assert_eq!(
            window.commitments.len(),
            1,
            "{sequence}: {:?}",
            window.commitments
        );
        assert!(window.commitments[0].1.revealed);
    }
    let outbox = h.outbox().expect("outbox");
    for sequence in [1, 2] {
        for kind in [
            OutboxKind::Register,
            OutboxKind::ProofHash,
            OutboxKind::Proof,
        ] {
            let sent: Vec<_> = outbox
                .iter()
                .filter(|r| r.0 == sequence && r.1 == kind && r.3 == OutboxStatus::Included)
                .collect();
            assert_eq!(sent.len(), 1, "block {sequence}, {kind:?}: {outbox:?}");
        }
    }
    let account = h.rt.block_on(h.chain.account(&sender)).unwrap();
    assert_eq!(
        account.nonce,
        1 + 2 * 3,
        "the stake, then per block one registration, one hash, one reveal: nothing sent twice"
    );
    assert_eq!(account.rewards, Amount(2 * REWARD));
}
