//! The zero-knowledge final wrap: one proof that verifies a root proof and re-exposes its public
//! inputs, in a zero-knowledge configuration.
//!
//! Zero knowledge costs blinding rows (with plonky2's recursion config, more rows than the
//! verifier itself), so making every node zero-knowledge would quadruple each node. When only the
//! final proof must hide its witness, Sheaf keeps the nodes plain and wraps the root once.

use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData};
use plonky2::plonk::proof::ProofWithPublicInputsTarget;

use crate::error::{CircuitError, Result};
use crate::{Proof, C, D, F};

/// A built final wrap.
pub struct FinalWrap {
    root: ProofWithPublicInputsTarget<D>,
    /// The circuit.
    pub data: CircuitData<F, C, D>,
}

impl std::fmt::Debug for FinalWrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FinalWrap")
            .field("degree_bits", &self.data.common.degree_bits())
            .finish()
    }
}

/// The wrap's body in a fresh builder: verify a proof of `inner` (a constant key) and expose
/// its public inputs as its own.
fn body(
    config: CircuitConfig,
    inner: &CircuitData<F, C, D>,
) -> (CircuitBuilder<F, D>, ProofWithPublicInputsTarget<D>) {
    let mut builder = CircuitBuilder::<F, D>::new(CircuitConfig {
        zero_knowledge: true,
        ..config
    });
    let root = builder.add_virtual_proof_with_pis(&inner.common);
    let key = builder.constant_verifier_data::<C>(&inner.verifier_only);
    builder.verify_proof::<C>(&root, &key, &inner.common);
    builder.register_public_inputs(&root.public_inputs);
    (builder, root)
}

impl FinalWrap {
    /// Build the wrap of proofs of `inner` with `config` made zero-knowledge.
    pub fn build(config: CircuitConfig, inner: &CircuitData<F, C, D>) -> Self {
        let (builder, root) = body(config, inner);
        FinalWrap {
            root,
            data: builder.build::<C>(),
        }
    }

    /// Attach a wrap circuit loaded from the cache.
    pub fn from_data(
        config: CircuitConfig,
        inner: &CircuitData<F, C, D>,
        data: CircuitData<F, C, D>,
    ) -> Self {
        let (_, root) = body(config, inner);
        FinalWrap { root, data }
    }

    /// Wrap a root proof.
    pub fn prove(&self, root: &Proof) -> Result<Proof> {
        let mut pw = PartialWitness::new();
        pw.set_proof_with_pis_target(&self.root, root)
            .map_err(|e| CircuitError::Prove(e.to_string()))?;
        self.data
            .prove(pw)
            .map_err(|e| CircuitError::Prove(e.to_string()))
    }
}
