//! Every size bound of the proving core in one place.

/// Largest proof accepted for decoding. Sheaf's proofs are 100–200 KiB; anything far larger is
/// refused before it is parsed.
pub const MAX_PROOF_BYTES: usize = 1 << 20;

/// Largest circuit artifact read from the cache (prover data of a 2^16-row circuit is a few
/// hundred MiB).
pub const MAX_ARTIFACT_BYTES: u64 = 2 << 30;

/// Largest verifier-key file accepted.
pub const MAX_KEY_BYTES: u64 = 16 << 20;

/// Largest possession proof accepted for decoding (a possession proof is ~60 KiB).
pub const MAX_POSSESSION_PROOF_BYTES: usize = 256 << 10;
