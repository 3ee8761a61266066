//! `sheaf bench store`, briefly: what it reports is what it stored.

use std::process::Command;

use sheaf_store::Store;

/// Runs `sheaf args` (with no `SHEAF_DB` from the environment), which must succeed, and parses
/// what it prints as JSON.
fn sheaf_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_sheaf"))
        .args(args)
        .env_remove("SHEAF_DB")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn bench_store_reports_each_client_count_and_stores_every_cycle() {
    let dir = tempfile::tempdir().unwrap();
    // A path that does not exist yet: the bench creates it.
    let file = dir.path().join("new").join("bench.db");
    let url = format!("sqlite://{}", file.display());
    let summary = sheaf_json(&[
        "bench",
        "store",
        "--db",
        &url,
        "--clients",
        "1,3",
        "--cycles",
        "4",
        "--blob-bytes",
        "2000",
        "--json",
    ]);
    assert_eq!(summary["engine"], "sqlite");
    assert_eq!(summary["blob_bytes"], 2000);
    // By default the blobs go to a `proofs` folder beside the SQLite file, appended to segment
    // files (the bench's trees are too large for 16 cycles to reach a root, whose proof stays
    // in its row).
    let proofs = dir.path().join("new").join("proofs");
    assert_eq!(summary["proof_store"], proofs.display().to_string());
    let segment_bytes: u64 = std::fs::read_dir(proofs.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(segment_bytes, 16 * 2000);
    let runs = summary["runs"].as_array().unwrap();
    let counted: Vec<(u64, u64)> = runs
        .iter()
        .map(|run| {
            (
                run["clients"].as_u64().unwrap(),
                run["cycles"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counted, vec![(1, 4), (3, 12)]);
    assert!(runs
        .iter()
        .all(|run| run["cycles_per_second"].as_f64().unwrap() > 0.0));

    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.stored_proofs().await.unwrap().count, 16);
    store.close().await;
}

#[test]
fn bench_store_prints_a_table_on_a_temporary_store() {
    let out = Command::new(env!("CARGO_BIN_EXE_sheaf"))
        .args(["bench", "store", "--clients", "2", "--cycles", "3"])
        .env_remove("SHEAF_DB")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("store bench: sqlite, 135000-byte blobs in /")
            && lines[0].ends_with("/proofs, 3 cycles per client"),
        "{stdout}"
    );
    let row: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!((row[0], row[1]), ("2", "6"), "{stdout}");
}

#[test]
fn bench_store_refuses_a_store_holding_other_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("real.db").display());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Store::connect(&url).await.unwrap();
        let job = sheaf_store::NewJob {
            id: sheaf_store::JobId::new(sheaf_store::SequenceId(0), 0, 0),
            circuit: sheaf_store::JobCircuit::Leaf {
                kind: "work".into(),
            },
            inputs: sheaf_store::JobInputs::Work { seed: 0, index: 0 },
            children: vec![],
        };
        let sequence = sheaf_store::NewSequence {
            id: sheaf_store::SequenceId(0),
            leaves: 1,
            created_ms: 0,
        };
        store.insert_sequence(sequence, &[job]).await.unwrap();
        store.close().await;
    });
    let out = Command::new(env!("CARGO_BIN_EXE_sheaf"))
        .args(["bench", "store", "--db", &url, "--cycles", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not the bench's"), "{stderr}");
}

/// `bench scale`, briefly: every job of the planned tree is leased and stored once through the
/// coordinator's long-poll, and the report's figures hang together.
#[test]
fn bench_scale_proves_the_whole_tree_and_reports_against_its_bound() {
    let report = sheaf_json(&[
        "bench",
        "scale",
        "--provers",
        "4",
        "--leaves",
        "20",
        "--leaf-ms",
        "5",
        "--node-ms",
        "20",
        "--verify-ms",
        "1",
        "--json",
    ]);
    // 20 leaves at arity 2: 20 + 10 + 5 + 3 + 2 + 1 jobs, levels 0 to 5.
    assert_eq!(report["jobs"], 41, "{report}");
    assert_eq!(report["depth"], 5, "{report}");
    let latency = report["latency_s"].as_f64().unwrap();
    let bound = report["bound_s"].as_f64().unwrap();
    // The bound: 5 leaves a prover × 5 ms + 5 levels × 20 ms.
    assert!((bound - 0.125).abs() < 1e-9, "{report}");
    // Simulated proving alone takes the critical path (a draw is at least 80 % of its mean).
    assert!(latency >= 0.8 * bound, "{report}");
    let idle = report["prover_idle_fraction"].as_f64().unwrap();
    assert!((0.0..1.0).contains(&idle), "{report}");
    assert!(report["lease_calls"].as_u64().unwrap() >= 41, "{report}");
}
