//! Chain account addresses.

use std::fmt;
use std::str::FromStr;

use crate::text::text_form;

/// A chain account: the ed25519 public key that signs its transactions. Written as 64 hex
/// digits, in JSON, in the store and to people.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(pub [u8; 32]);

/// Text that is not 64 hex digits.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid address {0:?} (expected 64 hex digits)")]
pub struct InvalidAddress(pub String);

impl Address {
    /// The key's bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl From<[u8; 32]> for Address {
    fn from(bytes: [u8; 32]) -> Self {
        Address(bytes)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

impl FromStr for Address {
    type Err = InvalidAddress;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| InvalidAddress(s.to_owned()))?;
        Ok(Address(bytes))
    }
}

text_form!(Address, InvalidAddress);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_other_text() {
        let a = Address([0xab; 32]);
        assert_eq!(a.to_string(), "ab".repeat(32));
        assert_eq!(a.to_string().parse::<Address>().unwrap(), a);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            format!("\"{}\"", "ab".repeat(32))
        );
        for bad in ["ab", &"zz".repeat(32), &"ab".repeat(33)] {
            assert!(bad.parse::<Address>().is_err(), "{bad}");
        }
    }
}
