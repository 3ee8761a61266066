//! `sheaf coordinator`: serve the prover API over a store.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use sheaf_chain::{ChainClient, DEFAULT_CHAIN_TIMEOUT};
use sheaf_coordinator::admission::DEFAULT_MAX_CONCURRENT;
use sheaf_coordinator::admission::{
    parse_provers, ChainRegistry, ChainRegistryConfig, RegistryError,
};
use sheaf_coordinator::config::{
    DEFAULT_ABANDON_BACKOFF_BASE, DEFAULT_ABANDON_BACKOFF_MAX, DEFAULT_CHAIN_POLL_INTERVAL,
    DEFAULT_CLAIMS_WINDOW, DEFAULT_CONSOLE_COLLAPSE_JOBS, DEFAULT_CONSOLE_INTERVAL,
    DEFAULT_CONSOLE_MAX_VIEWERS, DEFAULT_CONSOLE_SEQUENCES, DEFAULT_EPOCH,
    DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_LEASE_TTL, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_PROOF_GC_INTERVAL, DEFAULT_PROVER_REQUEST_RATE, DEFAULT_SENDER_POLL_INTERVAL,
    DEFAULT_SENDER_RESEND_AFTER, DEFAULT_SENDER_ROLE_TTL, DEFAULT_VERIFY_QUEUE,
    DEFAULT_VERIFY_WORKERS,
};
use sheaf_coordinator::rollup::{
    RollupConfig, DEFAULT_BATCH_INTERVAL, DEFAULT_BLOCK_INTERVAL, DEFAULT_CONCURRENT_BLOCKS,
};
use sheaf_coordinator::RollupOptions;
use sheaf_coordinator::{
    CoordinatorConfig, CoordinatorService, FileRegistry, Registry, SenderConfig, ServiceOptions,
    SettlementOptions,
};
use sheaf_net::{
    DEFAULT_BODY_BUDGET_BYTES, DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
};
use sheaf_prover::ProverKey;
use sheaf_rollup::MempoolConfig;
use sheaf_store::Store;

use crate::circuit_args::CircuitArgs;
use crate::progress::spinner;

/// Where the coordinator keeps its store unless told otherwise.
pub const DEFAULT_DB: &str = "sqlite://sheaf-data/sheaf.db";
/// Where the coordinator listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";

/// Flags of the coordinator service, shared with `devnet`.
#[derive(Args, Debug, Clone)]
pub struct ServiceArgs {
    /// Lease lifetime without a heartbeat, in ms.
    #[arg(long, env = "SHEAF_LEASE_TTL_MS", default_value_t = DEFAULT_LEASE_TTL.as_millis() as u64)]
    pub lease_ttl_ms: u64,
    /// How often provers heartbeat, in ms.
    #[arg(long, env = "SHEAF_HEARTBEAT_MS", default_value_t = DEFAULT_HEARTBEAT_INTERVAL.as_millis() as u64)]
    pub heartbeat_ms: u64,
    /// Distinct provers that may let a job's lease expire before it is dead.
    #[arg(long, env = "SHEAF_MAX_ATTEMPTS", default_value_t = DEFAULT_MAX_ATTEMPTS)]
    pub max_attempts: i64,
    /// Length of a rate-limit epoch, in ms.
    #[arg(long, env = "SHEAF_EPOCH_MS", default_value_t = DEFAULT_EPOCH.as_millis() as u64)]
    pub epoch_ms: u64,
    /// Proofs verified at once.
    #[arg(long, env = "SHEAF_VERIFY_WORKERS", default_value_t = DEFAULT_VERIFY_WORKERS)]
    pub verify_workers: usize,
    /// Submissions that may wait for a verifier before 503.
    #[arg(long, env = "SHEAF_VERIFY_QUEUE", default_value_t = DEFAULT_VERIFY_QUEUE)]
    pub verify_queue: usize,
    /// Largest request body in bytes (413 beyond).
    #[arg(long, env = "SHEAF_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Connections served at once (the metrics port has as many again); at the cap, a new
    /// connection takes the slot of the one idle longest, one never in a request first (that
    /// one is closed), or, when every
    /// one is in a request, is answered 503 and closed. Keep it below `ulimit -n`.
    #[arg(long, env = "SHEAF_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Connections one source address may hold at once; beyond, a new one is answered 503
    /// and closed at accept, taking no one's slot. 0: no limit (the default, for a server
    /// behind a proxy, where every client has the proxy's address: limit there). Facing
    /// clients directly, set it (64 holds 30 provers behind one NAT).
    #[arg(long, env = "SHEAF_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = DEFAULT_MAX_CONNECTIONS_PER_ADDRESS)]
    pub max_connections_per_address: usize,
    /// Longest wait for a request header, in ms; also the longest idle keep-alive.
    #[arg(long, env = "SHEAF_HEADER_TIMEOUT_MS", default_value_t = DEFAULT_HEADER_TIMEOUT.as_millis() as u64)]
    pub header_timeout_ms: u64,
    /// Longest wait for a whole request body after its header, in ms (408 beyond).
    #[arg(long, env = "SHEAF_BODY_TIMEOUT_MS", default_value_t = DEFAULT_BODY_TIMEOUT.as_millis() as u64)]
    pub body_timeout_ms: u64,
    /// Bytes of request bodies held at once across connections (503 overloaded when full for
    /// a second); at least --max-body-bytes.
    #[arg(long, env = "SHEAF_BODY_BUDGET_BYTES", default_value_t = DEFAULT_BODY_BUDGET_BYTES)]
    pub body_budget_bytes: usize,

    /// Signed requests a second one prover may send (bursts of twice as many), checked after
    /// its signature and before anything is written; beyond, 429 rate_limited with
    /// Retry-After, and until the key's next token its requests are refused unread, each
    /// refusal held until that token (4 of a key at once). A signed request the rules refuse
    /// (any 4xx but 429) costs 10 requests. 0: no limit.
    #[arg(long, env = "SHEAF_PROVER_REQUEST_RATE", default_value_t = DEFAULT_PROVER_REQUEST_RATE)]
    pub prover_request_rate: u32,

    // What letting a lease expire costs the prover (issue 15, defect 4).
    /// First suspension of a prover that let a lease expire, in ms; doubled for each further
    /// abandoned lease in a row (an accepted proof resets it). 0 suspends nobody.
    #[arg(long, env = "SHEAF_ABANDON_BACKOFF_MS", default_value_t = DEFAULT_ABANDON_BACKOFF_BASE.as_millis() as u64)]
    pub abandon_backoff_ms: u64,
    /// Longest suspension of a prover that keeps letting leases expire, in ms.
    #[arg(long, env = "SHEAF_ABANDON_BACKOFF_MAX_MS", default_value_t = DEFAULT_ABANDON_BACKOFF_MAX.as_millis() as u64)]
    pub abandon_backoff_max_ms: u64,

    /// Seconds after a sequence settles during which its provers can read their claim paths
    /// (`GET /v1/claims`); then its proofs, all but the top one, are deleted (from the proof
    /// store, or emptied in the database) and its rewards are no longer listed as claimable.
    #[arg(long, env = "SHEAF_CLAIMS_WINDOW_S", default_value_t = DEFAULT_CLAIMS_WINDOW.as_secs())]
    pub claims_window_s: u64,
    /// Seconds between passes of the proof collector (sequences past their claims window; proof
    /// store objects no row names, an hour after they were written).
    #[arg(long, env = "SHEAF_PROOF_GC_INTERVAL_S", default_value_t = DEFAULT_PROOF_GC_INTERVAL.as_secs())]
    pub proof_gc_interval_s: u64,

    // The live console at /ui.
    /// Shortest interval between two console snapshots, in ms: a snapshot is built (one set of
    /// store reads for all viewers) at most this often, and only after this process wrote to
    /// the store (or every 2 s while someone watches).
    #[arg(long, env = "SHEAF_CONSOLE_INTERVAL_MS", default_value_t = DEFAULT_CONSOLE_INTERVAL.as_millis() as u64, value_parser = clap::value_parser!(u64).range(50..))]
    pub console_interval_ms: u64,
    /// Sequences (rollup blocks) the console shows, newest first, each with its proof tree.
    #[arg(long, env = "SHEAF_CONSOLE_SEQUENCES", default_value_t = DEFAULT_CONSOLE_SEQUENCES, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub console_sequences: u32,
    /// Jobs from which the console shows a tree's levels as counts by state (each level
    /// expandable a page of 500 jobs at a time) instead of a node per job.
    #[arg(long, env = "SHEAF_CONSOLE_COLLAPSE_JOBS", default_value_t = DEFAULT_CONSOLE_COLLAPSE_JOBS)]
    pub console_collapse_jobs: u64,
    /// Console viewers (event streams of /ui/events) served at once; beyond, 503 overloaded.
    /// Each holds one of --max-connections.
    #[arg(long, env = "SHEAF_CONSOLE_MAX_VIEWERS", default_value_t = DEFAULT_CONSOLE_MAX_VIEWERS)]
    pub console_max_viewers: usize,
}

impl ServiceArgs {
    /// The coordinator configuration these flags select, checked for sense.
    pub fn config(&self) -> anyhow::Result<CoordinatorConfig> {
        if self.lease_ttl_ms == 0 || self.epoch_ms == 0 {
            anyhow::bail!("--lease-ttl-ms and --epoch-ms must be positive");
        }
        if self.heartbeat_ms == 0 || self.heartbeat_ms >= self.lease_ttl_ms {
            anyhow::bail!(
                "--heartbeat-ms ({}) must be positive and shorter than --lease-ttl-ms ({})",
                self.heartbeat_ms,
                self.lease_ttl_ms
            );
        }
        if self.proof_gc_interval_s == 0 {
            anyhow::bail!("--proof-gc-interval-s must be positive");
        }
        if self.verify_workers == 0 || self.max_attempts < 1 {
            anyhow::bail!("--verify-workers and --max-attempts must be at least 1");
        }
        let serve = crate::serve_limits::serve_limits(
            self.max_connections,
            self.max_connections_per_address,
            self.header_timeout_ms,
            self.body_timeout_ms,
            self.body_budget_bytes,
            self.max_body_bytes,
        )?;
        Ok(CoordinatorConfig {
            lease_ttl: Duration::from_millis(self.lease_ttl_ms),
            heartbeat_interval: Duration::from_millis(self.heartbeat_ms),
            max_attempts: self.max_attempts,
            epoch: Duration::from_millis(self.epoch_ms),
            prover_request_rate: self.prover_request_rate,
            verify_workers: self.verify_workers,
            verify_queue: self.verify_queue,
            max_body_bytes: self.max_body_bytes,
            serve,
            body_budget_bytes: self.body_budget_bytes,
            abandon_backoff_base: Duration::from_millis(self.abandon_backoff_ms),
            abandon_backoff_max: Duration::from_millis(self.abandon_backoff_max_ms),
            claims_window: Duration::from_secs(self.claims_window_s),
            proof_gc_interval: Duration::from_secs(self.proof_gc_interval_s),
            console_interval: Duration::from_millis(self.console_interval_ms),
            console_sequences: self.console_sequences,
            console_collapse_jobs: self.console_collapse_jobs,
            console_max_viewers: self.console_max_viewers,
            ..CoordinatorConfig::default()
        })
    }
}

/// How the coordinator follows the base chain, shared with `devnet`.
#[derive(Args, Debug, Clone)]
pub struct SettlementArgs {
    /// Leases a chain member may hold at once (its rate limit per epoch is its membership's).
    #[arg(long, env = "SHEAF_MEMBER_MAX_CONCURRENT", default_value_t = DEFAULT_MAX_CONCURRENT)]
    pub member_max_concurrent: i64,
    /// How often the chain's membership list is read, in ms.
    #[arg(long, env = "SHEAF_CHAIN_POLL_MS", default_value_t = DEFAULT_CHAIN_POLL_INTERVAL.as_millis() as u64)]
    pub chain_poll_ms: u64,
    /// How often the proof sender looks at the chain, in ms.
    #[arg(long, env = "SHEAF_SENDER_POLL_MS", default_value_t = DEFAULT_SENDER_POLL_INTERVAL.as_millis() as u64)]
    pub sender_poll_ms: u64,
    /// A chain transaction without a receipt after this many ms is sent again (same bytes).
    #[arg(long, env = "SHEAF_SENDER_RESEND_MS", default_value_t = DEFAULT_SENDER_RESEND_AFTER.as_millis() as u64)]
    pub sender_resend_ms: u64,
    /// Lease on the sender role, in ms. Replicas on one database with the same sender key
    /// each start a sender; one sends, the others stand by and take over this long after it
    /// stopped renewing (at once after a clean stop).
    #[arg(long, env = "SHEAF_SENDER_ROLE_TTL_MS", default_value_t = DEFAULT_SENDER_ROLE_TTL.as_millis() as u64)]
    pub sender_role_ttl_ms: u64,
    /// Longest wait for one answer of the chain's JSON-RPC, in ms. A sender whose chain stops
    /// answering for longer than its role's lease lets a standby replica take over.
    #[arg(long, env = "SHEAF_CHAIN_TIMEOUT_MS", default_value_t = DEFAULT_CHAIN_TIMEOUT.as_millis() as u64)]
    pub chain_timeout_ms: u64,
}

impl SettlementArgs {
    /// A client of the chain at `url` whose calls time out after `--chain-timeout-ms`.
    fn client(&self, url: &str) -> anyhow::Result<ChainClient> {
        if self.chain_timeout_ms == 0 {
            anyhow::bail!("--chain-timeout-ms must be positive");
        }
        Ok(ChainClient::with_timeout(
            url,
            Duration::from_millis(self.chain_timeout_ms),
        )?)
    }

    /// Follow the chain's membership registry at `url`.
    pub async fn registry(&self, url: &str) -> anyhow::Result<Arc<ChainRegistry>> {
        if self.chain_poll_ms == 0 || self.member_max_concurrent < 1 {
            anyhow::bail!("--chain-poll-ms and --member-max-concurrent must be positive");
        }
        let config = ChainRegistryConfig {
            poll_interval: Duration::from_millis(self.chain_poll_ms),
            max_concurrent: self.member_max_concurrent,
        };
        let registry = ChainRegistry::connect(self.client(url)?, config)
            .await
            .map_err(|e| match e {
                RegistryError::Chain(e) => {
                    anyhow::anyhow!("reading the membership list of the chain at {url}: {e}")
                }
                e => anyhow::anyhow!("the chain at {url}: {e}"),
            })?;
        Ok(Arc::new(registry))
    }

    /// Settle on the chain at `url` with `key`, on the schedule these flags select.
    pub fn settlement(
        &self,
        url: &str,
        key: ed25519_dalek::SigningKey,
    ) -> anyhow::Result<SettlementOptions> {
        if self.sender_poll_ms == 0 || self.sender_resend_ms == 0 || self.sender_role_ttl_ms < 3 {
            anyhow::bail!(
                "--sender-poll-ms and --sender-resend-ms must be positive, --sender-role-ttl-ms at least 3"
            );
        }
        Ok(SettlementOptions {
            chain: self.client(url)?,
            key,
            config: SenderConfig {
                poll_interval: Duration::from_millis(self.sender_poll_ms),
                resend_after: Duration::from_millis(self.sender_resend_ms),
                role_ttl: Duration::from_millis(self.sender_role_ttl_ms),
            },
        })
    }
}

/// Arguments of `coordinator`.
#[derive(Args, Debug)]
pub struct CoordinatorArgs {
    /// Store URL: `sqlite://PATH` (created if missing) or `postgres://…`.
    #[arg(long, env = "SHEAF_DB", default_value = DEFAULT_DB)]
    pub db: String,
    #[command(flatten)]
    pub proof_store: ProofStoreArg,
    /// Address to serve the prover API on.
    #[arg(long, env = "SHEAF_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Address to serve `/metrics`, `/healthz` and `/readyz` on, apart from the prover API
    /// (which then serves no `/metrics`). Without it, they are served on `--listen`.
    #[arg(long, env = "SHEAF_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// The base chain's JSON-RPC URL. Provers are admitted from its membership registry
    /// (Active and GracePeriod members, at their rate limit), unless `--provers-file` is given.
    #[arg(long, env = "SHEAF_CHAIN")]
    pub chain: Option<String>,
    /// Key file (from `sheaf keygen`) whose ed25519 key is the chain's coordinator key: with it,
    /// the coordinator registers its sequences on `--chain` and settles their root proofs
    /// (hash, then reveal). Its account needs the settlement's minimum stake.
    #[arg(long, env = "SHEAF_SENDER_KEY", requires = "chain")]
    pub sender_key: Option<PathBuf>,
    /// Development option: a file, not a count (`devnet --provers N` is a count). Admit the
    /// provers of this TOML file (see `sheaf keygen`) instead of
    /// the chain's members; re-read when it changes. Without it or `--chain`, the provers
    /// already in the store stay admitted.
    #[arg(
        long = "provers-file",
        visible_alias = "provers",
        env = "SHEAF_PROVERS"
    )]
    pub provers: Option<PathBuf>,
    /// Plan sequences 1..=N at start (those already planned are left alone).
    #[arg(long, env = "SHEAF_SEQUENCES", default_value_t = 0)]
    pub sequences: i64,
    /// Work leaves per planned sequence.
    #[arg(long, env = "SHEAF_LEAVES", default_value_t = 8)]
    pub leaves: usize,
    #[command(flatten)]
    pub rollup: RollupArgs,
    #[command(flatten)]
    pub settings: CoordinatorSettings,
}

/// The rollup node's flags.
#[derive(Args, Debug, Clone)]
pub struct RollupArgs {
    /// Run a rollup node from this genesis file (JSON: a timestamp and the funded accounts):
    /// take signed transactions at `POST /v1/rollup/transactions`, cut the waiting ones into
    /// batches every `--batch-interval-ms`, publish a block of the batches every
    /// `--block-interval-ms` before it is proven, and plan its proving tree
    /// for the provers (`GET /v1/rollup/status` tells the published, proven and settled tips).
    /// Admits the rollup's kernels into the circuit set, as `--rollup`. With `--sender-key`,
    /// each block is registered on the chain when published and settled once proven, in order:
    /// the chain must verify with the rollup set's final key (`sheaf export-key --rollup`).
    /// Not with `--sequences`: block `n` is proved by sequence `n`, so planned work sequences
    /// would take the blocks' numbers (and, settled in order, hold them back).
    #[arg(long, env = "SHEAF_ROLLUP_GENESIS", conflicts_with = "sequences")]
    pub rollup_genesis: Option<PathBuf>,
    /// Milliseconds between blocks (miden-node's default: 3 s). A block takes the batches
    /// selected so far, up to `--max-batches-per-block`.
    #[arg(long, env = "SHEAF_BLOCK_INTERVAL_MS", default_value_t = DEFAULT_BLOCK_INTERVAL.as_millis() as u64)]
    pub block_interval_ms: u64,
    /// Milliseconds between batch selections (miden-node's default: 1 s): the waiting
    /// transactions are cut into batches of up to `--max-txs-per-batch`, while fewer than
    /// `--max-batches-per-block` batches wait for a block.
    #[arg(long, env = "SHEAF_BATCH_INTERVAL_MS", default_value_t = DEFAULT_BATCH_INTERVAL.as_millis() as u64)]
    pub batch_interval_ms: u64,
    /// Published blocks that may wait for their proof at once: block n is not published while
    /// n minus the proven tip exceeds it, so the provers' backlog stays bounded; transactions
    /// wait in the mempool meanwhile (then 503 at its capacity). Blocks settle in order.
    #[arg(long, env = "SHEAF_CONCURRENT_BLOCKS", default_value_t = DEFAULT_CONCURRENT_BLOCKS)]
    pub concurrent_blocks: usize,
    /// Transactions per batch of a block (1 to 64).
    #[arg(long, env = "SHEAF_MAX_TXS_PER_BATCH", default_value_t = 8)]
    pub max_txs_per_batch: usize,
    /// Batches per block (1 to 64).
    #[arg(long, env = "SHEAF_MAX_BATCHES_PER_BLOCK", default_value_t = 8)]
    pub max_batches_per_block: usize,
    /// Transactions the mempool holds; past it, submissions are refused as overloaded (503).
    #[arg(long, env = "SHEAF_MEMPOOL_CAPACITY", default_value_t = 1_280)]
    pub mempool_capacity: usize,
}

impl RollupArgs {
    /// The rollup node's options, when a genesis is given: the genesis read and built, the
    /// mempool's knobs checked.
    fn options(&self, arity: usize) -> anyhow::Result<Option<RollupOptions>> {
        let Some(path) = &self.rollup_genesis else {
            return Ok(None);
        };
        if self.block_interval_ms == 0 || self.batch_interval_ms == 0 {
            anyhow::bail!("--block-interval-ms and --batch-interval-ms must be at least 1");
        }
        if self.concurrent_blocks == 0 {
            anyhow::bail!("--concurrent-blocks must be at least 1");
        }
        let genesis = sheaf_rollup::Genesis::load(path)?.build()?;
        let mempool = MempoolConfig::new(
            self.mempool_capacity,
            MempoolConfig::default().expiration_slack,
            self.max_txs_per_batch,
            self.max_batches_per_block,
        )?;
        Ok(Some(RollupOptions {
            genesis,
            config: RollupConfig {
                mempool,
                arity,
                concurrent_blocks: self.concurrent_blocks,
            },
            block_interval: std::time::Duration::from_millis(self.block_interval_ms),
            batch_interval: std::time::Duration::from_millis(self.batch_interval_ms),
        }))
    }
}

/// The coordinator's flags that `sheaf coordinator` and `sheaf devnet` share.
#[derive(Args, Debug, Clone)]
pub struct CoordinatorSettings {
    #[command(flatten)]
    pub service: ServiceArgs,
    #[command(flatten)]
    pub settlement: SettlementArgs,
    #[command(flatten)]
    pub circuits: CircuitArgs,
}

/// Where proof blobs are kept, shared by the commands that open a store.
#[derive(Args, Debug, Clone, Default)]
pub struct ProofStoreArg {
    /// Where proof blobs are kept, referenced by hash from the store: a directory (or
    /// `file:///DIR`; blobs are appended to segment files there), or `s3://BUCKET[/PREFIX]` on an S3-compatible service, which several
    /// coordinators on one PostgreSQL database share (configured by `AWS_ENDPOINT`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, and `AWS_ALLOW_HTTP=true`
    /// for a plain-HTTP endpoint), or `database` to keep them in the store's rows. Default: a
    /// `proofs` folder beside a SQLite file; in the database on PostgreSQL (whose replicas
    /// usually run on several machines, where a local folder would split the proofs). Each
    /// sequence's top proof stays in the database either way.
    #[arg(
        long = "proof-store",
        env = "SHEAF_PROOF_STORE",
        value_name = "DIR|s3://BUCKET|database"
    )]
    pub location: Option<String>,
}

impl ProofStoreArg {
    /// Where the blobs of the store at `db` go: `None` for its rows.
    pub fn resolve(&self, db: &str) -> Option<String> {
        match self.location.as_deref() {
            Some("database") => None,
            Some(location) => Some(location.to_owned()),
            None => {
                let path = db.strip_prefix("sqlite://")?;
                let path = path.split('?').next().unwrap_or(path);
                let folder = std::path::Path::new(path)
                    .parent()
                    .filter(|dir| !dir.as_os_str().is_empty())
                    .unwrap_or(std::path::Path::new("."));
                Some(folder.join("proofs").display().to_string())
            }
        }
    }
}

/// Open a store URL, creating a SQLite file's directory if needed, with its proof blobs where
/// `proof_store` says ([`ProofStoreArg::resolve`]).
pub async fn open_store_with(url: &str, proof_store: &ProofStoreArg) -> anyhow::Result<Store> {
    let store = open_store(url).await?;
    Ok(match proof_store.resolve(url) {
        Some(location) => {
            let blobs = sheaf_store::ProofBlobs::open(&location)
                .with_context(|| format!("opening the proof store {location}"))?;
            tracing::info!(proof_store = %blobs.location(), "proof blobs kept in an object store");
            store.with_proof_blobs(blobs)
        }
        None => store,
    })
}

/// Open a store URL, creating a SQLite file's directory if needed. Proof blobs go into its
/// rows: see [`open_store_with`].
pub async fn open_store(url: &str) -> anyhow::Result<Store> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap_or(path);
        if let Some(dir) = std::path::Path::new(path).parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
        }
    }
    Store::connect(url)
        .await
        .with_context(|| format!("opening store {}", redact_url(url)))
}

/// `url` without its password, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Load (or build) the circuits a coordinator verifies with, without their prover data (see
/// [`CircuitArgs::verifier_circuits`]), on a blocking thread, with a spinner unless `quiet`.
pub async fn load_circuits(
    circuits: &CircuitArgs,
    quiet: bool,
) -> anyhow::Result<Arc<sheaf_circuits::CircuitSet>> {
    let spin = spinner("loading or building circuits", quiet);
    let args = circuits.clone();
    let set = tokio::task::spawn_blocking(move || args.verifier_circuits()).await??;
    spin.finish_and_clear();
    Ok(Arc::new(set))
}

/// Run `coordinator`. What can be checked cheaply (flags, the `--provers` file, the listen
/// port) is checked before the store is migrated and the circuits are loaded.
pub fn run(args: CoordinatorArgs) -> anyhow::Result<()> {
    let config = args.settings.service.config()?;
    let rollup = args.rollup.options(args.settings.circuits.arity)?;
    if let Some(path) = &args.provers {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the provers file {}", path.display()))?;
        parse_provers(&text)
            .map_err(|e| anyhow::anyhow!("reading the provers file {}: {e}", path.display()))?;
    }
    let sender_key = match &args.sender_key {
        Some(path) => Some(
            ProverKey::read(path)
                .with_context(|| format!("reading the sender key {}", path.display()))?
                .signing,
        ),
        None => None,
    };
    // Held while the store and the circuits load, so the port is known to be free; released
    // just before the service binds it.
    let port_probe = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("listening on {}", args.listen))?;
    let metrics_port_probe = match args.metrics_listen {
        Some(address) => Some(
            std::net::TcpListener::bind(address)
                .with_context(|| format!("listening for metrics on {address}"))?,
        ),
        None => None,
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        // The chain answers before the store is migrated.
        let registry: Option<Arc<dyn Registry>> = match (&args.provers, &args.chain) {
            (Some(path), _) => {
                tracing::info!(
                    file = %path.display(),
                    "admitting the provers of a file (development option)"
                );
                Some(Arc::new(FileRegistry::new(path)))
            }
            (None, Some(url)) => {
                let registry = args.settings.settlement.registry(url).await?;
                tracing::info!(chain = %url, "admitting the members of the chain");
                Some(registry)
            }
            (None, None) => {
                tracing::info!("no --chain or --provers: admitting the provers already in the store");
                None
            }
        };
        let store = open_store_with(&args.db, &args.proof_store).await?;
        let settlement = match (sender_key, &args.chain) {
            (Some(key), Some(url)) => Some(args.settings.settlement.settlement(url, key)?),
            _ => None,
        };
        let settling = settlement.as_ref().map(|s| s.chain.url().to_owned());
        let mut circuit_args = args.settings.circuits.clone();
        circuit_args.rollup |= rollup.is_some();
        let circuits = load_circuits(&circuit_args, false).await?;
        drop(port_probe);
        drop(metrics_port_probe);
        let service = CoordinatorService::start(ServiceOptions {
            store,
            circuits,
            leaf_rows_log2: args.settings.circuits.leaf_rows_log2,
            config,
            registry,
            sequences: args.sequences.max(0) as u64,
            leaves: args.leaves,
            listen: args.listen,
            metrics_listen: args.metrics_listen,
            settlement,
            rollup,
        })
        .await?;
        tracing::info!(
            url = %service.url(),
            final_key = %service.coordinator().spec().final_key_id,
            planned = service.planned().len(),
            "coordinator serving"
        );
        eprintln!("console: {}", service.console_url());
        if let Some(address) = service.metrics_address() {
            eprintln!("metrics, health and readiness on http://{address}");
        }
        if let Some(url) = settling {
            tracing::info!(
                chain = %url,
                "proof sender started: it sends only while this replica holds the sender role (the log says when it takes it or stands by)"
            );
        }
        service
            .run_until(sheaf_coordinator::shutdown_signal())
            .await?;
        Ok(())
    })
}
