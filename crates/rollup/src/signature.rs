//! Transaction authorization: one-time Winternitz signatures over Poseidon, one key per nonce,
//! all keys of an account under one Merkle root.
//!
//! ```text
//!  seed ──H──▶ sk(i, c) ──step──▶ … ──step──▶ end(i, c)      67 chains of 15 steps, key i
//!                   signature: chain c at position d_c          (d = message digits ‖ checksum)
//!  pk(i) = H(ends of key i)          auth_commitment = Merkle root of pk(0) … pk(2^16 − 1)
//! ```
//!
//! **Why Winternitz over Poseidon.** The tx kernel must verify the signature in-circuit, so a
//! network prover needs the signature but never the account's secret. A hash-based signature
//! costs only Poseidon permutations, which plonky2 does in one row each (its Poseidon gate);
//! an elliptic-curve signature would need non-native field arithmetic, tens of thousands of
//! rows. Winternitz is the cheapest hash-based scheme to verify; its one weakness, that a key
//! must sign only once, is exactly what the account's nonce already provides: transaction
//! number `n` of an account signs with key `n`, and the nonce never repeats.
//!
//! **Parameters.** `w = 16` (4 bits a digit): the 256-bit message (the transaction id, four
//! 64-bit limbs) is 64 digits, the checksum `Σ (15 − d)` ≤ 960 is 3 more, so 67 chains of 15
//! steps. A chain step is `H(WotsChain ‖ key ‖ chain ‖ step ‖ value)`, eight elements, one
//! permutation; tweaking by key, chain and step keeps every hash call distinct (no multi-target
//! attacks across chains or keys). Verifying costs at most 67 · 15 = 1005 chain permutations, 34
//! for the public key (270 elements at rate 8) and 16 for the key's Merkle path: about 1,055
//! Poseidon rows, plus about 600 rows of digit decomposition and selection, about 1.7k rows of a
//! tx kernel budgeted at 2^13 (a circuit runs every chain to 15 steps and selects, since it
//! cannot branch on the digit). The signature is 67 digests and 16 siblings, 2.6 KB.
//! `w = 256` would halve the chains but make each 255 steps (about 8.7k permutations): over
//! budget. `w = 4` would need 133 chains: more witness, no fewer rows.
//!
//! **In a circuit**, each limb of the message is split into 16 nibbles; the circuit must also
//! check that the nibbles form a canonical element (below `p`), or a limb `x` could be signed as
//! the digits of `x + p`.
//!
//! **Keys.** A [`SigningKey`] holds a seed and derives key `i` from it; the account's
//! `auth_commitment` is the root of a depth-16 tree whose leaf `i` is `pk(i)`. A signer may
//! populate only the first `key_count` leaves (the others stay empty, which no public key
//! hashes to); [`DEFAULT_KEY_COUNT`] fills the tree, tests use a few. The signer refuses to sign
//! two different messages with one key ([`crate::SignatureError::KeyReused`]), and the state
//! refuses a transaction whose nonce is not the account's current one, so no key is used twice.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sheaf_circuits::Digest;

use crate::error::SignatureError;
use crate::hash::{felt, hash_tagged, Domain};
use crate::smt::{verify_path, MerklePath, SparseMerkleTree};

/// Bits per Winternitz digit.
pub const WOTS_LOG_W: usize = 4;
/// The Winternitz parameter `w`: chain positions `0 … w − 1`.
pub const WOTS_W: usize = 1 << WOTS_LOG_W;
/// Digits of a message: four 64-bit limbs.
pub const WOTS_MESSAGE_DIGITS: usize = 4 * 64 / WOTS_LOG_W;
/// Digits of the checksum: `64 · 15 = 960 < 16^3`.
pub const WOTS_CHECKSUM_DIGITS: usize = 3;
/// Chains per one-time key.
pub const WOTS_CHAINS: usize = WOTS_MESSAGE_DIGITS + WOTS_CHECKSUM_DIGITS;
/// Depth of an account's key tree: `2^16` one-time keys, so `2^16` transactions per account.
pub const AUTH_TREE_DEPTH: usize = 16;
/// Keys a production account populates: all of them.
pub const DEFAULT_KEY_COUNT: u64 = 1 << AUTH_TREE_DEPTH;

const _: () =
    assert!(WOTS_MESSAGE_DIGITS * (WOTS_W - 1) < 1 << (WOTS_LOG_W * WOTS_CHECKSUM_DIGITS));

/// The tree of an account's one-time public keys.
pub type AuthKeyTree = SparseMerkleTree<AUTH_TREE_DEPTH>;

/// A one-time signature with key `key_index` (the account's nonce).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// Chain `c` at the position of digit `c`, [`WOTS_CHAINS`] of them.
    pub chains: Vec<Digest>,
    /// The key's path in the account's key tree.
    pub key_path: MerklePath,
}

/// The 67 digits a message is signed as: its 64 nibbles (limb by limb, least significant
/// first), then the checksum's 3 nibbles.
pub fn message_digits(message: Digest) -> [usize; WOTS_CHAINS] {
    let mut digits = [0usize; WOTS_CHAINS];
    for (limb_index, limb) in message.0.iter().enumerate() {
        for nibble in 0..64 / WOTS_LOG_W {
            digits[limb_index * 16 + nibble] = ((limb >> (nibble * WOTS_LOG_W)) & 0xf) as usize;
        }
    }
    let checksum: usize = digits[..WOTS_MESSAGE_DIGITS]
        .iter()
        .map(|d| WOTS_W - 1 - d)
        .sum();
    for i in 0..WOTS_CHECKSUM_DIGITS {
        digits[WOTS_MESSAGE_DIGITS + i] = (checksum >> (i * WOTS_LOG_W)) & 0xf;
    }
    digits
}

/// Advance chain `chain` of key `key_index` from position `from` to position `to`.
fn walk_chain(key_index: u64, chain: usize, from: usize, to: usize, value: Digest) -> Digest {
    (from..to).fold(value, |value, step| {
        let mut fields = vec![felt(key_index), felt(chain as u64), felt(step as u64)];
        fields.extend_from_slice(&value.to_fields());
        hash_tagged(Domain::WotsChain, &fields)
    })
}

/// `pk = H(WotsPublicKey ‖ key_index ‖ chain ends)`.
fn compress_public_key(key_index: u64, ends: &[Digest]) -> Digest {
    let mut fields = vec![felt(key_index)];
    fields.extend(ends.iter().flat_map(|d| d.to_fields()));
    hash_tagged(Domain::WotsPublicKey, &fields)
}

/// The one-time public key a signature of `message` with key `key_index` stands for; `None`
/// when the signature has the wrong number of chains.
pub fn recover_public_key(
    key_index: u64,
    message: Digest,
    signature: &Signature,
) -> Option<Digest> {
    if signature.chains.len() != WOTS_CHAINS {
        return None;
    }
    let ends: Vec<Digest> = message_digits(message)
        .iter()
        .zip(&signature.chains)
        .enumerate()
        .map(|(chain, (digit, value))| walk_chain(key_index, chain, *digit, WOTS_W - 1, *value))
        .collect();
    Some(compress_public_key(key_index, &ends))
}

/// Whether `signature` signs `message` with key `key_index` of the account whose key root is
/// `auth_commitment`. The pure check the tx kernel mirrors.
pub fn verify(
    auth_commitment: Digest,
    key_index: u64,
    message: Digest,
    signature: &Signature,
) -> bool {
    recover_public_key(key_index, message, signature).is_some_and(|pk| {
        verify_path::<AUTH_TREE_DEPTH>(auth_commitment, key_index, pk, &signature.key_path)
    })
}

/// An account's signer: a seed deriving every one-time key, the key tree, and the messages
/// already signed (so no key signs twice).
#[derive(Clone)]
pub struct SigningKey {
    seed: Digest,
    tree: AuthKeyTree,
    key_count: u64,
    signed: BTreeMap<u64, Digest>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("auth_commitment", &self.auth_commitment())
            .field("key_count", &self.key_count)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Derive keys `0 … key_count − 1` from `seed` and build their tree. Costs
    /// `key_count · 67 · 16` Poseidon hashes: about 1.7 ms a key on one core, so about two
    /// minutes for [`DEFAULT_KEY_COUNT`] (once per account).
    pub fn generate(seed: Digest, key_count: u64) -> Result<SigningKey, SignatureError> {
        if key_count == 0 || key_count > DEFAULT_KEY_COUNT {
            return Err(SignatureError::KeyCount(key_count));
        }
        let mut key = SigningKey {
            seed,
            tree: AuthKeyTree::new(),
            key_count,
            signed: BTreeMap::new(),
        };
        for index in 0..key_count {
            let ends: Vec<Digest> = (0..WOTS_CHAINS)
                .map(|chain| walk_chain(index, chain, 0, WOTS_W - 1, key.chain_start(index, chain)))
                .collect();
            key.tree.insert(index, compress_public_key(index, &ends));
        }
        Ok(key)
    }

    /// The root of the key tree: what the account stores.
    pub fn auth_commitment(&self) -> Digest {
        self.tree.root()
    }

    /// Sign `message` with key `key_index`. Signing the same message again is harmless and
    /// returns the same signature; any other message with a used key is refused.
    pub fn sign(&mut self, key_index: u64, message: Digest) -> Result<Signature, SignatureError> {
        if key_index >= self.key_count {
            return Err(SignatureError::NoSuchKey(key_index));
        }
        match self.signed.get(&key_index) {
            Some(signed) if *signed != message => return Err(SignatureError::KeyReused(key_index)),
            _ => {}
        }
        self.signed.insert(key_index, message);
        let chains = message_digits(message)
            .iter()
            .enumerate()
            .map(|(chain, digit)| {
                walk_chain(
                    key_index,
                    chain,
                    0,
                    *digit,
                    self.chain_start(key_index, chain),
                )
            })
            .collect();
        Ok(Signature {
            chains,
            key_path: self.tree.path(key_index),
        })
    }

    fn chain_start(&self, key_index: u64, chain: usize) -> Digest {
        let mut fields = self.seed.to_fields().to_vec();
        fields.extend([felt(key_index), felt(chain as u64)]);
        hash_tagged(Domain::WotsSecret, &fields)
    }
}
