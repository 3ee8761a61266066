//! The genesis: the accounts and balances the rollup starts with, read from a JSON file.
//!
//! ```json
//! {
//!   "timestamp": 1767225600000,
//!   "accounts": [
//!     { "id": 1, "balance": 1000000000, "auth_commitment": "<64 hex digits>" }
//!   ]
//! }
//! ```
//!
//! Every account starts at nonce 0. The total supply must not exceed `MAX_AMOUNT`: value is
//! conserved, so no balance or note can then ever exceed it either.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sheaf_circuits::Digest;
use sheaf_types::Amount;

use crate::account::{Account, AccountId};
use crate::chain::{BlockHeader, NoteTree};
use crate::error::GenesisError;
use crate::limits::MAX_AMOUNT;
use crate::state::RollupState;

/// One funded account of the genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisAccount {
    /// Its id.
    pub id: AccountId,
    /// Its starting balance, in base units.
    pub balance: Amount,
    /// The root of its one-time keys ([`crate::SigningKey::auth_commitment`]).
    pub auth_commitment: Digest,
}

/// The genesis document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// Block 0's timestamp, Unix milliseconds.
    pub timestamp: u64,
    /// The accounts that exist from the start.
    pub accounts: Vec<GenesisAccount>,
}

impl Genesis {
    /// Parse a genesis document.
    pub fn from_json(json: &str) -> Result<Genesis, GenesisError> {
        Ok(serde_json::from_str(json)?)
    }

    /// Read and parse a genesis file.
    pub fn load(path: &Path) -> Result<Genesis, GenesisError> {
        let json = std::fs::read_to_string(path).map_err(|source| GenesisError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Genesis::from_json(&json)
    }

    /// The state holding the genesis accounts and block 0.
    pub fn build(&self) -> Result<RollupState, GenesisError> {
        let mut supply = Amount::ZERO;
        let mut accounts = Vec::with_capacity(self.accounts.len());
        for entry in &self.accounts {
            if accounts.iter().any(|a: &Account| a.id == entry.id) {
                return Err(GenesisError::DuplicateAccount(entry.id));
            }
            supply = supply.saturating_add(entry.balance);
            accounts.push(Account {
                id: entry.id,
                balance: entry.balance,
                nonce: 0,
                auth_commitment: entry.auth_commitment,
            });
        }
        if supply.base_units() > MAX_AMOUNT {
            return Err(GenesisError::SupplyOutOfRange(supply));
        }
        let mut state = RollupState::with_accounts(accounts);
        let notes = NoteTree::new();
        let header = BlockHeader {
            prev_block_commitment: Digest::ZERO,
            number: 0,
            chain_root: state.chain_root(),
            account_root: state.account_root(),
            nullifier_root: state.nullifier_root(),
            note_root: notes.root(),
            tx_commitment: Digest::ZERO,
            timestamp: self.timestamp,
        };
        state.push_block(header, notes);
        Ok(state)
    }
}
