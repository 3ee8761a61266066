//! Hashes as four Goldilocks elements, and the worker identity built on them.

use std::fmt;
use std::str::FromStr;

use plonky2::field::types::{Field, Field64, PrimeField64, Sample};
use plonky2::hash::hash_types::HashOut;
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::plonk::config::Hasher;
use serde::{Deserialize, Serialize};

use crate::F;

/// A Poseidon hash: four canonical Goldilocks elements.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u64; 4]);

impl Digest {
    /// The all-zero digest.
    pub const ZERO: Digest = Digest([0; 4]);

    /// Field elements of this digest.
    pub fn to_fields(self) -> [F; 4] {
        self.0.map(F::from_canonical_u64)
    }

    /// Digest from four field elements.
    pub fn from_fields(fields: &[F]) -> Self {
        Digest(std::array::from_fn(|i| fields[i].to_canonical_u64()))
    }

    /// Poseidon `hash_no_pad` of any number of field elements.
    pub fn hash(fields: &[F]) -> Self {
        Self::from_hash_out(PoseidonHash::hash_no_pad(fields))
    }

    /// Poseidon hash of a sequence of digests, concatenated.
    pub fn hash_digests(digests: &[Digest]) -> Self {
        let fields: Vec<F> = digests.iter().flat_map(|d| d.to_fields()).collect();
        Self::hash(&fields)
    }

    /// `H(left ‖ right)`, the two-to-one compression.
    pub fn two_to_one(left: Digest, right: Digest) -> Self {
        Self::from_hash_out(PoseidonHash::two_to_one(
            left.to_hash_out(),
            right.to_hash_out(),
        ))
    }

    /// As plonky2's hash type.
    pub fn to_hash_out(self) -> HashOut<F> {
        HashOut {
            elements: self.to_fields(),
        }
    }

    /// From plonky2's hash type.
    pub fn from_hash_out(h: HashOut<F>) -> Self {
        Self::from_fields(&h.elements)
    }

    /// 32 little-endian bytes.
    pub fn to_bytes(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, limb) in self.0.iter().enumerate() {
            out[i * 8..(i + 1) * 8].copy_from_slice(&limb.to_le_bytes());
        }
        out
    }

    /// From 32 little-endian bytes; `None` when a limb is not canonical.
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<Self> {
        let mut limbs = [0u64; 4];
        for (i, limb) in limbs.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[i * 8..(i + 1) * 8]);
            *limb = u64::from_le_bytes(b);
            if *limb >= F::ORDER {
                return None;
            }
        }
        Some(Digest(limbs))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.to_bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// Why a hex string is not a digest.
#[derive(Debug, thiserror::Error)]
#[error("a digest is 64 hex characters of four canonical field elements")]
pub struct ParseDigestError;

impl FromStr for Digest {
    type Err = ParseDigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.strip_prefix("0x").unwrap_or(s);
        // Hex digits only: `from_str_radix` alone would take a sign ("+f").
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ParseDigestError);
        }
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| ParseDigestError)?;
        }
        Digest::from_bytes(&bytes).ok_or(ParseDigestError)
    }
}

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<De: serde::Deserializer<'de>>(d: De) -> Result<Self, De::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A prover's secret; its hash is the `worker_pk` that every proof it makes carries.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct WorkerSecret(Digest);

impl WorkerSecret {
    /// A fresh random secret.
    pub fn random() -> Self {
        WorkerSecret(Digest::from_fields(&F::rand_array::<4>()))
    }

    /// A secret from known limbs (tests, key files).
    pub fn from_digest(secret: Digest) -> Self {
        WorkerSecret(secret)
    }

    /// The secret itself.
    pub fn expose(&self) -> Digest {
        self.0
    }

    /// `worker_pk = H(secret)`.
    pub fn worker_pk(&self) -> Digest {
        Digest::hash(&self.0.to_fields())
    }
}

impl fmt::Debug for WorkerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WorkerSecret(pk={})", self.worker_pk())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_hex_round_trips_and_rejects_non_canonical() {
        let d = Digest([1, 2, 3, F::ORDER - 1]);
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        let mut bytes = d.to_bytes();
        bytes[24..32].copy_from_slice(&F::ORDER.to_le_bytes());
        assert!(Digest::from_bytes(&bytes).is_none());
        assert!("zz".parse::<Digest>().is_err());
    }

    #[test]
    fn a_digest_with_a_sign_in_place_of_a_hex_digit_is_refused() {
        let text = Digest([1, 2, 3, 4]).to_string();
        assert!(text.starts_with("01"), "{text}");
        // "+1" parses as 1 with `from_str_radix`, so the same digest had two spellings.
        let signed = format!("+{}", &text[1..]);
        assert_eq!(signed.len(), 64);
        assert!(signed.parse::<Digest>().is_err());
        assert!(format!("-{}", &text[1..]).parse::<Digest>().is_err());
        assert_eq!(text.parse::<Digest>().unwrap(), Digest([1, 2, 3, 4]));
    }

    #[test]
    fn two_to_one_equals_hash_of_concatenation() {
        let a = Digest([1, 2, 3, 4]);
        let b = Digest([5, 6, 7, 8]);
        assert_eq!(Digest::two_to_one(a, b), Digest::hash_digests(&[a, b]));
    }
}
