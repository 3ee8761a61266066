//! Domain-separated Poseidon hashing: every hash of the rollup starts with a tag of its own, so
//! no two kinds of object (an account, a note, a header, a chain step) can ever share a preimage.
//!
//! In a circuit a tag is one constant field element in the sponge input, so separation is free.

use plonky2::field::types::Field;
use sheaf_circuits::{Digest, F};

/// The tag that starts each kind of hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Domain {
    /// An account's commitment (its leaf in the account tree).
    Account = 1,
    /// A note's id.
    Note = 2,
    /// A note's nullifier.
    Nullifier = 3,
    /// A block header's commitment.
    BlockHeader = 4,
    /// A transaction's id (the message its signature covers).
    Transaction = 5,
    /// The commitment to a transaction's input notes (their nullifiers).
    InputNotes = 6,
    /// The commitment to a transaction's output notes (their ids).
    OutputNotes = 7,
    /// A Winternitz secret chain start.
    WotsSecret = 8,
    /// One step of a Winternitz chain.
    WotsChain = 9,
    /// A Winternitz public key (the compression of its chain ends).
    WotsPublicKey = 10,
    /// A batch's id.
    Batch = 11,
    /// One step of a block's transaction accumulator (its header's transaction commitment).
    TxAccumulator = 12,
    /// A state transition: what a tx kernel or a merge node proves.
    Transition = 13,
    /// A block kernel's statement: the previous and the new block commitment.
    BlockStatement = 14,
    /// A local transaction's signed half: what its client proves (`H(LocalTx ‖ tx id)`).
    LocalTx = 15,
    /// A transaction applied to the state without its signature: the network's half of a local
    /// transaction (`H(AppliedTx ‖ transition digest ‖ tx id)`).
    AppliedTx = 16,
}

impl Domain {
    /// The tag as a field element.
    pub fn tag(self) -> F {
        F::from_canonical_u64(self as u64)
    }
}

/// `Poseidon(tag ‖ fields)`.
pub fn hash_tagged(domain: Domain, fields: &[F]) -> Digest {
    let mut input = Vec::with_capacity(fields.len() + 1);
    input.push(domain.tag());
    input.extend_from_slice(fields);
    Digest::hash(&input)
}

/// A small integer (a block number, an index, a nonce) as a field element.
pub fn felt(value: u64) -> F {
    F::from_noncanonical_u64(value)
}

/// `Poseidon(tag ‖ count ‖ d_1 … d_count ‖ 0 … 0)` over a list padded to `capacity` digests: a
/// fixed-length input, so a circuit with `capacity` slots hashes it without branching.
///
/// Panics if the list is longer than `capacity`; callers check the limit first.
pub fn hash_padded_list(domain: Domain, digests: &[Digest], capacity: usize) -> Digest {
    assert!(digests.len() <= capacity, "list longer than its capacity");
    let mut fields = Vec::with_capacity(1 + 4 * capacity);
    fields.push(felt(digests.len() as u64));
    for i in 0..capacity {
        let d = digests.get(i).copied().unwrap_or(Digest::ZERO);
        fields.extend_from_slice(&d.to_fields());
    }
    hash_tagged(domain, &fields)
}
