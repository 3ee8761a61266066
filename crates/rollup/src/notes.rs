//! Notes, their ids and their nullifiers.
//!
//! A note carries value to one account: `(recipient, amount, serial)`. Its id is
//! `H(Note ‖ recipient ‖ amount ‖ serial)`; the id is what the block's note tree holds.
//!
//! **Nullifier: `H(Nullifier ‖ serial ‖ note id)`**, computable by anyone who knows the note.
//! The authority to spend does not come from the nullifier but from the recipient rule (only
//! `recipient` may consume the note) and the recipient's signature over the transaction, so the
//! nullifier needs no owner secret, and a network prover can build a tx proof from public data
//! and the signature alone. It is deterministic (one nullifier per note, so a second spend
//! always collides in the nullifier tree) and unlinkable to the note id without the serial. The
//! cost is privacy against the sender, who can see when the note is spent: acceptable for a
//! rollup whose notes are public (Miden's public notes make the same trade).

use serde::{Deserialize, Serialize};
use sheaf_circuits::Digest;
use sheaf_types::Amount;

use crate::account::{amount_felt, AccountId};
use crate::hash::{felt, hash_tagged, Domain};

/// A note: value sent to one account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Note {
    /// The only account that may consume it.
    pub recipient: AccountId,
    /// Its value, at most [`crate::limits::MAX_AMOUNT`].
    pub amount: Amount,
    /// A value the sender picks unique, so equal payments are distinct notes.
    pub serial: Digest,
}

/// A note's id: `H(Note ‖ recipient ‖ amount ‖ serial)`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct NoteId(pub Digest);

/// A note's nullifier: `H(Nullifier ‖ serial ‖ note id)`, set in the nullifier tree when the
/// note is consumed.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Nullifier(pub Digest);

impl Note {
    /// The note's id.
    pub fn id(&self) -> NoteId {
        let mut fields = vec![felt(self.recipient.0 as u64), amount_felt(self.amount)];
        fields.extend_from_slice(&self.serial.to_fields());
        NoteId(hash_tagged(Domain::Note, &fields))
    }

    /// The note's nullifier.
    pub fn nullifier(&self) -> Nullifier {
        let mut fields = self.serial.to_fields().to_vec();
        fields.extend_from_slice(&self.id().0.to_fields());
        Nullifier(hash_tagged(Domain::Nullifier, &fields))
    }
}

impl Nullifier {
    /// The nullifier's slot in the nullifier tree: its first limb.
    pub fn slot(&self) -> u64 {
        self.0 .0[0]
    }
}
