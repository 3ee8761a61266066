//! The artifact cache: circuits come back from disk; damage means a rebuild, never a failure.

use std::fs;

use sheaf_circuits::whitelist::key_digest;
use sheaf_circuits::{
    AggregationCircuits, ArtifactCache, LeafCircuit, Profile, TreePlan, TreeProver, WorkLeaf,
};

use crate::fixture::{arity2, leaf_proof, worker, LEAF_ROWS_LOG2};

fn artifact(cache: &ArtifactCache, prefix: &str) -> std::path::PathBuf {
    fs::read_dir(cache.dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            // `<prefix>-<fingerprint>.bin`, not its verifier side artifact (`<prefix>-verifier-…`).
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('-'))
                .and_then(|rest| rest.strip_suffix(".bin"))
                .is_some_and(|fp| fp.chars().all(|c| c.is_ascii_hexdigit()))
        })
        .unwrap_or_else(|| panic!("no {prefix} artifact"))
}

#[test]
fn corrupt_leaf_artifact_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let cache = ArtifactCache::new(dir.path());
    let config = Profile::Standard.leaf_config();
    let first = WorkLeaf::load_or_build(config.clone(), LEAF_ROWS_LOG2, Some(&cache)).unwrap();
    let path = artifact(&cache, "work-leaf");
    let mut bytes = fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&path, &bytes).unwrap();

    let rebuilt = WorkLeaf::load_or_build(config, LEAF_ROWS_LOG2, Some(&cache)).unwrap();
    assert_eq!(
        key_digest(&rebuilt.circuit().verifier_only),
        key_digest(&first.circuit().verifier_only)
    );
    assert_ne!(
        fs::read(&path).unwrap(),
        bytes,
        "the damaged artifact was replaced"
    );
}

#[test]
fn aggregation_circuits_load_from_cache_and_prove() {
    let fx = arity2();
    let dir = tempfile::tempdir().unwrap();
    let cache = ArtifactCache::new(dir.path());
    let leaves = [fx.leaf.verifier()];
    assert!(AggregationCircuits::load(fx.circuits.settings(), &leaves, &cache).is_none());
    fx.circuits.store(&cache);

    let loaded = AggregationCircuits::load(fx.circuits.settings(), &leaves, &cache).unwrap();
    assert!(loaded.from_cache());
    assert_eq!(loaded.final_key().id(), fx.key.id());
    assert_eq!(loaded.whitelist().root(), fx.circuits.whitelist().root());

    // Targets rebuilt around loaded circuits prove a tree the original key accepts.
    let plan = TreePlan::new(1, 2).unwrap();
    let leaf_key = fx.leaf.verifier();
    let prover = TreeProver::new(&loaded, "work", &leaf_key.verifier_only, worker(5));
    let root = prover
        .prove(&plan, &mut |i| Ok(leaf_proof(fx, i)), &mut |_| {})
        .unwrap();
    fx.key.verify(&root).unwrap();

    // A damaged artifact is a cache miss.
    let path = artifact(&cache, "universal-node");
    fs::write(&path, b"not an artifact").unwrap();
    assert!(AggregationCircuits::load(fx.circuits.settings(), &leaves, &cache).is_none());
}
