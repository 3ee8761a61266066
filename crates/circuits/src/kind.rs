//! Leaf kinds as the network sees them: what a coordinator and its provers must agree on to put
//! a kind's proofs at the bottom of a tree.
//!
//! ```text
//!  KindCatalog (what this binary can build: name → builder)
//!        │ build(names in the hello)            unknown name → CircuitError::UnknownKind
//!        ▼
//!  KindRegistry (the built kinds, by name) ──► AggregationCircuits (a leaf node per kind,
//!        │                                     whitelist over every kind's node)
//!        ▼
//!  dyn LeafKind: name · circuit · inputs (JobInputs fields → typed witness)
//!                · expected header (what the coordinator checks) · proving
//! ```
//!
//! A typed leaf circuit ([`LeafCircuit`]) is a [`LeafKind`] by a blanket impl: the kind decodes
//! its job's fields into its typed input, and its expected header is the standard leaf header
//! over the statement of that input. Only the work leaf is registered by default
//! ([`KindCatalog::standard`]); other kinds are added to a catalog by the binary that knows them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use plonky2::plonk::circuit_data::CircuitData;
use sheaf_types::JobInputs;

use crate::cache::ArtifactCache;
use crate::claim::{ClaimLeaf, CLAIM_KIND};
use crate::config::Profile;
use crate::digest::{Digest, WorkerSecret};
use crate::error::{CircuitError, Result};
use crate::header::Header;
use crate::leaf::{leaf_header, LeafCircuit, LeafVerifier};
use crate::rule::NodeRule;
use crate::whitelist::key_digest;
use crate::work::{WorkLeaf, WORK_LEAF_KIND};
use crate::{Proof, C, D, F};

/// One leaf kind, erased over its input type: the network-facing side of a leaf circuit.
pub trait LeafKind: Send + Sync + fmt::Debug {
    /// The kind's name, as in `leaf:<name>`, `node:<name>` and `{"kind":"<name>",…}`.
    fn name(&self) -> &str;

    /// The kind's built leaf circuit.
    fn leaf_data(&self) -> &CircuitData<F, C, D>;

    /// The rule of this kind's leaf node, if it reads its children's statements.
    fn leaf_node_rule(&self) -> Option<Arc<dyn NodeRule>>;

    /// What an aggregation node needs to verify proofs of this kind.
    fn leaf_verifier(&self) -> LeafVerifier {
        LeafVerifier {
            kind: self.name().to_owned(),
            common: self.leaf_data().common.clone(),
            verifier_only: self.leaf_data().verifier_only.clone(),
            node_rule: self.leaf_node_rule(),
        }
    }

    /// The whitelist-style digest of the kind's leaf verifier key, as named in the hello.
    fn key_digest(&self) -> Digest {
        key_digest(&self.leaf_data().verifier_only)
    }

    /// The header a proof of the job with `inputs` and child headers `children` by the worker
    /// `worker_pk` must carry: the kind's expected-header rule, which the coordinator checks
    /// every submitted proof of this kind against.
    fn expected_job_header(
        &self,
        inputs: &JobInputs,
        children: &[Header],
        worker_pk: Digest,
    ) -> Result<Header>;

    /// Prove the job with `inputs` for `worker`.
    fn prove_job(&self, inputs: &JobInputs, worker: &WorkerSecret) -> Result<Proof>;
}

impl<L: LeafCircuit + fmt::Debug> LeafKind for L {
    fn name(&self) -> &str {
        self.kind()
    }

    fn leaf_data(&self) -> &CircuitData<F, C, D> {
        self.circuit()
    }

    fn leaf_node_rule(&self) -> Option<Arc<dyn NodeRule>> {
        self.node_rule()
    }

    fn expected_job_header(
        &self,
        inputs: &JobInputs,
        children: &[Header],
        worker_pk: Digest,
    ) -> Result<Header> {
        if !children.is_empty() {
            return Err(CircuitError::BadChildCount {
                arity: 0,
                got: children.len(),
            });
        }
        let input = job_input(self, inputs)?;
        Ok(leaf_header(
            self.circuit().common.degree_bits(),
            self.statement(&input),
            worker_pk,
        ))
    }

    fn prove_job(&self, inputs: &JobInputs, worker: &WorkerSecret) -> Result<Proof> {
        if !crate::cache::can_prove(self.circuit()) {
            return Err(CircuitError::VerifierOnly);
        }
        self.prove(&job_input(self, inputs)?, worker)
    }
}

/// The typed input of `leaf` in a job's `inputs`, which must be of its kind.
fn job_input<L: LeafCircuit>(leaf: &L, inputs: &JobInputs) -> Result<L::Input> {
    let kind = leaf.kind();
    let bad = |reason: String| CircuitError::BadInputs {
        kind: kind.to_owned(),
        reason,
    };
    match (inputs.leaf_kind(), inputs.leaf_fields()) {
        (Some(k), Some(fields)) if k == kind => {
            let fields = serde_json::from_value(fields).map_err(|e| bad(e.to_string()))?;
            Ok(leaf.job_input(fields))
        }
        (other, _) => Err(bad(format!(
            "got the inputs of {}",
            other.map_or("an aggregation job".to_owned(), |k| format!("a {k} leaf"))
        ))),
    }
}

/// The leaf kinds of one circuit set, by name.
#[derive(Default)]
pub struct KindRegistry {
    kinds: BTreeMap<String, Box<dyn LeafKind>>,
}

impl fmt::Debug for KindRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.kinds.values()).finish()
    }
}

impl KindRegistry {
    /// A registry without kinds.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `kind`; its name must be a valid kind name (non-empty, no `:`, not `aggregate`) and
    /// not taken.
    pub fn register(&mut self, kind: Box<dyn LeafKind>) -> Result<()> {
        let name = kind.name().to_owned();
        if name.is_empty() || name.contains(':') || name == "aggregate" {
            return Err(CircuitError::InvalidArgument(format!(
                "invalid leaf kind name {name:?}"
            )));
        }
        if self.kinds.contains_key(&name) {
            return Err(CircuitError::InvalidArgument(format!(
                "leaf kind {name:?} registered twice"
            )));
        }
        self.kinds.insert(name, kind);
        Ok(())
    }

    /// This registry with `kind` added (see [`KindRegistry::register`]).
    pub fn with(mut self, kind: Box<dyn LeafKind>) -> Result<Self> {
        self.register(kind)?;
        Ok(self)
    }

    /// The kind called `name`.
    pub fn get(&self, name: &str) -> Result<&dyn LeafKind> {
        self.kinds
            .get(name)
            .map(Box::as_ref)
            .ok_or_else(|| CircuitError::UnknownKind(name.to_owned()))
    }

    /// Every kind, by name.
    pub fn iter(&self) -> impl Iterator<Item = &dyn LeafKind> {
        self.kinds.values().map(Box::as_ref)
    }

    /// Whether no kind is registered.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// The verifying side of every kind, by name: what the aggregation circuits are built over.
    pub fn verifiers(&self) -> Vec<LeafVerifier> {
        self.iter().map(LeafKind::leaf_verifier).collect()
    }
}

/// What a kind's circuits are built from: the set's profile and the work leaf's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindParams {
    /// Circuit profile of the set.
    pub profile: Profile,
    /// Rows of a work leaf, as a power of two.
    pub leaf_rows_log2: usize,
    /// Children per aggregation node (what a claim's path climbs).
    pub arity: usize,
}

/// Builds one kind, loading its circuit from the cache when it is there.
pub type KindBuilder = fn(&KindParams, Option<&ArtifactCache>) -> Result<Box<dyn LeafKind>>;

/// Makes one kernel rule.
pub type RuleBuilder = fn() -> Arc<dyn NodeRule>;

/// The kinds and kernel rules a binary knows how to build, by name: a prover builds the kinds
/// and rules a coordinator names from it, and refuses a set naming one it does not know.
#[derive(Clone)]
pub struct KindCatalog {
    builders: BTreeMap<String, KindBuilder>,
    rules: BTreeMap<String, RuleBuilder>,
}

impl fmt::Debug for KindCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.builders.keys())
            .entries(self.rules.keys().map(|r| format!("kernel:{r}")))
            .finish()
    }
}

impl Default for KindCatalog {
    fn default() -> Self {
        Self::standard()
    }
}

impl KindCatalog {
    /// The kinds every Sheaf binary builds: the work leaf.
    pub fn standard() -> Self {
        KindCatalog {
            builders: BTreeMap::new(),
            rules: BTreeMap::new(),
        }
        .with(WORK_LEAF_KIND, build_work_leaf)
        .with(CLAIM_KIND, build_claim_leaf)
    }

    /// This catalog with the kernel rule `name` made by `builder`.
    pub fn with_rule(mut self, name: &str, builder: RuleBuilder) -> Self {
        self.rules.insert(name.to_owned(), builder);
        self
    }

    /// The names of the kernel rules this catalog makes.
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.keys().map(String::as_str)
    }

    /// Whether this catalog makes the kernel rule `name`.
    pub fn knows_rule(&self, name: &str) -> bool {
        self.rules.contains_key(name)
    }

    /// The kernel rules `names`; refuses a name it does not know.
    pub fn build_rules<'n>(
        &self,
        names: impl IntoIterator<Item = &'n str>,
    ) -> Result<Vec<Arc<dyn NodeRule>>> {
        names
            .into_iter()
            .map(|name| {
                self.rules
                    .get(name)
                    .map(|make| make())
                    .ok_or_else(|| CircuitError::UnknownKind(format!("kernel:{name}")))
            })
            .collect()
    }

    /// This catalog with `builder` for `name` (replacing any builder of that name).
    pub fn with(mut self, name: &str, builder: KindBuilder) -> Self {
        self.builders.insert(name.to_owned(), builder);
        self
    }

    /// The names of the kinds this catalog builds.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.builders.keys().map(String::as_str)
    }

    /// Whether this catalog builds `name`.
    pub fn knows(&self, name: &str) -> bool {
        self.builders.contains_key(name)
    }

    /// Build the kinds `names`; refuses, before building anything, a name it does not know.
    pub fn build<'n>(
        &self,
        names: impl IntoIterator<Item = &'n str>,
        params: &KindParams,
        cache: Option<&ArtifactCache>,
    ) -> Result<KindRegistry> {
        let builders = names
            .into_iter()
            .map(|name| {
                self.builders
                    .get(name)
                    .ok_or_else(|| CircuitError::UnknownKind(name.to_owned()))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut registry = KindRegistry::new();
        for builder in builders {
            registry.register(builder(params, cache)?)?;
        }
        Ok(registry)
    }
}

impl KindCatalog {
    /// Build the kinds `names` one at a time, keeping only the `keep` kinds whole: of every
    /// other kind only its verifying side is kept, the kind itself (its prover data) is dropped
    /// before the next is built. The verifiers are of every kind, by name, as
    /// [`KindRegistry::verifiers`] lists them for the whole registry.
    pub fn build_lean<'n>(
        &self,
        names: impl IntoIterator<Item = &'n str>,
        params: &KindParams,
        cache: Option<&ArtifactCache>,
        keep: &[&str],
    ) -> Result<(KindRegistry, Vec<LeafVerifier>)> {
        let mut names: Vec<&str> = names.into_iter().collect();
        if let Some(name) = names.iter().find(|name| !self.knows(name)) {
            return Err(CircuitError::UnknownKind((*name).to_owned()));
        }
        names.sort_unstable();
        if let Some(twice) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(CircuitError::InvalidArgument(format!(
                "leaf kind {:?} registered twice",
                twice[0]
            )));
        }
        let mut registry = KindRegistry::new();
        let mut verifiers = Vec::with_capacity(names.len());
        for name in names {
            let kind = self.builders[name](params, cache)?;
            verifiers.push(kind.leaf_verifier());
            if keep.contains(&name) {
                registry.register(kind)?;
            }
        }
        Ok((registry, verifiers))
    }
}

fn build_work_leaf(
    params: &KindParams,
    cache: Option<&ArtifactCache>,
) -> Result<Box<dyn LeafKind>> {
    let leaf = WorkLeaf::load_or_build(params.profile.leaf_config(), params.leaf_rows_log2, cache)?;
    Ok(Box::new(leaf))
}

fn build_claim_leaf(
    params: &KindParams,
    cache: Option<&ArtifactCache>,
) -> Result<Box<dyn LeafKind>> {
    let leaf = ClaimLeaf::load_or_build(params.profile.leaf_config(), params.arity, cache)?;
    Ok(Box::new(leaf))
}
