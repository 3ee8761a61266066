//! Sheaf's proving core: plonky2 circuits that bind any number of leaf proofs into one root
//! proof, carrying who proved what.
//!
//! ```text
//!  leaf proofs (any kind, own shape)      level 0   work leaf, tx kernel, claim, …
//!        │ verified with the kind's constant key
//!        ▼
//!  leaf nodes (universal shape)           level 1   one circuit per leaf kind
//!        │ verified with a whitelisted key (witness + Merkle path)
//!        ▼
//!  universal nodes (universal shape)      level ≥2  one circuit, verifies its own proofs too
//!        │
//!        ▼
//!  root proof ── FinalKey (universal node key + whitelist root): one key for every tree
//!        │ optional: a final wrap, zero-knowledge or compact (then the key is the wrap's)
//! ```
//!
//! Every proof starts its public inputs with a [`Header`]: commitment, worker_pk, job stats and
//! statement hash. Nodes enforce the commitment chain (`H(H(c_1 … c_k), worker_pk)`), sum the
//! stats and hash their children's statements in order, so the root commits to the whole tree
//! and to every prover in it.
//!
//! Leaf kinds are registered, not hard-coded: a [`CircuitSet`] holds a [`KindRegistry`] of
//! [`LeafKind`]s (today the work leaf) and builds one leaf node per kind, so a tree may mix kinds
//! under the one final key (see [`kind`]).
//!
//! Failure semantics: nothing here panics on bad input. Proof bytes are decoded by
//! [`decode_proof`], which refuses oversized, truncated, trailing or non-canonical encodings with
//! a typed [`CircuitError`]; verification failures and header mismatches are typed too.

pub mod aggregation;
pub mod cache;
pub mod claim;
pub mod codec;
pub mod config;
pub mod digest;
pub mod error;
pub mod flat;
pub mod header;
pub mod job;
pub mod key;
pub mod kind;
pub mod leaf;
pub mod limits;
pub mod node;
pub mod possession;
pub mod rule;
pub mod tree;
pub mod verify_job;
pub mod whitelist;
pub mod work;
pub mod wrap;

pub use aggregation::{AggregationCircuits, AggregationSettings, DEFAULT_ARITY};
pub use cache::ArtifactCache;
pub use codec::{decode_proof, encode_proof};
pub use config::Profile;
pub use digest::{Digest, WorkerSecret};
pub use error::{CircuitError, Result};
pub use header::{Header, HeaderField, JobStats};
pub use job::{CircuitSet, JobCircuit, JobInputs, UnknownCircuit};
pub use key::{FinalKey, VerifiedRoot, FINAL_KEY_MAGIC};
pub use kind::{KindCatalog, KindParams, KindRegistry, LeafKind};
pub use leaf::{LeafCircuit, LeafVerifier};
pub use node::{Child, NodeCircuit};
pub use possession::PossessionCircuit;
pub use rule::{NodeRule, RuleChild, RuleTargets, WhitelistPositions};
pub use tree::{ProvedNode, TreePlan, TreeProver};
pub use verify_job::{verify_job_proof, Expected};
pub use work::WorkLeaf;

/// The field: Goldilocks.
pub type F = plonky2::field::goldilocks_field::GoldilocksField;
/// The plonky2 configuration: Poseidon over Goldilocks.
pub type C = plonky2::plonk::config::PoseidonGoldilocksConfig;
/// Extension degree.
pub const D: usize = 2;
/// A proof with its public inputs.
pub type Proof = plonky2::plonk::proof::ProofWithPublicInputs<F, C, D>;

/// A rayon pool of `threads` threads (0: one per core) for proving; run work in it with
/// `pool.install(..)`.
pub fn proving_pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| CircuitError::InvalidArgument(format!("thread pool: {e}")))
}
