//! A small funded rollup and helpers to build signed transfers on it.

use std::collections::HashMap;

use sheaf_circuits::Digest;
use sheaf_rollup::limits::DEFAULT_MAX_TXS_PER_BATCH;
use sheaf_rollup::{
    AccountId, BlockError, Genesis, GenesisAccount, InputNote, Note, NoteOrigin, ProducedBlock,
    RollupState, SigningKey, Transaction, TransactionBody,
};
use sheaf_types::Amount;

/// One-time keys per test account: enough for every test, cheap to generate.
pub const TEST_KEY_COUNT: u64 = 8;

/// Every test account's starting balance.
pub const START_BALANCE: u128 = 1_000;

pub const ALICE: AccountId = AccountId(1);
pub const BOB: AccountId = AccountId(2);
pub const CAROL: AccountId = AccountId(3);

/// A rollup with Alice, Bob and Carol funded, and their signers.
#[derive(Clone)]
pub struct World {
    pub state: RollupState,
    pub keys: HashMap<AccountId, SigningKey>,
    next_serial: u64,
    next_time: u64,
}

pub fn signing_key(id: AccountId) -> SigningKey {
    SigningKey::generate(Digest([id.0 as u64, 42, 42, 42]), TEST_KEY_COUNT).unwrap()
}

pub fn world() -> World {
    let keys: HashMap<AccountId, SigningKey> =
        [ALICE, BOB, CAROL].map(|id| (id, signing_key(id))).into();
    let genesis = Genesis {
        timestamp: 1_000,
        accounts: [ALICE, BOB, CAROL]
            .map(|id| GenesisAccount {
                id,
                balance: Amount(START_BALANCE),
                auth_commitment: keys[&id].auth_commitment(),
            })
            .to_vec(),
    };
    World {
        state: genesis.build().unwrap(),
        keys,
        next_serial: 1,
        next_time: 2_000,
    }
}

impl World {
    /// A fresh note to `recipient`.
    pub fn note(&mut self, recipient: AccountId, amount: u128) -> Note {
        self.next_serial += 1;
        Note {
            recipient,
            amount: Amount(amount),
            serial: Digest([self.next_serial, 7, 7, 7]),
        }
    }

    /// The body of a transaction of `from` at its current state: consume `inputs`, create
    /// `outputs`, keep the rest.
    pub fn body(&self, from: AccountId, inputs: &[InputNote], outputs: &[Note]) -> TransactionBody {
        let account = *self.state.account(from).unwrap();
        let received: u128 = inputs.iter().map(|n| n.note.amount.0).sum();
        let sent: u128 = outputs.iter().map(|n| n.amount.0).sum();
        TransactionBody {
            account,
            input_notes: inputs.to_vec(),
            output_notes: outputs.to_vec(),
            final_balance: Amount(account.balance.0 + received - sent),
            expiration: self.state.tip().number + 10,
        }
    }

    /// Sign a body with its account's key.
    pub fn sign(&mut self, body: TransactionBody) -> Transaction {
        let key = self.keys.get_mut(&body.account.id).unwrap();
        body.sign(key).unwrap()
    }

    /// A signed transaction of `from` at its current state.
    pub fn tx(&mut self, from: AccountId, inputs: &[InputNote], outputs: &[Note]) -> Transaction {
        let body = self.body(from, inputs, outputs);
        self.sign(body)
    }

    /// Produce and apply the next block in batches of the default size.
    pub fn block(&mut self, txs: &[Transaction]) -> Result<ProducedBlock, BlockError> {
        self.block_in_batches(txs, DEFAULT_MAX_TXS_PER_BATCH)
    }

    /// Produce and apply the next block in batches of `batch_size`.
    pub fn block_in_batches(
        &mut self,
        txs: &[Transaction],
        batch_size: usize,
    ) -> Result<ProducedBlock, BlockError> {
        self.next_time += 1_000;
        self.state.apply_block(txs, self.next_time, batch_size)
    }

    /// Produce a block that must be refused; assert the state did not change and return why.
    pub fn refused_block(&mut self, txs: &[Transaction], batch_size: usize) -> BlockError {
        let before = self.state.clone();
        let error = self
            .block_in_batches(txs, batch_size)
            .expect_err("the block must be refused");
        assert_eq!(self.state, before, "a refused block changed the state");
        error
    }

    /// The balance of an account.
    pub fn balance(&self, id: AccountId) -> u128 {
        self.state.account(id).unwrap().balance.0
    }
}

/// `note` as created in `block`: an input authenticated through the chain tree.
pub fn committed(block: &ProducedBlock, note: Note) -> InputNote {
    let index = block
        .witnesses
        .iter()
        .flat_map(|w| &w.note_inserts)
        .find(|(id, _)| *id == note.id())
        .map(|(_, update)| update.key as u32)
        .expect("the block created the note");
    InputNote {
        note,
        origin: NoteOrigin::Committed {
            block: block.header.number,
            index,
        },
    }
}

/// `note` as created earlier in the same block.
pub fn unauthenticated(note: Note) -> InputNote {
    InputNote {
        note,
        origin: NoteOrigin::Unauthenticated,
    }
}
