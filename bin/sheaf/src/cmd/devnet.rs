//! `sheaf devnet`: a whole proving network on this machine, in one command.
//!
//! A base chain and a coordinator (on an embedded SQLite data directory) in this process, N
//! prover processes talking to the coordinator over loopback HTTP, S sequences proved end to end
//! and settled on the chain. The provers are registered as members of the chain's registry and
//! admitted from it; the coordinator stakes, registers each sequence, and settles each root
//! proof with the two-step commit-reveal. Progress while it runs; a summary with the
//! coordinator's overhead on the critical path, each process's peak memory, the sequences
//! finalized on chain, rewards per sender and work per prover, and the membership table. Every
//! root proof is also verified with the exported final key.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::Serialize;
use sheaf_circuits::FinalKey;
use sheaf_coordinator::{Coordinator, Registry};
use sheaf_prover::ProverKey;
use sheaf_store::{Job, JobFilter, JobId, JobStatus, Store};

use crate::circuit_args::CircuitArgs;
use crate::cmd::coordinator::{load_circuits, ServiceArgs, SettlementArgs};
use crate::cmd::devnet_chain::{ChainReport, DevnetChain, DevnetChainArgs};
use crate::process_stats::{mib, peak_rss_of};

/// Provers a devnet starts unless told otherwise: two share a 2-core machine.
pub const DEFAULT_DEVNET_PROVERS: usize = 2;
/// Sequences a devnet proves unless told otherwise.
pub const DEFAULT_DEVNET_SEQUENCES: usize = 2;
/// Work leaves per sequence unless told otherwise.
pub const DEFAULT_DEVNET_LEAVES: usize = 8;
/// How often progress is read from the store.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(300);
/// Longest wait for the chain to finalize every sequence once all are proved: many windows.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a prover gets to exit after SIGTERM before it is killed.
const PROVER_EXIT_GRACE: Duration = Duration::from_secs(10);

/// Arguments of `devnet`.
#[derive(Args, Debug)]
pub struct DevnetArgs {
    /// Prover processes to start.
    #[arg(long, env = "SHEAF_DEVNET_PROVERS", default_value_t = DEFAULT_DEVNET_PROVERS)]
    pub provers: usize,
    /// Sequences to prove.
    #[arg(long, env = "SHEAF_SEQUENCES", default_value_t = DEFAULT_DEVNET_SEQUENCES)]
    pub sequences: usize,
    /// Work leaves per sequence.
    #[arg(long, env = "SHEAF_LEAVES", default_value_t = DEFAULT_DEVNET_LEAVES)]
    pub leaves: usize,
    /// Proving threads per prover (0: the machine's cores shared evenly).
    #[arg(long, env = "SHEAF_THREADS", default_value_t = 0)]
    pub threads: usize,
    /// Data directory (store, keys, provers file, logs, final key); kept afterwards. Default: a
    /// temporary directory, removed at the end.
    #[arg(long, env = "SHEAF_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub chain: DevnetChainArgs,
    #[command(flatten)]
    pub service: ServiceArgs,
    #[command(flatten)]
    pub settlement: SettlementArgs,
    #[command(flatten)]
    pub circuits: CircuitArgs,
}

/// Peak memory of one process.
#[derive(Debug, Serialize)]
pub struct ProcessMemory {
    /// `coordinator` or the prover's name.
    pub process: String,
    /// Peak resident set size.
    pub peak_rss_bytes: Option<u64>,
}

/// The critical path: the chain of jobs (and of each prover's previous job) that ends at the
/// last proof; what on it was not proving is the coordinator's overhead.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct CriticalPath {
    /// Jobs on the path.
    pub jobs: usize,
    /// From the first lease on the path to the last proof stored.
    pub seconds: f64,
    /// Of which provers spent proving.
    pub proving_seconds: f64,
    /// The rest: leasing, transfers, verification, storing, waking up.
    pub overhead_seconds: f64,
}

/// What `devnet` reports.
#[derive(Debug, Serialize)]
pub struct DevnetSummary {
    /// Prover processes.
    pub provers: usize,
    /// Sequences planned.
    pub sequences: usize,
    /// Sequences whose root proof is stored.
    pub sequences_proved: usize,
    /// Root proofs verified with the exported final key.
    pub roots_verified: usize,
    /// Jobs proved.
    pub jobs: usize,
    /// Seconds to load circuits and start the coordinator.
    pub setup_seconds: f64,
    /// From the first lease to the last proof.
    pub wall_seconds: f64,
    /// Sum over jobs of the seconds provers spent proving them.
    pub proving_seconds: f64,
    /// The critical path.
    pub critical_path: CriticalPath,
    /// Wall time on the critical path not spent proving, as a fraction of it.
    pub coordinator_overhead_fraction: f64,
    /// Peak memory per process.
    pub peak_rss: Vec<ProcessMemory>,
    /// Sequences finalized on chain.
    pub sequences_finalized: usize,
    /// From the last root proof stored to the last sequence seen finalized on chain.
    pub settle_seconds: f64,
    /// What the chain says: finalized sequences, rewards, work per prover, members.
    pub chain: ChainReport,
    /// Id of the final key.
    pub final_key_id: String,
    /// The data directory (when kept).
    pub data_dir: Option<PathBuf>,
}

/// Run `devnet`.
pub fn run(args: DevnetArgs) -> anyhow::Result<()> {
    if args.provers == 0 || args.sequences == 0 || args.leaves == 0 {
        bail!("--provers, --sequences and --leaves must each be at least 1");
    }
    let temp;
    let data_dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::Builder::new().prefix("sheaf-devnet-").tempdir()?;
            temp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let runtime = tokio::runtime::Runtime::new()?;
    let mut summary = runtime.block_on(devnet(&args, &data_dir))?;
    summary.data_dir = args.data_dir.clone();
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print_summary(&summary);
    }
    if summary.roots_verified != summary.sequences {
        bail!(
            "{} of {} root proofs verified",
            summary.roots_verified,
            summary.sequences
        );
    }
    if summary.sequences_finalized != summary.sequences {
        bail!(
            "{} of {} sequences finalized on chain",
            summary.sequences_finalized,
            summary.sequences
        );
    }
    Ok(())
}

struct ProverProcess {
    name: String,
    /// Its id in the coordinator's store (its membership's).
    id: String,
    child: Child,
}

impl Drop for ProverProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn devnet(args: &DevnetArgs, data_dir: &Path) -> anyhow::Result<DevnetSummary> {
    let setup = Instant::now();
    let store = Store::open_data_dir(data_dir.join("store")).await?;

    // Keys: one per prover, and the coordinator's, which registers and settles sequences.
    let mut keys = Vec::new();
    for i in 1..=args.provers {
        let name = format!("prover-{i}");
        let key = ProverKey::generate();
        key.write(&data_dir.join(format!("{name}.key")), true)?;
        keys.push((name, key));
    }
    let sender_key = ProverKey::generate();
    sender_key.write(&data_dir.join("coordinator.key"), true)?;
    let sender = sender_key.signing.verifying_key().to_bytes();

    let circuits = load_circuits(&args.circuits, args.json).await?;
    let key_path = data_dir.join("final.key");
    let final_key = circuits.aggregation.final_key();
    final_key.write(&key_path)?;

    // The chain, the provers' memberships and the coordinator's stake.
    let mut accounts: Vec<_> = keys
        .iter()
        .map(|(_, key)| key.signing.verifying_key().to_bytes())
        .collect();
    accounts.push(sender);
    let chain = DevnetChain::start(
        &data_dir.join("chain"),
        &args.chain,
        final_key.clone(),
        sender,
        &accounts,
    )
    .await?;
    chain.admit(&keys, &sender_key.signing).await?;
    let registry: Arc<dyn Registry> = args.settlement.registry(&chain.url).await?;

    let coordinator = Arc::new(
        Coordinator::new(
            store.clone(),
            circuits.clone(),
            args.circuits.leaf_rows_log2,
            args.service.config()?,
            Some(registry),
        )
        .await?,
    );
    for id in 1..=args.sequences as i64 {
        coordinator.plan(id, args.leaves).await?;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sheaf_coordinator::serve(
        coordinator.clone(),
        listener,
        async {
            let _ = stop_rx.await;
        },
    ));
    let settling = args
        .settlement
        .sender(
            &coordinator,
            circuits,
            &chain.url,
            sender_key.signing.clone(),
        )
        .await?;

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = if args.threads > 0 {
        args.threads
    } else {
        (cores / args.provers).max(1)
    };
    let mut provers = Vec::new();
    for (name, key) in &keys {
        let id = store
            .prover_by_key(&key.signing.verifying_key().to_bytes())
            .await?
            .with_context(|| format!("{name} is not admitted from the chain's registry"))?
            .id;
        provers.push(spawn_prover(
            name,
            id,
            &data_dir.join(format!("{name}.key")),
            &url,
            threads,
            &args.circuits,
            data_dir,
        )?);
    }
    let setup_seconds = setup.elapsed().as_secs_f64();

    let total_jobs = store.list_jobs(JobFilter::default()).await?.len();
    watch_progress(&coordinator, &mut provers, total_jobs, args.json).await?;
    watch_settlement(&chain, args.sequences as u64, args.json).await?;
    // From the last root proof stored to the moment the chain was seen to finalize it (the
    // progress poll adds up to one interval).
    let finalized_ms = sheaf_types::clock::now_ms();
    let last_root_ms = store
        .list_sequences()
        .await?
        .iter()
        .filter_map(|s| s.proved_ms)
        .max()
        .unwrap_or(finalized_ms);
    let settle_seconds = (finalized_ms - last_root_ms).max(0) as f64 / 1000.0;
    drop(settling);
    let chain_report = chain
        .report(&store, args.sequences as u64, &sender, &keys)
        .await?;
    chain.stop().await;

    // Peak memory is read before the provers exit.
    let mut peak_rss = vec![ProcessMemory {
        process: "coordinator".into(),
        peak_rss_bytes: peak_rss_of("self"),
    }];
    for prover in &provers {
        peak_rss.push(ProcessMemory {
            process: prover.name.clone(),
            peak_rss_bytes: peak_rss_of(&prover.child.id().to_string()),
        });
    }
    stop_provers(&mut provers);
    let _ = stop_tx.send(());
    server.await??;

    let key = FinalKey::read(&key_path)?;
    let mut roots_verified = 0;
    let sequences = store.list_sequences().await?;
    for sequence in &sequences {
        let bytes = store
            .proof_of(sequence.root)
            .await?
            .with_context(|| format!("sequence {} has no root proof", sequence.id))?;
        key.verify_bytes(&bytes)
            .with_context(|| format!("root proof of sequence {}", sequence.id))?;
        roots_verified += 1;
    }

    let jobs = store.list_jobs(JobFilter::default()).await?;
    let proved: Vec<&Job> = jobs
        .iter()
        .filter(|j| j.status == JobStatus::Proved)
        .collect();
    let first_lease = proved.iter().filter_map(|j| j.leased_ms).min().unwrap_or(0);
    let last_proof = proved.iter().filter_map(|j| j.proved_ms).max().unwrap_or(0);
    let critical_path = critical_path(&jobs);
    let coordinator_overhead_fraction = if critical_path.seconds > 0.0 {
        critical_path.overhead_seconds / critical_path.seconds
    } else {
        0.0
    };
    Ok(DevnetSummary {
        provers: args.provers,
        sequences: sequences.len(),
        sequences_proved: sequences.iter().filter(|s| s.proved_ms.is_some()).count(),
        roots_verified,
        jobs: proved.len(),
        setup_seconds,
        wall_seconds: (last_proof - first_lease) as f64 / 1000.0,
        proving_seconds: proved.iter().filter_map(|j| j.prove_ms).sum::<i64>() as f64 / 1000.0,
        coordinator_overhead_fraction,
        critical_path,
        peak_rss,
        sequences_finalized: chain_report.finalized.len(),
        settle_seconds,
        chain: chain_report,
        final_key_id: final_key.id().to_string(),
        data_dir: None,
    })
}

fn spawn_prover(
    name: &str,
    id: String,
    key: &Path,
    url: &str,
    threads: usize,
    circuits: &CircuitArgs,
    data_dir: &Path,
) -> anyhow::Result<ProverProcess> {
    let log = std::fs::File::create(data_dir.join(format!("{name}.log")))?;
    let mut command = Command::new(std::env::current_exe()?);
    command
        .arg("prover")
        .arg("--coordinator")
        .arg(url)
        .arg("--key")
        .arg(key)
        .arg("--threads")
        .arg(threads.to_string())
        .arg("--cache-dir")
        .arg(&circuits.cache_dir)
        .arg("--json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    if circuits.no_cache {
        command.arg("--no-cache");
    }
    let child = command
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    Ok(ProverProcess {
        name: name.to_owned(),
        id,
        child,
    })
}

/// Bars per level and a line per prover until every sequence is proved; fails if a prover
/// process exits or a job dies.
async fn watch_progress(
    coordinator: &Coordinator,
    provers: &mut [ProverProcess],
    total_jobs: usize,
    quiet: bool,
) -> anyhow::Result<()> {
    let store = coordinator.store();
    let multi = MultiProgress::new();
    if quiet {
        multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template("{prefix:>12} {bar:30} {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let mut level_bars: HashMap<i32, ProgressBar> = HashMap::new();
    let prover_lines: Vec<ProgressBar> = provers
        .iter()
        .map(|p| {
            let line = multi.add(ProgressBar::new_spinner());
            line.set_prefix(p.name.clone());
            line
        })
        .collect();
    let started = Instant::now();
    loop {
        let jobs = store.list_jobs(JobFilter::default()).await?;
        let mut by_level: HashMap<i32, (u64, u64)> = HashMap::new();
        let mut by_prover: HashMap<&str, u64> = HashMap::new();
        for job in &jobs {
            let entry = by_level.entry(job.id.level).or_default();
            entry.1 += 1;
            if job.status == JobStatus::Proved {
                entry.0 += 1;
                if let Some(p) = job.proved_by.as_deref() {
                    *by_prover.entry(p).or_default() += 1;
                }
            }
            if job.status == JobStatus::Dead {
                bail!("job {} is dead after {} attempts", job.id, job.attempts);
            }
        }
        let mut levels: Vec<_> = by_level.into_iter().collect();
        levels.sort();
        for (level, (done, total)) in levels {
            let bar = level_bars.entry(level).or_insert_with(|| {
                let bar = multi.insert(level as usize, ProgressBar::new(total));
                bar.set_style(style.clone());
                bar.set_prefix(format!("level {level}"));
                bar
            });
            bar.set_length(total);
            bar.set_position(done);
        }
        for (line, prover) in prover_lines.iter().zip(provers.iter()) {
            let leased = jobs
                .iter()
                .filter(|j| {
                    j.status == JobStatus::Leased && j.lease_holder.as_deref() == Some(&prover.id)
                })
                .map(|j| j.id.to_string())
                .collect::<Vec<_>>();
            line.set_message(format!(
                "{} proofs accepted{}",
                by_prover.get(prover.id.as_str()).copied().unwrap_or(0),
                if leased.is_empty() {
                    String::new()
                } else {
                    format!(", proving {}", leased.join(", "))
                }
            ));
            line.tick();
        }
        let sequences = store.list_sequences().await?;
        if !sequences.is_empty() && sequences.iter().all(|s| s.proved_ms.is_some()) {
            break;
        }
        for prover in provers.iter_mut() {
            if let Some(status) = prover.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before the devnet finished; see its log in the data directory",
                    prover.name
                );
            }
        }
        let proved = jobs
            .iter()
            .filter(|j| j.status == JobStatus::Proved)
            .count();
        tracing::debug!(target: "sheaf::devnet", proved, total_jobs, elapsed = ?started.elapsed(), "progress");
        tokio::time::sleep(PROGRESS_INTERVAL).await;
    }
    for bar in level_bars.values() {
        bar.finish();
    }
    for line in &prover_lines {
        line.finish();
    }
    Ok(())
}

/// A bar of sequences finalized on chain until all are; fails after [`SETTLE_TIMEOUT`].
async fn watch_settlement(chain: &DevnetChain, sequences: u64, quiet: bool) -> anyhow::Result<()> {
    let bar = ProgressBar::new(sequences);
    if quiet {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{prefix:>12} {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix("on chain");
    bar.set_message("finalized (hash, then reveal)");
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let finalized = chain.finalized(sequences).await?;
        bar.set_position(finalized);
        if finalized >= sequences {
            bar.finish();
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "{finalized} of {sequences} sequences finalized on chain after {} s; see the \
                 coordinator's log (sheaf::sender)",
                SETTLE_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(PROGRESS_INTERVAL).await;
    }
}

/// SIGTERM every prover (they finish gracefully and print their report), then wait.
fn stop_provers(provers: &mut [ProverProcess]) {
    for prover in provers.iter() {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(prover.child.id().to_string())
            .status();
    }
    for prover in provers.iter_mut() {
        let deadline = Instant::now() + PROVER_EXIT_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = prover.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut report = String::new();
        if let Some(stdout) = prover.child.stdout.as_mut() {
            let _ = stdout.read_to_string(&mut report);
        }
        tracing::debug!(target: "sheaf::devnet", prover = %prover.name, report = %report.trim(), "prover stopped");
    }
}

/// The critical path through `jobs`: from the last proof stored, step back to whichever ended
/// last among the job's children and the previous job of the same prover (what the job
/// waited for), until nothing precedes. Gaps between a predecessor's proof and the next lease,
/// and a job's lease time not spent proving, are overhead.
pub fn critical_path(jobs: &[Job]) -> CriticalPath {
    let proved: HashMap<JobId, &Job> = jobs
        .iter()
        .filter(|j| j.status == JobStatus::Proved && j.proved_ms.is_some() && j.leased_ms.is_some())
        .map(|j| (j.id, j))
        .collect();
    let Some(mut current) = proved.values().max_by_key(|j| (j.proved_ms, j.id)).copied() else {
        return CriticalPath::default();
    };
    let end = current.proved_ms.unwrap_or(0);
    let mut path = CriticalPath::default();
    let mut proving_ms = 0i64;
    loop {
        path.jobs += 1;
        proving_ms += current.prove_ms.unwrap_or(0);
        let leased = current.leased_ms.unwrap_or(0);
        let children = current
            .children
            .iter()
            .filter_map(|c| proved.get(c))
            .copied();
        let previous_of_prover = proved
            .values()
            .filter(|j| j.proved_by == current.proved_by && j.id != current.id)
            .copied();
        let before = children
            .chain(previous_of_prover)
            .filter(|j| j.proved_ms.is_some_and(|p| p <= leased))
            .max_by_key(|j| (j.proved_ms, j.id));
        match before {
            Some(job) => current = job,
            None => {
                path.seconds = (end - leased) as f64 / 1000.0;
                break;
            }
        }
    }
    path.proving_seconds = proving_ms as f64 / 1000.0;
    path.overhead_seconds = (path.seconds - path.proving_seconds).max(0.0);
    path
}

/// Base units as tokens, to three decimals.
fn tokens(amount: sheaf_chain::settlement::Amount) -> String {
    let unit = sheaf_chain::settlement::UNIT;
    format!("{}.{:03}", amount / unit, amount % unit * 1000 / unit)
}

fn print_summary(s: &DevnetSummary) {
    println!(
        "devnet: {} of {} sequences proved by {} provers, {} jobs; {} root proofs verified with the final key {}",
        s.sequences_proved, s.sequences, s.provers, s.jobs, s.roots_verified, s.final_key_id
    );
    println!(
        "time: setup {:.1} s, proving wall {:.1} s, {:.1} s spent proving (all provers)",
        s.setup_seconds, s.wall_seconds, s.proving_seconds
    );
    println!(
        "critical path: {} jobs, {:.2} s, {:.2} s proving, {:.3} s overhead → coordinator overhead {:.2}%",
        s.critical_path.jobs,
        s.critical_path.seconds,
        s.critical_path.proving_seconds,
        s.critical_path.overhead_seconds,
        100.0 * s.coordinator_overhead_fraction
    );
    let memory: Vec<String> = s
        .peak_rss
        .iter()
        .map(|p| match p.peak_rss_bytes {
            Some(bytes) => format!("{} {:.0} MiB", p.process, mib(bytes)),
            None => format!("{} ?", p.process),
        })
        .collect();
    println!("peak RSS: {}", memory.join(", "));
    println!(
        "chain: {} of {} sequences finalized in {} blocks, settled {:.1} s after the last proof",
        s.sequences_finalized, s.sequences, s.chain.height, s.settle_seconds
    );
    for f in &s.chain.finalized {
        println!(
            "  sequence {} finalized in block {} by {}… ({} jobs, {} work units)",
            f.sequence,
            f.block,
            &f.sender[..16],
            f.jobs,
            f.work_units
        );
    }
    for a in &s.chain.senders {
        println!(
            "rewards: sender {}… earned {} tokens ({} transactions, stake {} tokens)",
            &a.sender[..16],
            tokens(a.rewards),
            a.transactions,
            tokens(a.stake)
        );
    }
    for p in &s.chain.provers {
        println!(
            "work: {} proved {} jobs, {} work units",
            p.prover, p.jobs, p.work_units
        );
    }
    println!("members:");
    for m in &s.chain.members {
        println!(
            "  {:<10} index {:>3}  rate {:>4}/epoch  {:?}  id {}…",
            m.prover,
            m.index,
            m.rate_limit,
            m.state,
            &m.id_commitment[..16]
        );
    }
    if let Some(dir) = &s.data_dir {
        println!("data directory: {}", dir.display());
    }
}
