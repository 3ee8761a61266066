//! Verifying one job's proof when it is submitted, as the coordinator does before storing it: the
//! bytes decode canonically, the header is the expected one, the plonky2 verifier accepts it.

use plonky2::plonk::circuit_data::VerifierCircuitData;

use crate::codec::decode_proof;
use crate::digest::Digest;
use crate::error::{CircuitError, Result};
use crate::header::{Header, HEADER_LEN, NODE_PUBLIC_INPUTS};
use crate::limits::MAX_PROOF_BYTES;
use crate::{Proof, C, D, F};

/// What a job's proof must carry.
#[derive(Clone, Copy, Debug)]
pub struct Expected {
    /// The header the job must produce (children's commitments, the leasing prover's
    /// worker_pk, the statement).
    pub header: Header,
    /// For aggregation jobs, the whitelist root the proof must carry.
    pub whitelist_root: Option<Digest>,
}

/// Decode `bytes` as a proof of `circuit`, check its header against `expected`, then verify it.
/// Cheap checks come first, so a wrong proof costs no verification.
pub fn verify_job_proof(
    bytes: &[u8],
    circuit: &VerifierCircuitData<F, C, D>,
    expected: &Expected,
) -> Result<Proof> {
    let proof = decode_proof(bytes, &circuit.common, MAX_PROOF_BYTES)?;
    Header::from_public_inputs(&proof.public_inputs)?.check(&expected.header)?;
    if let Some(root) = expected.whitelist_root {
        if proof.public_inputs.len() != NODE_PUBLIC_INPUTS
            || Digest::from_fields(&proof.public_inputs[HEADER_LEN..]) != root
        {
            return Err(CircuitError::WhitelistMismatch);
        }
    }
    circuit
        .verify(proof.clone())
        .map_err(|e| CircuitError::VerificationFailed(e.to_string()))?;
    Ok(proof)
}
