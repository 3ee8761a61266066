//! Proof of possession: a registration shows that its sender knows the secret behind the id
//! commitment.
//!
//! A membership's id commitment is a prover's `worker_pk = H(secret)`, which every proof the
//! prover makes carries in the clear. Without this check anyone could register a prover's
//! `worker_pk` first: the prover would then be refused as a duplicate and the squatter admitted
//! in its place. The proof ([`sheaf_circuits::possession`]) is made for the sender's address on
//! this chain, so a copied proof is refused from another account and on another chain. It is
//! Sheaf's one addition to the contract's rules (REFERENCE §3 otherwise holds unchanged).

use sheaf_circuits::possession::verify_possession;
use sheaf_circuits::Digest;

use super::{Address, MembershipError, Result};

/// Check that `proof` shows knowledge of the secret behind `id_commitment`, made for `holder` on
/// chain `chain_id`. Junk bytes are refused by the bounded decoder, a proof made for another
/// id commitment, holder or chain before it is verified; all with
/// [`MembershipError::BadPossessionProof`]. The chain verifies with the key the proving crate
/// carries; it never builds the circuit.
pub fn check_possession(
    proof: &[u8],
    id_commitment: Digest,
    holder: &Address,
    chain_id: u64,
) -> Result<()> {
    verify_possession(proof, id_commitment, holder, chain_id)
        .map_err(|e| MembershipError::BadPossessionProof(e.to_string()))
}
