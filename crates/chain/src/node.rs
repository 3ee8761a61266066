//! The chain node: accounts, the two contracts, a mempool, block production and persistence.
//!
//! ```text
//!  submit(tx) ── signature, nonce (account's + pending) ──▶ mempool (FIFO)
//!                                                             │ produce_block(): by the ticker
//!                                                             │ every block interval, or by hand
//!                                                             ▼
//!  block n, timestamp = genesis_time + n · block_interval: txs applied in order, one receipt
//!  each (events, or why the call was refused) ──▶ chain.json written (temp file + rename)
//! ```
//!
//! Determinism: a block's height drives the settlement contract and its timestamp (seconds)
//! drives the membership registry; both follow from the genesis and the transactions alone,
//! never from the wall clock, so a node replays the same way in tests and on a devnet. After
//! downtime the chain's clock lags the wall clock by the time it was down.
//!
//! Failure semantics: a refused submission leaves the mempool unchanged. A transaction whose
//! call fails is still included: its nonce is used and its receipt carries the error; a failed
//! call changes no balance and no contract state. The mempool is not persisted: a node stopped
//! between submission and block loses the pending transactions, which their senders resend.

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sheaf_circuits::Digest;

use crate::membership::{
    rate_commitment, MembershipError, MembershipEvent, MembershipInfo, MembershipParams,
    MembershipRegistry, MembershipState, MerkleProof,
};
use crate::settlement::{
    Address, Amount, FinalizedSequence, RootVerifier, Sequence, SequenceId, SettlementContract,
    SettlementError, SettlementEvent, SettlementParams, SettlementState,
};
use crate::tx::{hex_array, Call, SignedTx, TxHash};

/// Chain id of a node started without a genesis file. Signatures bind it, so a devnet's
/// transactions are not valid on a chain with another id.
pub const DEFAULT_CHAIN_ID: u64 = 0x5eaf;

/// Time between blocks. One second keeps a devnet's settlement windows (T1 + T2 blocks) under a
/// minute; shorter blocks mean more state writes per second.
pub const DEFAULT_BLOCK_INTERVAL: Duration = Duration::from_secs(1);

/// Most transactions waiting for a block; beyond, submissions are refused until a block drains
/// the mempool. Bounds the memory a flood of valid transactions can take.
pub const DEFAULT_MAX_MEMPOOL_TXS: usize = 10_000;

/// Receipts kept (the most recent). Clients read a receipt soon after its block; older ones are
/// dropped so the state file stays small.
pub const DEFAULT_RECEIPTS_KEPT: usize = 10_000;

/// Largest JSON-RPC request body. A root proof is at most
/// [`sheaf_circuits::limits::MAX_PROOF_BYTES`] (1 MiB), 1.4 MiB in base64; 2 MiB leaves room for
/// the envelope without inviting abuse.
pub const DEFAULT_MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The state file in the data directory.
pub const STATE_FILE: &str = "chain.json";

/// Version of the state file's format.
const STATE_VERSION: u32 = 1;

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
    /// The mempool holds its maximum; retry after the next block.
    #[error("mempool full ({0} transactions)")]
    MempoolFull(usize),
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
}

/// A genesis balance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// The account.
    #[serde(with = "hex_array")]
    pub address: Address,
    /// Its balance at genesis.
    pub balance: Amount,
}

/// What a new chain starts from. Once a chain has a state file, its genesis is the persisted
/// one and these values are ignored. Read from a genesis file (JSON), every field optional.
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
    #[serde(with = "hex_array")]
    pub coordinator: Address,
    /// Balances at genesis.
    pub allocations: Vec<Allocation>,
    /// The settlement contract's parameters.
    pub settlement: SettlementParams,
    /// The membership registry's parameters.
    pub membership: MembershipParams,
}

impl Default for Genesis {
    fn default() -> Self {
        Genesis {
            chain_id: DEFAULT_CHAIN_ID,
            genesis_time_ms: 0,
            block_ms: DEFAULT_BLOCK_INTERVAL.as_millis() as u64,
            coordinator: [0; 32],
            allocations: Vec::new(),
            settlement: SettlementParams::default(),
            membership: MembershipParams::default(),
        }
    }
}

/// The node's configuration.
#[derive(Clone, Debug)]
pub struct ChainConfig {
    /// Used only when the data directory holds no chain yet.
    pub genesis: Genesis,
    /// Where the state file lives; `None` keeps the chain in memory only.
    pub data_dir: Option<PathBuf>,
    /// Blocks only by hand (`chain_produceBlock` enabled, no ticker).
    pub manual_blocks: bool,
    /// Most pending transactions.
    pub max_mempool_txs: usize,
    /// Receipts kept.
    pub receipts_kept: usize,
    /// Largest JSON-RPC request body.
    pub max_body_bytes: usize,
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            genesis: Genesis::default(),
            data_dir: None,
            manual_blocks: false,
            max_mempool_txs: DEFAULT_MAX_MEMPOOL_TXS,
            receipts_kept: DEFAULT_RECEIPTS_KEPT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// What a transaction caused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A transfer between balances.
    Transferred {
        /// The sender.
        #[serde(with = "hex_array")]
        from: Address,
        /// The recipient.
        #[serde(with = "hex_array")]
        to: Address,
        /// Amount moved.
        amount: Amount,
    },
    /// An amount left a balance for a contract (stake, membership deposit).
    Debited {
        /// The account.
        #[serde(with = "hex_array")]
        account: Address,
        /// Amount.
        amount: Amount,
    },
    /// An amount came back to a balance from a contract (stake, rewards, deposits).
    Credited {
        /// The account.
        #[serde(with = "hex_array")]
        account: Address,
        /// Amount.
        amount: Amount,
    },
    /// An event of the settlement contract.
    Settlement(SettlementEvent),
    /// An event of the membership registry.
    Membership(MembershipEvent),
}

/// What became of one transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The transaction.
    pub tx_hash: TxHash,
    /// Its sender.
    #[serde(with = "hex_array")]
    pub from: Address,
    /// Its nonce.
    pub nonce: u64,
    /// The block that included it.
    pub block: u64,
    /// Its position in the block.
    pub index: u32,
    /// What it caused (empty when it failed).
    pub events: Vec<Event>,
    /// Why the call failed; `None` when it succeeded.
    pub error: Option<String>,
}

impl Receipt {
    /// Whether the call succeeded.
    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }
}

/// A produced block: its transactions' receipts, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// Its height (the first block is 1).
    pub number: u64,
    /// `genesis_time_ms + number · block_ms`.
    pub timestamp_ms: u64,
    /// One per transaction, in order.
    pub receipts: Vec<Receipt>,
}

/// An account's balance and nonce.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountState {
    /// Spendable balance.
    pub balance: Amount,
    /// Transactions included so far: the nonce of the next one.
    pub nonce: u64,
}

/// An account as the RPC shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    /// The address.
    #[serde(with = "hex_array")]
    pub address: Address,
    /// Spendable balance.
    pub balance: Amount,
    /// Transactions included so far.
    pub nonce: u64,
    /// The nonce to sign the next transaction with (pending ones counted).
    pub next_nonce: u64,
    /// Settlement stake.
    pub stake: Amount,
    /// Settlement rewards not yet claimed.
    pub rewards: Amount,
    /// Hashes committed and not yet revealed nor penalized.
    pub pending_reveals: usize,
    /// Deposits of erased memberships, to withdraw.
    pub membership_deposits: u128,
}

/// A membership as the RPC shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipView {
    /// What the registry records.
    pub info: MembershipInfo,
    /// Its state at the head block's timestamp.
    pub state: MembershipState,
    /// Its leaf, `H(id_commitment, rate_limit)`.
    pub rate_commitment: Digest,
}

/// A membership and its id commitment, as [`Chain::memberships`] lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The membership's id commitment (a Sheaf prover's `worker_pk`).
    pub id_commitment: Digest,
    /// The membership, its state taken at the list's timestamp.
    pub membership: MembershipView,
}

/// Every membership in the set at one block, so a follower knows when it was taken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipList {
    /// The head block's height.
    pub height: u64,
    /// The head block's timestamp, ms: the time each membership's state is taken at.
    pub timestamp_ms: u64,
    /// Every membership that exists (not erased), by leaf index.
    pub members: Vec<Member>,
}

/// The head of the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Blocks produced.
    pub height: u64,
    /// The head block's timestamp (genesis time at height 0).
    pub timestamp_ms: u64,
    /// Transactions waiting for a block.
    pub pending: usize,
}

/// Where settlement stands: what a proof sender polls.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementStatus {
    /// Blocks produced: the next transaction lands in block `height + 1`.
    pub height: u64,
    /// The contract's parameters (T1, T2, rewards, stake, penalties).
    pub params: SettlementParams,
    /// The key that registers sequences.
    #[serde(with = "hex_array")]
    pub coordinator: Address,
    /// The first registered sequence (0 before any registration).
    pub first_sequence: SequenceId,
    /// The number the next registration must take.
    pub next_sequence: SequenceId,
    /// The next sequence to finalize: all registered ones before it are finalized.
    pub next_to_finalize: SequenceId,
}

/// A running chain; share it as `Arc<Chain>` between the RPC server and the block ticker.
pub struct Chain {
    config: ChainConfig,
    state: Mutex<State>,
    /// Held from a block's snapshot to the end of its write, so that state files are written in
    /// block order while readers only wait for the snapshot, not for the disk.
    writer: Mutex<()>,
}

struct State {
    chain_id: u64,
    genesis_time_ms: u64,
    block_ms: u64,
    height: u64,
    accounts: BTreeMap<Address, AccountState>,
    settlement: SettlementContract<Verifier>,
    membership: MembershipRegistry,
    receipts: VecDeque<Receipt>,
    mempool: VecDeque<(TxHash, SignedTx)>,
}

#[derive(Serialize)]
struct SnapshotOut<'a> {
    version: u32,
    chain_id: u64,
    genesis_time_ms: u64,
    block_ms: u64,
    height: u64,
    accounts: Vec<AccountEntry>,
    settlement: &'a SettlementState,
    membership: &'a MembershipRegistry,
    receipts: &'a VecDeque<Receipt>,
}

#[derive(Deserialize)]
struct SnapshotIn {
    version: u32,
    chain_id: u64,
    genesis_time_ms: u64,
    block_ms: u64,
    height: u64,
    accounts: Vec<AccountEntry>,
    settlement: SettlementState,
    membership: MembershipRegistry,
    receipts: VecDeque<Receipt>,
}

/// An account in the state file (fields spelled out: `serde(flatten)` cannot carry a u128).
#[derive(Serialize, Deserialize)]
struct AccountEntry {
    #[serde(with = "hex_array")]
    address: Address,
    balance: Amount,
    nonce: u64,
}

impl Chain {
    /// Open the chain in `config.data_dir`, where it stopped, or start it from
    /// `config.genesis` when the directory holds no chain. `verifier` checks root proofs.
    pub fn open(config: ChainConfig, verifier: Verifier) -> Result<Chain> {
        let state = match config.data_dir.as_deref().map(|d| d.join(STATE_FILE)) {
            Some(path) if path.exists() => load(&path, verifier)?,
            _ => genesis_state(&config.genesis, verifier)?,
        };
        tracing::info!(
            target: "sheaf_chain::node",
            chain_id = state.chain_id, height = state.height, "chain opened"
        );
        let chain = Chain {
            config,
            state: Mutex::new(state),
            writer: Mutex::new(()),
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

    /// Height, head timestamp and pending transactions.
    pub fn head(&self) -> Head {
        let s = self.lock();
        Head {
            height: s.height,
            timestamp_ms: s.timestamp_ms(s.height),
            pending: s.mempool.len(),
        }
    }

    /// Check `tx`'s signature and nonce and queue it for the next block; returns its hash.
    pub fn submit(&self, tx: SignedTx) -> Result<TxHash> {
        let mut s = self.lock();
        if !tx.verify(s.chain_id) {
            return Err(ChainError::BadSignature);
        }
        let expected = s.next_nonce(&tx.from);
        if tx.nonce < expected {
            return Err(ChainError::NonceTooLow {
                expected,
                got: tx.nonce,
            });
        }
        if tx.nonce > expected {
            return Err(ChainError::NonceTooHigh {
                expected,
                got: tx.nonce,
            });
        }
        if s.mempool.len() >= self.config.max_mempool_txs {
            return Err(ChainError::MempoolFull(s.mempool.len()));
        }
        let hash = tx.hash(s.chain_id);
        tracing::debug!(target: "sheaf_chain::node", %hash, nonce = tx.nonce, "transaction queued");
        s.mempool.push_back((hash, tx));
        Ok(hash)
    }

    /// Produce the next block: apply every pending transaction in order, then write the state.
    /// On a write failure the block stands in memory and the error is returned.
    pub fn produce_block(&self) -> Result<Block> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut s = self.lock();
        let number = s.height + 1;
        let timestamp_ms = s.timestamp_ms(number);
        let txs = std::mem::take(&mut s.mempool);
        let mut receipts = Vec::with_capacity(txs.len());
        for (index, (tx_hash, tx)) in txs.into_iter().enumerate() {
            let (events, error) = match s.apply(&tx, number, timestamp_ms / 1000) {
                Ok(events) => (events, None),
                Err(e) => (Vec::new(), Some(e.to_string())),
            };
            receipts.push(Receipt {
                tx_hash,
                from: tx.from,
                nonce: tx.nonce,
                block: number,
                index: index as u32,
                events,
                error,
            });
        }
        s.height = number;
        s.receipts.extend(receipts.iter().cloned());
        let excess = s.receipts.len().saturating_sub(self.config.receipts_kept);
        s.receipts.drain(..excess);
        tracing::debug!(
            target: "sheaf_chain::node",
            block = number, txs = receipts.len(), "block produced"
        );
        let snapshot = self.snapshot(&s);
        drop(s);
        self.write(snapshot)?;
        Ok(Block {
            number,
            timestamp_ms,
            receipts,
        })
    }

    /// The receipt of an included transaction, if still kept.
    pub fn receipt(&self, hash: &TxHash) -> Option<Receipt> {
        self.lock()
            .receipts
            .iter()
            .rev()
            .find(|r| r.tx_hash == *hash)
            .cloned()
    }

    /// An account's balance, nonce, stake, rewards and owed deposits.
    pub fn account(&self, address: &Address) -> AccountView {
        let s = self.lock();
        let acc = s.accounts.get(address).cloned().unwrap_or_default();
        let settlement = s.settlement.account(address);
        AccountView {
            address: *address,
            balance: acc.balance,
            nonce: acc.nonce,
            next_nonce: s.next_nonce(address),
            stake: settlement.stake,
            rewards: settlement.rewards,
            pending_reveals: settlement.pending.len(),
            membership_deposits: s.membership.deposit_to_withdraw(address),
        }
    }

    /// A registered sequence.
    pub fn sequence(&self, sequence: SequenceId) -> Option<Sequence> {
        self.lock().settlement.state().sequence(sequence).cloned()
    }

    /// Where settlement stands at the head.
    pub fn settlement_status(&self) -> SettlementStatus {
        let s = self.lock();
        let state = s.settlement.state();
        SettlementStatus {
            height: s.height,
            params: state.params,
            coordinator: state.coordinator,
            first_sequence: state.first_sequence,
            next_sequence: state.next_sequence(),
            next_to_finalize: state.next_to_finalize,
        }
    }

    /// The record of a finalized sequence.
    pub fn finalized(&self, sequence: SequenceId) -> Option<FinalizedSequence> {
        self.lock().settlement.finalized(sequence).copied()
    }

    /// The settlement contract's whole state.
    pub fn settlement_state(&self) -> SettlementState {
        self.lock().settlement.state().clone()
    }

    /// A membership and its state at the head block's timestamp.
    pub fn membership(&self, id_commitment: &Digest) -> Option<MembershipView> {
        let s = self.lock();
        let now = s.timestamp_ms(s.height) / 1000;
        s.membership
            .membership(id_commitment)
            .map(|info| MembershipView {
                info: info.clone(),
                state: info.state(now),
                rate_commitment: rate_commitment(*id_commitment, info.rate_limit),
            })
    }

    /// Every membership in the set, by leaf index, with its state at the head block's
    /// timestamp. The set is at most `max_total_rate_limit / min_membership_rate_limit`
    /// memberships (8,000 with the default parameters), so one answer carries it whole.
    pub fn memberships(&self) -> MembershipList {
        let s = self.lock();
        let timestamp_ms = s.timestamp_ms(s.height);
        let now = timestamp_ms / 1000;
        let mut members: Vec<Member> = s
            .membership
            .memberships()
            .map(|(id_commitment, info)| Member {
                id_commitment: *id_commitment,
                membership: MembershipView {
                    info: info.clone(),
                    state: info.state(now),
                    rate_commitment: rate_commitment(*id_commitment, info.rate_limit),
                },
            })
            .collect();
        members.sort_by_key(|m| m.membership.info.index);
        MembershipList {
            height: s.height,
            timestamp_ms,
            members,
        }
    }

    /// The root of the membership tree.
    pub fn membership_root(&self) -> Digest {
        self.lock().membership.root()
    }

    /// The authentication path of the membership leaf at `index`.
    pub fn membership_proof(&self, index: u64) -> Result<MerkleProof, MembershipError> {
        self.lock().membership.merkle_proof(index)
    }

    /// Produce a block every block interval, forever (run it as a task; abort it to stop).
    /// A block's work runs on the blocking pool: it may verify root proofs.
    pub async fn produce_blocks(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.block_interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let chain = self.clone();
            match tokio::task::spawn_blocking(move || chain.produce_block()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::error!(target: "sheaf_chain::node", error = %e, "block not persisted")
                }
                Err(e) => {
                    tracing::error!(target: "sheaf_chain::node", error = %e, "block production failed")
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Only a bug panics under the lock (while applying a block, leaving it half-applied in
        // memory); a devnet node carries on rather than refusing every request after it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The state file's bytes, when the chain has a data directory.
    fn snapshot(&self, s: &State) -> Option<Vec<u8>> {
        self.config.data_dir.as_ref()?;
        let snapshot = SnapshotOut {
            version: STATE_VERSION,
            chain_id: s.chain_id,
            genesis_time_ms: s.genesis_time_ms,
            block_ms: s.block_ms,
            height: s.height,
            accounts: s
                .accounts
                .iter()
                .map(|(address, a)| AccountEntry {
                    address: *address,
                    balance: a.balance,
                    nonce: a.nonce,
                })
                .collect(),
            settlement: s.settlement.state(),
            membership: &s.membership,
            receipts: &s.receipts,
        };
        Some(serde_json::to_vec(&snapshot).expect("the chain state serializes to JSON"))
    }

    fn write(&self, snapshot: Option<Vec<u8>>) -> Result<()> {
        match (&self.config.data_dir, snapshot) {
            (Some(dir), Some(bytes)) => write_atomically(dir, &dir.join(STATE_FILE), &bytes),
            _ => Ok(()),
        }
    }
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain").field("head", &self.head()).finish()
    }
}

impl State {
    fn timestamp_ms(&self, number: u64) -> u64 {
        self.genesis_time_ms
            .saturating_add(number.saturating_mul(self.block_ms))
    }

    fn next_nonce(&self, address: &Address) -> u64 {
        let included = self.accounts.get(address).map_or(0, |a| a.nonce);
        let pending = self
            .mempool
            .iter()
            .filter(|(_, t)| t.from == *address)
            .count();
        included + pending as u64
    }

    fn balance(&self, address: &Address) -> Amount {
        self.accounts.get(address).map_or(0, |a| a.balance)
    }

    fn check_balance(&self, address: &Address, needed: Amount) -> Result<(), CallError> {
        let balance = self.balance(address);
        if balance < needed {
            return Err(CallError::InsufficientBalance { balance, needed });
        }
        Ok(())
    }

    fn debit(&mut self, account: Address, amount: Amount, events: &mut Vec<Event>) {
        let acc = self.accounts.entry(account).or_default();
        acc.balance -= amount;
        events.push(Event::Debited { account, amount });
    }

    fn credit(&mut self, account: Address, amount: Amount, events: &mut Vec<Event>) {
        let acc = self.accounts.entry(account).or_default();
        acc.balance = acc.balance.saturating_add(amount);
        events.push(Event::Credited { account, amount });
    }

    /// Apply `tx` in block `block` at `now` (seconds): the nonce is used whatever the call does.
    fn apply(&mut self, tx: &SignedTx, block: u64, now: u64) -> Result<Vec<Event>, CallError> {
        self.accounts.entry(tx.from).or_default().nonce += 1;
        let from = tx.from;
        let mut events = Vec::new();
        let settlement = |e: Vec<SettlementEvent>| e.into_iter().map(Event::Settlement);
        let membership = |e: Vec<MembershipEvent>| e.into_iter().map(Event::Membership);
        match &tx.call {
            Call::Transfer { to, amount } => {
                self.check_balance(&from, *amount)?;
                self.accounts.entry(from).or_default().balance -= amount;
                let to_acc = self.accounts.entry(*to).or_default();
                to_acc.balance = to_acc.balance.saturating_add(*amount);
                events.push(Event::Transferred {
                    from,
                    to: *to,
                    amount: *amount,
                });
            }
            Call::DepositStake { amount } => {
                self.check_balance(&from, *amount)?;
                self.debit(from, *amount, &mut events);
                events.extend(settlement(self.settlement.deposit_stake(&from, *amount)));
            }
            Call::WithdrawStake { amount } => {
                let e = self.settlement.withdraw_stake(&from, *amount, block)?;
                events.extend(settlement(e));
                self.credit(from, *amount, &mut events);
            }
            Call::RegisterSequence {
                sequence,
                statement,
            } => {
                let e = self
                    .settlement
                    .register_sequence(&from, *sequence, *statement)?;
                events.extend(settlement(e));
            }
            Call::SubmitProofHash { sequence, hash } => {
                let e = self
                    .settlement
                    .submit_proof_hash(&from, *sequence, *hash, block)?;
                events.extend(settlement(e));
            }
            Call::SubmitProof { sequence, proof } => {
                let e = self
                    .settlement
                    .submit_proof(&from, *sequence, proof, block)?;
                events.extend(settlement(e));
            }
            Call::ClaimRewards => {
                let (amount, e) = self.settlement.claim_rewards(&from);
                events.extend(settlement(e));
                self.credit(from, amount, &mut events);
            }
            Call::Settle { sender } => {
                let e = self.settlement.settle(sender, block)?;
                events.extend(settlement(e));
            }
            Call::Register {
                id_commitment,
                rate_limit,
                erase_list,
            } => {
                let deposit = self.membership.params().deposit_for(*rate_limit);
                self.check_balance(&from, deposit)?;
                let e =
                    self.membership
                        .register(from, *id_commitment, *rate_limit, erase_list, now)?;
                self.debit(from, deposit, &mut events);
                events.extend(membership(e));
            }
            Call::Extend { ids } => {
                events.extend(membership(self.membership.extend(from, ids, now)?));
            }
            Call::Erase { ids, cleanup } => {
                events.extend(membership(self.membership.erase(from, ids, *cleanup, now)?));
            }
            Call::Withdraw => {
                let amount = self.membership.withdraw(from)?;
                self.credit(from, amount, &mut events);
            }
        }
        Ok(events)
    }
}

fn genesis_state(genesis: &Genesis, verifier: Verifier) -> Result<State> {
    if genesis.block_ms == 0 {
        return Err(ChainError::InvalidConfig(
            "the block interval must be positive".into(),
        ));
    }
    let settlement = SettlementContract::new(genesis.settlement, genesis.coordinator, verifier)
        .map_err(|e| ChainError::InvalidConfig(e.to_string()))?;
    let membership = MembershipRegistry::new(genesis.membership.clone())
        .map_err(|e| ChainError::InvalidConfig(e.to_string()))?;
    let mut accounts = BTreeMap::<Address, AccountState>::new();
    for a in &genesis.allocations {
        let acc = accounts.entry(a.address).or_default();
        acc.balance = acc.balance.saturating_add(a.balance);
    }
    Ok(State {
        chain_id: genesis.chain_id,
        genesis_time_ms: genesis.genesis_time_ms,
        block_ms: genesis.block_ms,
        height: 0,
        accounts,
        settlement,
        membership,
        receipts: VecDeque::new(),
        mempool: VecDeque::new(),
    })
}

fn load(path: &Path, verifier: Verifier) -> Result<State> {
    let bytes = fs::read(path).map_err(|source| ChainError::StateIo {
        path: path.to_owned(),
        source,
    })?;
    let corrupt = |reason: String| ChainError::CorruptState {
        path: path.to_owned(),
        reason,
    };
    let snap: SnapshotIn = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    if snap.version != STATE_VERSION {
        return Err(corrupt(format!(
            "format version {}, this node reads {STATE_VERSION}",
            snap.version
        )));
    }
    if snap.block_ms == 0 {
        return Err(corrupt("block interval 0".into()));
    }
    Ok(State {
        chain_id: snap.chain_id,
        genesis_time_ms: snap.genesis_time_ms,
        block_ms: snap.block_ms,
        height: snap.height,
        accounts: snap
            .accounts
            .into_iter()
            .map(|e| {
                let state = AccountState {
                    balance: e.balance,
                    nonce: e.nonce,
                };
                (e.address, state)
            })
            .collect(),
        settlement: SettlementContract::from_state(snap.settlement, verifier),
        membership: snap.membership,
        receipts: snap.receipts,
        mempool: VecDeque::new(),
    })
}

/// Write `bytes` to `path` so that a crash leaves either the old file or the new one: a temp
/// file in the same directory, synced, renamed over `path`, then the directory synced.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| ChainError::StateIo {
        path: path.to_owned(),
        source,
    };
    fs::create_dir_all(dir).map_err(io)?;
    let tmp = path.with_extension("json.tmp");
    let mut file = fs::File::create(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    fs::rename(&tmp, path).map_err(io)?;
    #[cfg(unix)]
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
}
