//! `sheaf chain`: run the base-chain node (settlement contract and membership registry) and
//! serve its JSON-RPC API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use sheaf_chain::node::{
    Chain, ChainConfig, Genesis, DEFAULT_BLOCK_INTERVAL, DEFAULT_MAX_BLOCK_BYTES,
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_MEMPOOL_BYTES, DEFAULT_MAX_MEMPOOL_TXS,
    DEFAULT_MAX_PENDING_BYTES_PER_SENDER, DEFAULT_MAX_PENDING_TXS_PER_SENDER,
    DEFAULT_RECEIPTS_KEPT, STATE_FILE,
};
use sheaf_chain::Address;
use sheaf_circuits::FinalKey;
use sheaf_net::{
    DEFAULT_BODY_BUDGET_BYTES, DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
};

/// Where the chain node listens unless told otherwise.
pub const DEFAULT_CHAIN_LISTEN: &str = "127.0.0.1:8545";
/// Where the chain node keeps its state unless told otherwise.
pub const DEFAULT_CHAIN_DATA: &str = "sheaf-chain";

/// Arguments of `chain`.
#[derive(Args, Debug, Clone)]
pub struct ChainArgs {
    /// Address to serve JSON-RPC on.
    #[arg(long, env = "SHEAF_CHAIN_LISTEN", default_value = DEFAULT_CHAIN_LISTEN)]
    pub listen: SocketAddr,
    /// Data directory: the chain's state file, written after every block. A node restarted on
    /// it carries on where it stopped.
    #[arg(long, env = "SHEAF_CHAIN_DATA", default_value = DEFAULT_CHAIN_DATA)]
    pub data: PathBuf,
    /// Block interval in ms, for a new chain (an existing chain keeps its genesis interval).
    #[arg(long, env = "SHEAF_BLOCK_MS", default_value_t = DEFAULT_BLOCK_INTERVAL.as_millis() as u64)]
    pub block_ms: u64,
    /// The final verifier key file (from `sheaf export-key`, not a prover key) root proofs are
    /// verified with.
    #[arg(long, visible_alias = "final-key", env = "SHEAF_FINAL_KEY")]
    pub key: PathBuf,
    /// The coordinator's ed25519 public key (64 hex characters): the only key that registers
    /// sequences. Overrides the genesis file's; needed for a new chain.
    #[arg(long, env = "SHEAF_COORDINATOR_KEY")]
    pub coordinator_key: Option<String>,
    /// Genesis file (JSON: chain_id, genesis_time_ms, block_ms, coordinator, allocations,
    /// settlement, membership; every field optional; `sheaf genesis` writes one), for a new
    /// chain. On existing data it must be the genesis the chain started from, or the node
    /// refuses to start.
    #[arg(long, env = "SHEAF_GENESIS")]
    pub genesis: Option<PathBuf>,
    /// Produce blocks only on `chain_produceBlock` (enabled by this flag, with
    /// --admin-token), never on a timer.
    #[arg(long, env = "SHEAF_MANUAL_BLOCKS")]
    pub manual_blocks: bool,
    /// Most transactions waiting for a block before submissions are refused.
    #[arg(long, env = "SHEAF_CHAIN_MAX_MEMPOOL", default_value_t = DEFAULT_MAX_MEMPOOL_TXS)]
    pub max_mempool_txs: usize,
    /// Most recent receipts kept.
    #[arg(long, env = "SHEAF_CHAIN_RECEIPTS", default_value_t = DEFAULT_RECEIPTS_KEPT)]
    pub receipts_kept: usize,
    /// Largest JSON-RPC request body in bytes (413 beyond).
    #[arg(long, env = "SHEAF_CHAIN_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    // Operator access and mempool bounds against floods (issue 15).
    /// The token `chain_produceBlock` must carry (required with --manual-blocks; compared in
    /// constant time). Anyone without it is refused, and no block is produced.
    #[arg(long, env = "SHEAF_CHAIN_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Most bytes (JSON-encoded transactions) waiting for a block.
    #[arg(long, env = "SHEAF_CHAIN_MAX_MEMPOOL_BYTES", default_value_t = DEFAULT_MAX_MEMPOOL_BYTES)]
    pub max_mempool_bytes: usize,
    /// Most bytes (JSON-encoded transactions) one block takes; senders take turns, one
    /// transaction each, so a flood fills a block only after every other sender got a place.
    #[arg(long, env = "SHEAF_CHAIN_MAX_BLOCK_BYTES", default_value_t = DEFAULT_MAX_BLOCK_BYTES)]
    pub max_block_bytes: usize,
    /// Most transactions one sender may have waiting for a block.
    #[arg(long, env = "SHEAF_CHAIN_MAX_PENDING_TXS_PER_SENDER", default_value_t = DEFAULT_MAX_PENDING_TXS_PER_SENDER)]
    pub max_pending_txs_per_sender: usize,
    /// Most bytes one sender may have waiting for a block.
    #[arg(long, env = "SHEAF_CHAIN_MAX_PENDING_BYTES_PER_SENDER", default_value_t = DEFAULT_MAX_PENDING_BYTES_PER_SENDER)]
    pub max_pending_bytes_per_sender: usize,
    /// Connections served at once; at the cap, a new connection takes the slot of the one idle
    /// longest, one never in a request first (that one is closed), or, when every one is in a request, is answered 503 and
    /// closed. Keep it below the descriptor limit (`ulimit -n`).
    #[arg(long, env = "SHEAF_CHAIN_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Connections one source address may hold at once; beyond, a new one is answered 503
    /// and closed at accept, taking no one's slot. 0: no limit (the default, for a server
    /// behind a proxy, where every client has the proxy's address: limit there). Facing
    /// clients directly, set it (64 holds 30 provers behind one NAT).
    #[arg(long, env = "SHEAF_CHAIN_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = DEFAULT_MAX_CONNECTIONS_PER_ADDRESS)]
    pub max_connections_per_address: usize,
    /// Longest wait for a request header, in ms; also the longest idle keep-alive.
    #[arg(long, env = "SHEAF_CHAIN_HEADER_TIMEOUT_MS", default_value_t = DEFAULT_HEADER_TIMEOUT.as_millis() as u64)]
    pub header_timeout_ms: u64,
    /// Longest wait for a whole request body after its header, in ms (408 beyond).
    #[arg(long, env = "SHEAF_CHAIN_BODY_TIMEOUT_MS", default_value_t = DEFAULT_BODY_TIMEOUT.as_millis() as u64)]
    pub body_timeout_ms: u64,
    /// Bytes of request bodies held at once across connections (503 when full for a second);
    /// at least --max-body-bytes.
    #[arg(long, env = "SHEAF_CHAIN_BODY_BUDGET_BYTES", default_value_t = DEFAULT_BODY_BUDGET_BYTES)]
    pub body_budget_bytes: usize,
}

impl ChainArgs {
    /// The node configuration these flags select, checked for sense.
    pub fn config(&self) -> anyhow::Result<ChainConfig> {
        if self.block_ms == 0 {
            anyhow::bail!("--block-ms must be positive");
        }
        if self.max_mempool_txs == 0 {
            anyhow::bail!("--max-mempool-txs must be at least 1");
        }
        if self.manual_blocks && self.admin_token.as_deref().unwrap_or("").is_empty() {
            anyhow::bail!(
                "--manual-blocks needs --admin-token (SHEAF_CHAIN_ADMIN_TOKEN): the token \
                 chain_produceBlock must carry"
            );
        }
        if self.max_pending_txs_per_sender == 0 || self.max_pending_bytes_per_sender == 0 {
            anyhow::bail!("the per-sender mempool bounds must be positive");
        }
        if self.max_block_bytes == 0 {
            anyhow::bail!("--max-block-bytes must be positive");
        }
        let serve = crate::serve_limits::serve_limits(
            self.max_connections,
            self.max_connections_per_address,
            self.header_timeout_ms,
            self.body_timeout_ms,
            self.body_budget_bytes,
            self.max_body_bytes,
        )?;
        let mut genesis = match &self.genesis {
            Some(path) => {
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                serde_json::from_slice::<Genesis>(&bytes)
                    .with_context(|| format!("parsing genesis file {}", path.display()))?
            }
            None => Genesis::default(),
        };
        genesis.block_ms = self.block_ms;
        if let Some(key) = &self.coordinator_key {
            let key = key.strip_prefix("0x").unwrap_or(key);
            genesis.coordinator = key
                .parse()
                .context("--coordinator-key must be 64 hex characters")?;
        }
        let new_chain = !self.data.join(STATE_FILE).exists();
        // A restart keeps the persisted time; 0 matches it when the genesis is checked.
        if new_chain && genesis.genesis_time_ms == 0 {
            genesis.genesis_time_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
        }
        if new_chain && genesis.coordinator == Address::default() {
            anyhow::bail!("a new chain needs --coordinator-key (or a coordinator in --genesis)");
        }
        Ok(ChainConfig {
            genesis,
            check_genesis: self.genesis.is_some(),
            data_dir: Some(self.data.clone()),
            manual_blocks: self.manual_blocks,
            admin_token: self.admin_token.clone(),
            max_mempool_txs: self.max_mempool_txs,
            max_mempool_bytes: self.max_mempool_bytes,
            max_block_bytes: self.max_block_bytes,
            max_pending_txs_per_sender: self.max_pending_txs_per_sender,
            max_pending_bytes_per_sender: self.max_pending_bytes_per_sender,
            receipts_kept: self.receipts_kept,
            max_body_bytes: self.max_body_bytes,
            serve,
            body_budget_bytes: self.body_budget_bytes,
        })
    }
}

/// Run `chain` until ctrl-c or SIGTERM.
pub fn run(args: ChainArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let key = FinalKey::read(&args.key)
        .with_context(|| format!("reading final key {}", args.key.display()))?;
    let key_id = key.id();
    let chain = Chain::open(config, Box::new(key))
        .with_context(|| format!("opening the chain in {}", args.data.display()))?;
    if chain.block_interval() != Duration::from_millis(args.block_ms) {
        tracing::warn!(
            "the chain keeps its genesis block interval of {} ms (--block-ms {} applies to new chains)",
            chain.block_interval().as_millis(),
            args.block_ms
        );
    }
    let chain = Arc::new(chain);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        tracing::info!(
            "chain {} at height {} on http://{} (final key {key_id}, {})",
            chain.chain_id(),
            chain.height(),
            listener.local_addr()?,
            if args.manual_blocks {
                "manual blocks".to_string()
            } else {
                format!("a block every {} ms", chain.block_interval().as_millis())
            }
        );
        sheaf_chain::serve(chain, listener, sheaf_coordinator::shutdown_signal()).await?;
        Ok(())
    })
}
