//! Transactions: a [`Call`] on the chain's accounts or contracts, signed with the sender's
//! ed25519 key over a domain-separated canonical encoding that binds the chain id and the
//! sender's nonce (so a transaction replays neither on another chain nor twice on this one).

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use sheaf_circuits::Digest;

use sheaf_types::{Address, Amount, SequenceId};

pub use crate::settlement::{ClaimEntry, PlannedJob};

/// Prefix of every signed message, so a transaction signature is never valid for anything else.
pub const TX_DOMAIN: &[u8] = b"sheaf-chain/tx/v1\0";

/// What a transaction does. Amounts are in base units of the chain's token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Call {
    /// Move `amount` from the sender's balance to `to`.
    Transfer {
        /// The recipient.
        to: Address,
        /// Amount moved.
        amount: Amount,
    },
    /// Move `amount` from the sender's balance to its settlement stake.
    DepositStake {
        /// Amount staked.
        amount: Amount,
    },
    /// Move `amount` of settlement stake back to the sender's balance.
    WithdrawStake {
        /// Amount withdrawn.
        amount: Amount,
    },
    /// Register the next sequence (the coordinator's key only) with its tree plan.
    RegisterSequence {
        /// The sequence number.
        sequence: SequenceId,
        /// The statement hash its root proof must carry.
        statement: Digest,
        /// Every job of its tree: its position and its circuit's work units, what the chain
        /// owes whoever proved it (empty: the sequence pays no prover rewards).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        jobs: Vec<PlannedJob>,
    },
    /// Commit to a root proof: `hash = H(H(proof) ‖ sender)`.
    SubmitProofHash {
        /// The sequence.
        sequence: SequenceId,
        /// The commitment.
        #[serde(with = "hex_array")]
        hash: [u8; 32],
    },
    /// Reveal a root proof committed to.
    SubmitProof {
        /// The sequence.
        sequence: SequenceId,
        /// The proof's bytes (base64 in JSON).
        #[serde(with = "sheaf_types::base64_bytes")]
        proof: Vec<u8>,
    },
    /// Move the sender's settlement rewards to its balance.
    WithdrawRewards,
    /// Pay provers for jobs of finalized sequences: one proof aggregating a claim per listed
    /// entry (a claim tree of `arity`), all or nothing.
    ClaimRewards {
        /// Children per node of the claim tree.
        arity: u32,
        /// The claims, in the order of the tree's leaves.
        claims: Vec<ClaimEntry>,
        /// The claim tree's root proof (base64 in JSON).
        #[serde(with = "sheaf_types::base64_bytes")]
        proof: Vec<u8>,
    },
    /// Apply the penalties due to `sender` for hashes never revealed (anyone may call it).
    Settle {
        /// The account to settle.
        sender: Address,
    },
    /// Register a membership, paying its deposit from the sender's balance.
    Register {
        /// The member's identity commitment.
        id_commitment: Digest,
        /// Messages per epoch.
        rate_limit: u32,
        /// Memberships to erase first, whose rate this one may reuse.
        erase_list: Vec<Digest>,
        /// Proof that the sender knows the secret behind `id_commitment`, made for the sender's
        /// address on this chain ([`sheaf_circuits::possession`]; base64 in JSON).
        #[serde(with = "sheaf_types::base64_bytes")]
        possession: Vec<u8>,
    },
    /// Extend memberships in their grace period.
    Extend {
        /// Their id commitments.
        ids: Vec<Digest>,
    },
    /// Erase memberships (expired ones, or the sender's own in grace).
    Erase {
        /// Their id commitments.
        ids: Vec<Digest>,
        /// Also zero their leaves.
        cleanup: bool,
    },
    /// Move the deposits of the sender's erased memberships to its balance.
    Withdraw,
}

/// A transaction signed by its sender.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTx {
    /// The sender: its ed25519 verifying key.
    pub from: Address,
    /// The sender's transaction count before this one.
    pub nonce: u64,
    /// What it does.
    pub call: Call,
    /// Signature of [`signing_bytes`] by `from`.
    #[serde(with = "hex_array")]
    pub signature: [u8; 64],
}

/// The message a sender signs: [`TX_DOMAIN`] then the JSON of `(chain_id, from, nonce, call)`,
/// with `from` in hex. Fixed by a golden test: a change here invalidates every stored signature.
pub fn signing_bytes(chain_id: u64, from: &Address, nonce: u64, call: &Call) -> Vec<u8> {
    let mut bytes = TX_DOMAIN.to_vec();
    serde_json::to_writer(&mut bytes, &(chain_id, from, nonce, call))
        .expect("a call serializes to JSON");
    bytes
}

impl SignedTx {
    /// `call` as the `nonce`-th transaction of `key`'s account on chain `chain_id`.
    pub fn sign(key: &SigningKey, chain_id: u64, nonce: u64, call: Call) -> Self {
        let from = Address(key.verifying_key().to_bytes());
        let signature = key
            .sign(&signing_bytes(chain_id, &from, nonce, &call))
            .to_bytes();
        SignedTx {
            from,
            nonce,
            call,
            signature,
        }
    }

    /// Whether the signature is `from`'s over this transaction on chain `chain_id`. Strict
    /// verification: a small-order (weak) key, for which anyone can forge signatures, and a
    /// non-canonical signature are refused.
    pub fn verify(&self, chain_id: u64) -> bool {
        self.signs(&signing_bytes(chain_id, &self.from, self.nonce, &self.call))
    }

    /// Whether the signature is `from`'s, strictly, over `message`.
    fn signs(&self, message: &[u8]) -> bool {
        VerifyingKey::from_bytes(self.from.as_bytes()).is_ok_and(|key| {
            key.verify_strict(message, &Signature::from_bytes(&self.signature))
                .is_ok()
        })
    }

    /// The transaction's hash: SHA-256 of its signed message and signature.
    pub fn hash(&self, chain_id: u64) -> TxHash {
        hash_of(
            &signing_bytes(chain_id, &self.from, self.nonce, &self.call),
            &self.signature,
        )
    }

    /// The transaction's hash if its signature is valid for chain `chain_id` (as
    /// [`SignedTx::verify`] and [`SignedTx::hash`], with the message encoded once).
    pub fn verified_hash(&self, chain_id: u64) -> Option<TxHash> {
        let message = signing_bytes(chain_id, &self.from, self.nonce, &self.call);
        self.signs(&message)
            .then(|| hash_of(&message, &self.signature))
    }
}

/// SHA-256 of a signed message and its signature.
fn hash_of(message: &[u8], signature: &[u8; 64]) -> TxHash {
    let mut h = Sha256::new();
    h.update(message);
    h.update(signature);
    TxHash(h.finalize().into())
}

/// A transaction's hash, hex in JSON and text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TxHash(#[serde(with = "hex_array")] pub [u8; 32]);

impl fmt::Display for TxHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for TxHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TxHash({self})")
    }
}

impl FromStr for TxHash {
    type Err = hex::FromHexError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s.strip_prefix("0x").unwrap_or(s), &mut bytes)?;
        Ok(TxHash(bytes))
    }
}

/// Serde of a byte array as a hex string (an optional `0x` is accepted when reading).
pub mod hex_array {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `bytes` as lowercase hex.
    pub fn serialize<const N: usize, S: Serializer>(
        bytes: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    /// Reads exactly `N` bytes of hex.
    pub fn deserialize<'de, const N: usize, D: Deserializer<'de>>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let s = String::deserialize(d)?;
        let mut bytes = [0u8; N];
        hex::decode_to_slice(s.strip_prefix("0x").unwrap_or(&s), &mut bytes).map_err(|e| {
            serde::de::Error::custom(format_args!("expected {N} bytes of hex: {e}"))
        })?;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signed message of a transfer and a hash commitment, byte for byte as every signature
    /// so far was made over.
    #[test]
    fn signing_bytes_are_unchanged() {
        let from = Address([0xab; 32]);
        let transfer = Call::Transfer {
            to: Address([0xcd; 32]),
            amount: Amount(1 << 70),
        };
        let expected = format!(
            "sheaf-chain/tx/v1\0[24239,\"{}\",3,{{\"transfer\":{{\"to\":\"{}\",\"amount\":{}}}}}]",
            "ab".repeat(32),
            "cd".repeat(32),
            1u128 << 70
        );
        assert_eq!(
            String::from_utf8(signing_bytes(0x5eaf, &from, 3, &transfer)).unwrap(),
            expected
        );
        let commit = Call::SubmitProofHash {
            sequence: SequenceId(7),
            hash: [0x01; 32],
        };
        let expected = format!(
            "sheaf-chain/tx/v1\0[1,\"{}\",0,{{\"submit_proof_hash\":{{\"sequence\":7,\"hash\":\"{}\"}}}}]",
            "ab".repeat(32),
            "01".repeat(32)
        );
        assert_eq!(
            String::from_utf8(signing_bytes(1, &from, 0, &commit)).unwrap(),
            expected
        );
    }
}
