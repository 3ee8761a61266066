//! The rollup's kernels as circuits: the tx kernel (a leaf kind), and the merge and block
//! kernels (aggregation nodes of the universal shape that read their children's statements).
//!
//! ```text
//!  tx kernel (leaf "tx")      one transaction against the state it runs on: S_i ─▶ S_i+1
//!     │ tx leaf node (generic) statement H(T)
//!     │   or, for a local transaction, the same kernel twice (leaf "tx-pair"): the client's
//!     │   signed half and the network's state half, joined by node:tx-pair (pair rule) ─▶ H(T)
//!     ▼
//!  merge node (binary)        T_left ⨝ T_right: left.after = right.before, same block,
//!     │                        expiration = min, counts summed       (a batch is a subtree)
//!     ▼
//!  block node                 T over the whole block ⨝ header n−1 ─▶ header n
//!     │ statement H(BlockStatement ‖ prev commitment ‖ new commitment)
//!     ▼
//!  universal node ─▶ root, verified with the one final key
//! ```

pub mod gadgets;
pub mod header;
pub mod transition;
pub mod tx;

pub mod block;
pub mod merge;
pub mod pair;
pub mod tree;

pub use block::{BlockFields, BlockRule, BLOCK_RULE};
pub use header::BlockHeaderTarget;
pub use merge::{MergeFields, MergeRule, MERGE_RULE};
pub use pair::{PairFields, PairRule, PAIR_RULE};
pub use transition::{StateRootsTarget, TransitionTarget};
pub use tree::{BlockJob, BlockTree, PlanError};
pub use tx::{TxJob, TxKernel, TxMode, TX_KERNEL_KIND as TX_KIND, TX_PAIR_KIND};

use std::sync::Arc;

use plonky2::field::types::Field;
use sheaf_circuits::claim::CLAIM_KIND;
use sheaf_circuits::work::WORK_LEAF_KIND;
use sheaf_circuits::{
    AggregationSettings, ArtifactCache, CircuitError, CircuitSet, KindCatalog, KindParams,
    LeafKind, WhitelistPositions, F,
};

/// The rollup's leaf kinds and kernel rules over the standard catalog: what a prover of a
/// rollup network can build (it builds only what its coordinator's hello names).
pub fn catalog() -> KindCatalog {
    KindCatalog::standard()
        .with(TX_KIND, build_tx_kind)
        .with(TX_PAIR_KIND, build_pair_kind)
        .with_rule(MERGE_RULE, || Arc::new(MergeRule))
        .with_rule(BLOCK_RULE, || Arc::new(BlockRule))
}

fn build_tx_kind(
    params: &KindParams,
    cache: Option<&ArtifactCache>,
) -> Result<Box<dyn LeafKind>, CircuitError> {
    Ok(Box::new(TxKernel::load_or_build(
        params.profile.leaf_config(),
        cache,
    )?))
}

fn build_pair_kind(
    params: &KindParams,
    cache: Option<&ArtifactCache>,
) -> Result<Box<dyn LeafKind>, CircuitError> {
    Ok(Box::new(
        TxKernel::load_or_build(params.profile.leaf_config(), cache)?.into_pair_kind(),
    ))
}

/// The rollup's circuit set: the work leaf and the tx kernel, the merge and block kernels, and
/// the aggregation circuits over them (one final key for work trees and blocks alike).
pub fn circuit_set(
    settings: AggregationSettings,
    leaf_rows_log2: usize,
    cache: Option<&ArtifactCache>,
) -> Result<CircuitSet, CircuitError> {
    let params = KindParams {
        profile: settings.profile,
        leaf_rows_log2,
        arity: settings.arity,
    };
    let catalog = catalog();
    let kinds = catalog.build(
        [WORK_LEAF_KIND, TX_KIND, TX_PAIR_KIND, CLAIM_KIND],
        &params,
        cache,
    )?;
    let rules = catalog.build_rules([MERGE_RULE, BLOCK_RULE])?;
    CircuitSet::from_parts(settings, kinds, &rules, cache)
}

/// The whitelist name of the tx kind's leaf node (the first level of the batch kernel).
pub const TX_LEAF_NODE: &str = "node:tx";

/// The whitelist name of the pair kind's leaf node (a local transaction's two halves joined).
pub const TX_PAIR_NODE: &str = "node:tx-pair";

/// A position no whitelist has (its tree holds 16 keys): what a rule accepts for a circuit the
/// set does not hold, so that it accepts nothing there.
const NO_POSITION: u64 = 1 << 20;

/// The whitelist position of `name` as a constant, or one no child can have.
fn position_in(positions: &WhitelistPositions, name: &str) -> F {
    F::from_canonical_u64(positions.get(name).map_or(NO_POSITION, |p| p as u64))
}

/// Constrain a child's whitelist `position` to be that of one of the circuits `names`
/// (`∏ (p − c_i) = 0`), when `active` (always when `None`).
fn assert_one_of(
    b: &mut gadgets::Builder,
    active: Option<plonky2::iop::target::BoolTarget>,
    position: plonky2::iop::target::Target,
    positions: &WhitelistPositions,
    names: &[&str],
) {
    let mut product = b.one();
    for name in names {
        let constant = b.constant(position_in(positions, name));
        let difference = b.sub(position, constant);
        product = b.mul(product, difference);
    }
    if let Some(active) = active {
        product = b.mul(active.target, product);
    }
    b.assert_zero(product);
}

/// The circuits whose statements are transitions: what the merge and block rules read.
const TRANSITION_NODES: [&str; 3] = [TX_LEAF_NODE, TX_PAIR_NODE, "kernel:merge"];

/// A kernel job's witness refused natively.
fn kernel_error(rule: &str, reason: String) -> CircuitError {
    CircuitError::BadInputs {
        kind: format!("kernel:{rule}"),
        reason,
    }
}
