//! The devnet's base chain: a node embedded in the devnet process, its provers registered as
//! members, the coordinator's stake, and what the chain says at the end (sequences finalized,
//! rewards, the membership table).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use ed25519_dalek::SigningKey;
use serde::Serialize;
use sheaf_chain::membership::{MembershipParams, MembershipState};
use sheaf_chain::node::{Allocation, Chain, ChainConfig, Genesis};
use sheaf_chain::settlement::{Address, Amount, SequenceId, SettlementParams};
use sheaf_chain::{Call, ChainClient};
use sheaf_circuits::FinalKey;
use sheaf_prover::ProverKey;
use sheaf_store::Store;
use sheaf_types::clock::now_ms;
use tokio::task::JoinHandle;

/// Block interval of the devnet's chain: a quarter second keeps settlement short.
pub const DEFAULT_DEVNET_BLOCK_MS: u64 = 250;
/// T1 of the devnet's chain: hashes for one second after the first.
pub const DEFAULT_DEVNET_HASH_WINDOW_BLOCKS: u64 = 4;
/// T2 of the devnet's chain: two seconds to reveal.
pub const DEFAULT_DEVNET_PROOF_WINDOW_BLOCKS: u64 = 8;
/// Each devnet prover's membership rate limit: the registry's maximum per membership.
const DEVNET_MEMBER_RATE: u32 = 600;
/// Genesis balance of every devnet account: covers a membership deposit (30 tokens at the
/// devnet's rate) and the stake (50,000 tokens by default), many times over.
const DEVNET_BALANCE: Amount = Amount::tokens(1_000_000);
/// How long a setup transaction may take to be included.
const SETUP_TX_TIMEOUT: Duration = Duration::from_secs(30);

/// The devnet chain's knobs.
#[derive(Args, Debug, Clone)]
pub struct DevnetChainArgs {
    /// Block interval of the devnet's chain, in ms.
    #[arg(long, env = "SHEAF_BLOCK_MS", default_value_t = DEFAULT_DEVNET_BLOCK_MS)]
    pub block_ms: u64,
    /// T1: blocks in which hashes are accepted after the first.
    #[arg(long, env = "SHEAF_HASH_WINDOW_BLOCKS", default_value_t = DEFAULT_DEVNET_HASH_WINDOW_BLOCKS)]
    pub hash_window_blocks: u64,
    /// T2: blocks in which proofs are accepted after the hash phase.
    #[arg(long, env = "SHEAF_PROOF_WINDOW_BLOCKS", default_value_t = DEFAULT_DEVNET_PROOF_WINDOW_BLOCKS)]
    pub proof_window_blocks: u64,
}

/// One sequence as the chain finalized it.
#[derive(Debug, Serialize)]
pub struct FinalizedOnChain {
    /// The sequence.
    pub sequence: u64,
    /// The block of the proof that finalized it.
    pub block: u64,
    /// Who sent that proof (hex).
    pub sender: String,
    /// Leaf and aggregation jobs the root proof accounts for.
    pub jobs: u64,
    /// Work units it accounts for.
    pub work_units: u64,
}

/// A settlement sender's account.
#[derive(Debug, Serialize)]
pub struct SenderAccount {
    /// The sender (hex).
    pub sender: String,
    /// Its stake.
    pub stake: Amount,
    /// Rewards earned (base units).
    pub rewards: Amount,
    /// Transactions it sent.
    pub transactions: u64,
}

/// A prover's share of the proved work (what its reward claims will split).
#[derive(Debug, Serialize)]
pub struct ProverWork {
    /// The devnet's name for it.
    pub prover: String,
    /// Jobs whose proof was stored.
    pub jobs: usize,
    /// Their work units.
    pub work_units: i64,
}

/// A row of the membership table.
#[derive(Debug, Serialize)]
pub struct MemberRow {
    /// The devnet's name for it.
    pub prover: String,
    /// Its leaf in the membership tree.
    pub index: u32,
    /// Leases per epoch.
    pub rate_limit: u32,
    /// Active, GracePeriod or Expired.
    pub state: MembershipState,
    /// Its id commitment: the prover's worker_pk.
    pub id_commitment: String,
}

/// What the chain says at the end of a devnet.
#[derive(Debug, Serialize)]
pub struct ChainReport {
    /// Blocks produced.
    pub height: u64,
    /// Sequences finalized, in order.
    pub finalized: Vec<FinalizedOnChain>,
    /// Rewards per settlement sender.
    pub senders: Vec<SenderAccount>,
    /// Work per prover.
    pub provers: Vec<ProverWork>,
    /// The membership registry.
    pub members: Vec<MemberRow>,
}

/// The embedded chain node, served on a loopback port and producing blocks on its own.
pub struct DevnetChain {
    /// A client of the node.
    pub client: ChainClient,
    /// Its JSON-RPC URL.
    pub url: String,
    server: JoinHandle<std::io::Result<()>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl DevnetChain {
    /// Start a new chain in `dir` whose sequences `coordinator` registers, verified with
    /// `final_key`, with a balance for every account in `accounts`.
    pub async fn start(
        dir: &Path,
        args: &DevnetChainArgs,
        final_key: FinalKey,
        coordinator: Address,
        accounts: &[Address],
    ) -> anyhow::Result<DevnetChain> {
        if args.block_ms == 0 || args.hash_window_blocks == 0 || args.proof_window_blocks == 0 {
            bail!("--block-ms, --hash-window-blocks and --proof-window-blocks must be positive");
        }
        let genesis = Genesis {
            genesis_time_ms: u64::try_from(now_ms()).unwrap_or(0),
            block_ms: args.block_ms,
            coordinator,
            allocations: accounts
                .iter()
                .map(|address| Allocation {
                    address: *address,
                    balance: DEVNET_BALANCE,
                })
                .collect(),
            settlement: SettlementParams {
                hash_window_blocks: args.hash_window_blocks,
                proof_window_blocks: args.proof_window_blocks,
                ..SettlementParams::default()
            },
            membership: MembershipParams::default(),
            ..Genesis::default()
        };
        let config = ChainConfig {
            genesis,
            data_dir: Some(dir.to_path_buf()),
            ..ChainConfig::default()
        };
        let chain = Arc::new(
            Chain::open(config, Box::new(final_key))
                .with_context(|| format!("opening the devnet chain in {}", dir.display()))?,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(sheaf_chain::serve(chain.clone(), listener, async {
            let _ = stopped.await;
        }));
        // The server also runs the block ticker (the chain's blocks are not manual).
        Ok(DevnetChain {
            client: ChainClient::new(url.clone())?,
            url,
            server,
            stop: Some(stop),
        })
    }

    /// Register each prover as a member (id commitment = its worker_pk, holder = its request
    /// key, with its proof of possession of the worker secret) and stake `sender`'s minimum;
    /// waits until all are in blocks. Each prover registers itself, as on its own machine:
    /// `sheaf member register` with its key file (`provers`: name and key path), in a process
    /// of its own, so the devnet's process (the chain's and the coordinator's) never builds the
    /// possession circuit.
    pub async fn admit(
        &self,
        provers: &[(String, std::path::PathBuf)],
        sender: &SigningKey,
    ) -> anyhow::Result<()> {
        let exe = std::env::current_exe().context("locating the sheaf binary")?;
        let mut registrations = Vec::new();
        for (name, key) in provers {
            let child = tokio::process::Command::new(&exe)
                .args(["member", "--chain", &self.url, "--key"])
                .arg(key)
                .args(["register", "--rate-limit", &DEVNET_MEMBER_RATE.to_string()])
                .env_remove("SHEAF_CHAIN")
                .env_remove("SHEAF_KEY")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("registering {name}"))?;
            registrations.push((name, child));
        }
        for (name, child) in registrations {
            let output = child
                .wait_with_output()
                .await
                .with_context(|| format!("registering {name}"))?;
            if !output.status.success() {
                bail!(
                    "registering {name}: sheaf member register failed ({}): {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
        }
        let min_stake = self.client.settlement_status().await?.params.min_stake;
        let stake = Call::DepositStake { amount: min_stake };
        let tx = self.client.send(sender, stake).await?;
        let receipt = self
            .client
            .wait_for_receipt(&tx, SETUP_TX_TIMEOUT)
            .await
            .context("staking the coordinator")?;
        if let Some(error) = receipt.error {
            bail!("staking the coordinator: {error}");
        }
        Ok(())
    }

    /// How many of sequences `1..=sequences` are finalized.
    pub async fn finalized(&self, sequences: u64) -> anyhow::Result<u64> {
        Ok(self
            .client
            .settlement_status()
            .await?
            .next_to_finalize
            .get()
            .min(sequences + 1)
            .saturating_sub(1))
    }

    /// What the chain says: finalized sequences, the sender's account, work per prover (from
    /// the store's reward entries) and the membership table.
    pub async fn report(
        &self,
        store: &Store,
        sequences: u64,
        sender: &Address,
        provers: &[(String, ProverKey)],
    ) -> anyhow::Result<ChainReport> {
        let mut finalized = Vec::new();
        for sequence in 1..=sequences {
            if let Some(f) = self.client.finalized(SequenceId(sequence)).await? {
                finalized.push(FinalizedOnChain {
                    sequence,
                    block: f.block,
                    sender: f.sender.to_string(),
                    jobs: f.stats.leaf_jobs + f.stats.aggregation_jobs,
                    work_units: f.stats.work_units,
                });
            }
        }
        let account = self.client.account(sender).await?;
        let senders = vec![SenderAccount {
            sender: sender.to_string(),
            stake: account.stake,
            rewards: account.rewards,
            transactions: account.nonce,
        }];
        let mut work = Vec::new();
        let mut members = Vec::new();
        for (name, key) in provers {
            let worker_pk = key.worker_pk().to_bytes();
            let mut row = ProverWork {
                prover: name.clone(),
                jobs: 0,
                work_units: 0,
            };
            for sequence in 1..=sequences {
                for reward in store.rewards(SequenceId(sequence)).await? {
                    if reward.worker_pk == worker_pk {
                        row.jobs += 1;
                        row.work_units += reward.work_units;
                    }
                }
            }
            work.push(row);
            if let Some(member) = self.client.membership(&key.worker_pk()).await? {
                members.push(MemberRow {
                    prover: name.clone(),
                    index: member.info.index,
                    rate_limit: member.info.rate_limit,
                    state: member.state,
                    id_commitment: key.worker_pk().to_string(),
                });
            }
        }
        Ok(ChainReport {
            height: self.client.height().await?,
            finalized,
            senders,
            provers: work,
            members,
        })
    }

    /// Stop producing blocks and serving.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.server).await;
    }
}
