//! `sheaf bench abuse`: what hostile clients cost honest ones.
//!
//! Each run starts fresh processes of this binary: a `sheaf coordinator` on its own SQLite
//! file, admitting an honest prover and `--clients` flooders from one provers file, and then
//! one honest `sheaf prover` that proves `--jobs` jobs and reports its time outside proving per
//! job (lease round trip, submission, heartbeats' share). The first run has no flood; each
//! other run holds one flood from before the prover starts until it is done:
//!
//! - `invalid-proofs`: every flooder leases what it may and submits random bytes as proofs;
//! - `heartbeats`: every flooder heartbeats jobs it does not hold, as fast as it is answered;
//! - `slow-connections`: `--slow-connections` sockets from `--flood-address` (127.0.0.2) each
//!   send half a request header and stall, reopened as the coordinator closes them.
//!
//! The chain runs the same way: a `sheaf chain`, honest transfers timed from sending to their
//! receipt, alone and under `junk-chain`: `--junk-senders` tasks sending ~700 KB reveals that
//! fail when applied, half from funded accounts (admitted up to the mempool's bounds, filling
//! blocks), half from fresh keys (with small transfers between). Provers never talk to the
//! chain, so the chain's flood is measured by an honest chain user instead.
//!
//! The floods run in this process, on the same machine as the servers and the honest party:
//! their own CPU (signing, hashing) is part of what the honest party competes with.
//!
//! Printed per run: the honest party's p50/p99, its ratio to the run alone, and the peak
//! resident memory of the server flooded (VmHWM, a fresh process per run).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use ed25519_dalek::SigningKey;
use rand::{Rng, RngCore};
use serde::Serialize;
use sheaf_chain::node::{Allocation, Genesis};
use sheaf_chain::settlement::{Address, Amount};
use sheaf_chain::tx::SignedTx;
use sheaf_chain::{Call, ChainClient};
use sheaf_prover::{Client, ProverKey, Quantiles};
use sheaf_types::{JobId, SequenceId};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;

use crate::circuit_args::CircuitArgs;
use crate::process_stats::{mib, peak_rss_of};
use crate::table::{write_table, Align};

/// How long a server may take to come up (the first coordinator may build the circuits).
const START_TIMEOUT: Duration = Duration::from_secs(900);
/// Size of an invalid proof: about a real one's.
const JUNK_PROOF_BYTES: usize = 128 * 1024;
/// Size of a junk reveal sent to the chain: large, below the chain's body limit.
const JUNK_REVEAL_BYTES: usize = 700 * 1024;

/// A flood of hostile requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flood {
    /// Registered clients submitting random bytes as proofs.
    InvalidProofs,
    /// Registered clients heartbeating jobs they do not hold.
    Heartbeats,
    /// Connections that send half a request header and stall.
    SlowConnections,
    /// Transactions from fresh keys to the chain, half of them large.
    JunkChain,
}

/// Arguments of `bench abuse`.
#[derive(Args, Debug)]
pub struct AbuseArgs {
    /// Jobs the honest prover proves per run.
    #[arg(long, default_value_t = 16)]
    pub jobs: u64,
    /// Registered flooding clients (invalid proofs, heartbeats).
    #[arg(long, default_value_t = 50)]
    pub clients: usize,
    /// Slow connections held open at once.
    #[arg(long, default_value_t = 2000)]
    pub slow_connections: usize,
    /// The coordinator's `--max-connections-per-address` (0: no share, its default). The
    /// honest prover connects from 127.0.0.1 and the slow connections from
    /// `--flood-address`, so the share is what a server facing its clients directly meets.
    #[arg(long, default_value_t = 0)]
    pub max_connections_per_address: usize,
    /// The loopback address the slow connections come from (127.0.0.0/8 is all loopback).
    #[arg(long, default_value = "127.0.0.2")]
    pub flood_address: std::net::Ipv4Addr,
    /// Tasks sending junk chain transactions at once.
    #[arg(long, default_value_t = 64)]
    pub junk_senders: usize,
    /// Honest chain transfers timed per chain run.
    #[arg(long, default_value_t = 20)]
    pub transfers: usize,
    /// Proving threads of the honest prover.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// The floods to run, comma-separated (default: all); a run alone always comes first.
    #[arg(long, value_delimiter = ',')]
    pub floods: Vec<Flood>,
    /// Work in this directory and keep it (default: a temporary one, removed).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the floods off the servers' CPU: the servers and the honest party run on CPU 0,
    /// this process (the floods) on the others (with `taskset`), so the figures show what the
    /// servers' handling of a flood costs honest users rather than how the floods' own signing
    /// and connecting crowd a shared machine.
    #[arg(long)]
    pub pin: bool,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub circuits: CircuitArgs,
}

/// One run's figures.
#[derive(Debug, Serialize)]
pub struct AbuseRun {
    /// Which server: `coordinator` or `chain`.
    pub server: &'static str,
    /// The flood, none for the run alone.
    pub flood: Option<Flood>,
    /// The honest party's time outside proving per job (coordinator runs) or per transfer,
    /// send to receipt (chain runs), in ms.
    pub honest_ms: Quantiles,
    /// `honest_ms.p50` over the same server's run alone.
    pub p50_ratio: f64,
    /// `honest_ms.p99` over the same server's run alone.
    pub p99_ratio: f64,
    /// Peak resident memory of the server, MiB.
    pub server_peak_mib: f64,
    /// Hostile requests sent.
    pub hostile_requests: u64,
    /// Hostile requests the server answered with a refusal (or closed).
    pub hostile_refused: u64,
}

/// Run `bench abuse`.
pub fn run(args: AbuseArgs) -> anyhow::Result<()> {
    let temp;
    let dir = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            dir.clone()
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_owned()
        }
    };
    let floods = if args.floods.is_empty() {
        vec![
            Flood::InvalidProofs,
            Flood::Heartbeats,
            Flood::SlowConnections,
            Flood::JunkChain,
        ]
    } else {
        args.floods.clone()
    };
    let runtime = tokio::runtime::Runtime::new()?;
    if args.pin {
        // After the runtime's threads exist: `taskset -a` moves them all.
        pin_self()?;
    }
    let mut runs = Vec::new();
    let coordinator_floods: Vec<Option<Flood>> = std::iter::once(None)
        .chain(
            floods
                .iter()
                .copied()
                .filter(|f| *f != Flood::JunkChain)
                .map(Some),
        )
        .collect();
    let keys = Keys::write(&dir, args.clients)?;
    for (i, flood) in coordinator_floods.into_iter().enumerate() {
        eprintln!("coordinator run {}: {}", i + 1, flood_name(flood));
        runs.push(coordinator_run(&args, &dir, &keys, i, flood, &runtime)?);
    }
    if floods.contains(&Flood::JunkChain) {
        for (i, flood) in [None, Some(Flood::JunkChain)].into_iter().enumerate() {
            eprintln!("chain run {}: {}", i + 1, flood_name(flood));
            runs.push(chain_run(&args, &dir, i, flood, &runtime)?);
        }
    }
    for server in ["coordinator", "chain"] {
        let alone = runs
            .iter()
            .find(|r| r.server == server && r.flood.is_none())
            .map(|r| r.honest_ms);
        for run in runs.iter_mut().filter(|r| r.server == server) {
            if let Some(alone) = alone {
                run.p50_ratio = run.honest_ms.p50 as f64 / alone.p50.max(1) as f64;
                run.p99_ratio = run.honest_ms.p99 as f64 / alone.p99.max(1) as f64;
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string(&runs)?);
    } else {
        print_table(&runs)?;
    }
    Ok(())
}

fn flood_name(flood: Option<Flood>) -> &'static str {
    match flood {
        None => "alone",
        Some(Flood::InvalidProofs) => "invalid proofs",
        Some(Flood::Heartbeats) => "heartbeats",
        Some(Flood::SlowConnections) => "slow connections",
        Some(Flood::JunkChain) => "junk chain transactions",
    }
}

fn print_table(runs: &[AbuseRun]) -> std::io::Result<()> {
    let rows: Vec<[String; 6]> = runs
        .iter()
        .map(|run| {
            [
                run.server.to_owned(),
                flood_name(run.flood).to_owned(),
                format!("{}/{}", run.honest_ms.p50, run.honest_ms.p99),
                format!("{:.2}/{:.2}", run.p50_ratio, run.p99_ratio),
                format!("{:.0}", run.server_peak_mib),
                format!("{}/{}", run.hostile_requests, run.hostile_refused),
            ]
        })
        .collect();
    write_table(
        &mut std::io::stdout().lock(),
        [
            "server",
            "flood",
            "honest p50/p99 ms",
            "x alone p50/p99",
            "peak MiB",
            "hostile sent/refused",
        ],
        [
            Align::Left,
            Align::Left,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
        ],
        &rows,
    )
}

/// The honest prover's key and the flooders', with the provers file admitting them all.
struct Keys {
    honest: PathBuf,
    flooders: Vec<ProverKey>,
    provers_file: PathBuf,
}

impl Keys {
    fn write(dir: &Path, clients: usize) -> anyhow::Result<Keys> {
        let honest_key = ProverKey::generate();
        let honest = dir.join("honest.key");
        honest_key.write(&honest, true)?;
        let flooders: Vec<ProverKey> = (0..clients).map(|_| ProverKey::generate()).collect();
        let mut file = honest_key.registry_entry("honest");
        for (i, key) in flooders.iter().enumerate() {
            file.push_str(&key.registry_entry(&format!("flooder-{i}")));
        }
        let provers_file = dir.join("provers.toml");
        std::fs::write(&provers_file, file)?;
        Ok(Keys {
            honest,
            flooders,
            provers_file,
        })
    }
}

/// A child process, SIGKILLed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn peak_mib(&self) -> f64 {
        peak_rss_of(&self.child.id().to_string()).map_or(0.0, mib)
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Pin this process (every thread it has and will have) to the CPUs after the first, for
/// `--pin`.
fn pin_self() -> anyhow::Result<()> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        bail!("--pin needs at least 2 CPUs, this machine has {cpus}");
    }
    taskset(&[
        "-a",
        "-p",
        "-c",
        &format!("1-{}", cpus - 1),
        &std::process::id().to_string(),
    ])
}

/// Run `taskset` (util-linux) with `args`, for `--pin`.
fn taskset(args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("taskset")
        .args(args)
        .stdout(Stdio::null())
        .status()
        .context("running taskset (util-linux) for --pin")?;
    if !status.success() {
        bail!("taskset failed ({status})");
    }
    Ok(())
}

/// A command running this binary: on CPU 0 with `--pin`.
fn sheaf_command(pin: bool) -> anyhow::Result<Command> {
    let exe = std::env::current_exe()?;
    Ok(if pin {
        let mut command = Command::new("taskset");
        command.args(["-c", "0"]).arg(exe);
        command
    } else {
        Command::new(exe)
    })
}

fn spawn(args: &[String], log: &Path, pin: bool) -> anyhow::Result<Child> {
    let log = std::fs::File::create(log)?;
    sheaf_command(pin)?
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting a server")
}

/// Wait until `GET {url}{path}` answers 200, or the process exits.
async fn wait_ready(server: &mut Server, path: &str, log: &Path) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Some(status) = server.child.try_wait()? {
            bail!("the server exited ({status}); see {}", log.display());
        }
        let ready = client
            .get(format!("{}{path}", server.url))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return Ok(());
        }
        if started.elapsed() > START_TIMEOUT {
            bail!("the server did not come up; see {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Counts of a flood's requests.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    refused: AtomicU64,
}

impl Tally {
    fn count(&self, refused: bool) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        if refused {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn coordinator_run(
    args: &AbuseArgs,
    dir: &Path,
    keys: &Keys,
    index: usize,
    flood: Option<Flood>,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<AbuseRun> {
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let log = dir.join(format!("coordinator-{index}.log"));
    // Enough leaves that the honest prover always finds one, whatever the flooders hold.
    let leaves = (args.jobs as usize + args.clients * 4).next_power_of_two();
    let mut command = vec![
        "coordinator".to_owned(),
        "--db".to_owned(),
        format!("sqlite://{}", dir.join(format!("run-{index}.db")).display()),
        "--listen".to_owned(),
        format!("127.0.0.1:{port}"),
        "--provers-file".to_owned(),
        keys.provers_file.display().to_string(),
        "--sequences".to_owned(),
        "1".to_owned(),
        "--leaves".to_owned(),
        leaves.to_string(),
        "--max-connections-per-address".to_owned(),
        args.max_connections_per_address.to_string(),
    ];
    command.extend(circuit_flags(&args.circuits));
    let mut server = Server {
        child: spawn(&command, &log, args.pin)?,
        url: url.clone(),
    };
    runtime.block_on(wait_ready(&mut server, "/readyz", &log))?;
    let tally = Arc::new(Tally::default());
    let mut flooders = JoinSet::new();
    if let Some(flood) = flood {
        let _guard = runtime.enter();
        start_coordinator_flood(flood, args, &url, keys, &tally, &mut flooders)?;
    }
    let honest_ms = honest_prover(args, dir, index, &url, &keys.honest)?;
    runtime.block_on(async { flooders.shutdown().await });
    Ok(AbuseRun {
        server: "coordinator",
        flood,
        honest_ms,
        p50_ratio: 1.0,
        p99_ratio: 1.0,
        server_peak_mib: server.peak_mib(),
        hostile_requests: tally.sent.load(Ordering::Relaxed),
        hostile_refused: tally.refused.load(Ordering::Relaxed),
    })
}

fn circuit_flags(circuits: &CircuitArgs) -> Vec<String> {
    let mut flags = vec![
        "--profile".to_owned(),
        circuits.profile.to_string(),
        "--arity".to_owned(),
        circuits.arity.to_string(),
        "--leaf-rows-log2".to_owned(),
        circuits.leaf_rows_log2.to_string(),
        "--cache-dir".to_owned(),
        circuits.cache_dir.display().to_string(),
    ];
    if circuits.no_cache {
        flags.push("--no-cache".to_owned());
    }
    flags
}

/// Run the honest prover to `--jobs` accepted proofs and read its time outside proving per
/// job from its report.
fn honest_prover(
    args: &AbuseArgs,
    dir: &Path,
    index: usize,
    url: &str,
    key: &Path,
) -> anyhow::Result<Quantiles> {
    let log = dir.join(format!("prover-{index}.log"));
    let mut command = vec![
        "prover".to_owned(),
        "--coordinator".to_owned(),
        url.to_owned(),
        "--key".to_owned(),
        key.display().to_string(),
        "--threads".to_owned(),
        args.threads.to_string(),
        "--max-jobs".to_owned(),
        args.jobs.to_string(),
        "--json".to_owned(),
        // The prover learns the circuits' settings from the coordinator; only the cache is
        // its own.
        "--cache-dir".to_owned(),
        args.circuits.cache_dir.display().to_string(),
    ];
    if args.circuits.no_cache {
        command.push("--no-cache".to_owned());
    }
    let output = sheaf_command(args.pin)?
        .args(&command)
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .output()
        .context("running the honest prover")?;
    if !output.status.success() {
        bail!(
            "the honest prover failed ({}); see {}",
            output.status,
            log.display()
        );
    }
    let line = String::from_utf8_lossy(&output.stdout);
    let line = line.lines().last().unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| quantiles_of(&v))
        .with_context(|| format!("the honest prover's report: {line}"))
}

fn quantiles_of(report: &serde_json::Value) -> Option<Quantiles> {
    let q = report.get("outside_proving_ms")?;
    let field = |name: &str| q.get(name)?.as_u64();
    Some(Quantiles {
        samples: usize::try_from(field("samples")?).ok()?,
        p50: field("p50")?,
        p99: field("p99")?,
        max: field("max")?,
    })
}

fn start_coordinator_flood(
    flood: Flood,
    args: &AbuseArgs,
    url: &str,
    keys: &Keys,
    tally: &Arc<Tally>,
    tasks: &mut JoinSet<()>,
) -> anyhow::Result<()> {
    match flood {
        Flood::InvalidProofs | Flood::Heartbeats => {
            for key in &keys.flooders {
                let client = Client::new(url, key.clone())?;
                let tally = tally.clone();
                if flood == Flood::InvalidProofs {
                    tasks.spawn(invalid_proofs(client, tally));
                } else {
                    tasks.spawn(heartbeats(client, tally));
                }
            }
        }
        Flood::SlowConnections => {
            let address: std::net::SocketAddr = url
                .trim_start_matches("http://")
                .parse()
                .context("the coordinator's address")?;
            for _ in 0..args.slow_connections {
                tasks.spawn(slow_connection(args.flood_address, address, tally.clone()));
            }
        }
        Flood::JunkChain => unreachable!("the chain's flood runs against the chain"),
    }
    Ok(())
}

/// Lease what the coordinator gives, submit random bytes as its proof; again.
async fn invalid_proofs(client: Client, tally: Arc<Tally>) {
    let mut junk = vec![0u8; JUNK_PROOF_BYTES];
    loop {
        let leased = client.lease(0).await;
        tally.count(leased.is_err());
        match leased {
            Ok(Some(job)) => {
                rand::thread_rng().fill_bytes(&mut junk);
                let submitted = client.submit(job.job, job.token, 1, &junk).await;
                tally.count(submitted.is_err());
            }
            Ok(None) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => {
                // A refusal that says when to come back is obeyed, as a client would.
                let wait = if e.is_retryable() { 200 } else { 20 };
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
        }
    }
}

/// Heartbeat jobs not held, as fast as answered.
async fn heartbeats(client: Client, tally: Arc<Tally>) {
    loop {
        let job = JobId::new(SequenceId(0), 0, rand::thread_rng().gen_range(0..1024));
        let answered = client.heartbeat(job, 1).await;
        tally.count(answered.is_err());
    }
}

/// Hold a connection from `from` with half a request header; reopen it when the server closes
/// it.
async fn slow_connection(
    from: std::net::Ipv4Addr,
    address: std::net::SocketAddr,
    tally: Arc<Tally>,
) {
    let connect = || async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind((from, 0).into())?;
        socket.connect(address).await
    };
    loop {
        let Ok(mut stream) = connect().await else {
            tally.count(true);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let sent = stream
            .write_all(b"POST /v1/lease HTTP/1.1\r\nHost: sheaf\r\nX-Slow: ")
            .await;
        tally.count(sent.is_err());
        // Wait for the server to give up on us (a read of 0 bytes), then come back.
        let mut buf = [0u8; 256];
        let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await;
        tally.count(true);
        // A pause, so that the flood does not become a reconnect loop burning the cores.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn chain_run(
    args: &AbuseArgs,
    dir: &Path,
    index: usize,
    flood: Option<Flood>,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<AbuseRun> {
    let key_path = dir.join("final.key");
    if !key_path.exists() {
        let mut command = vec![
            "export-key".to_owned(),
            "--out".to_owned(),
            key_path.display().to_string(),
        ];
        command.extend(circuit_flags(&args.circuits));
        let status = sheaf_command(args.pin)?
            .args(&command)
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("export-key failed ({status})");
        }
    }
    let honest = SigningKey::generate(&mut rand::rngs::OsRng);
    // Half the flooders are funded accounts (their junk is admitted and fills blocks), half
    // fresh keys (refused at the door).
    let funded: Vec<SigningKey> = (0..args.junk_senders / 2)
        .map(|_| SigningKey::generate(&mut rand::rngs::OsRng))
        .collect();
    let allocations = std::iter::once(&honest)
        .chain(&funded)
        .map(|key| Allocation {
            address: Address(key.verifying_key().to_bytes()),
            balance: Amount::tokens(1_000),
        })
        .collect();
    let coordinator = SigningKey::generate(&mut rand::rngs::OsRng);
    let genesis = Genesis {
        allocations,
        coordinator: Address(coordinator.verifying_key().to_bytes()),
        ..Genesis::default()
    };
    let genesis_path = dir.join(format!("genesis-{index}.json"));
    std::fs::write(&genesis_path, serde_json::to_vec(&genesis)?)?;
    let port = free_port()?;
    let log = dir.join(format!("chain-{index}.log"));
    let command = vec![
        "chain".to_owned(),
        "--listen".to_owned(),
        format!("127.0.0.1:{port}"),
        "--data".to_owned(),
        dir.join(format!("chain-{index}")).display().to_string(),
        "--key".to_owned(),
        key_path.display().to_string(),
        "--genesis".to_owned(),
        genesis_path.display().to_string(),
        "--block-ms".to_owned(),
        "250".to_owned(),
    ];
    let mut server = Server {
        child: spawn(&command, &log, args.pin)?,
        url: format!("http://127.0.0.1:{port}"),
    };
    runtime.block_on(wait_ready(&mut server, "/healthz", &log))?;
    let tally = Arc::new(Tally::default());
    let mut flooders = runtime.block_on(async {
        let chain = ChainClient::new(server.url.clone())?;
        let chain_id = chain.chain_id().await?;
        let mut flooders = JoinSet::new();
        if flood.is_some() {
            for i in 0..args.junk_senders {
                let sender = funded.get(i / 2).filter(|_| i % 2 == 0).cloned();
                flooders.spawn(junk_chain(chain.clone(), chain_id, sender, tally.clone()));
            }
            // Let the flood fill what it can before the honest user comes.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        anyhow::Ok(flooders)
    })?;
    // The honest user on a thread and a runtime of its own (on CPU 0 with `--pin`), as on a
    // machine of its own: the flood's signing of its megabytes runs in this process, and must
    // not hold the honest user's turns on the flood's runtime.
    let (url, transfers, pin) = (server.url.clone(), args.transfers, args.pin);
    let samples = std::thread::spawn(move || honest_transfers(&url, &honest, transfers, pin))
        .join()
        .map_err(|_| anyhow::anyhow!("the honest chain user panicked"))?;
    runtime.block_on(flooders.shutdown());
    let samples = samples?;
    Ok(AbuseRun {
        server: "chain",
        flood,
        honest_ms: Quantiles::of(samples).context("no transfer timed")?,
        p50_ratio: 1.0,
        p99_ratio: 1.0,
        server_peak_mib: server.peak_mib(),
        hostile_requests: tally.sent.load(Ordering::Relaxed),
        hostile_refused: tally.refused.load(Ordering::Relaxed),
    })
}

/// `transfers` transfers from `honest`, one after another, each timed from its sending to its
/// receipt, on this thread (pinned to CPU 0 with `pin`).
fn honest_transfers(
    url: &str,
    honest: &SigningKey,
    transfers: usize,
    pin: bool,
) -> anyhow::Result<Vec<u64>> {
    if pin {
        pin_this_thread()?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let chain = ChainClient::new(url.to_owned())?;
        let to = Address(
            SigningKey::generate(&mut rand::rngs::OsRng)
                .verifying_key()
                .to_bytes(),
        );
        let mut samples = Vec::new();
        for _ in 0..transfers {
            let started = Instant::now();
            let call = Call::Transfer {
                to,
                amount: Amount(1),
            };
            let hash = chain.send(honest, call).await?;
            chain
                .wait_for_receipt(&hash, Duration::from_secs(120))
                .await?;
            samples.push(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
        }
        Ok(samples)
    })
}

/// Pin the calling thread to CPU 0 (the servers' and honest parties' CPU with `--pin`).
fn pin_this_thread() -> anyhow::Result<()> {
    // `/proc/thread-self` names `<pid>/task/<tid>`.
    let me = std::fs::read_link("/proc/thread-self").context("reading /proc/thread-self")?;
    let tid = me
        .file_name()
        .and_then(|t| t.to_str())
        .context("no thread id in /proc/thread-self")?
        .to_owned();
    taskset(&["-p", "-c", "0", &tid])
}

/// Send large reveals that fail when applied: from `funded`, an account of the genesis, at
/// its next nonces; without one, each from a fresh key (alternately a reveal and a transfer).
async fn junk_chain(
    chain: ChainClient,
    chain_id: u64,
    funded: Option<SigningKey>,
    tally: Arc<Tally>,
) {
    let mut proof = vec![0u8; JUNK_REVEAL_BYTES];
    let mut large = true;
    loop {
        rand::thread_rng().fill_bytes(&mut proof);
        let reveal = Call::SubmitProof {
            sequence: SequenceId(0),
            proof: proof.clone(),
        };
        let sent = match &funded {
            Some(key) => chain.send(key, reveal).await.map(drop),
            None => {
                let key = SigningKey::generate(&mut rand::rngs::OsRng);
                let call = if large {
                    reveal
                } else {
                    Call::Transfer {
                        to: Address(key.verifying_key().to_bytes()),
                        amount: Amount(1),
                    }
                };
                large = !large;
                let tx = SignedTx::sign(&key, chain_id, 0, call);
                chain.send_transaction(&tx).await.map(drop)
            }
        };
        tally.count(sent.is_err());
        if sent.is_err() && funded.is_some() {
            // A funded sender at its caps waits for the next block, as a client would.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
