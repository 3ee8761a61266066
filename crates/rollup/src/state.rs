//! The rollup's state: accounts, spent nullifiers and every block, each under its tree.
//!
//! ```text
//!  accounts ──▶ account tree   (depth 32, leaf `id` = account commitment)
//!  nullifiers ─▶ nullifier tree (depth 64, leaf `slot` = the nullifier; empty = unspent)
//!  blocks ────▶ headers, their note trees (depth 16), the chain tree (depth 32)
//! ```
//!
//! The state changes only through [`crate::block::produce_block`] (and genesis), which works on
//! a copy and hands back the new state only when every rule held.

use std::collections::BTreeMap;

use sheaf_circuits::Digest;

use crate::account::{Account, AccountId};
use crate::chain::{BlockHeader, BlockNumber, ChainTree, NoteInclusionProof, NoteTree};
use crate::limits::{ACCOUNT_TREE_DEPTH, NULLIFIER_TREE_DEPTH};
use crate::notes::{NoteId, Nullifier};
use crate::smt::{MerklePath, SparseMerkleTree};

/// The tree of account commitments, keyed by account id.
pub type AccountTree = SparseMerkleTree<ACCOUNT_TREE_DEPTH>;

/// The tree of spent nullifiers, keyed by [`Nullifier::slot`].
pub type NullifierTree = SparseMerkleTree<NULLIFIER_TREE_DEPTH>;

/// The whole rollup state after some block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollupState {
    accounts: BTreeMap<AccountId, Account>,
    account_tree: AccountTree,
    nullifier_tree: NullifierTree,
    headers: Vec<BlockHeader>,
    note_trees: Vec<NoteTree>,
    chain_tree: ChainTree,
}

impl RollupState {
    /// A state holding `accounts` and no block yet; [`Self::push_block`] adds genesis.
    pub(crate) fn with_accounts(accounts: impl IntoIterator<Item = Account>) -> RollupState {
        let mut state = RollupState {
            accounts: BTreeMap::new(),
            account_tree: AccountTree::new(),
            nullifier_tree: NullifierTree::new(),
            headers: Vec::new(),
            note_trees: Vec::new(),
            chain_tree: ChainTree::new(),
        };
        for account in accounts {
            state.set_account(account);
        }
        state
    }

    /// An account's current state.
    pub fn account(&self, id: AccountId) -> Option<&Account> {
        self.accounts.get(&id)
    }

    /// Every account, by id.
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }

    /// The latest block's header.
    pub fn tip(&self) -> &BlockHeader {
        self.headers
            .last()
            .expect("a state always holds its genesis block")
    }

    /// Block `number`'s header, if it exists.
    pub fn header(&self, number: BlockNumber) -> Option<&BlockHeader> {
        self.headers.get(number as usize)
    }

    /// Root of the account tree.
    pub fn account_root(&self) -> Digest {
        self.account_tree.root()
    }

    /// Root of the nullifier tree.
    pub fn nullifier_root(&self) -> Digest {
        self.nullifier_tree.root()
    }

    /// Root of the chain tree over every block so far: the next header's `chain_root`.
    pub fn chain_root(&self) -> Digest {
        self.chain_tree.root()
    }

    /// The path of block `number`'s slot in the chain tree: for the tip, what the next block's
    /// kernel inserts the tip's commitment along.
    pub fn chain_path(&self, number: BlockNumber) -> MerklePath {
        self.chain_tree.path(number as u64)
    }

    /// The account commitment's path in the account tree.
    pub fn account_path(&self, id: AccountId) -> MerklePath {
        self.account_tree.path(id.0 as u64)
    }

    /// Whether the nullifier is in the nullifier tree.
    pub fn is_spent(&self, nullifier: Nullifier) -> bool {
        self.nullifier_tree.get(nullifier.slot()) == nullifier.0
    }

    /// What the nullifier tree holds at the nullifier's slot (empty when no note there is spent).
    pub fn nullifier_slot(&self, nullifier: Nullifier) -> Digest {
        self.nullifier_tree.get(nullifier.slot())
    }

    /// The path of the nullifier's slot (a non-membership proof when unspent).
    pub fn nullifier_path(&self, nullifier: Nullifier) -> MerklePath {
        self.nullifier_tree.path(nullifier.slot())
    }

    /// The id at `index` of block `block`'s note tree, with its inclusion proof under
    /// [`Self::chain_root`]; `None` when no such block or slot exists.
    pub fn note_inclusion(
        &self,
        block: BlockNumber,
        index: u32,
    ) -> Option<(NoteId, NoteInclusionProof)> {
        if !NoteTree::contains_key(index as u64) {
            return None;
        }
        let header = *self.header(block)?;
        let notes = &self.note_trees[block as usize];
        let proof = NoteInclusionProof {
            header,
            chain_path: self.chain_tree.path(block as u64),
            index,
            note_path: notes.path(index as u64),
        };
        Some((NoteId(notes.get(index as u64)), proof))
    }

    /// Set an account's state.
    pub(crate) fn set_account(&mut self, account: Account) {
        self.account_tree
            .insert(account.id.0 as u64, account.commitment());
        self.accounts.insert(account.id, account);
    }

    /// Record a nullifier as spent.
    pub(crate) fn spend(&mut self, nullifier: Nullifier) {
        self.nullifier_tree.insert(nullifier.slot(), nullifier.0);
    }

    /// Append a block whose header was built against this state.
    pub(crate) fn push_block(&mut self, header: BlockHeader, notes: NoteTree) {
        debug_assert_eq!(header.number as usize, self.headers.len());
        self.chain_tree
            .insert(header.number as u64, header.commitment());
        self.headers.push(header);
        self.note_trees.push(notes);
    }
}
