//! `sheaf devnet` end to end, as a user runs it: chain, coordinator and prover processes;
//! several sequences proved, then finalized on chain in order, the sender paid.

use serde_json::Value;

mod common;
use common::sheaf;

/// Reward per finalized sequence on the devnet chain (the settlement contract's default).
const REWARD_PER_SEQUENCE: u64 = sheaf_chain::settlement::DEFAULT_REWARD_PER_SEQUENCE.0 as u64;

#[test]
fn devnet_finalizes_its_sequences_on_chain_in_order_and_pays_the_sender() {
    let dir = tempfile::tempdir().unwrap();
    let output = sheaf()
        .args(["devnet", "--json", "--provers", "1", "--sequences", "3"])
        .args(["--leaves", "1", "--threads", "1"])
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
}
