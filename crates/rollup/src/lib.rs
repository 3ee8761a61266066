//! Sheaf's rollup: the state (accounts, notes, nullifiers, blocks), the rules every
//! transaction, batch and block must satisfy, the block producer that applies them, and the
//! kernels that prove them ([`kernel`]). The kernels mirror these functions; every hash is Poseidon over
//! Goldilocks with fixed arity and every tree has a fixed depth, so each check here is a fixed
//! number of permutations there.
//!
//! ```text
//!  genesis.json ─▶ Genesis::build ─▶ RollupState (block 0)
//!                                        │
//!  signed Transactions (one account each: notes in, notes out, nonce+1, Winternitz signature)
//!                                        ▼
//!  Mempool::add_transaction (checked against the committed state and the waiting txs)
//!                                        ▼ Mempool::select_block
//!  produce_block: batches of ≤ 8 ─▶ batch rules ─▶ each tx applied in order to a copy
//!                                        │            (account tree, nullifier tree, note tree)
//!                                        ▼
//!  ProducedBlock { new state, BlockHeader, batch summaries, per-tx witnesses }
//!                                        │ Mempool::commit_block (or rollback_block on failure)
//! ```
//!
//! | what | where | shape |
//! |---|---|---|
//! | accounts | [`state`], [`account`] | SMT depth 32, leaf `id` = `H(id, balance, nonce, auth)` |
//! | nullifiers | [`state`], [`notes`] | SMT depth 64, leaf at the nullifier's first limb |
//! | notes of a block | [`chain`] | Merkle depth 16, leaf `i` = the block's `i`-th note id |
//! | blocks | [`chain`] | Merkle depth 32 of header commitments (the chain commitment) |
//! | signatures | [`signature`] | Winternitz w = 16, 67 chains, key tree depth 16 (one key per nonce) |
//! | bounds | [`limits`] | amounts < 2^56, ≤ 16 notes in and out per tx, batches of ≤ 8 |
//! | tx kernel | [`kernel::tx`] | leaf kind `"tx"`, 2^13 rows, statement = [`Transition::digest`] |
//! | batch and block kernels | [`kernel::merge`], [`kernel::block`] | node rules of the universal shape |
//! | a block's proving tree | [`kernel::tree`] | tx leaves, tx nodes, merges, block node, root |
//! | the producer's mempool | [`mempool`] | capacity 1280, expiration slack 2, blocks of ≤ 8 × 8 txs |
//!
//! Failure semantics: every broken rule is a typed error ([`TxError`], [`BatchError`],
//! [`BlockError`], [`GenesisError`], [`SignatureError`], [`MempoolError`], [`CommitError`]); the
//! producer works on a copy of the state, so a refused block changes nothing, and a refused
//! transaction leaves the mempool as it was. Nothing panics on bad input.

pub mod account;
pub mod batch;
pub mod block;
pub mod chain;
pub mod demo;
pub mod error;
pub mod genesis;
pub mod hash;
pub mod kernel;
pub mod limits;
pub mod mempool;
pub mod notes;
pub mod producer;
pub mod signature;
pub mod smt;
pub mod state;
pub mod transition;
pub mod tx;
pub mod witness;
pub mod workload;

pub use account::{Account, AccountId};
pub use batch::{check_batch, BatchSummary};
pub use block::{produce_block, ProducedBlock};
pub use chain::{BlockHeader, BlockNumber, NoteInclusionProof};
pub use error::{BatchError, BlockError, GenesisError, SignatureError, TxError};
pub use genesis::{Genesis, GenesisAccount};
pub use mempool::{
    CommitError, Mempool, MempoolConfig, MempoolConfigError, MempoolError, ProposedBlock,
};
pub use notes::{Note, NoteId, Nullifier};
pub use signature::{Signature, SigningKey};
pub use smt::{verify_path, MerklePath, SparseMerkleTree};
pub use state::RollupState;
pub use transition::{accumulate_tx, block_statement, StateRoots, Transition};
pub use tx::{InputNote, NoteOrigin, Transaction, TransactionBody, TxId};
pub use witness::{InputNoteWitness, TreeUpdate, TxWitness};
