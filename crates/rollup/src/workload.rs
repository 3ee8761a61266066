//! A stream of valid transfers for a running rollup node: what `sheaf devnet` submits, and what
//! it checks the settled blocks against.
//!
//! ```text
//!  TransferWorkload::new ─▶ genesis of A funded accounts (one Winternitz key per transaction)
//!  next(tip) ─▶ sender k mod A pays account k+1 mod A, consuming its oldest note if it has one
//!        │        (Unauthenticated while the note's block is unknown: same block as its creator;
//!        │         Committed at (block, index) once published: a later block)
//!  published(block, created notes) ─▶ inbox notes named by their committed place
//!  expected() ─▶ every account's balance and unconsumed notes, once every transfer is in a block
//! ```
//!
//! The workload is optimistic: each transfer starts from the account state the sender's
//! previous transfer leaves, so every transfer handed out must reach a block, in order, for the
//! following ones to hold (the node's mempool chains them the same way). A transfer the node
//! refuses because its unauthenticated note was committed meanwhile is not lost: the origin is
//! not signed, so [`TransferWorkload::authenticate`] names the note's place and the same
//! transaction is sent again.

use std::collections::{BTreeMap, VecDeque};

use sheaf_circuits::Digest;
use sheaf_types::Amount;

use crate::account::{Account, AccountId};
use crate::chain::BlockNumber;
use crate::demo::DemoError;
use crate::error::SignatureError;
use crate::genesis::{Genesis, GenesisAccount};
use crate::notes::{Note, NoteId};
use crate::signature::SigningKey;
use crate::state::RollupState;
use crate::tx::{InputNote, NoteOrigin, Transaction, TransactionBody};

/// Every workload account's starting balance, in base units.
pub const WORKLOAD_BALANCE: u128 = 1_000_000_000;

/// The amount of every workload transfer.
pub const WORKLOAD_AMOUNT: u128 = 1_000;

/// Blocks after the tip a workload transfer may wait before it expires: well past the
/// mempool's expiration slack, so a transfer never expires while it waits for a block.
pub const WORKLOAD_EXPIRATION: BlockNumber = 10;

/// What an account should hold once every transfer is in a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedWallet {
    /// The account's balance.
    pub balance: Amount,
    /// Notes addressed to it and not consumed, in creation order.
    pub notes: Vec<Note>,
}

impl ExpectedWallet {
    /// The balance plus the unconsumed notes: what the wallet owns.
    pub fn total(&self) -> u128 {
        self.notes.iter().fold(self.balance.base_units(), |sum, n| {
            sum + n.amount.base_units()
        })
    }
}

struct Wallet {
    key: SigningKey,
    /// The account's state after the last transfer handed out.
    account: Account,
    /// Notes received and not yet consumed, oldest first, with where they are known to be.
    inbox: VecDeque<InputNote>,
}

/// Funded accounts sending each other transfers, round robin.
pub struct TransferWorkload {
    genesis: Genesis,
    wallets: BTreeMap<AccountId, Wallet>,
    order: Vec<AccountId>,
    /// Where every published note is: what an unauthenticated input becomes once known.
    committed: BTreeMap<NoteId, (BlockNumber, u32)>,
    transfers: u64,
}

impl TransferWorkload {
    /// `accounts` funded accounts (ids 1 …), each able to sign `keys` transfers, at genesis
    /// time `timestamp`.
    pub fn new(accounts: usize, keys: u64, timestamp: u64) -> Result<TransferWorkload, DemoError> {
        if accounts < 2 {
            return Err(DemoError::TooFewAccounts(accounts));
        }
        let mut wallets = BTreeMap::new();
        for id in 1..=accounts as u32 {
            let key = SigningKey::generate(Digest([id as u64, 0x10ad, 0x5eaf, 0x7e57]), keys)?;
            let account = Account {
                id: AccountId(id),
                balance: Amount(WORKLOAD_BALANCE),
                nonce: 0,
                auth_commitment: key.auth_commitment(),
            };
            wallets.insert(
                AccountId(id),
                Wallet {
                    key,
                    account,
                    inbox: VecDeque::new(),
                },
            );
        }
        let genesis = Genesis {
            timestamp,
            accounts: wallets
                .values()
                .map(|w| GenesisAccount {
                    id: w.account.id,
                    balance: w.account.balance,
                    auth_commitment: w.account.auth_commitment,
                })
                .collect(),
        };
        // Refused here rather than by the node: the supply must fit.
        genesis.build()?;
        Ok(TransferWorkload {
            order: wallets.keys().copied().collect(),
            genesis,
            wallets,
            committed: BTreeMap::new(),
            transfers: 0,
        })
    }

    /// The genesis the node must start from.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// Transfers handed out so far.
    pub fn transfers(&self) -> u64 {
        self.transfers
    }

    /// The next transfer, valid after every transfer handed out before it, expiring
    /// [`WORKLOAD_EXPIRATION`] blocks after `tip` (the node's published tip). An error when the
    /// sender has no key left.
    pub fn next(&mut self, tip: BlockNumber) -> Result<Transaction, SignatureError> {
        let count = self.order.len() as u64;
        let sender = self.order[(self.transfers % count) as usize];
        let recipient = self.order[((self.transfers + 1) % count) as usize];
        let serial = Digest([self.transfers, 0x7e57, 0x10ad, 2]);
        let wallet = self
            .wallets
            .get_mut(&sender)
            .expect("every sender is a workload account");
        let input = wallet.inbox.front().copied();
        let available =
            wallet.account.balance.base_units() + input.map_or(0, |n| n.note.amount.base_units());
        let output = Note {
            recipient,
            amount: Amount(WORKLOAD_AMOUNT.min(available)),
            serial,
        };
        let body = TransactionBody {
            account: wallet.account,
            input_notes: input.into_iter().collect(),
            output_notes: vec![output],
            final_balance: Amount(available - output.amount.base_units()),
            expiration: tip.saturating_add(WORKLOAD_EXPIRATION),
        };
        let final_account = body.final_account();
        let tx = body.sign(&mut wallet.key)?;
        // Signed: only now does the workload move on.
        wallet.inbox.pop_front();
        wallet.account = final_account;
        if let Some(to) = self.wallets.get_mut(&recipient) {
            to.inbox.push_back(InputNote {
                note: output,
                origin: NoteOrigin::Unauthenticated,
            });
        }
        self.transfers += 1;
        Ok(tx)
    }

    /// Block `number` is published with `created_notes` (its note tree, in order): the notes
    /// still waiting in an inbox are from now on named by their place.
    pub fn published(&mut self, number: BlockNumber, created_notes: &[Note]) {
        for (index, note) in created_notes.iter().enumerate() {
            self.committed.insert(note.id(), (number, index as u32));
        }
        for wallet in self.wallets.values_mut() {
            for input in &mut wallet.inbox {
                authenticate_input(&self.committed, input);
            }
        }
    }

    /// Name every unauthenticated input of `tx` whose note is published by its place (the
    /// origin is not signed: the transaction and its id stay the same). True when one changed.
    pub fn authenticate(&self, tx: &mut Transaction) -> bool {
        let mut changed = false;
        for input in &mut tx.body.input_notes {
            changed |= authenticate_input(&self.committed, input);
        }
        changed
    }

    /// Every account's balance and unconsumed notes once every transfer handed out is in a
    /// block.
    pub fn expected(&self) -> BTreeMap<AccountId, ExpectedWallet> {
        self.wallets
            .iter()
            .map(|(id, w)| {
                let wallet = ExpectedWallet {
                    balance: w.account.balance,
                    notes: w.inbox.iter().map(|n| n.note).collect(),
                };
                (*id, wallet)
            })
            .collect()
    }
}

/// Name `input` by its place when it is unauthenticated and its note is in `committed`.
fn authenticate_input(
    committed: &BTreeMap<NoteId, (BlockNumber, u32)>,
    input: &mut InputNote,
) -> bool {
    if input.origin != NoteOrigin::Unauthenticated {
        return false;
    }
    match committed.get(&input.note.id()) {
        Some(&(block, index)) => {
            input.origin = NoteOrigin::Committed { block, index };
            true
        }
        None => false,
    }
}

/// What every account of `state` holds: its balance, and the notes addressed to it that
/// `transactions` (every transaction from genesis to `state`, in block order) created and that
/// `state` has not spent.
pub fn wallets_of<'a>(
    state: &RollupState,
    transactions: impl IntoIterator<Item = &'a Transaction>,
) -> BTreeMap<AccountId, ExpectedWallet> {
    let mut wallets: BTreeMap<AccountId, ExpectedWallet> = state
        .accounts()
        .map(|a| {
            let wallet = ExpectedWallet {
                balance: a.balance,
                notes: Vec::new(),
            };
            (a.id, wallet)
        })
        .collect();
    for tx in transactions {
        for note in &tx.body.output_notes {
            if state.is_spent(note.nullifier()) {
                continue;
            }
            if let Some(wallet) = wallets.get_mut(&note.recipient) {
                wallet.notes.push(*note);
            }
        }
    }
    wallets
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mempool::MempoolConfig;
    use crate::producer::BlockProducer;

    /// Submits `count` transfers, then selects batches and builds blocks until none waits;
    /// returns the blocks.
    fn run(
        producer: &mut BlockProducer,
        workload: &mut TransferWorkload,
        count: usize,
        timestamp: &mut u64,
        submitted: &mut BTreeMap<crate::TxId, Transaction>,
    ) -> Vec<(crate::BlockHeader, Vec<Transaction>)> {
        for _ in 0..count {
            let tip = producer.state().tip().number;
            let mut tx = workload.next(tip).unwrap();
            workload.authenticate(&mut tx);
            submitted.insert(tx.id(), tx.clone());
            producer.submit(tx).unwrap();
        }
        let mut blocks = Vec::new();
        loop {
            *timestamp += 1_000;
            producer.select_batches();
            let Some(block) = producer.build_block(*timestamp).unwrap() else {
                break;
            };
            let created: Vec<Note> = block
                .transactions
                .iter()
                .flat_map(|tx| tx.body.output_notes.iter().copied())
                .collect();
            workload.published(block.header.number, &created);
            blocks.push((block.header, block.transactions));
        }
        blocks
    }

    #[test]
    fn transfers_through_the_producer_replay_to_the_expected_balances() {
        let mut workload = TransferWorkload::new(3, 16, 1_000).unwrap();
        let genesis = workload.genesis().build().unwrap();
        // Two transfers a block, one a batch: a note's consumer often lands in the block after
        // its creator's, still naming it unauthenticated.
        let config = MempoolConfig {
            max_txs_per_batch: 1,
            max_batches_per_block: 2,
            ..MempoolConfig::default()
        };
        let mut producer = BlockProducer::new(genesis.clone(), config, 2).unwrap();
        let mut timestamp = 1_000;
        let (mut blocks, mut submitted) = (Vec::new(), BTreeMap::new());
        for round in [5, 4, 3] {
            let built = run(
                &mut producer,
                &mut workload,
                round,
                &mut timestamp,
                &mut submitted,
            );
            blocks.extend(built);
        }
        assert_eq!(workload.transfers(), 12);
        assert!(blocks.len() >= 6, "{} blocks", blocks.len());
        let consumed = blocks
            .iter()
            .flat_map(|(_, txs)| txs)
            .filter(|tx| !tx.body.input_notes.is_empty())
            .count();
        assert!(consumed >= 8, "{consumed} transfers consumed a note");

        // Replayed as a node stores them: as submitted, some naming unauthenticated a note an
        // earlier block created (the mempool named it by its place when that block was built).
        let as_submitted: Vec<_> = blocks
            .iter()
            .map(|(header, txs)| {
                (
                    *header,
                    txs.iter().map(|tx| submitted[&tx.id()].clone()).collect(),
                )
            })
            .collect();
        let rewritten = as_submitted
            .iter()
            .zip(&blocks)
            .any(|((_, stored), (_, built))| stored != built);
        assert!(rewritten, "no consumer crossed into a later block");
        let transactions: Vec<Transaction> =
            blocks.iter().flat_map(|(_, txs)| txs.clone()).collect();
        let replayed = BlockProducer::replay(genesis, as_submitted, 1).unwrap();
        assert_eq!(replayed.tip(), producer.state().tip());
        let wallets = wallets_of(&replayed, &transactions);
        assert_eq!(wallets, workload.expected());
        let supply: u128 = wallets.values().map(ExpectedWallet::total).sum();
        assert_eq!(supply, 3 * WORKLOAD_BALANCE);
    }

    #[test]
    fn a_sender_out_of_keys_is_refused_without_moving_on() {
        let mut workload = TransferWorkload::new(2, 1, 1_000).unwrap();
        workload.next(0).unwrap();
        workload.next(0).unwrap();
        assert!(workload.next(0).is_err());
        assert_eq!(workload.transfers(), 2);
        assert!(matches!(
            TransferWorkload::new(1, 1, 0),
            Err(DemoError::TooFewAccounts(1))
        ));
    }
}
