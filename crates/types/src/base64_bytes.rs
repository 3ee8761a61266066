//! Serde of bytes as one standard base64 string (`#[serde(with = "sheaf_types::base64_bytes")]`):
//! proofs in the prover API's JSON and in chain transactions.

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serializer};

/// Writes `bytes` as base64.
pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Reads base64; anything else is a serde error.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(serde::de::Error::custom)
}
