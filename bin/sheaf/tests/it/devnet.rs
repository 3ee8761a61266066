//! `sheaf devnet` end to end, as a user runs it: chain, coordinator and prover processes;
//! several sequences proved, then finalized on chain in order, the sender paid.

use serde_json::Value;

use crate::common::sheaf;

/// Reward per finalized sequence on the devnet chain (the settlement contract's default).
const REWARD_PER_SEQUENCE: u64 = sheaf_chain::settlement::DEFAULT_REWARD_PER_SEQUENCE.0 as u64;

#[test]
fn devnet_finalizes_its_sequences_on_chain_in_order_and_pays_the_sender() {
    let dir = tempfile::tempdir().unwrap();
    let output = sheaf()
        .args(["devnet", "--workload", "work", "--json", "--provers", "1"])
        .args(["--sequences", "3", "--leaves", "1", "--threads", "1"])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .expect("sheaf devnet runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "devnet failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_str(stdout.trim()).expect("one JSON summary");
    assert_eq!(summary["sequences"], 3);
    assert_eq!(summary["roots_verified"], 3);
    assert_eq!(summary["sequences_finalized"], 3);

    let chain = &summary["chain"];
    let finalized = chain["finalized"].as_array().unwrap();
    let order: Vec<u64> = finalized
        .iter()
        .map(|f| f["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(order, [1, 2, 3]);
    let blocks: Vec<u64> = finalized
        .iter()
        .map(|f| f["block"].as_u64().unwrap())
        .collect();
    assert!(
        blocks.windows(2).all(|w| w[0] < w[1]),
        "in order: {blocks:?}"
    );

    // One sender, the coordinator's key, finalized each and was paid for each.
    let senders = chain["senders"].as_array().unwrap();
    assert_eq!(senders.len(), 1);
    let sender = senders[0]["sender"].as_str().unwrap();
    assert!(finalized.iter().all(|f| f["sender"] == sender));
    assert_eq!(senders[0]["rewards"], 3 * REWARD_PER_SEQUENCE);
    // Its stake, then a registration, a hash and a reveal per sequence: nothing twice.
    assert_eq!(senders[0]["transactions"], 1 + 3 * 3);

    // The one prover is an Active member and did all the work the roots account for.
    let members = chain["members"].as_array().unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["state"], "Active");
    let work = chain["provers"].as_array().unwrap();
    let units: u64 = finalized
        .iter()
        .map(|f| f["work_units"].as_u64().unwrap())
        .sum();
    assert_eq!(work[0]["work_units"].as_u64().unwrap(), units);
    assert_eq!(work[0]["jobs"], summary["jobs"]);
    // The prover claimed every job it proved, and the chain owes nothing more.
    let claimants = assert_rewards_claimed(&summary);
    assert_eq!(claimants.len(), 1);
    assert_eq!(claimants[0]["name"], "prover-1");
    assert_eq!(claimants[0]["work_units"].as_u64().unwrap(), units);
    assert_eq!(claimants[0]["claims"], summary["jobs"]);
}

/// Asserts the devnet closed the loop: the chain owed its provers something, paid exactly that,
/// owes nothing, and paid every claimant what it is owed (nothing twice). Returns the claimants.
fn assert_rewards_claimed(summary: &serde_json::Value) -> Vec<serde_json::Value> {
    let claims = &summary["claims"];
    let owed = claims["owed"].as_u64().unwrap();
    assert!(owed > 0, "{claims}");
    assert_eq!(claims["paid"].as_u64().unwrap(), owed, "{claims}");
    assert_eq!(claims["remaining"], 0, "{claims}");
    let claimants = claims["claimants"].as_array().unwrap().clone();
    let mut claimed = 0;
    for c in &claimants {
        assert_eq!(c["claimed"], c["owed"], "{c}");
        assert!(c["claim_batches"].as_u64().unwrap() >= 1, "{c}");
        assert!(c["claim_peak_rss_bytes"].as_u64().unwrap() > 0, "{c}");
        claimed += c["claimed"].as_u64().unwrap();
    }
    assert_eq!(claimed, owed, "{claims}");
    claimants
}

#[test]
fn devnet_refuses_a_data_dir_of_an_earlier_run_and_keeps_its_keys() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("coordinator.key");
    std::fs::write(&key, "the earlier run's key\n").unwrap();
    let output = sheaf()
        .args([
            "devnet",
            "--provers",
            "1",
            "--sequences",
            "1",
            "--leaves",
            "1",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "devnet ran: {stderr}");
    assert!(stderr.contains("earlier run (coordinator.key)"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&key).unwrap(),
        "the earlier run's key\n"
    );
    assert!(!dir.path().join("prover-1.key").exists());
    assert!(!dir.path().join("store").exists());
}

/// Children of process `pid`, from /proc.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| {
                    let after_name = &stat[stat.rfind(')')? + 1..];
                    after_name.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

#[test]
fn devnet_stopped_by_sigterm_stops_its_provers_and_removes_its_temporary_directory() {
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    let mut devnet = sheaf()
        .args([
            "devnet",
            "--workload",
            "work",
            "--provers",
            "2",
            "--sequences",
            "100",
            "--leaves",
            "8",
        ])
        .args(["--threads", "1"])
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = devnet.id();
    let deadline = Instant::now() + Duration::from_secs(300);
    // The devnet's prover processes (its other children register the provers and exit).
    let is_prover = |child: &u32| {
        std::fs::read(format!("/proc/{child}/cmdline"))
            .is_ok_and(|cmdline| cmdline.split(|b| *b == 0).nth(1) == Some(b"prover".as_slice()))
    };
    let provers = loop {
        let children: Vec<u32> = children_of(pid).into_iter().filter(is_prover).collect();
        if children.len() == 2 {
            break children;
        }
        assert!(devnet.try_wait().unwrap().is_none(), "devnet exited early");
        assert!(Instant::now() < deadline, "no provers started");
        std::thread::sleep(Duration::from_millis(100));
    };
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    while devnet.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "devnet still running after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for prover in provers {
        assert!(
            !std::path::Path::new(&format!("/proc/{prover}")).exists(),
            "prover {prover} outlived the devnet"
        );
    }
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// The default workload, with every second transfer local (its signed half proved by the
/// devnet as a wallet does): transfers sent to the rollup node while it publishes blocks, every
/// block proven by the network and settled on chain in order, and every account's balance and
/// notes equal to a native replay of the settled blocks.
#[test]
fn devnet_proves_and_settles_rollup_blocks_whose_replay_matches_the_workload() {
    let output = sheaf()
        .args(["devnet", "--json", "--provers", "1", "--threads", "1"])
        .args(["--blocks", "2", "--tps", "4", "--block-interval-ms", "1000"])
        .args(["--accounts", "3", "--local-every", "2"])
        .output()
        .expect("sheaf devnet runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "devnet failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_str(stdout.trim()).expect("one JSON summary");
    assert_eq!(summary["workload"], "rollup");
    let rollup = &summary["rollup"];
    let blocks = rollup["blocks_published"].as_u64().unwrap();
    assert!(blocks >= 2, "{rollup}");
    assert_eq!(rollup["blocks_proven"], blocks);
    assert_eq!(rollup["blocks_settled"], blocks);
    assert_eq!(summary["sequences"], blocks);
    assert_eq!(summary["roots_verified"], blocks);
    assert_eq!(summary["sequences_finalized"], blocks);
    let transactions = rollup["transactions"].as_u64().unwrap();
    assert!(transactions > 0, "{rollup}");
    let local = rollup["local_transactions"].as_u64().unwrap();
    assert!(local > 0, "{rollup}");
    assert_eq!(rollup["network_transactions"], transactions - local);
    assert!(rollup["notes_consumed"].as_u64().unwrap() > 0, "{rollup}");
    assert_eq!(rollup["balances_match"], true, "{rollup}");
    assert_eq!(rollup["balances_matching"], 3);
    assert_eq!(rollup["latency_settled"]["count"], transactions);
    // The prover and the local client (its halves of the local transactions) claimed theirs.
    let claimants = assert_rewards_claimed(&summary);
    let names: Vec<&str> = claimants
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["prover-1", "client"]);
    assert_eq!(claimants[1]["jobs"], local);
}

#[test]
fn devnet_refuses_rollup_settings_it_cannot_run_before_starting_anything() {
    let refusals = [
        (&["--accounts", "1"][..], "--accounts must be at least 2"),
        (&["--tps", "0"][..], "--tps must be above 0"),
        (&["--tps", "NaN"][..], "--tps must be above 0"),
        (&["--blocks", "0"][..], "--blocks must be at least 1"),
        (&["--max-txs-per-batch", "65"][..], "--max-txs-per-batch"),
        (&["--tps", "1000", "--blocks", "100"][..], "one-time keys"),
    ];
    for (args, reason) in refusals {
        let dir = tempfile::tempdir().unwrap();
        let output = sheaf()
            .args(["devnet", "--provers", "1"])
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} ran");
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
        assert!(!dir.path().join("store").exists(), "{args:?} started");
    }
}
