//! The final verifier key: what the base chain (or anyone) needs to check a root proof.
//!
//! It is the universal node's verifier data plus the whitelist root the root proof must carry.
//! File format: `SHEAFKEY`, a format version, the whitelist root, then plonky2's verifier data.

use std::path::Path;
use std::time::Instant;

use plonky2::plonk::circuit_data::VerifierCircuitData;
use plonky2::util::serialization::DefaultGateSerializer;

use crate::codec::decode_proof;
use crate::digest::Digest;
use crate::error::{CircuitError, Result};
use crate::header::{Header, HEADER_LEN, NODE_PUBLIC_INPUTS};
use crate::limits::{MAX_KEY_BYTES, MAX_PROOF_BYTES};
use crate::whitelist::key_digest;
use crate::{Proof, C, D, F};

/// The first bytes of a final key file, which tell it from any other file.
pub const FINAL_KEY_MAGIC: &[u8; 8] = b"SHEAFKEY";
const FORMAT_VERSION: u32 = 1;

/// The one key that verifies the root proof of any tree.
#[derive(Clone, Debug)]
pub struct FinalKey {
    verifier: VerifierCircuitData<F, C, D>,
    whitelist_root: Digest,
}

/// A verified root proof.
#[derive(Clone, Debug)]
pub struct VerifiedRoot {
    /// Its header.
    pub header: Header,
    /// Milliseconds spent verifying.
    pub verify_ms: f64,
}

impl FinalKey {
    pub(crate) fn new(verifier: VerifierCircuitData<F, C, D>, whitelist_root: Digest) -> Self {
        FinalKey {
            verifier,
            whitelist_root,
        }
    }

    /// The whitelist root a valid root proof carries.
    pub fn whitelist_root(&self) -> Digest {
        self.whitelist_root
    }

    /// A short identifier of the key: the whitelist leaf of its verifier data.
    pub fn id(&self) -> Digest {
        key_digest(&self.verifier.verifier_only)
    }

    /// plonky2's conjectured security of the proofs this key verifies, in bits (see
    /// [`crate::wrap::conjectured_security_bits`]).
    pub fn security_bits(&self) -> usize {
        crate::wrap::conjectured_security_bits(&self.verifier.common.config.fri_config)
    }

    /// Rows of the root circuit, as a power of two.
    pub fn degree_bits(&self) -> usize {
        self.verifier.common.degree_bits()
    }

    /// Decode and verify root proof bytes.
    pub fn verify_bytes(&self, bytes: &[u8]) -> Result<VerifiedRoot> {
        let proof = decode_proof(bytes, &self.verifier.common, MAX_PROOF_BYTES)?;
        self.verify(&proof)
    }

    /// Verify a decoded root proof.
    pub fn verify(&self, proof: &Proof) -> Result<VerifiedRoot> {
        if proof.public_inputs.len() != NODE_PUBLIC_INPUTS {
            return Err(CircuitError::WrongCircuit(format!(
                "{} public inputs, a root proof has {NODE_PUBLIC_INPUTS}",
                proof.public_inputs.len()
            )));
        }
        if Digest::from_fields(&proof.public_inputs[HEADER_LEN..]) != self.whitelist_root {
            return Err(CircuitError::WhitelistMismatch);
        }
        let start = Instant::now();
        self.verifier
            .verify(proof.clone())
            .map_err(|e| CircuitError::VerificationFailed(e.to_string()))?;
        Ok(VerifiedRoot {
            header: Header::from_public_inputs(&proof.public_inputs)?,
            verify_ms: start.elapsed().as_secs_f64() * 1e3,
        })
    }

    /// Serialize to bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = FINAL_KEY_MAGIC.to_vec();
        out.extend(FORMAT_VERSION.to_le_bytes());
        out.extend(self.whitelist_root.to_bytes());
        let verifier = self
            .verifier
            .to_bytes(&DefaultGateSerializer)
            .map_err(|e| CircuitError::BadKey(format!("{e:?}")))?;
        out.extend(verifier);
        Ok(out)
    }

    /// Parse bytes written by [`FinalKey::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bad = |why: &str| CircuitError::BadKey(why.to_string());
        if bytes.len() < 44 || &bytes[..8] != FINAL_KEY_MAGIC {
            return Err(bad("not a Sheaf verifier key"));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(bad(&format!(
                "key format {version}, this build reads {FORMAT_VERSION}"
            )));
        }
        let root_bytes: [u8; 32] = bytes[12..44].try_into().expect("32 bytes");
        let whitelist_root =
            Digest::from_bytes(&root_bytes).ok_or_else(|| bad("non-canonical whitelist root"))?;
        let verifier = std::panic::catch_unwind(|| {
            VerifierCircuitData::from_bytes(bytes[44..].to_vec(), &DefaultGateSerializer)
        })
        .map_err(|_| bad("unreadable verifier data"))?
        .map_err(|e| bad(&format!("unreadable verifier data: {e:?}")))?;
        Ok(FinalKey {
            verifier,
            whitelist_root,
        })
    }

    /// Write to a file.
    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_bytes()?).map_err(|e| CircuitError::io(path, e))
    }

    /// Read from a file, bounded in size.
    pub fn read(path: &Path) -> Result<Self> {
        let len = std::fs::metadata(path)
            .map_err(|e| CircuitError::io(path, e))?
            .len();
        if len > MAX_KEY_BYTES {
            return Err(CircuitError::BadKey(format!(
                "{len} bytes, more than the bound of {MAX_KEY_BYTES}"
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| CircuitError::io(path, e))?;
        Self::from_bytes(&bytes)
    }
}
