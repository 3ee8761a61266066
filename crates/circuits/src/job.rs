//! Jobs as the proving core sees them: which circuit proves a job ([`JobCircuit`], from
//! `sheaf-types`, so the store, the API and every prover name it alike), and the set of circuits a coordinator and its provers
//! share ([`CircuitSet`]): what a job's proof must carry, its verifier key, and proving it.

use std::collections::BTreeMap;
use std::sync::Arc;

use plonky2::plonk::circuit_data::{
    CircuitData, CommonCircuitData, VerifierCircuitData, VerifierOnlyCircuitData,
};
pub use sheaf_types::{JobCircuit, JobInputs, UnknownCircuit};

use crate::aggregation::{AggregationCircuits, AggregationSettings};
use crate::cache::ArtifactCache;
use crate::claim::CLAIM_KIND;
use crate::digest::{Digest, WorkerSecret};
use crate::error::{CircuitError, Result};
use crate::header::{Header, JobStats};
use crate::kind::{KindCatalog, KindParams, KindRegistry, LeafKind};
use crate::node::{node_header, Child};
use crate::rule::NodeRule;
use crate::tree::TreePlan;
use crate::work::WORK_LEAF_KIND;
use crate::{Proof, C, D, F};

/// The circuits of one proving network: its registered leaf kinds and the aggregation circuits
/// over all of them (a leaf node per kind, one universal node, one final key).
pub struct CircuitSet {
    kinds: KindRegistry,
    /// Every kind's leaf key digest, by name: of the registered kinds, and in a lean set (see
    /// [`CircuitSet::load_lean`]) of the kinds held only as verifiers too.
    kind_keys: BTreeMap<String, Digest>,
    /// The aggregation circuits.
    pub aggregation: AggregationCircuits,
    /// Loaded without prover data (from a verifier-only cache): verifies, cannot prove.
    verifier_only: bool,
}

impl std::fmt::Debug for CircuitSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitSet")
            .field("kinds", &self.kinds)
            .field("settings", &self.aggregation.settings())
            .finish()
    }
}

impl CircuitSet {
    /// Load (or build and cache) the standard set: the work leaf of `2^leaf_rows_log2` rows as
    /// its one kind and the aggregation circuits of `settings` over it.
    pub fn load_or_build(
        settings: AggregationSettings,
        leaf_rows_log2: usize,
        cache: Option<&ArtifactCache>,
    ) -> Result<Self> {
        let params = KindParams {
            profile: settings.profile,
            leaf_rows_log2,
            arity: settings.arity,
        };
        let kinds = KindCatalog::standard().build([WORK_LEAF_KIND, CLAIM_KIND], &params, cache)?;
        Self::from_kinds(settings, kinds, cache)
    }

    /// Load (or build and cache) the aggregation circuits of `settings` over every kind of
    /// `kinds`: the whitelist holds one leaf node per kind.
    pub fn from_kinds(
        settings: AggregationSettings,
        kinds: KindRegistry,
        cache: Option<&ArtifactCache>,
    ) -> Result<Self> {
        Self::from_parts(settings, kinds, &[], cache)
    }

    /// As [`Self::from_kinds`], with a kernel node for each of `rules` in the whitelist too.
    pub fn from_parts(
        settings: AggregationSettings,
        kinds: KindRegistry,
        rules: &[Arc<dyn NodeRule>],
        cache: Option<&ArtifactCache>,
    ) -> Result<Self> {
        if let Some(rule) = rules.iter().find(|r| kinds.get(r.name()).is_ok()) {
            return Err(CircuitError::InvalidArgument(format!(
                "kernel rule {:?} has the name of a leaf kind",
                rule.name()
            )));
        }
        let aggregation = AggregationCircuits::load_or_build_with_rules(
            settings,
            &kinds.verifiers(),
            rules,
            cache,
        )?;
        let kind_keys = kinds
            .iter()
            .map(|kind| (kind.name().to_owned(), kind.key_digest()))
            .collect();
        Ok(CircuitSet {
            kinds,
            kind_keys,
            aggregation,
            verifier_only: cache.is_some_and(ArtifactCache::is_verifier_only),
        })
    }

    /// Whether this set was loaded to verify only: it checks proofs, and refuses to prove
    /// ([`CircuitError::VerifierOnly`]).
    pub fn is_verifier_only(&self) -> bool {
        self.verifier_only
    }

    /// The set of `settings` over the kinds `names` (from `catalog`) and the kernel `rules`,
    /// loaded for a claimant that proves only with the `keep` kinds: those kinds, their leaf
    /// nodes and the universal node are held in full, every other kind and node only as keys
    /// (see [`KindCatalog::build_lean`] and [`AggregationCircuits::load_lean`]). Its whitelist
    /// root and final key are the full set's; it proves jobs of the kept circuits only.
    pub fn load_lean<'n>(
        settings: AggregationSettings,
        catalog: &KindCatalog,
        names: impl IntoIterator<Item = &'n str>,
        leaf_rows_log2: usize,
        rules: &[Arc<dyn NodeRule>],
        cache: &ArtifactCache,
        keep: &[&str],
    ) -> Result<Self> {
        let params = KindParams {
            profile: settings.profile,
            leaf_rows_log2,
            arity: settings.arity,
        };
        let (kinds, verifiers) = catalog.build_lean(names, &params, Some(cache), keep)?;
        if let Some(rule) = rules
            .iter()
            .find(|r| verifiers.iter().any(|v| v.kind == r.name()))
        {
            return Err(CircuitError::InvalidArgument(format!(
                "kernel rule {:?} has the name of a leaf kind",
                rule.name()
            )));
        }
        let kind_keys = verifiers
            .iter()
            .map(|v| {
                (
                    v.kind.clone(),
                    crate::whitelist::key_digest(&v.verifier_only),
                )
            })
            .collect();
        let aggregation = AggregationCircuits::load_lean(settings, &verifiers, rules, cache, keep)?;
        Ok(CircuitSet {
            kinds,
            kind_keys,
            aggregation,
            verifier_only: cache.is_verifier_only(),
        })
    }

    /// The leaf key digest of the kind `name`, whether the set holds the kind in full or (lean)
    /// only as its verifier: what a coordinator's circuit spec names for the kind.
    pub fn kind_key(&self, name: &str) -> Option<Digest> {
        self.kind_keys.get(name).copied()
    }

    /// The rule of the kernel node `name`.
    pub fn rule(&self, name: &str) -> Result<&dyn NodeRule> {
        self.aggregation
            .rules()
            .iter()
            .find(|r| r.name() == name)
            .map(AsRef::as_ref)
            .ok_or_else(|| CircuitError::UnknownKind(format!("kernel:{name}")))
    }

    /// The registered leaf kinds.
    pub fn kinds(&self) -> &KindRegistry {
        &self.kinds
    }

    /// The registered leaf kind `name`.
    pub fn kind(&self, name: &str) -> Result<&dyn LeafKind> {
        self.kinds.get(name)
    }

    fn data(&self, circuit: &JobCircuit) -> Result<&CircuitData<F, C, D>> {
        Ok(match circuit {
            JobCircuit::Leaf { kind } => self.kind(kind)?.leaf_data(),
            JobCircuit::LeafNode { kind } => &self.aggregation.leaf_node(kind)?.data,
            JobCircuit::Universal => &self.aggregation.universal().data,
            JobCircuit::Kernel { name } => &self.aggregation.kernel_node(name)?.data,
            JobCircuit::Wrap => self.wrap()?.data(),
        })
    }

    /// The rule a node of `circuit` applies: a kernel node's, or a leaf node's whose kind has
    /// one; `None` for the universal node and plain leaf nodes.
    pub fn node_rule(&self, circuit: &JobCircuit) -> Result<Option<&dyn NodeRule>> {
        Ok(match circuit {
            JobCircuit::Kernel { name } => Some(self.rule(name)?),
            JobCircuit::LeafNode { kind } => self
                .aggregation
                .leaf_node(kind)?
                .leaf_verifier()
                .and_then(|leaf| leaf.node_rule.as_deref()),
            _ => None,
        })
    }

    /// The key of a node-shaped circuit (universal, leaf node or kernel node): what a child of
    /// the universal node or of a kernel node may be.
    fn node_key(&self, circuit: &JobCircuit) -> Result<&VerifierOnlyCircuitData<C, D>> {
        match circuit {
            JobCircuit::LeafNode { .. } | JobCircuit::Universal | JobCircuit::Kernel { .. } => {
                Ok(&self.data(circuit)?.verifier_only)
            }
            other => Err(CircuitError::InvalidArgument(format!(
                "{other} proofs are not of the universal shape"
            ))),
        }
    }

    /// The shape of proofs of `circuit`, to decode them.
    pub fn common(&self, circuit: &JobCircuit) -> Result<&CommonCircuitData<F, D>> {
        Ok(&self.data(circuit)?.common)
    }

    /// The verifier key (and shape) of proofs of `circuit`.
    pub fn verifier_data(&self, circuit: &JobCircuit) -> Result<VerifierCircuitData<F, C, D>> {
        let data = self.data(circuit)?;
        Ok(VerifierCircuitData {
            verifier_only: data.verifier_only.clone(),
            common: data.common.clone(),
        })
    }

    fn wrap(&self) -> Result<&crate::wrap::FinalWrap> {
        self.aggregation.final_wrap().ok_or_else(|| {
            CircuitError::InvalidArgument("these circuits do not wrap the root".into())
        })
    }

    /// The header a proof of `circuit` by the worker `worker_pk` must carry: by its kind's
    /// rule over the job's `inputs` for a leaf, over the children's headers otherwise.
    pub fn expected_header(
        &self,
        circuit: &JobCircuit,
        inputs: &JobInputs,
        children: &[Header],
        worker_pk: Digest,
    ) -> Result<Header> {
        match circuit {
            JobCircuit::Leaf { kind } => self
                .kind(kind)?
                .expected_job_header(inputs, children, worker_pk),
            JobCircuit::LeafNode { .. } | JobCircuit::Universal | JobCircuit::Kernel { .. } => {
                let arity = self.aggregation.settings().arity;
                if children.is_empty() || children.len() > arity {
                    return Err(CircuitError::BadChildCount {
                        arity,
                        got: children.len(),
                    });
                }
                let mut header =
                    node_header(children, worker_pk, self.aggregation.universal().weight());
                if let Some(rule) = self.node_rule(circuit)? {
                    header.statement =
                        rule.statement(&kernel_fields(rule.name(), inputs)?, children)?;
                }
                Ok(header)
            }
            JobCircuit::Wrap => match children {
                [root] => Ok(*root),
                _ => Err(CircuitError::BadChildCount {
                    arity: 1,
                    got: children.len(),
                }),
            },
        }
    }

    /// The statement the root of a sequence of `leaves` work leaves seeded by `seed` proves:
    /// what the chain registers before any proof exists. It depends only on the work and the
    /// tree's shape, not on who proves which node.
    pub fn sequence_statement(&self, leaves: usize, seed: u64) -> Result<Digest> {
        let tree = TreePlan::new(leaves, self.aggregation.settings().arity)?;
        let work = self.kind(WORK_LEAF_KIND)?;
        let leaf_headers = (0..leaves as u64)
            .map(|index| {
                let inputs = JobInputs::Work { seed, index };
                Ok(Header {
                    commitment: Digest::default(),
                    worker_pk: Digest::default(),
                    stats: JobStats::default(),
                    statement: work
                        .expected_job_header(&inputs, &[], Digest::default())?
                        .statement,
                })
            })
            .collect::<Result<Vec<Header>>>()?;
        let root = tree.expected_root_header(&leaf_headers, 0, |_, _| Digest::default());
        Ok(root.statement)
    }

    /// The whitelist root proofs of `circuit` carry after the header (none for leaves).
    pub fn whitelist_root(&self, circuit: &JobCircuit) -> Option<Digest> {
        match circuit {
            JobCircuit::Leaf { .. } => None,
            _ => Some(self.aggregation.whitelist().root()),
        }
    }

    /// Prove a job of `circuit` for `worker`: a leaf by its kind from the job's `inputs`, a node
    /// or the wrap from its children's proofs (each with the circuit that made it), in order.
    pub fn prove_job(
        &self,
        circuit: &JobCircuit,
        inputs: &JobInputs,
        children: &[(JobCircuit, Proof)],
        worker: &WorkerSecret,
    ) -> Result<Proof> {
        if self.verifier_only {
            return Err(CircuitError::VerifierOnly);
        }
        match circuit {
            JobCircuit::Leaf { kind } => self.kind(kind)?.prove_job(inputs, worker),
            JobCircuit::LeafNode { kind } => {
                let node = self.aggregation.leaf_node(kind)?;
                let key = &self.kind(kind)?.leaf_data().verifier_only;
                let children = children
                    .iter()
                    .map(|(child, proof)| match child {
                        JobCircuit::Leaf { kind: k } if k == kind => Ok(Child { proof, key }),
                        other => Err(CircuitError::InvalidArgument(format!(
                            "a {circuit} job aggregates leaf:{kind} proofs, not {other}"
                        ))),
                    })
                    .collect::<Result<Vec<_>>>()?;
                let whitelist = self.aggregation.whitelist();
                match self.node_rule(circuit)? {
                    Some(rule) => node.prove_kernel(
                        &children,
                        worker,
                        whitelist,
                        &kernel_fields(rule.name(), inputs)?,
                    ),
                    None => node.prove(&children, worker, whitelist),
                }
            }
            JobCircuit::Universal | JobCircuit::Kernel { .. } => {
                let children = children
                    .iter()
                    .map(|(child, proof)| {
                        let key = self.node_key(child).map_err(|_| {
                            CircuitError::InvalidArgument(format!(
                                "a {circuit} job does not aggregate {child} proofs"
                            ))
                        })?;
                        Ok(Child { proof, key })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let whitelist = self.aggregation.whitelist();
                match circuit {
                    JobCircuit::Kernel { name } => self
                        .aggregation
                        .kernel_node(name)?
                        .prove_kernel(&children, worker, whitelist, &kernel_fields(name, inputs)?),
                    _ => self
                        .aggregation
                        .universal()
                        .prove(&children, worker, whitelist),
                }
            }
            JobCircuit::Wrap => match children {
                [(JobCircuit::Universal, root)] => self.wrap()?.prove(root),
                _ => Err(CircuitError::InvalidArgument(
                    "a wrap job takes exactly one universal root proof".into(),
                )),
            },
        }
    }
}

/// A kernel job's witness: its inputs' fields, which must be tagged with the rule's name.
fn kernel_fields(name: &str, inputs: &JobInputs) -> Result<serde_json::Value> {
    match (inputs.leaf_kind(), inputs.leaf_fields()) {
        (Some(kind), Some(fields)) if kind == name => Ok(fields),
        _ => Err(CircuitError::BadInputs {
            kind: format!("kernel:{name}"),
            reason: format!("the inputs are not {{\"kind\":\"{name}\",…}}"),
        }),
    }
}
