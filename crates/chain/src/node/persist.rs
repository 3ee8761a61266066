//! Persistence: the state file written atomically after every block and read back at start,
//! and the state a new chain starts from.

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::io::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::block::AccountState;
use super::mempool::Mempool;
use super::view::Receipt;
use super::{Chain, ChainError, Genesis, Result, State, Verifier, STATE_FILE};
use crate::membership::MembershipRegistry;
use crate::settlement::{Address, Amount, SettlementContract, SettlementState};

/// Version of the state file's format (2: addresses are hex strings everywhere).
const STATE_VERSION: u32 = 2;

/// The state file: written from the chain's state as borrowed ([`SnapshotOut`]), read back as
/// owned ([`SnapshotIn`]), so both sides have one list of fields.
#[derive(Serialize, Deserialize)]
struct Snapshot<G, S, M, R> {
    version: u32,
    chain_id: u64,
    genesis_time_ms: u64,
    block_ms: u64,
    /// The genesis the chain started from; absent in files written before it was kept.
    #[serde(default)]
    genesis: G,
    height: u64,
    accounts: Vec<AccountEntry>,
    settlement: S,
    membership: M,
    receipts: R,
}

type SnapshotOut<'a> = Snapshot<
    Option<&'a Genesis>,
    &'a SettlementState,
    &'a MembershipRegistry,
    &'a VecDeque<Receipt>,
>;
type SnapshotIn = Snapshot<Option<Genesis>, SettlementState, MembershipRegistry, VecDeque<Receipt>>;

/// An account in the state file (fields spelled out: `serde(flatten)` cannot carry a u128).
#[derive(Serialize, Deserialize)]
struct AccountEntry {
    address: Address,
    balance: Amount,
    nonce: u64,
}

impl Chain {
    /// The state file's bytes, when the chain has a data directory.
    pub(super) fn snapshot(&self, s: &State) -> Option<Vec<u8>> {
        self.config.data_dir.as_ref()?;
        let snapshot = SnapshotOut {
            version: STATE_VERSION,
            chain_id: s.chain_id,
            genesis_time_ms: s.genesis_time_ms,
            block_ms: s.block_ms,
            genesis: s.genesis.as_ref(),
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

    pub(super) fn write(&self, snapshot: Option<Vec<u8>>) -> Result<()> {
        match (&self.config.data_dir, snapshot) {
            (Some(dir), Some(bytes)) => write_atomically(dir, &dir.join(STATE_FILE), &bytes),
            _ => Ok(()),
        }
    }
}

pub(super) fn genesis_state(genesis: &Genesis, verifier: Verifier) -> Result<State> {
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
        genesis: Some(genesis.clone()),
        height: 0,
        accounts,
        settlement,
        membership,
        receipts: VecDeque::new(),
        mempool: Mempool::default(),
    })
}

pub(super) fn load(path: &Path, verifier: Verifier) -> Result<State> {
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
        genesis: snap.genesis,
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
        mempool: Mempool::default(),
    })
}

/// Refuse a restart whose `given` genesis differs from the `persisted` one. A state file that
/// predates kept geneses cannot be checked: the node says so and carries on.
pub(super) fn check_genesis(
    path: &Path,
    given: &Genesis,
    persisted: Option<&Genesis>,
) -> Result<()> {
    let Some(persisted) = persisted else {
        tracing::warn!(target: "sheaf_chain::node", path = %path.display(),
            "the state file does not keep its genesis: the genesis given is not checked");
        return Ok(());
    };
    let fields = given.differences(persisted);
    if fields.is_empty() {
        return Ok(());
    }
    Err(ChainError::GenesisMismatch {
        path: path.to_owned(),
        fields: fields.join(", "),
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
