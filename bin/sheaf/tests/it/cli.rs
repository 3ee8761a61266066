//! The `sheaf` command as a user runs it: prove a tree, export the key, verify, the benchmark's
//! side-by-side run, on the smallest leaves; and a small rollup block proved with the rollup's
//! kernels (`rollup prove-block`), its root verified by `sheaf verify` with
//! `sheaf export-key --rollup`'s key and not with the work-only key.

use crate::common::{circuit_cache, text};
use std::path::Path;
use std::process::{Command, Output};

fn sheaf(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sheaf"))
        .args(args)
        .env("SHEAF_CACHE_DIR", cache)
        .env("SHEAF_LEAF_ROWS_LOG2", "5")
        // Nodes of 2^12 rows, half the proving.
        .env("SHEAF_PROFILE", "test")
        .output()
        .expect("sheaf runs")
}

#[test]
fn prove_tree_export_key_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let cache = circuit_cache();
    let out = dir.path().join("out");
    let key = dir.path().join("final.key");
    let out_s = out.to_str().unwrap();
    let key_s = key.to_str().unwrap();

    // With the compact wrap: the wrapped key and proof are what is exported and checked. Over
    // the test profile's nodes (the wrap's stages are the same over any profile, each of 100
    // bits: `sheaf_circuits::wrap`'s unit test), so the run reports the nodes' 46 bits, the
    // weakest stage's. Not zero-knowledge: that flag only changes the first stage's config, and
    // it costs this test about 40 % more CPU (159 s against 111 s, release build, cold).
    let run = sheaf(
        &cache,
        &[
            "prove-tree",
            "--leaves",
            "3",
            "--final-compact",
            "--out",
            out_s,
            "--json",
        ],
    );
    assert!(run.status.success(), "{}", text(&run.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(summary["leaves"], 3);
    assert_eq!(summary["nodes_proved"], 3 + 2 + 1 + 1, "{summary}");
    assert_eq!(summary["profile"], "test");
    assert_eq!(summary["zero_knowledge"], false);
    // The compact wrap: at most 64 KB; the security of the weakest stage, the test nodes'.
    assert!(
        summary["proof_bytes"].as_u64().unwrap() <= 64_000,
        "{summary}"
    );
    assert_eq!(summary["security_bits"], 46, "{summary}");
    assert_eq!(summary["root"]["stats"]["leaf_jobs"], 3);
    assert_eq!(summary["levels"].as_array().unwrap().len(), 4);
    assert!(summary["peak_rss_bytes"].as_u64().unwrap() > 0);

    let export = sheaf(&cache, &["export-key", "--final-compact", "--out", key_s]);
    assert!(export.status.success(), "{}", text(&export.stderr));

    let proof = out.join("root.proof");
    let valid = sheaf(
        &cache,
        &["verify", "--key", key_s, "--proof", proof.to_str().unwrap()],
    );
    assert_eq!(valid.status.code(), Some(0), "{}", text(&valid.stderr));
    assert!(text(&valid.stdout).starts_with("valid: 3 leaves"));

    let bytes = std::fs::read(&proof).unwrap();
    let cut = dir.path().join("cut.proof");
    std::fs::write(&cut, &bytes[..bytes.len() - 8]).unwrap();
    let truncated = sheaf(
        &cache,
        &["verify", "--key", key_s, "--proof", cut.to_str().unwrap()],
    );
    assert_eq!(truncated.status.code(), Some(1));
    assert!(text(&truncated.stderr).contains("bad proof bytes"));

    let mut flipped = bytes.clone();
    let last_element = flipped.len() - 8;
    flipped[last_element] ^= 1; // the low byte of the last public input: the whitelist root
    let tampered = dir.path().join("tampered.proof");
    std::fs::write(&tampered, &flipped).unwrap();
    let wrong = sheaf(
        &cache,
        &[
            "verify",
            "--key",
            key_s,
            "--proof",
            tampered.to_str().unwrap(),
        ],
    );
    assert_eq!(wrong.status.code(), Some(1));
    assert!(text(&wrong.stderr).contains("wrong key"));

    let bad_key = sheaf(
        &cache,
        &[
            "verify",
            "--key",
            proof.to_str().unwrap(),
            "--proof",
            proof.to_str().unwrap(),
        ],
    );
    assert_eq!(bad_key.status.code(), Some(3));
    assert!(text(&bad_key.stderr).contains("not a Sheaf verifier key"));
}

#[test]
fn bench_aggregate_runs_every_side_and_compares() {
    let dir = tempfile::tempdir().unwrap();
    let run = sheaf(
        dir.path(),
        &[
            "bench",
            "aggregate",
            "--leaves",
            "2",
            "--leaf-rows-log2",
            "5",
            "--profile",
            "test",
            "--json",
            "--work-dir",
            dir.path().join("work").to_str().unwrap(),
        ],
    );
    assert!(run.status.success(), "{}", text(&run.stderr));
    let result: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let sides = result["sides"].as_array().unwrap();
    assert_eq!(sides.len(), 4);
    for side in sides {
        assert!(side["peak_rss_bytes"].as_u64().unwrap() > 0, "{side}");
        assert!(side["proof_bytes"].as_u64().unwrap() > 0, "{side}");
    }
    // Sheaf's tree for 2 leaves: one leaf node and the universal root.
    let sheaf_cold = sides.iter().find(|s| s["side"] == "sheaf-cold").unwrap();
    assert_eq!(sheaf_cold["proofs"], 2);
    assert_eq!(result["ratios"].as_array().unwrap().len(), 7);
}

#[test]
fn prove_block_export_key_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let cache = circuit_cache();
    let out = dir.path().join("block");
    let out_s = out.to_str().unwrap();

    // Three transfers in batches of two: the second consumes the note the first created.
    let run = sheaf(
        &cache,
        &[
            "rollup",
            "prove-block",
            "--txs",
            "3",
            "--batch-size",
            "2",
            "--accounts",
            "3",
            "--out",
            out_s,
            "--json",
        ],
    );
    assert!(run.status.success(), "{}", text(&run.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(summary["txs"], 3);
    assert_eq!(summary["batches"], 2);
    // 3 tx leaves, 2 tx leaf nodes, 1 merge across the batches, the block node, the root.
    assert_eq!(summary["proofs"], 3 + 2 + 1 + 1 + 1, "{summary}");
    let kernels: Vec<&str> = summary["kernels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["circuit"].as_str().unwrap())
        .collect();
    assert_eq!(
        kernels,
        [
            "leaf:tx",
            "node:tx",
            "kernel:merge",
            "kernel:block",
            "universal"
        ]
    );
    assert_eq!(summary["root"]["stats"]["leaf_jobs"], 3);
    assert_eq!(summary["block"]["number"], 1);
    assert!(summary["critical_path_seconds"].as_f64().unwrap() > 0.0);
    assert!(summary["peak_rss_bytes"].as_u64().unwrap() > 0);
    let header: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("header.json")).unwrap()).unwrap();
    assert_eq!(header, summary["block"]);

    let proof = out.join("root.proof");
    let key = dir.path().join("rollup.key");
    let export = sheaf(
        &cache,
        &["export-key", "--rollup", "--out", key.to_str().unwrap()],
    );
    assert!(export.status.success(), "{}", text(&export.stderr));
    let valid = sheaf(
        &cache,
        &[
            "verify",
            "--key",
            key.to_str().unwrap(),
            "--proof",
            proof.to_str().unwrap(),
        ],
    );
    assert_eq!(valid.status.code(), Some(0), "{}", text(&valid.stderr));
    assert!(text(&valid.stdout).starts_with("valid: 3 leaves"));

    // The work-only set's key has another whitelist: it refuses the block's root.
    let work_key = dir.path().join("work.key");
    let export = sheaf(&cache, &["export-key", "--out", work_key.to_str().unwrap()]);
    assert!(export.status.success(), "{}", text(&export.stderr));
    let refused = sheaf(
        &cache,
        &[
            "verify",
            "--key",
            work_key.to_str().unwrap(),
            "--proof",
            proof.to_str().unwrap(),
        ],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stdout));
}

#[test]
fn prove_block_refuses_a_block_it_cannot_make() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("block");
    for (flag, value) in [("--txs", "0"), ("--batch-size", "65"), ("--accounts", "1")] {
        let mut args = vec![
            "rollup",
            "prove-block",
            "--txs",
            "2",
            "--out",
            out.to_str().unwrap(),
        ];
        if flag == "--txs" {
            args[3] = value;
        } else {
            args.extend([flag, value]);
        }
        let run = sheaf(&dir.path().join("cache"), &args);
        assert_eq!(run.status.code(), Some(1), "{flag} {value}");
        assert!(text(&run.stderr).contains(flag), "{}", text(&run.stderr));
        assert!(!out.join("root.proof").exists());
    }
}
