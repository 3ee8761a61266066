//! A funded demo rollup and a stream of valid transfers on it: what `sheaf rollup prove-block`
//! proves and what tests and benchmarks replay.
//!
//! Transfer `k` of a block is sent by account `k mod A` to account `(k + 1) mod A`, so the next
//! transfer's sender is its recipient; every odd transfer also consumes the note the transfer
//! before it created, in the same block (an unauthenticated note). Each sender's account state
//! chains through the block, so several transfers of one account are in order.

use std::collections::BTreeMap;

use sheaf_circuits::Digest;
use sheaf_types::Amount;

use crate::account::{Account, AccountId};
use crate::error::{GenesisError, SignatureError};
use crate::genesis::{Genesis, GenesisAccount};
use crate::notes::Note;
use crate::signature::SigningKey;
use crate::state::RollupState;
use crate::tx::{InputNote, NoteOrigin, Transaction, TransactionBody};

/// Every demo account's starting balance, in base units.
pub const DEMO_BALANCE: u128 = 1_000_000_000;

/// The amount of every demo transfer.
pub const DEMO_AMOUNT: u128 = 1_000;

/// A demo rollup: its state and its accounts' signers.
#[derive(Clone)]
pub struct DemoRollup {
    /// The state after the last applied block.
    pub state: RollupState,
    genesis: Genesis,
    keys: BTreeMap<AccountId, SigningKey>,
    next_serial: u64,
}

/// Why the demo cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The genesis was refused.
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    /// A key could not be made or could not sign.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// Fewer than two accounts.
    #[error("a demo needs at least two accounts, not {0}")]
    TooFewAccounts(usize),
    /// Not an account of the demo.
    #[error("{0} is not a demo account")]
    UnknownAccount(AccountId),
}

impl DemoRollup {
    /// A rollup of `accounts` funded accounts (ids 1 …), each with `keys` one-time keys (as
    /// many transactions), at genesis time `timestamp`.
    pub fn new(accounts: usize, keys: u64, timestamp: u64) -> Result<DemoRollup, DemoError> {
        if accounts < 2 {
            return Err(DemoError::TooFewAccounts(accounts));
        }
        let signers = (1..=accounts as u32)
            .map(|id| {
                let seed = Digest([id as u64, 0x5eaf, 0xdead, 0xbeef]);
                Ok((AccountId(id), SigningKey::generate(seed, keys)?))
            })
            .collect::<Result<BTreeMap<_, _>, SignatureError>>()?;
        let genesis = Genesis {
            timestamp,
            accounts: signers
                .iter()
                .map(|(id, key)| GenesisAccount {
                    id: *id,
                    balance: Amount(DEMO_BALANCE),
                    auth_commitment: key.auth_commitment(),
                })
                .collect(),
        };
        Ok(DemoRollup {
            state: genesis.build()?,
            genesis,
            keys: signers,
            next_serial: 0,
        })
    }

    /// The genesis the demo started from (what a rollup node is started with).
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// `body` signed with its account's demo key (its key number `nonce`): how a test makes a
    /// transaction of its own, valid or not, from a demo account.
    pub fn sign(&mut self, body: TransactionBody) -> Result<Transaction, DemoError> {
        let key = self
            .keys
            .get_mut(&body.account.id)
            .ok_or(DemoError::UnknownAccount(body.account.id))?;
        Ok(body.sign(key)?)
    }

    /// `count` signed transfers, valid in this order as the next block.
    pub fn transfers(&mut self, count: usize) -> Result<Vec<Transaction>, DemoError> {
        let ids: Vec<AccountId> = self.keys.keys().copied().collect();
        let mut current: BTreeMap<AccountId, Account> =
            self.state.accounts().map(|a| (a.id, *a)).collect();
        let expiration = self.state.tip().number + 10;
        let mut previous_note: Option<Note> = None;
        let mut txs = Vec::with_capacity(count);
        for k in 0..count {
            let sender = ids[k % ids.len()];
            let recipient = ids[(k + 1) % ids.len()];
            let account = current[&sender];
            let inputs: Vec<InputNote> = match previous_note.take() {
                Some(note) if k % 2 == 1 && note.recipient == sender => vec![InputNote {
                    note,
                    origin: NoteOrigin::Unauthenticated,
                }],
                _ => Vec::new(),
            };
            self.next_serial += 1;
            let output = Note {
                recipient,
                amount: Amount(DEMO_AMOUNT),
                serial: Digest([self.next_serial, 0x0de0, 0, 1]),
            };
            let received: u128 = inputs.iter().map(|n| n.note.amount.base_units()).sum();
            let body = TransactionBody {
                account,
                input_notes: inputs,
                output_notes: vec![output],
                final_balance: Amount(account.balance.base_units() + received - DEMO_AMOUNT),
                expiration,
            };
            current.insert(sender, body.final_account());
            let key = self
                .keys
                .get_mut(&sender)
                .expect("every sender is a demo account");
            txs.push(body.sign(key)?);
            previous_note = Some(output);
        }
        Ok(txs)
    }
}
