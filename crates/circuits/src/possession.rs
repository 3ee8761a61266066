//! Proof of possession of a worker secret, bound to a chain account and a chain.
//!
//! A membership's id commitment is a prover's `worker_pk = H(secret)`, which every proof it makes
//! carries in the clear: anyone may read it and register it first. Registering therefore comes
//! with this proof, which shows knowledge of the secret behind `worker_pk` and names who may use
//! it:
//!
//! ```text
//!   private: secret (4 elements)
//!   public:  worker_pk = H(secret)        (4)   the hash of every leaf header (leaf.rs)
//!            holder address, 8 × u32      (8)   the chain account that sends the registration
//!            chain id, 2 × u32            (2)   the chain it is valid on
//! ```
//!
//! The holder and the chain id are only public inputs, but plonky2 binds every public input to
//! the proof, so a proof made for one account or chain fails for any other: a watcher who copies
//! a registration cannot replay it from its own account or on another chain.
//!
//! The circuit is built with zero knowledge (the proof goes on chain, in public), in a small
//! configuration; it is deterministic, so every prover builds the same key independently
//! ([`PossessionCircuit::shared`]). A verifier needs only the key and the shape, which this crate
//! carries as bytes (`possession.verifier`, [`verify_possession`]): a chain checks registrations
//! without building the circuit. A test checks the bytes are the built circuit's.
//!
//! Failure semantics: [`PossessionCircuit::verify`] never panics on hostile bytes (they go
//! through the bounded decoder, and verification runs behind `catch_unwind`); every refusal is a
//! typed [`CircuitError`].

use std::sync::OnceLock;

use plonky2::field::types::Field;
use plonky2::fri::{FriConfig, FriReductionStrategy};
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::target::Target;
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData, VerifierCircuitData};
use plonky2::util::serialization::DefaultGateSerializer;
use sheaf_types::Address;

use crate::codec::{decode_proof, encode_proof};
use crate::digest::{Digest, WorkerSecret};
use crate::error::{CircuitError, Result};
use crate::limits::MAX_POSSESSION_PROOF_BYTES;
use crate::{C, D, F};

/// Public inputs of a possession proof: worker_pk, the holder's address in u32 limbs, the chain
/// id in u32 limbs.
pub const POSSESSION_PUBLIC_INPUTS: usize = 4 + 8 + 2;

/// The configuration of the possession circuit: zero knowledge (the proof is public and the
/// secret must stay secret) at 100 bits of conjectured security (21 queries at rate 1/16, 16
/// bits of grinding), with FRI folding by two down to a constant. Zero knowledge adds blinding
/// rows in proportion to the openings FRI reveals: with the seed's parameters (28 queries at
/// rate 1/8, arity 16, a final polynomial of 32 coefficients) the five rows of this circuit
/// grow to 2^14; with these to 2^11, and the proof stays about as long.
pub fn possession_config() -> CircuitConfig {
    CircuitConfig {
        num_wires: 135,
        num_routed_wires: 60,
        num_constants: 2,
        use_base_arithmetic_gate: true,
        security_bits: 100,
        num_challenges: 2,
        zero_knowledge: true,
        max_quotient_degree_factor: 8,
        fri_config: FriConfig {
            rate_bits: 4,
            cap_height: 4,
            proof_of_work_bits: 16,
            reduction_strategy: FriReductionStrategy::ConstantArityBits(1, 0),
            num_query_rounds: 21,
        },
    }
}

/// The built possession circuit: it proves and verifies.
pub struct PossessionCircuit {
    data: CircuitData<F, C, D>,
    secret: [Target; 4],
    public: [Target; POSSESSION_PUBLIC_INPUTS],
}

impl std::fmt::Debug for PossessionCircuit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PossessionCircuit")
            .field("degree_bits", &self.data.common.degree_bits())
            .finish_non_exhaustive()
    }
}

impl PossessionCircuit {
    /// Build the circuit (deterministic: every build has the same verifier key).
    pub fn build() -> Self {
        let mut builder = CircuitBuilder::<F, D>::new(possession_config());
        let secret: [Target; 4] = std::array::from_fn(|_| builder.add_virtual_target());
        // The same hash as a leaf header's worker_pk (`LeafHeaderBuilder::finish`).
        let worker_pk = builder.hash_n_to_hash_no_pad::<PoseidonHash>(secret.to_vec());
        builder.register_public_inputs(&worker_pk.elements);
        let binding: [Target; 10] = std::array::from_fn(|_| builder.add_virtual_target());
        builder.register_public_inputs(&binding);
        let mut public = [worker_pk.elements[0]; POSSESSION_PUBLIC_INPUTS];
        public[..4].copy_from_slice(&worker_pk.elements);
        public[4..].copy_from_slice(&binding);
        PossessionCircuit {
            data: builder.build::<C>(),
            secret,
            public,
        }
    }

    /// The circuit of this build, built on first use and shared by the whole process.
    pub fn shared() -> &'static Self {
        static CIRCUIT: OnceLock<PossessionCircuit> = OnceLock::new();
        CIRCUIT.get_or_init(Self::build)
    }

    /// Rows of the circuit, as a power of two.
    pub fn degree_bits(&self) -> usize {
        self.data.common.degree_bits()
    }

    /// Prove that `worker` knows its secret, for `holder` on chain `chain_id`; the proof's
    /// canonical bytes.
    pub fn prove(&self, worker: &WorkerSecret, holder: &Address, chain_id: u64) -> Result<Vec<u8>> {
        let err = |e: anyhow::Error| CircuitError::Prove(e.to_string());
        let mut pw = PartialWitness::new();
        pw.set_target_arr(&self.secret, &worker.expose().to_fields())
            .map_err(err)?;
        let binding = binding(holder, chain_id);
        pw.set_target_arr(&self.public[4..], &binding)
            .map_err(err)?;
        let proof = self.data.prove(pw).map_err(err)?;
        Ok(encode_proof(&proof))
    }

    /// Check `bytes` prove knowledge of the secret behind `worker_pk`, for `holder` on chain
    /// `chain_id`.
    pub fn verify(
        &self,
        bytes: &[u8],
        worker_pk: Digest,
        holder: &Address,
        chain_id: u64,
    ) -> Result<()> {
        verify_with(&self.verifier_data(), bytes, worker_pk, holder, chain_id)
    }

    /// The circuit's verifier key and shape.
    pub fn verifier_data(&self) -> VerifierCircuitData<F, C, D> {
        self.data.verifier_data()
    }
}

/// The built circuit's verifier data, serialized (what [`verify_possession`] checks with).
const VERIFIER_BYTES: &[u8] = include_bytes!("possession.verifier");

/// The possession circuit's verifier key and shape, read from the bytes this crate carries.
fn possession_verifier() -> Result<&'static VerifierCircuitData<F, C, D>> {
    static VERIFIER: OnceLock<Option<VerifierCircuitData<F, C, D>>> = OnceLock::new();
    VERIFIER
        .get_or_init(|| {
            VerifierCircuitData::from_bytes(VERIFIER_BYTES.to_vec(), &DefaultGateSerializer).ok()
        })
        .as_ref()
        .ok_or_else(|| {
            CircuitError::BadKey(
                "the possession verifier carried by this build does not read".into(),
            )
        })
}

/// Check `bytes` prove knowledge of the secret behind `worker_pk`, for `holder` on chain
/// `chain_id`, with the verifier key this crate carries: what a chain does, without building
/// the circuit.
pub fn verify_possession(
    bytes: &[u8],
    worker_pk: Digest,
    holder: &Address,
    chain_id: u64,
) -> Result<()> {
    verify_with(possession_verifier()?, bytes, worker_pk, holder, chain_id)
}

fn verify_with(
    verifier: &VerifierCircuitData<F, C, D>,
    bytes: &[u8],
    worker_pk: Digest,
    holder: &Address,
    chain_id: u64,
) -> Result<()> {
    let proof = decode_proof(bytes, &verifier.common, MAX_POSSESSION_PROOF_BYTES)?;
    let mut expected = worker_pk.to_fields().to_vec();
    expected.extend(binding(holder, chain_id));
    if proof.public_inputs != expected {
        return Err(CircuitError::VerificationFailed(
            "made for another worker, holder or chain".into(),
        ));
    }
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| verifier.verify(proof)))
        .map_err(|_| CircuitError::VerificationFailed("verifier panicked".into()))?
        .map_err(|e| CircuitError::VerificationFailed(e.to_string()))
}

/// The public inputs that bind a proof to `holder` on `chain_id`: the address's 32 bytes as eight
/// little-endian u32, then the chain id's low and high u32 (each below the field order, so the
/// encoding is one-to-one).
fn binding(holder: &Address, chain_id: u64) -> [F; 10] {
    let mut out = [F::ZERO; 10];
    for (limb, bytes) in out.iter_mut().zip(holder.as_bytes().chunks_exact(4)) {
        *limb = F::from_canonical_u32(u32::from_le_bytes(
            bytes.try_into().expect("chunks of four bytes"),
        ));
    }
    out[8] = F::from_canonical_u32(chain_id as u32);
    out[9] = F::from_canonical_u32((chain_id >> 32) as u32);
    out
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// Proves once and prints the figures (`cargo test -p sheaf-circuits --lib possession --
    /// --nocapture`): build time, proof size, proving and verifying time.
    #[test]
    fn a_proof_verifies_for_its_worker_holder_and_chain_only() {
        let started = Instant::now();
        let circuit = PossessionCircuit::build();
        let built = started.elapsed();
        let worker = WorkerSecret::from_digest(Digest([1, 2, 3, 4]));
        let holder = Address([7; 32]);
        let started = Instant::now();
        let proof = circuit.prove(&worker, &holder, 9).unwrap();
        let proved = started.elapsed();
        let started = Instant::now();
        circuit
            .verify(&proof, worker.worker_pk(), &holder, 9)
            .unwrap();
        let verified = started.elapsed();
        eprintln!(
            "possession: 2^{} rows, built in {built:?}, proved in {proved:?}, verified in \
             {verified:?}, {} bytes",
            circuit.degree_bits(),
            proof.len()
        );
        assert!(proof.len() <= MAX_POSSESSION_PROOF_BYTES);
        let other = WorkerSecret::from_digest(Digest([5, 6, 7, 8])).worker_pk();
        assert!(circuit.verify(&proof, other, &holder, 9).is_err());
        assert!(circuit
            .verify(&proof, worker.worker_pk(), &Address([8; 32]), 9)
            .is_err());
        assert!(circuit
            .verify(&proof, worker.worker_pk(), &holder, 9 + (1 << 32))
            .is_err());
    }

    /// Public inputs are bound by the proof itself: rewriting them for another holder (a
    /// squatter copying a registration) makes the proof fail.
    #[test]
    fn a_proof_with_rewritten_public_inputs_fails() {
        let circuit = PossessionCircuit::shared();
        let worker = WorkerSecret::from_digest(Digest([1, 2, 3, 4]));
        let proof = circuit.prove(&worker, &Address([7; 32]), 9).unwrap();
        let mut decoded =
            decode_proof(&proof, &circuit.data.common, MAX_POSSESSION_PROOF_BYTES).unwrap();
        let squatter = Address([8; 32]);
        decoded.public_inputs[4..].copy_from_slice(&binding(&squatter, 9));
        let rewritten = encode_proof(&decoded);
        assert!(matches!(
            circuit.verify(&rewritten, worker.worker_pk(), &squatter, 9),
            Err(CircuitError::VerificationFailed(_))
        ));
    }

    /// The verifier bytes this crate carries are the built circuit's. After a change to the
    /// circuit, write them again: `SHEAF_WRITE_POSSESSION_VERIFIER=1 cargo test -p
    /// sheaf-circuits --lib possession`.
    #[test]
    fn the_carried_verifier_is_the_built_circuits() {
        let built = PossessionCircuit::shared().verifier_data();
        let bytes = built.to_bytes(&DefaultGateSerializer).unwrap();
        if std::env::var_os("SHEAF_WRITE_POSSESSION_VERIFIER").is_some() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/possession.verifier");
            std::fs::write(path, &bytes).unwrap();
        }
        assert!(
            bytes == VERIFIER_BYTES,
            "src/possession.verifier is not the built circuit's: write it again \
             (SHEAF_WRITE_POSSESSION_VERIFIER=1 cargo test -p sheaf-circuits --lib possession)"
        );
        let carried = possession_verifier().unwrap();
        assert_eq!(carried.verifier_only, built.verifier_only);
        assert_eq!(carried.common, built.common);
        // A proof made with the circuit verifies with the carried key alone.
        let worker = WorkerSecret::from_digest(Digest([1, 2, 3, 4]));
        let proof = PossessionCircuit::shared()
            .prove(&worker, &Address([7; 32]), 9)
            .unwrap();
        verify_possession(&proof, worker.worker_pk(), &Address([7; 32]), 9).unwrap();
        assert!(verify_possession(&proof, worker.worker_pk(), &Address([8; 32]), 9).is_err());
    }

    #[test]
    fn builds_are_identical() {
        let (a, b) = (PossessionCircuit::build(), PossessionCircuit::build());
        assert_eq!(a.data.verifier_only, b.data.verifier_only);
    }
}
