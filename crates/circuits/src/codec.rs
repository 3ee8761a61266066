//! Proof bytes: canonical encoding and a decoder that never panics on hostile input.
//!
//! The decoder bounds the size, parses with plonky2's reader (behind `catch_unwind`, since that
//! reader asserts in debug builds), then re-encodes: bytes that are not exactly the canonical
//! encoding of what was parsed are refused, which catches trailing bytes and field elements at
//! or above the field order.

use plonky2::plonk::circuit_data::CommonCircuitData;
use plonky2::plonk::proof::ProofWithPublicInputs;

use crate::error::{CircuitError, Result};
use crate::{Proof, D, F};

/// The canonical bytes of a proof.
pub fn encode_proof(proof: &Proof) -> Vec<u8> {
    proof.to_bytes()
}

/// Decode proof bytes for a circuit of shape `common`, refusing anything but the canonical
/// encoding of a proof of that shape.
pub fn decode_proof(bytes: &[u8], common: &CommonCircuitData<F, D>, max: usize) -> Result<Proof> {
    if bytes.len() > max {
        return Err(CircuitError::Oversized {
            size: bytes.len(),
            max,
        });
    }
    if bytes.is_empty() {
        return Err(CircuitError::Malformed("no bytes".into()));
    }
    let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ProofWithPublicInputs::from_bytes(bytes.to_vec(), common)
    }))
    .map_err(|_| CircuitError::Malformed("unreadable proof".into()))?
    .map_err(|e| CircuitError::Malformed(e.to_string()))?;
    if parsed.public_inputs.len() != common.num_public_inputs {
        return Err(CircuitError::WrongCircuit(format!(
            "{} public inputs, expected {}",
            parsed.public_inputs.len(),
            common.num_public_inputs
        )));
    }
    let canonical = encode_proof(&parsed);
    if canonical.as_slice() == bytes {
        Ok(parsed)
    } else if bytes.starts_with(&canonical) {
        Err(CircuitError::TrailingBytes(bytes.len() - canonical.len()))
    } else if canonical.len() == bytes.len() {
        Err(CircuitError::NonCanonical)
    } else {
        Err(CircuitError::Malformed(
            "not a canonical proof encoding".into(),
        ))
    }
}
