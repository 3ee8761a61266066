//! The seed's approach, kept as the benchmark baseline: one flat circuit that verifies `n` leaf
//! proofs at once. Its size grows with `n`; Sheaf's tree nodes do not.

use plonky2::plonk::circuit_data::CircuitConfig;

use crate::cache::{circuit_to_bytes, ArtifactCache, Fingerprint};
use crate::error::Result;
use crate::leaf::{work_units_for_rows, LeafVerifier};
use crate::node::{node_body, Children, NodeCircuit};
use crate::whitelist::key_digest;

/// Build (or load from `cache`) a circuit verifying 1 to `n` proofs of `leaf` at once.
/// Returns whether it came from the cache; a fresh build is not stored (see
/// [`store_flat_aggregator`]), so a benchmark can measure a cold run before paying for the write.
pub fn flat_aggregator(
    config: CircuitConfig,
    leaf: &LeafVerifier,
    n: usize,
    cache: Option<&ArtifactCache>,
) -> Result<(NodeCircuit, bool)> {
    let fp = fingerprint(&config, leaf, n);
    let weight = work_units_for_rows(leaf.common.degree_bits()) * n as u64;
    let body = || node_body(config.clone(), n, Children::Leaf(leaf), weight, None);
    if let Some(data) = cache
        .and_then(|c| c.load("flat", &fp))
        .and_then(|b| crate::cache::circuit_from_bytes(&b))
    {
        return Ok((
            body().into_circuit(n, Some(leaf.clone()), weight, data),
            true,
        ));
    }
    let node = body().build(n, Some(leaf.clone()), weight, None)?;
    Ok((node, false))
}

/// Store a flat aggregator built by [`flat_aggregator`] in `cache`.
pub fn store_flat_aggregator(
    node: &NodeCircuit,
    config: &CircuitConfig,
    leaf: &LeafVerifier,
    cache: &ArtifactCache,
) {
    let fp = fingerprint(config, leaf, node.arity());
    if let Some(bytes) = circuit_to_bytes(&node.data) {
        cache.store("flat", &fp, &bytes);
    }
}

fn fingerprint(config: &CircuitConfig, leaf: &LeafVerifier, n: usize) -> Fingerprint {
    Fingerprint::new(
        "flat",
        &format!(
            "n={n} config={config:?} leaf={}",
            key_digest(&leaf.verifier_only)
        ),
    )
}
