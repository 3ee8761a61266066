//! Every fuzz target, briefly, as a test: its seeds, its checked-in regressions
//! (`regressions/<target>/*`, each an input that once crashed it), then deterministic mutations
//! of the seeds. `SHEAF_FUZZ_MUTATIONS` sets how many per target (default
//! [`DEFAULT_MUTATIONS`]); `SHEAF_FUZZ_SEED` replays another sequence (the seed is printed).
//! The long runs are `scripts/fuzz`'s, under libFuzzer.

mod mutate;

use std::path::PathBuf;

use sheaf_fuzz::{target, Target, TARGETS};

use crate::mutate::Mutator;

/// Mutated inputs per target in a test run: enough to reach every branch the seeds lead to,
/// few enough that all targets together take seconds.
const DEFAULT_MUTATIONS: usize = 2_000;

fn mutations() -> usize {
    std::env::var("SHEAF_FUZZ_MUTATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_MUTATIONS)
}

fn seed() -> u64 {
    std::env::var("SHEAF_FUZZ_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0x5eaf_f022)
}

/// The checked-in inputs of `name`: every file of `regressions/<name>/`.
fn regressions(name: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("regressions")
        .join(name);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a readable entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).expect("a readable regression");
            (path, bytes)
        })
        .collect()
}

fn run(name: &str) {
    let Target { run, seeds, .. } = target(name).expect("a known target");
    let seeds = seeds();
    assert!(!seeds.is_empty(), "{name} has seeds");
    for input in &seeds {
        run(input);
    }
    for (path, input) in regressions(name) {
        eprintln!("{name}: replaying {}", path.display());
        run(&input);
    }
    let seed = seed();
    eprintln!("{name}: {} mutations, SHEAF_FUZZ_SEED={seed}", mutations());
    let mut mutator = Mutator::new(seed);
    for _ in 0..mutations() {
        run(&mutator.mutate(&seeds));
    }
}

#[test]
fn every_target_is_tested_and_has_a_cargo_fuzz_binary() {
    let tested = include_str!("main.rs");
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/fuzz_targets");
    for Target { name, .. } in TARGETS {
        assert!(
            tested.contains(&format!("run(\"{name}\")")),
            "{name} has a test"
        );
        let binary = std::fs::read_to_string(fuzz.join(format!("{name}.rs")))
            .unwrap_or_else(|e| panic!("fuzz/fuzz_targets/{name}.rs: {e}"));
        assert!(
            binary.contains(&format!("sheaf_fuzz::{name}(")),
            "{name}'s binary runs it"
        );
    }
    let regressions = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("regressions");
    for entry in std::fs::read_dir(regressions).expect("regressions/") {
        let dir = entry.expect("an entry").file_name();
        let dir = dir.to_string_lossy();
        assert!(target(&dir).is_some(), "regressions/{dir} names a target");
    }
}

#[test]
fn proof_decode_survives_hostile_bytes() {
    run("proof_decode");
}

#[test]
fn receipt_check_survives_hostile_bytes() {
    run("receipt_check");
}

#[test]
fn signed_request_survives_hostile_headers() {
    run("signed_request");
}

#[test]
fn clock_skew_agrees_with_the_exact_distance() {
    run("clock_skew");
}

#[test]
fn api_bodies_survive_hostile_json() {
    run("api_bodies");
}

#[test]
fn claims_query_survives_hostile_queries() {
    run("claims_query");
}

#[test]
fn chain_rpc_survives_hostile_requests() {
    run("chain_rpc");
}

#[test]
fn chain_tx_survives_hostile_transactions() {
    run("chain_tx");
}

#[test]
fn rollup_transaction_survives_hostile_transactions() {
    run("rollup_transaction");
}

#[test]
fn rollup_local_transaction_survives_hostile_bodies() {
    run("rollup_local_transaction");
}

#[test]
fn rollup_tx_job_survives_hostile_witnesses() {
    run("rollup_tx_job");
}

#[test]
fn rollup_block_survives_hostile_blocks() {
    run("rollup_block");
}
