//! Hostile proof bytes are refused with a typed error and never panic.

use sheaf_circuits::limits::MAX_PROOF_BYTES;
use sheaf_circuits::{decode_proof, encode_proof, CircuitError};

use crate::fixture::{arity2, leaf_proof, shared_root_bytes};

#[test]
fn truncated_bytes_are_malformed() {
    let bytes = shared_root_bytes();
    for cut in [1, 100, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            matches!(
                arity2().key.verify_bytes(&bytes[..cut]),
                Err(CircuitError::Malformed(_))
            ),
            "cut at {cut}"
        );
    }
}

#[test]
fn empty_bytes_are_malformed() {
    assert!(matches!(
        arity2().key.verify_bytes(&[]),
        Err(CircuitError::Malformed(_))
    ));
}

#[test]
fn trailing_bytes_are_refused() {
    let mut bytes = shared_root_bytes();
    bytes.extend([0, 0, 0]);
    assert!(matches!(
        arity2().key.verify_bytes(&bytes),
        Err(CircuitError::TrailingBytes(3))
    ));
}

#[test]
fn non_canonical_field_element_is_refused() {
    let mut bytes = shared_root_bytes();
    // The first eight bytes are a field element of the wires cap; write one above the order.
    bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        arity2().key.verify_bytes(&bytes),
        Err(CircuitError::NonCanonical)
    ));
}

#[test]
fn oversized_bytes_are_refused_before_parsing() {
    let bytes = vec![0u8; MAX_PROOF_BYTES + 1];
    assert!(matches!(
        arity2().key.verify_bytes(&bytes),
        Err(CircuitError::Oversized { .. })
    ));
}

#[test]
fn garbage_of_a_proofs_length_is_refused() {
    let len = shared_root_bytes().len();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let garbage: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    assert!(arity2().key.verify_bytes(&garbage).is_err());
}

#[test]
fn leaf_proof_is_not_a_root_proof() {
    let fx = arity2();
    let bytes = encode_proof(&leaf_proof(fx, 0));
    assert!(matches!(
        fx.key.verify_bytes(&bytes),
        Err(CircuitError::Malformed(_) | CircuitError::WrongCircuit(_))
    ));
}

#[test]
fn canonical_bytes_round_trip() {
    let fx = arity2();
    let bytes = shared_root_bytes();
    let proof = decode_proof(
        &bytes,
        &fx.circuits.universal().data.common,
        MAX_PROOF_BYTES,
    )
    .unwrap();
    assert_eq!(encode_proof(&proof), bytes);
}
