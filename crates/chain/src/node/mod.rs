//! The chain node: accounts, the two contracts, a mempool, block production and persistence.
//!
//! ```text
//!  submit(tx) ── strict signature, nonce (account's + pending), funded sender,
//!                 per-sender and total bounds ──▶ mempool (FIFO)
//!                                                             │ produce_block(): by the ticker
//!                                                             │ every block interval, or by hand
//!                                                             ▼
//!  block n, timestamp = genesis_time + n · block_interval: txs applied in order, one receipt
//!  each (events, or why the call was refused) ──▶ chain.json written (temp file, fsync,
//!  rename, fsync of the directory) ──▶ only then the block, its receipts and its state are
//!  visible
//! ```
//!
//! Determinism: a block's height drives the settlement contract and its timestamp (seconds)
//! drives the membership registry; both follow from the genesis and the transactions alone,
//! never from the wall clock, so a node replays the same way in tests and on a devnet. After
//! downtime the chain's clock lags the wall clock by the time it was down.
//!
//! Failure semantics: a refused submission leaves the mempool unchanged. A transaction whose
//! call fails is still included: its nonce is used, the genesis' transaction fee is charged and
//! its receipt carries the error; a failed call changes no other balance, creates no account
//! and changes no contract state. A call that panics (a bug, e.g. in a proof verifier) is a
//! failed call like any other: the block's state is rolled back to before it. The state lock is
//! held from the first transaction applied until the state file is durably written, so nothing
//! of a block is seen before it is on disk; a failed write rolls the whole block back and keeps
//! its transactions pending. The mempool is not persisted: a node stopped between submission
//! and block loses the pending transactions, which their senders resend.
//!
//! Inclusion costs something: only an account holding at least the genesis'
//! [`Genesis::min_sender_balance`] (and the fee) may send (the coordinator excepted: its key
//! alone registers sequences), so fresh keys cannot flood the pool or grow the state.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::membership::{MembershipError, MembershipParams, MembershipRegistry};
use crate::settlement::{
    Address, Amount, RootVerifier, SettlementContract, SettlementError, SettlementParams,
};

use mempool::Mempool;

mod block;
mod mempool;
mod persist;
mod view;

pub use block::AccountState;
pub use view::{
    AccountView, Block, Event, Head, Member, MembershipList, MembershipView, ProverRewardsView,
    Receipt, SequenceView, SettlementStatus,
};

/// Chain id of a node started without a genesis file. Signatures bind it, so a devnet's
/// transactions are not valid on a chain with another id.
pub const DEFAULT_CHAIN_ID: u64 = 0x5eaf;

/// Time between blocks. One second keeps a devnet's settlement windows (T1 + T2 blocks) under a
/// minute; shorter blocks mean more state writes per second.
pub const DEFAULT_BLOCK_INTERVAL: Duration = Duration::from_secs(1);

/// Most transactions waiting for a block; beyond, submissions are refused until a block drains
/// the mempool. Bounds the memory a flood of valid transactions can take.
pub const DEFAULT_MAX_MEMPOOL_TXS: usize = 10_000;

/// Most bytes (JSON encodings) waiting for a block: 64 MiB is ~45 revealed root proofs of the
/// largest size, far more than a block carries in practice, and bounds the pool's memory.
pub const DEFAULT_MAX_MEMPOOL_BYTES: usize = 64 * 1024 * 1024;
/// Most bytes of transactions (their JSON) one block takes, senders taking turns
/// ([`Chain::produce_block`]): a reveal of the largest root proof (~400 KB) fits many times,
/// and a block full of junk still applies and is written within its interval.
pub const DEFAULT_MAX_BLOCK_BYTES: usize = 4 * 1024 * 1024;

/// Most transactions one sender may have waiting. A coordinator registers and settles a few
/// sequences per block; 64 leaves it room while 157 funded accounts would be needed to fill
/// the pool's count.
pub const DEFAULT_MAX_PENDING_TXS_PER_SENDER: usize = 64;

/// Most bytes one sender may have waiting: 4 MiB is two largest root-proof reveals.
pub const DEFAULT_MAX_PENDING_BYTES_PER_SENDER: usize = 4 * 1024 * 1024;

/// The balance a sender must hold for its transaction to be admitted, by default: one base
/// unit, i.e. the sender is an account someone funded. Fresh keys cannot send, so a flood of
/// them neither fills the mempool nor grows the state.
pub const DEFAULT_MIN_SENDER_BALANCE: Amount = Amount(1);

/// The fee charged to the sender of every included transaction, failed calls included, by
/// default: none, so balances read as the amounts moved. A genesis sets one to price junk.
pub const DEFAULT_TX_FEE: Amount = Amount::ZERO;

/// Receipts kept (the most recent). Clients read a receipt soon after its block; older ones are
/// dropped so the state file stays small.
pub const DEFAULT_RECEIPTS_KEPT: usize = 10_000;

/// Largest JSON-RPC request body. A root proof is at most
/// [`sheaf_circuits::limits::MAX_PROOF_BYTES`] (1 MiB), 1.4 MiB in base64; 2 MiB leaves room for
/// the envelope without inviting abuse.
pub const DEFAULT_MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The state file in the data directory.
pub const STATE_FILE: &str = "chain.json";

/// The root-proof verifier the settlement contract uses.
pub type Verifier = Box<dyn RootVerifier + Send + Sync>;

/// Result alias of the node.
pub type Result<T, E = ChainError> = std::result::Result<T, E>;

/// Why the node refused a transaction or could not start or persist.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The signature is not the sender's over this transaction on this chain.
    #[error("bad signature")]
    BadSignature,
    /// The nonce is already used (or pending): a replay.
    #[error("nonce {got} is used: the next nonce of the sender is {expected}")]
    NonceTooLow {
        /// The sender's next nonce, pending transactions included.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// The nonce skips ahead of the sender's next one.
    #[error("nonce {got} is ahead: the next nonce of the sender is {expected}")]
    NonceTooHigh {
        /// The sender's next nonce, pending transactions included.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// The mempool holds its maximum (in transactions or bytes) and no sender holds more of it
    /// than this one would; retry after the next block.
    #[error("mempool full ({txs} transactions, {bytes} bytes)")]
    MempoolFull {
        /// Transactions pending.
        txs: usize,
        /// Bytes pending.
        bytes: usize,
    },
    /// The sender has as many transactions (or bytes) pending as one sender may; retry after
    /// the next block.
    #[error(
        "the sender has {txs} transactions ({bytes} bytes) pending; one sender may have \
         {max_txs} ({max_bytes} bytes)"
    )]
    SenderLimit {
        /// The sender's pending transactions.
        txs: usize,
        /// Their bytes.
        bytes: usize,
        /// Most transactions per sender.
        max_txs: usize,
        /// Most bytes per sender (a transaction larger than this alone is refused too).
        max_bytes: usize,
    },
    /// The sender is not an account holding the balance a sender must hold.
    #[error("the sender's balance {balance} is below the {needed} a sender must hold")]
    UnfundedSender {
        /// The sender's balance.
        balance: Amount,
        /// What it must hold: the minimum sender balance, or the fee if larger.
        needed: Amount,
    },
    /// The configuration cannot start a chain.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Reading or writing the state file failed.
    #[error("state file {path}: {source}")]
    StateIo {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The chain in the data directory started from another genesis than the one given: a
    /// restart does not change a chain's genesis.
    #[error(
        "the chain in {path} started from another genesis ({fields} differ); start it without \
         --genesis, or with the genesis it was created from, or use a new data directory for a \
         new chain"
    )]
    GenesisMismatch {
        /// The state file.
        path: PathBuf,
        /// The fields that differ, comma-separated.
        fields: String,
    },
    /// The state file does not parse.
    #[error("state file {path} is corrupt: {reason}")]
    CorruptState {
        /// The file.
        path: PathBuf,
        /// The parse error.
        reason: String,
    },
}

/// Why a transaction's call failed (its receipt's error).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The settlement contract refused the call.
    #[error(transparent)]
    Settlement(#[from] SettlementError),
    /// The membership registry refused the call.
    #[error(transparent)]
    Membership(#[from] MembershipError),
    /// The sender's balance does not cover the amount.
    #[error("balance {balance} does not cover {needed}")]
    InsufficientBalance {
        /// The sender's balance.
        balance: Amount,
        /// The amount needed.
        needed: Amount,
    },
    /// The call panicked (a bug, e.g. in a proof verifier): its effects are rolled back.
    #[error("the call failed internally: {0}")]
    Panicked(String),
}

/// A genesis balance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// The account.
    pub address: Address,
    /// Its balance at genesis.
    pub balance: Amount,
}

/// What a new chain starts from, kept in its state file. Once a chain has a state file, its
/// genesis is the persisted one; a restart that names a genesis
/// ([`ChainConfig::check_genesis`]) must name the same one. Read from a genesis file (JSON),
/// every field optional.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Genesis {
    /// The chain id signatures bind.
    pub chain_id: u64,
    /// Timestamp of block 0, ms since the Unix epoch.
    pub genesis_time_ms: u64,
    /// Block interval, ms: block `n` has timestamp `genesis_time_ms + n · block_ms`.
    pub block_ms: u64,
    /// The key that registers sequences.
    pub coordinator: Address,
    /// Balances at genesis.
    pub allocations: Vec<Allocation>,
    /// The settlement contract's parameters.
    pub settlement: SettlementParams,
    /// The membership registry's parameters.
    pub membership: MembershipParams,
    /// Charged to the sender of every included transaction, failed calls included (up to its
    /// balance: the coordinator may hold none).
    pub tx_fee: Amount,
    /// The balance a sender must hold for its transaction to be admitted (the coordinator
    /// excepted).
    pub min_sender_balance: Amount,
}

impl Genesis {
    /// The fields in which `self`, a genesis given at a restart, differs from `persisted`, the
    /// one the chain started from. A genesis time of 0 ("now" for a new chain) and a zero
    /// coordinator (none named) match any, and the block interval is not compared:
    /// `sheaf chain --block-ms` sets it for new chains only.
    pub fn differences(&self, persisted: &Genesis) -> Vec<&'static str> {
        let mut fields = Vec::new();
        if self.chain_id != persisted.chain_id {
            fields.push("chain_id");
        }
        if self.genesis_time_ms != 0 && self.genesis_time_ms != persisted.genesis_time_ms {
            fields.push("genesis_time_ms");
        }
        if self.coordinator != Address::default() && self.coordinator != persisted.coordinator {
            fields.push("coordinator");
        }
        if self.allocations != persisted.allocations {
            fields.push("allocations");
        }
        if self.settlement != persisted.settlement {
            fields.push("settlement");
        }
        if self.membership != persisted.membership {
            fields.push("membership");
        }
        if self.tx_fee != persisted.tx_fee {
            fields.push("tx_fee");
        }
        if self.min_sender_balance != persisted.min_sender_balance {
            fields.push("min_sender_balance");
        }
        fields
    }
}

impl Default for Genesis {
    fn default() -> Self {
        Genesis {
            chain_id: DEFAULT_CHAIN_ID,
            genesis_time_ms: 0,
            block_ms: DEFAULT_BLOCK_INTERVAL.as_millis() as u64,
            coordinator: Address::default(),
            allocations: Vec::new(),
            settlement: SettlementParams::default(),
            membership: MembershipParams::default(),
            tx_fee: DEFAULT_TX_FEE,
            min_sender_balance: DEFAULT_MIN_SENDER_BALANCE,
        }
    }
}

/// The node's configuration.
#[derive(Clone, Debug)]
pub struct ChainConfig {
    /// Used only when the data directory holds no chain yet (see `check_genesis`).
    pub genesis: Genesis,
    /// On a data directory that holds a chain, refuse to open
    /// ([`ChainError::GenesisMismatch`]) when `genesis` differs from the chain's persisted
    /// genesis ([`Genesis::differences`]): the operator named a genesis, and a restart must not
    /// ignore it silently. Off: the persisted genesis is used, whatever `genesis` says.
    pub check_genesis: bool,
    /// Where the state file lives; `None` keeps the chain in memory only.
    pub data_dir: Option<PathBuf>,
    /// Blocks only by hand (`chain_produceBlock` enabled, no ticker).
    pub manual_blocks: bool,
    /// The token `chain_produceBlock` must carry; without one the RPC method is refused even
    /// with manual blocks (in-process callers use [`Chain::produce_block`]).
    pub admin_token: Option<String>,
    /// Most pending transactions.
    pub max_mempool_txs: usize,
    /// Most pending bytes.
    pub max_mempool_bytes: usize,
    /// Most bytes of transactions in one block.
    pub max_block_bytes: usize,
    /// Most pending transactions of one sender.
    pub max_pending_txs_per_sender: usize,
    /// Most pending bytes of one sender.
    pub max_pending_bytes_per_sender: usize,
    /// Receipts kept.
    pub receipts_kept: usize,
    /// Largest JSON-RPC request body.
    pub max_body_bytes: usize,
    /// The JSON-RPC server's connection cap and header and body timeouts.
    pub serve: sheaf_net::ServeLimits,
    /// Bytes of request bodies held at once across connections (at least `max_body_bytes`).
    pub body_budget_bytes: usize,
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            genesis: Genesis::default(),
            check_genesis: false,
            data_dir: None,
            manual_blocks: false,
            admin_token: None,
            max_mempool_txs: DEFAULT_MAX_MEMPOOL_TXS,
            max_mempool_bytes: DEFAULT_MAX_MEMPOOL_BYTES,
            max_block_bytes: DEFAULT_MAX_BLOCK_BYTES,
            max_pending_txs_per_sender: DEFAULT_MAX_PENDING_TXS_PER_SENDER,
            max_pending_bytes_per_sender: DEFAULT_MAX_PENDING_BYTES_PER_SENDER,
            receipts_kept: DEFAULT_RECEIPTS_KEPT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            serve: sheaf_net::ServeLimits::default(),
            body_budget_bytes: sheaf_net::DEFAULT_BODY_BUDGET_BYTES,
        }
    }
}

/// A running chain; share it as `Arc<Chain>` between the RPC server and the block ticker.
pub struct Chain {
    config: ChainConfig,
    /// Held by a block from its first transaction to the end of its state file's write, so
    /// nothing of a block is seen before it is durable.
    state: Mutex<State>,
    /// When the node opened or last produced and persisted a block, for readiness.
    produced_at: Mutex<Instant>,
}

struct State {
    chain_id: u64,
    genesis_time_ms: u64,
    block_ms: u64,
    /// What the chain started from; `None` for a state file written before it was kept.
    genesis: Option<Genesis>,
    height: u64,
    accounts: BTreeMap<Address, AccountState>,
    settlement: SettlementContract<Verifier>,
    membership: MembershipRegistry,
    receipts: VecDeque<Receipt>,
    mempool: Mempool,
}

impl Chain {
    /// Open the chain in `config.data_dir`, where it stopped, or start it from
    /// `config.genesis` when the directory holds no chain. `verifier` checks root proofs.
    pub fn open(config: ChainConfig, verifier: Verifier) -> Result<Chain> {
        let state = match config.data_dir.as_deref().map(|d| d.join(STATE_FILE)) {
            Some(path) if path.exists() => {
                let state = persist::load(&path, verifier)?;
                if config.check_genesis {
                    persist::check_genesis(&path, &config.genesis, state.genesis.as_ref())?;
                }
                state
            }
            _ => persist::genesis_state(&config.genesis, verifier)?,
        };
        tracing::info!(
            target: "sheaf_chain::node",
            chain_id = state.chain_id, height = state.height, "chain opened"
        );
        let chain = Chain {
            config,
            state: Mutex::new(state),
            produced_at: Mutex::new(Instant::now()),
        };
        let snapshot = chain.snapshot(&chain.lock());
        chain.write(snapshot)?;
        Ok(chain)
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &ChainConfig {
        &self.config
    }

    /// The chain id transactions must be signed for.
    pub fn chain_id(&self) -> u64 {
        self.lock().chain_id
    }

    /// The time between blocks (the genesis one, persisted).
    pub fn block_interval(&self) -> Duration {
        Duration::from_millis(self.lock().block_ms)
    }

    /// Blocks produced so far.
    pub fn height(&self) -> u64 {
        self.lock().height
    }

    /// Time since the node opened or last produced and persisted a block.
    pub fn since_last_block(&self) -> Duration {
        self.produced_at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .elapsed()
    }

    pub(crate) fn note_block_produced(&self) {
        *self
            .produced_at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Instant::now();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A call that panics is caught and rolled back under the lock; only a bug elsewhere
        // could poison it, and a devnet node carries on rather than refusing every request.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain").field("head", &self.head()).finish()
    }
}
