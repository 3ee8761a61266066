//! Accounts: an id, a balance, a nonce and the commitment to the keys that authorize it.

use serde::{Deserialize, Serialize};
use sheaf_circuits::Digest;
use sheaf_types::Amount;

use crate::hash::{felt, hash_tagged, Domain};

/// An account's id: its slot in the account tree.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct AccountId(pub u32);

impl std::fmt::Display for AccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "account {}", self.0)
    }
}

/// One account's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Its id.
    pub id: AccountId,
    /// Its balance, at most [`crate::limits::MAX_AMOUNT`].
    pub balance: Amount,
    /// Transactions applied so far; the next one signs with one-time key number `nonce`.
    pub nonce: u64,
    /// Root of the account's one-time public keys ([`crate::signature`]).
    pub auth_commitment: Digest,
}

impl Account {
    /// `H(Account ‖ id ‖ balance ‖ nonce ‖ auth_commitment)`: the account's leaf in the account
    /// tree and the "initial/final account commitment" of a transaction.
    pub fn commitment(&self) -> Digest {
        let mut fields = vec![
            felt(self.id.0 as u64),
            amount_felt(self.balance),
            felt(self.nonce),
        ];
        fields.extend_from_slice(&self.auth_commitment.to_fields());
        hash_tagged(Domain::Account, &fields)
    }

    /// The account after a transaction that leaves it `balance`: the nonce is one more.
    ///
    /// Wrapping, so that a hostile nonce cannot panic: real nonces stay below `2^16` (one per
    /// one-time key), and a transaction claiming any other is refused as stale.
    pub fn next(&self, balance: Amount) -> Account {
        Account {
            balance,
            nonce: self.nonce.wrapping_add(1),
            ..*self
        }
    }
}

/// An amount as a field element. Amounts are range-checked to [`crate::limits::MAX_AMOUNT`]
/// before they matter; this reduction is only total so that hashing never panics.
pub fn amount_felt(amount: Amount) -> sheaf_circuits::F {
    use plonky2::field::types::Field;
    sheaf_circuits::F::from_noncanonical_u128(amount.base_units())
}
