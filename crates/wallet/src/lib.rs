//! Sheaf's rollup wallet: one account's one-time keys, its state replayed from the published
//! blocks of a rollup node, and its transactions sent over the node's HTTP API.
//!
//! ```text
//!  WalletFile::generate ─▶ seed ─▶ one-time keys ─▶ auth commitment ──▶ a genesis funds it
//!                                                                      (sheaf rollup genesis)
//!  sync:   GET /v1/rollup/genesis ─▶ the account with our auth commitment (once)
//!          GET /v1/rollup/status, GET /v1/rollup/blocks/n for every n after the cursor
//!          ─▶ notes addressed to us, our spent notes gone, our pending tx confirmed
//!  spend:  body (balance, notes in, note out, change) ─▶ sign with key `nonce`
//!          ─▶ saved as pending ─▶ POST /v1/rollup/transactions ─▶ sync until a block has it
//! ```
//!
//! The wallet never asks the node for its balance: only its own signatures change its account,
//! so its balance and nonce follow from the genesis and its own transactions, which published
//! blocks confirm by id; its notes are the blocks' created notes addressed to it, less those
//! whose nullifiers the blocks spend. A transaction counts once a block that includes it is
//! published, before it is proven (the node publishes first; [`WaitFor`] waits for the proof or
//! the settlement too).
//!
//! Failure semantics: every failure is a typed error ([`ClientError`] for the node's API,
//! [`WalletFileError`] for the file, [`SyncError`], [`SpendError`]); the wallet file is written
//! whole and renamed, so a crash never leaves half a wallet; a signed transaction is saved
//! before it is sent, and no second one is signed while the first may still be included (see
//! [`spend`] for what reusing the key of a lost transaction risks).

pub mod client;
pub mod file;
pub mod local;
pub mod spend;
pub mod sync;

pub use client::{ClientError, RollupClient, RollupStatusView};
pub use file::{Cursor, OwnedNote, WalletFile, WalletFileError, WalletLock, DEFAULT_WALLET_KEYS};
pub use local::{LocalProver, LocalStage};
pub use spend::{
    wait_for_block, Sent, SpendError, WaitFor, DEFAULT_EXPIRATION_BLOCKS, DEFAULT_POLL_INTERVAL,
    DEFAULT_WAIT_TIMEOUT,
};
pub use sync::{SyncError, SyncReport};
