//! The fault harness, reduced for CI: `sheaf bench chaos` (this test build has its failpoints)
//! drives a chain, a coordinator on SQLite and two provers as separate processes, kills them,
//! crashes them at every failpoint, partitions their links, and passes only if no job is lost,
//! no reward doubled, no job over its attempt cap or dead, the outbox matches the chain, every
//! root verifies and every sequence settles. The seed is fixed, so CI replays one schedule
//! (the moments processes reach are still the machine's); `SHEAF_TEST_SEED` picks another.

use std::process::Output;

use crate::common::sheaf;

/// The schedule CI plays, unless `SHEAF_TEST_SEED` names another.
const SEED: u64 = 16_029_344_395_534_898_563;

fn run_chaos(extra: &[&str]) -> (Output, serde_json::Value) {
    let seed: u64 = std::env::var("SHEAF_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED);
    eprintln!("chaos seed: {seed} (set SHEAF_TEST_SEED to play another)");
    let output = sheaf()
        .args(["bench", "chaos", "--json", "--seed", &seed.to_string()])
        .args(extra)
        .output()
        .expect("sheaf bench chaos runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output, report)
}

fn count(report: &serde_json::Value, path: &[&str]) -> u64 {
    path.iter()
        .fold(report, |value, key| &value[*key])
        .as_u64()
        .unwrap_or_else(|| panic!("{path:?} in {report:#}"))
}

#[test]
fn network_under_kills_crashes_and_partitions_loses_nothing_and_settles_everything() {
    let (output, report) = run_chaos(&[
        "--store",
        "sqlite",
        "--jobs",
        "20",
        "--leaves",
        "4",
        "--provers",
        "2",
        "--prover-kills",
        "6",
        "--coordinator-kills",
        "3",
        "--failpoint-crashes",
        "1",
        "--chain-kills",
        "2",
        "--partitions",
        "1",
        "--lease-ttl-ms",
        "2000",
        "--failpoint-wait-ms",
        "5000",
        "--settle-timeout-s",
        "240",
    ]);
    eprintln!("{report:#}");
    // The faults happened: a harness that injects nothing proves nothing.
    assert!(count(&report, &["injected", "prover_kills"]) >= 1);
    assert!(count(&report, &["injected", "coordinator_kills"]) >= 1);
    assert!(count(&report, &["injected", "chain_kills"]) >= 1);
    let crashed: u64 = report["injected"]["failpoints"]
        .as_array()
        .expect("failpoints")
        .iter()
        .map(|f| f["crashed"].as_u64().unwrap_or(0))
        .sum();
    assert!(crashed >= 1, "no process crashed at a failpoint");
    assert!(count(&report, &["checks", "jobs"]) >= 20);
    assert_eq!(
        report["failures"],
        serde_json::json!([]),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success());
}
