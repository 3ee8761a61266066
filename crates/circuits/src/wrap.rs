//! The final wrap: proofs that verify a root proof and re-expose its public inputs, so that what
//! the chain verifies is zero-knowledge, small, or both.
//!
//! Two styles ([`WrapStyle`]):
//!
//! - **Zero knowledge** (`--final-zk`): one proof in the node configuration made
//!   zero-knowledge. Zero knowledge costs blinding rows (with plonky2's recursion config, more
//!   rows than the verifier itself), so making every node zero-knowledge would quadruple each
//!   node; when only the final proof must hide its witness, Sheaf keeps the nodes plain and
//!   wraps the root once.
//! - **Compact** (`--final-compact`): a chain of three recursions that trades proving time for
//!   size, the way plonky2's size-optimised recursion does: the standard recursion config
//!   (shrinks the root's 2^13 rows to the recursion threshold), then a high-rate config
//!   (rate 2^7, 12 queries), then the final one (rate 2^8, 10 queries, 20 bits of grinding,
//!   37 routed wires, no Merkle cap, FRI arities chosen for size); with `--final-zk` the first
//!   recursion is zero-knowledge, which keeps the root's witness hidden in every proof made
//!   from it. Each FRI
//!   configuration keeps plonky2's conjectured security of `rate_bits × queries +
//!   proof_of_work_bits` at 100 bits or more ([`conjectured_security_bits`]): 3·28+16 = 100,
//!   7·12+16 = 100, 8·10+20 = 100.

use plonky2::fri::{FriConfig, FriReductionStrategy};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData, CommonCircuitData};
use plonky2::plonk::proof::ProofWithPublicInputsTarget;

use crate::error::{CircuitError, Result};
use crate::{Proof, C, D, F};

/// How the root is wrapped before it goes on chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WrapStyle {
    /// One zero-knowledge recursion in the node configuration.
    ZeroKnowledge,
    /// Three recursions ending in a size-tuned configuration; the first is zero-knowledge
    /// when `zero_knowledge` (what it hides stays hidden in every proof made from it).
    Compact {
        /// Whether the first recursion is zero-knowledge.
        zero_knowledge: bool,
    },
}

impl WrapStyle {
    /// The configurations of the wrap's stages, innermost first, for nodes of `node_config`.
    pub fn stage_configs(self, node_config: &CircuitConfig) -> Vec<CircuitConfig> {
        match self {
            WrapStyle::ZeroKnowledge => vec![CircuitConfig {
                zero_knowledge: true,
                ..node_config.clone()
            }],
            WrapStyle::Compact { zero_knowledge } => {
                let standard = CircuitConfig::standard_recursion_config();
                let high_rate = CircuitConfig {
                    fri_config: FriConfig {
                        rate_bits: 7,
                        proof_of_work_bits: 16,
                        num_query_rounds: 12,
                        ..standard.fri_config.clone()
                    },
                    ..standard.clone()
                };
                let last = CircuitConfig {
                    num_routed_wires: 37,
                    fri_config: FriConfig {
                        rate_bits: 8,
                        cap_height: 0,
                        proof_of_work_bits: 20,
                        reduction_strategy: FriReductionStrategy::MinSize(None),
                        num_query_rounds: 10,
                    },
                    ..high_rate.clone()
                };
                let first = CircuitConfig {
                    zero_knowledge,
                    ..standard
                };
                vec![first, high_rate, last]
            }
        }
    }

    /// A short name, for cache keys and reports.
    pub fn name(self) -> &'static str {
        match self {
            WrapStyle::ZeroKnowledge => "zk",
            WrapStyle::Compact {
                zero_knowledge: false,
            } => "compact",
            WrapStyle::Compact {
                zero_knowledge: true,
            } => "compact-zk",
        }
    }
}

/// plonky2's conjectured security of a FRI configuration, in bits: each query of a code of
/// rate 2^-r catches a false proof but with probability 2^-r (the conjecture plonky2's own
/// configurations are sized by), and grinding adds its bits.
pub fn conjectured_security_bits(config: &FriConfig) -> usize {
    config.rate_bits * config.num_query_rounds + config.proof_of_work_bits as usize
}

/// One recursion of the wrap.
struct Stage {
    /// Where the inner proof goes; `None` in a wrap loaded to verify only.
    inner: Option<ProofWithPublicInputsTarget<D>>,
    data: CircuitData<F, C, D>,
}

/// A built final wrap.
pub struct FinalWrap {
    style: WrapStyle,
    stages: Vec<Stage>,
}

impl std::fmt::Debug for FinalWrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FinalWrap")
            .field("style", &self.style)
            .field(
                "degree_bits",
                &self
                    .stages
                    .iter()
                    .map(|s| s.data.common.degree_bits())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A stage's body in a fresh builder: verify a proof of `inner` (a constant key) and expose its
/// public inputs as its own.
fn body(
    config: CircuitConfig,
    inner: &CircuitData<F, C, D>,
) -> (CircuitBuilder<F, D>, ProofWithPublicInputsTarget<D>) {
    let mut builder = CircuitBuilder::<F, D>::new(config);
    let proof = builder.add_virtual_proof_with_pis(&inner.common);
    let key = builder.constant_verifier_data::<C>(&inner.verifier_only);
    builder.verify_proof::<C>(&proof, &key, &inner.common);
    builder.register_public_inputs(&proof.public_inputs);
    (builder, proof)
}

impl FinalWrap {
    /// Build the wrap of `style` of proofs of `inner`, whose nodes use `node_config`.
    pub fn build(
        style: WrapStyle,
        node_config: &CircuitConfig,
        root: &CircuitData<F, C, D>,
    ) -> Self {
        let mut stages: Vec<Stage> = Vec::new();
        for config in style.stage_configs(node_config) {
            let inner = stages.last().map_or(root, |s| &s.data);
            let (builder, proof) = body(config, inner);
            let data = builder.build::<C>();
            stages.push(Stage {
                inner: Some(proof),
                data,
            });
        }
        FinalWrap { style, stages }
    }

    /// Attach stages loaded from the cache (innermost first); `None` when they are not the
    /// stages of `style` over `root` (a stage's shape differs, or one is missing). With
    /// `verifier_only`, the stages' bodies are not laid down again: the wrap verifies and
    /// cannot prove.
    pub fn from_data(
        style: WrapStyle,
        node_config: &CircuitConfig,
        root: &CircuitData<F, C, D>,
        datas: Vec<CircuitData<F, C, D>>,
        verifier_only: bool,
    ) -> Option<Self> {
        let configs = style.stage_configs(node_config);
        if datas.len() != configs.len() {
            return None;
        }
        let mut stages: Vec<Stage> = Vec::new();
        for (config, data) in configs.into_iter().zip(datas) {
            let inner = stages.last().map_or(root, |s| &s.data);
            if data.common.config != config {
                return None;
            }
            let proof = (!verifier_only).then(|| body(config, inner).1);
            stages.push(Stage { inner: proof, data });
        }
        Some(FinalWrap { style, stages })
    }

    /// The style of this wrap.
    pub fn style(&self) -> WrapStyle {
        self.style
    }

    /// The last stage: what the final key verifies.
    pub fn data(&self) -> &CircuitData<F, C, D> {
        &self.stages.last().expect("a wrap has a stage").data
    }

    /// Every stage's circuit, innermost first (to cache them).
    pub fn stage_data(&self) -> impl Iterator<Item = &CircuitData<F, C, D>> {
        self.stages.iter().map(|s| &s.data)
    }

    /// The shape of the final proof.
    pub fn common(&self) -> &CommonCircuitData<F, D> {
        &self.data().common
    }

    /// Wrap a root proof.
    pub fn prove(&self, root: &Proof) -> Result<Proof> {
        let mut proof = root.clone();
        for stage in &self.stages {
            let inner = stage.inner.as_ref().ok_or(CircuitError::VerifierOnly)?;
            let mut pw = PartialWitness::new();
            pw.set_proof_with_pis_target(inner, &proof)
                .map_err(|e| CircuitError::Prove(e.to_string()))?;
            proof = stage
                .data
                .prove(pw)
                .map_err(|e| CircuitError::Prove(e.to_string()))?;
        }
        Ok(proof)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Profile;

    /// The compact wrap's stages are the same whatever the nodes' profile, and each keeps the
    /// 100 conjectured bits on its own: a wrap over test-profile nodes is as strong as they.
    #[test]
    fn every_compact_stage_has_100_conjectured_bits_over_any_profile() {
        for profile in Profile::ALL {
            for zero_knowledge in [false, true] {
                let style = WrapStyle::Compact { zero_knowledge };
                let stages = style.stage_configs(&profile.node_config());
                assert_eq!(stages.len(), 3, "{profile:?}");
                assert_eq!(stages[0].zero_knowledge, zero_knowledge);
                for stage in &stages {
                    assert!(
                        conjectured_security_bits(&stage.fri_config) >= 100,
                        "{profile:?}: {:?}",
                        stage.fri_config
                    );
                }
            }
        }
    }
}
