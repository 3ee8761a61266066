//! The set of aggregation circuits for one configuration: a leaf node per leaf kind and the
//! universal node, all of the universal shape, and the whitelist of their keys.
//!
//! The universal shape is a fixed point: the universal node verifies proofs of its own shape, so
//! its shape is found by building it against a guess and growing the guess (degree, gate set)
//! until the node fits inside it. Leaf nodes are then padded to the same shape. The whole set is
//! cached by [`ArtifactCache`], so this happens once per configuration and machine.

use std::collections::BTreeMap;
use std::sync::Arc;

use rayon::prelude::*;

use plonky2::gates::noop::NoopGate;
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{
    CircuitConfig, CircuitData, CommonCircuitData, VerifierCircuitData,
};

use crate::cache::{ArtifactCache, Fingerprint};
use crate::config::Profile;
use crate::digest::Digest;
use crate::error::{CircuitError, Result};
use crate::header::NODE_PUBLIC_INPUTS;
use crate::key::FinalKey;
use crate::leaf::{work_units_for_rows, LeafVerifier};
use crate::node::{node_body, Children, KernelRule, NodeCircuit, Padding};
use crate::rule::{NodeRule, WhitelistPositions};
use crate::whitelist::{key_digest, Whitelist};
use crate::wrap::{FinalWrap, WrapStyle};
use crate::{C, D, F};

/// Default number of children per aggregation node.
pub const DEFAULT_ARITY: usize = 2;
/// Largest supported arity.
pub const MAX_ARITY: usize = 8;
/// Degree the shape search starts from.
const INITIAL_SHAPE_BITS: usize = 12;

/// What selects one set of aggregation circuits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AggregationSettings {
    /// Circuit configurations.
    pub profile: Profile,
    /// Children per node.
    pub arity: usize,
    /// Wrap the root in one zero-knowledge proof (needless when the profile's nodes are
    /// zero-knowledge already).
    pub final_zk: bool,
    /// Wrap the root in the compact wrap: a final proof tuned for size (zero-knowledge too
    /// with `final_zk`), see [`WrapStyle::Compact`].
    pub final_compact: bool,
}

impl Default for AggregationSettings {
    fn default() -> Self {
        AggregationSettings {
            profile: Profile::Standard,
            arity: DEFAULT_ARITY,
            final_zk: false,
            final_compact: false,
        }
    }
}

impl AggregationSettings {
    /// The node configuration these settings select.
    pub fn node_config(&self) -> CircuitConfig {
        self.profile.node_config()
    }

    /// How the root is wrapped, if it is: compactly when asked, else in one zero-knowledge
    /// proof when asked and the nodes are not zero-knowledge already.
    pub fn wrap_style(&self) -> Option<WrapStyle> {
        if self.final_compact {
            Some(WrapStyle::Compact {
                zero_knowledge: self.final_zk && !self.node_config().zero_knowledge,
            })
        } else if self.final_zk && !self.node_config().zero_knowledge {
            Some(WrapStyle::ZeroKnowledge)
        } else {
            None
        }
    }

    /// Whether the root is wrapped.
    pub fn wraps_final(&self) -> bool {
        self.wrap_style().is_some()
    }

    /// Whether the final proof is zero-knowledge.
    pub fn final_is_zero_knowledge(&self) -> bool {
        self.final_zk || self.node_config().zero_knowledge
    }

    fn fingerprint_params(&self, leaves: &[LeafVerifier], rules: &[Arc<dyn NodeRule>]) -> String {
        let mut params = format!("arity={} node={:?}", self.arity, self.node_config());
        for leaf in leaves {
            params.push_str(&format!(
                " {}={}",
                leaf.kind,
                key_digest(&leaf.verifier_only)
            ));
            if let Some(rule) = &leaf.node_rule {
                params.push_str(&format!("+kernel:{}={}", rule.name(), rule.version()));
            }
        }
        for rule in rules {
            params.push_str(&format!(" kernel:{}={}", rule.name(), rule.version()));
        }
        params
    }
}

/// The aggregation circuits of one configuration.
pub struct AggregationCircuits {
    settings: AggregationSettings,
    leaf_nodes: BTreeMap<String, NodeCircuit>,
    leaf_verifiers: Vec<LeafVerifier>,
    kernel_nodes: BTreeMap<String, NodeCircuit>,
    rules: Vec<Arc<dyn NodeRule>>,
    universal: NodeCircuit,
    final_wrap: Option<FinalWrap>,
    whitelist: Whitelist,
    from_cache: bool,
}

impl std::fmt::Debug for AggregationCircuits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AggregationCircuits")
            .field("settings", &self.settings)
            .field("universal", &self.universal)
            .field("whitelist_root", &self.whitelist.root())
            .finish()
    }
}

impl AggregationCircuits {
    /// Load the circuits from `cache`, or build them and store them there.
    pub fn load_or_build(
        settings: AggregationSettings,
        leaves: &[LeafVerifier],
        cache: Option<&ArtifactCache>,
    ) -> Result<Self> {
        Self::load_or_build_with_rules(settings, leaves, &[], cache)
    }

    /// As [`Self::load_or_build`], with a kernel node for each of `rules` in the whitelist too.
    pub fn load_or_build_with_rules(
        settings: AggregationSettings,
        leaves: &[LeafVerifier],
        rules: &[Arc<dyn NodeRule>],
        cache: Option<&ArtifactCache>,
    ) -> Result<Self> {
        if let Some(circuits) =
            cache.and_then(|c| Self::load_with_rules(settings, leaves, rules, c))
        {
            return Ok(circuits);
        }
        let circuits = Self::build_with_rules(settings, leaves, rules)?;
        if let Some(cache) = cache {
            circuits.store(cache);
            if cache.is_verifier_only() {
                // Built whole (nothing was cached): kept only as the verifier sides just stored.
                match Self::load_with_rules(settings, leaves, rules, cache) {
                    Some(hollow) => return Ok(hollow),
                    None => {
                        tracing::warn!(target: "sheaf::circuits", dir = %cache.dir().display(), "the circuits just built could not be read back from the cache: keeping them whole")
                    }
                }
            }
        }
        Ok(circuits)
    }

    /// Build the circuits from scratch: find the universal shape, then build every node in it.
    pub fn build(settings: AggregationSettings, leaves: &[LeafVerifier]) -> Result<Self> {
        Self::build_with_rules(settings, leaves, &[])
    }

    /// As [`Self::build`], with a kernel node for each of `rules` in the whitelist too.
    pub fn build_with_rules(
        settings: AggregationSettings,
        leaves: &[LeafVerifier],
        rules: &[Arc<dyn NodeRule>],
    ) -> Result<Self> {
        check(&settings, leaves, rules)?;
        let config = settings.node_config();
        let positions = whitelist_positions(leaves, rules);
        let shape = universal_shape(&config, settings.arity, leaves, rules, &positions)?;
        let weight = work_units_for_rows(shape.degree_bits());
        let padding = Some(Padding { target: &shape });
        // Much of a circuit build is serial: build the nodes side by side.
        let ((universal, kernel_nodes), leaf_nodes) = rayon::join(
            || {
                rayon::join(
                    || {
                        node_body(
                            config.clone(),
                            settings.arity,
                            Children::Universal(&shape),
                            weight,
                            None,
                        )
                        .build(settings.arity, None, weight, padding)
                    },
                    || {
                        rules
                            .par_iter()
                            .map(|rule| {
                                kernel_body(
                                    &config,
                                    settings.arity,
                                    &shape,
                                    weight,
                                    rule,
                                    &positions,
                                )
                                .build(settings.arity, None, weight, padding)
                                .map(|node| (rule.name().to_owned(), node))
                            })
                            .collect::<Result<BTreeMap<_, _>>>()
                    },
                )
            },
            || {
                leaves
                    .par_iter()
                    .map(|leaf| {
                        leaf_body(&config, settings.arity, leaf, weight, &positions)
                            .build(settings.arity, Some(leaf.clone()), weight, padding)
                            .map(|node| (leaf.kind.clone(), node))
                    })
                    .collect::<Result<BTreeMap<_, _>>>()
            },
        );
        let (universal, kernel_nodes, leaf_nodes) = (universal?, kernel_nodes?, leaf_nodes?);
        let final_wrap = settings
            .wrap_style()
            .map(|style| FinalWrap::build(style, &config, &universal.data));
        Self::assemble(
            settings,
            universal,
            leaf_nodes,
            (kernel_nodes, rules.to_vec()),
            final_wrap,
            false,
        )
    }

    /// Load the circuits from `cache`; `None` when any is missing, stale or corrupt.
    pub fn load(
        settings: AggregationSettings,
        leaves: &[LeafVerifier],
        cache: &ArtifactCache,
    ) -> Option<Self> {
        Self::load_with_rules(settings, leaves, &[], cache)
    }

    /// As [`Self::load`], with a kernel node for each of `rules`.
    pub fn load_with_rules(
        settings: AggregationSettings,
        leaves: &[LeafVerifier],
        rules: &[Arc<dyn NodeRule>],
        cache: &ArtifactCache,
    ) -> Option<Self> {
        check(&settings, leaves, rules).ok()?;
        let config = settings.node_config();
        let fps = fingerprints(&settings, leaves, rules);
        let universal = load_universal(&settings, cache, &fps[0])?;
        let shape = universal.data.common.clone();
        let weight = universal.weight();
        let positions = whitelist_positions(leaves, rules);
        let mut leaf_nodes = BTreeMap::new();
        for (leaf, fp) in leaves.iter().zip(&fps[1..]) {
            let data = cache
                .load_circuit(&leaf_artifact(&leaf.kind), fp)
                .filter(|data| data.common == shape)?;
            let rule = leaf.node_rule.as_ref().map(|r| r.name());
            let node = loaded_node(
                cache,
                (settings.arity, Some(leaf.clone()), rule),
                weight,
                data,
                || leaf_body(&config, settings.arity, leaf, weight, &positions),
            );
            leaf_nodes.insert(leaf.kind.clone(), node);
        }
        let mut kernel_nodes = BTreeMap::new();
        for (rule, fp) in rules.iter().zip(&fps[1 + leaves.len()..]) {
            let data = cache
                .load_circuit(&kernel_artifact(rule.name()), fp)
                .filter(|data| data.common == shape)?;
            let node = loaded_node(
                cache,
                (settings.arity, None, Some(rule.name())),
                weight,
                data,
                || kernel_body(&config, settings.arity, &shape, weight, rule, &positions),
            );
            kernel_nodes.insert(rule.name().to_owned(), node);
        }
        let final_wrap = load_wrap(&settings, leaves, rules, cache, &universal)?;
        Self::assemble(
            settings,
            universal,
            leaf_nodes,
            (kernel_nodes, rules.to_vec()),
            final_wrap,
            true,
        )
        .ok()
    }

    /// Write the circuits to `cache`.
    pub fn store(&self, cache: &ArtifactCache) {
        let (leaves, rules) = (&self.leaf_verifiers, &self.rules);
        let fps = fingerprints(&self.settings, leaves, rules);
        cache.store_circuit(UNIVERSAL_ARTIFACT, &fps[0], &self.universal.data);
        if let Some(wrap) = &self.final_wrap {
            let fp = wrap_fingerprint(&self.settings, leaves, rules);
            for (stage, data) in wrap.stage_data().enumerate() {
                cache.store_circuit(&wrap_artifact(wrap.style(), stage), &fp, data);
            }
        }
        for (leaf, fp) in leaves.iter().zip(&fps[1..]) {
            if let Some(node) = self.leaf_nodes.get(&leaf.kind) {
                cache.store_circuit(&leaf_artifact(&leaf.kind), fp, &node.data);
            }
        }
        for (rule, fp) in rules.iter().zip(&fps[1 + leaves.len()..]) {
            if let Some(node) = self.kernel_nodes.get(rule.name()) {
                cache.store_circuit(&kernel_artifact(rule.name()), fp, &node.data);
            }
        }
    }

    /// Load the circuits a claimant proves with from `cache`, holding the rest only as keys:
    /// the universal node and the leaf nodes of the `keep` kinds in full (with their prover
    /// data), every other node as its key digest in the whitelist. A node's digest comes from
    /// its verifier artifact; when that is missing the node is loaded alone, its digest taken
    /// (and stored) and the node dropped before the next. When the universal node or a kept node
    /// is not cached, the whole set is built (or loaded) once, stored, and thinned.
    ///
    /// The whitelist and the final key are the full set's: proofs made with the lean set verify
    /// under the network's one final key. Kernel nodes cannot prove from a lean set.
    pub fn load_lean(
        settings: AggregationSettings,
        leaves: &[LeafVerifier],
        rules: &[Arc<dyn NodeRule>],
        cache: &ArtifactCache,
        keep: &[&str],
    ) -> Result<Self> {
        check(&settings, leaves, rules)?;
        if let Some(lean) = Self::try_load_lean(settings, leaves, rules, cache, keep) {
            return Ok(lean);
        }
        tracing::info!(target: "sheaf::circuits", "no cached aggregation circuits to load lean: loading or building the full set once");
        let full = Self::load_or_build_with_rules(settings, leaves, rules, Some(cache))?;
        Ok(full.into_lean(keep))
    }

    fn try_load_lean(
        settings: AggregationSettings,
        leaves: &[LeafVerifier],
        rules: &[Arc<dyn NodeRule>],
        cache: &ArtifactCache,
        keep: &[&str],
    ) -> Option<Self> {
        let config = settings.node_config();
        let fps = fingerprints(&settings, leaves, rules);
        let universal = load_universal(&settings, cache, &fps[0])?;
        let shape = universal.data.common.clone();
        let weight = universal.weight();
        let positions = whitelist_positions(leaves, rules);
        let mut leaf_nodes = BTreeMap::new();
        let mut leaf_keys = BTreeMap::new();
        for (leaf, fp) in leaves.iter().zip(&fps[1..]) {
            let artifact = leaf_artifact(&leaf.kind);
            if keep.contains(&leaf.kind.as_str()) {
                let data = cache
                    .load_circuit(&artifact, fp)
                    .filter(|data| data.common == shape)?;
                let node = leaf_body(&config, settings.arity, leaf, weight, &positions)
                    .into_circuit(settings.arity, Some(leaf.clone()), weight, data);
                leaf_keys.insert(leaf.kind.clone(), key_digest(&node.data.verifier_only));
                leaf_nodes.insert(leaf.kind.clone(), node);
            } else {
                leaf_keys.insert(leaf.kind.clone(), cached_key(cache, &artifact, fp, &shape)?);
            }
        }
        let mut kernel_keys = BTreeMap::new();
        for (rule, fp) in rules.iter().zip(&fps[1 + leaves.len()..]) {
            let key = cached_key(cache, &kernel_artifact(rule.name()), fp, &shape)?;
            kernel_keys.insert(rule.name().to_owned(), key);
        }
        let final_wrap = load_wrap(&settings, leaves, rules, cache, &universal)?;
        // In the order of `whitelist_positions`: universal, leaf nodes, kernel nodes (by name).
        let mut keys = vec![key_digest(&universal.data.verifier_only)];
        keys.extend(leaf_keys.into_values().chain(kernel_keys.into_values()));
        let whitelist = Whitelist::new(keys).ok()?;
        Some(AggregationCircuits {
            settings,
            leaf_nodes,
            leaf_verifiers: leaves.to_vec(),
            kernel_nodes: BTreeMap::new(),
            rules: rules.to_vec(),
            universal,
            final_wrap,
            whitelist,
            from_cache: true,
        })
    }

    /// This set without the nodes a claimant of the `keep` kinds does not prove with (see
    /// [`Self::load_lean`]); the whitelist stays the full set's.
    fn into_lean(mut self, keep: &[&str]) -> Self {
        self.leaf_nodes
            .retain(|kind, _| keep.contains(&kind.as_str()));
        self.kernel_nodes.clear();
        self
    }

    fn assemble(
        settings: AggregationSettings,
        universal: NodeCircuit,
        leaf_nodes: BTreeMap<String, NodeCircuit>,
        (kernel_nodes, rules): (BTreeMap<String, NodeCircuit>, Vec<Arc<dyn NodeRule>>),
        final_wrap: Option<FinalWrap>,
        from_cache: bool,
    ) -> Result<Self> {
        // In the order of `whitelist_positions`: universal, leaf nodes, kernel nodes (by name).
        let mut keys = vec![key_digest(&universal.data.verifier_only)];
        keys.extend(
            leaf_nodes
                .values()
                .chain(kernel_nodes.values())
                .map(|n| key_digest(&n.data.verifier_only)),
        );
        let whitelist = Whitelist::new(keys)?;
        let leaf_verifiers = leaf_nodes
            .values()
            .filter_map(|node| node.leaf_verifier().cloned())
            .collect();
        Ok(AggregationCircuits {
            settings,
            leaf_nodes,
            leaf_verifiers,
            kernel_nodes,
            rules,
            universal,
            final_wrap,
            whitelist,
            from_cache,
        })
    }

    /// The settings these circuits were built for.
    pub fn settings(&self) -> AggregationSettings {
        self.settings
    }

    /// Whether the universal node came from the artifact cache.
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }

    /// The universal node: every tree's root.
    pub fn universal(&self) -> &NodeCircuit {
        &self.universal
    }

    /// The leaf node of a leaf kind.
    pub fn leaf_node(&self, kind: &str) -> Result<&NodeCircuit> {
        self.leaf_nodes
            .get(kind)
            .ok_or_else(|| CircuitError::UnknownKind(kind.to_owned()))
    }

    /// The kernel node of the rule `name`.
    pub fn kernel_node(&self, name: &str) -> Result<&NodeCircuit> {
        self.kernel_nodes
            .get(name)
            .ok_or_else(|| CircuitError::UnknownKind(format!("kernel:{name}")))
    }

    /// The rules of this set's kernel nodes.
    pub fn rules(&self) -> &[Arc<dyn NodeRule>] {
        &self.rules
    }

    /// A leaf node for another leaf kind, of this set's shape. Its key is not in this set's
    /// whitelist: admitting a kind means rebuilding the set with it.
    pub fn build_leaf_node(&self, leaf: &LeafVerifier) -> Result<NodeCircuit> {
        let shape = &self.universal.data.common;
        let weight = self.universal.weight();
        let positions = whitelist_positions(std::slice::from_ref(leaf), &self.rules);
        leaf_body(
            &self.settings.node_config(),
            self.settings.arity,
            leaf,
            weight,
            &positions,
        )
        .build(
            self.settings.arity,
            Some(leaf.clone()),
            weight,
            Some(Padding { target: shape }),
        )
    }

    /// The whitelist of aggregation circuit keys.
    pub fn whitelist(&self) -> &Whitelist {
        &self.whitelist
    }

    /// The zero-knowledge wrap of the root, when the settings ask for one.
    pub fn final_wrap(&self) -> Option<&FinalWrap> {
        self.final_wrap.as_ref()
    }

    /// The one final verifier key: the wrap's when the root is wrapped, else the universal
    /// node's.
    pub fn final_key(&self) -> FinalKey {
        let data = match &self.final_wrap {
            Some(wrap) => wrap.data(),
            None => &self.universal.data,
        };
        FinalKey::new(
            VerifierCircuitData {
                verifier_only: data.verifier_only.clone(),
                common: data.common.clone(),
            },
            self.whitelist.root(),
        )
    }
}

/// The universal node of `settings` from `cache` (artifact fingerprint `fp`), if there.
fn load_universal(
    settings: &AggregationSettings,
    cache: &ArtifactCache,
    fp: &Fingerprint,
) -> Option<NodeCircuit> {
    let data = cache.load_circuit(UNIVERSAL_ARTIFACT, fp)?;
    let shape = data.common.clone();
    let weight = work_units_for_rows(shape.degree_bits());
    Some(loaded_node(
        cache,
        (settings.arity, None, None),
        weight,
        data,
        || {
            node_body(
                settings.node_config(),
                settings.arity,
                Children::Universal(&shape),
                weight,
                None,
            )
        },
    ))
}

/// A node of the cached circuit `data`, with its (arity, leaf, rule name): with its body laid
/// down again for the proving targets, or, from a verifier-only cache, without a body
/// ([`NodeCircuit::verifier_only`]: re-running a node's body costs more memory than the
/// verifier keeps).
fn loaded_node(
    cache: &ArtifactCache,
    (arity, leaf, rule): (usize, Option<LeafVerifier>, Option<&str>),
    weight: u64,
    data: CircuitData<F, C, D>,
    body: impl FnOnce() -> crate::node::NodeBody,
) -> NodeCircuit {
    match cache.is_verifier_only() {
        true => NodeCircuit::verifier_only(arity, leaf, rule.map(str::to_owned), weight, data),
        false => body().into_circuit(arity, leaf, weight, data),
    }
}

const UNIVERSAL_ARTIFACT: &str = "universal-node";
const WRAP_ARTIFACT: &str = "final-wrap";

/// The key digest of the cached node `artifact`, from its verifier side (see
/// [`ArtifactCache::load_verifier`]).
fn cached_key(
    cache: &ArtifactCache,
    artifact: &str,
    fp: &Fingerprint,
    shape: &CommonCircuitData<F, D>,
) -> Option<Digest> {
    let verifier = cache
        .load_verifier(artifact, fp)
        .filter(|verifier| &verifier.common == shape)?;
    Some(key_digest(&verifier.verifier_only))
}

fn leaf_artifact(kind: &str) -> String {
    format!("leaf-node-{kind}")
}

fn kernel_artifact(name: &str) -> String {
    format!("kernel-node-{name}")
}

/// The body of `leaf`'s leaf node (with the kind's rule, if it has one).
fn leaf_body(
    config: &CircuitConfig,
    arity: usize,
    leaf: &LeafVerifier,
    weight: u64,
    positions: &WhitelistPositions,
) -> crate::node::NodeBody {
    node_body(
        config.clone(),
        arity,
        Children::Leaf(leaf),
        weight,
        leaf.node_rule.as_ref().map(|rule| KernelRule {
            rule: rule.as_ref(),
            positions,
        }),
    )
}

/// The body of `rule`'s kernel node, over children of `shape`.
fn kernel_body(
    config: &CircuitConfig,
    arity: usize,
    shape: &CommonCircuitData<F, D>,
    weight: u64,
    rule: &Arc<dyn NodeRule>,
    positions: &WhitelistPositions,
) -> crate::node::NodeBody {
    node_body(
        config.clone(),
        arity,
        Children::Universal(shape),
        weight,
        Some(KernelRule {
            rule: rule.as_ref(),
            positions,
        }),
    )
}

/// Where each circuit sits in the whitelist: the universal node, then a leaf node per kind and a
/// kernel node per rule, each by name ([`AggregationCircuits`] assembles the keys in this order).
pub fn whitelist_positions(
    leaves: &[LeafVerifier],
    rules: &[Arc<dyn NodeRule>],
) -> WhitelistPositions {
    let mut kinds: Vec<&str> = leaves.iter().map(|l| l.kind.as_str()).collect();
    kinds.sort_unstable();
    let mut names: Vec<&str> = rules.iter().map(|r| r.name()).collect();
    names.sort_unstable();
    let circuits = std::iter::once("universal".to_owned())
        .chain(kinds.iter().map(|k| format!("node:{k}")))
        .chain(names.iter().map(|n| format!("kernel:{n}")));
    WhitelistPositions(circuits.enumerate().map(|(i, name)| (name, i)).collect())
}

fn check(
    settings: &AggregationSettings,
    leaves: &[LeafVerifier],
    rules: &[Arc<dyn NodeRule>],
) -> Result<()> {
    let mut names: Vec<&str> = rules.iter().map(|r| r.name()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(CircuitError::InvalidArgument(
            "two kernel rules share a name".into(),
        ));
    }
    if !(2..=MAX_ARITY).contains(&settings.arity) {
        return Err(CircuitError::InvalidArgument(format!(
            "arity must be 2 to {MAX_ARITY}, got {}",
            settings.arity
        )));
    }
    if leaves.is_empty() {
        return Err(CircuitError::InvalidArgument("no leaf kinds".into()));
    }
    Ok(())
}

/// Fingerprints of the universal node, then of each leaf node in `leaves` order, then of each
/// kernel node in `rules` order.
fn fingerprints(
    settings: &AggregationSettings,
    leaves: &[LeafVerifier],
    rules: &[Arc<dyn NodeRule>],
) -> Vec<Fingerprint> {
    let params = settings.fingerprint_params(leaves, rules);
    std::iter::once(Fingerprint::new(UNIVERSAL_ARTIFACT, &params))
        .chain(
            leaves
                .iter()
                .map(|leaf| Fingerprint::new(&leaf_artifact(&leaf.kind), &params)),
        )
        .chain(
            rules
                .iter()
                .map(|rule| Fingerprint::new(&kernel_artifact(rule.name()), &params)),
        )
        .collect()
}

fn wrap_fingerprint(
    settings: &AggregationSettings,
    leaves: &[LeafVerifier],
    rules: &[Arc<dyn NodeRule>],
) -> Fingerprint {
    let mut params = settings.fingerprint_params(leaves, rules);
    if let Some(style @ WrapStyle::Compact { .. }) = settings.wrap_style() {
        params.push_str(&format!(" wrap={}", style.name()));
    }
    Fingerprint::new(WRAP_ARTIFACT, &params)
}

/// The artifact of stage `stage` of a wrap of `style` (the zero-knowledge wrap's one stage keeps
/// the name it had before wraps had stages).
fn wrap_artifact(style: WrapStyle, stage: usize) -> String {
    match style {
        WrapStyle::ZeroKnowledge => WRAP_ARTIFACT.to_owned(),
        WrapStyle::Compact { .. } => format!("{WRAP_ARTIFACT}-{}-{stage}", style.name()),
    }
}

/// The final wrap `settings` ask for, from `cache`: `Some(None)` when they ask for none, `None`
/// when a stage is missing, stale or corrupt.
fn load_wrap(
    settings: &AggregationSettings,
    leaves: &[LeafVerifier],
    rules: &[Arc<dyn NodeRule>],
    cache: &ArtifactCache,
    universal: &NodeCircuit,
) -> Option<Option<FinalWrap>> {
    let Some(style) = settings.wrap_style() else {
        return Some(None);
    };
    let config = settings.node_config();
    let fp = wrap_fingerprint(settings, leaves, rules);
    let stages = (0..style.stage_configs(&config).len())
        .map(|stage| cache.load_circuit(&wrap_artifact(style, stage), &fp))
        .collect::<Option<Vec<_>>>()?;
    let verifier_only = cache.is_verifier_only();
    FinalWrap::from_data(style, &config, &universal.data, stages, verifier_only).map(Some)
}

/// Find the universal shape: the smallest (degree, gate set) that the universal node verifying
/// proofs of that shape fits in, and that every leaf node and kernel node fits in too.
fn universal_shape(
    config: &CircuitConfig,
    arity: usize,
    leaves: &[LeafVerifier],
    rules: &[Arc<dyn NodeRule>],
    positions: &WhitelistPositions,
) -> Result<CommonCircuitData<F, D>> {
    let mut gates = Vec::new();
    let mut bits = INITIAL_SHAPE_BITS;
    for leaf in leaves {
        let common = leaf_body(config, arity, leaf, 1, positions).natural_shape();
        merge(&mut gates, &mut bits, &common);
    }
    for _ in 0..8 {
        let target = shape_circuit(config, &gates, bits);
        let weight = work_units_for_rows(target.degree_bits());
        let mut grew = false;
        for rule in rules {
            let common =
                kernel_body(config, arity, &target, weight, rule, positions).natural_shape();
            grew |= merge(&mut gates, &mut bits, &common);
        }
        let common = node_body(
            config.clone(),
            arity,
            Children::Universal(&target),
            weight,
            None,
        )
        .natural_shape();
        grew |= merge(&mut gates, &mut bits, &common);
        if !grew {
            tracing::debug!(target: "sheaf::circuits", degree_bits = bits, gates = gates.len(), "universal shape found");
            return Ok(target);
        }
    }
    Err(CircuitError::Build(
        "universal shape did not converge".into(),
    ))
}

/// Grow (`gates`, `bits`) to cover `common`; whether anything grew.
fn merge(
    gates: &mut Vec<plonky2::gates::gate::GateRef<F, D>>,
    bits: &mut usize,
    common: &CommonCircuitData<F, D>,
) -> bool {
    let mut grew = false;
    for gate in &common.gates {
        if !gates.iter().any(|g| g.0.id() == gate.0.id()) {
            gates.push(gate.clone());
            grew = true;
        }
    }
    if common.degree_bits() > *bits {
        *bits = common.degree_bits();
        grew = true;
    }
    grew
}

/// Common data of a circuit with `gates`, `2^bits` rows and the node's public inputs.
fn shape_circuit(
    config: &CircuitConfig,
    gates: &[plonky2::gates::gate::GateRef<F, D>],
    bits: usize,
) -> CommonCircuitData<F, D> {
    let mut builder = CircuitBuilder::<F, D>::new(config.clone());
    for gate in gates {
        builder.add_gate_to_gate_set(gate.clone());
    }
    while builder.num_gates() < (1 << bits) / 2 + 1 {
        builder.add_gate(NoopGate, vec![]);
    }
    for _ in 0..NODE_PUBLIC_INPUTS {
        builder.add_virtual_public_input();
    }
    builder.mock_build::<C>().common
}
