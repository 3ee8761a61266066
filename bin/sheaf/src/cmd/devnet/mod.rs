//! `sheaf devnet`: a whole proving network on this machine, in one command.
//!
//! A base chain and a coordinator (on an embedded SQLite data directory) in this process, N
//! prover processes talking to the coordinator over loopback HTTP. The default workload is the
//! rollup (`rollup.rs`): funded accounts send transfers to the coordinator's rollup node, which
//! publishes a block every interval; the provers prove each block's tree and the coordinator
//! settles the blocks on the chain in order; the settled blocks are replayed natively and every
//! account checked. `--workload work` proves S synthetic sequences end to end and settles them. The provers are registered as members of the chain's registry and
//! admitted from it; the coordinator stakes, registers each sequence, and settles each root
//! proof with the two-step commit-reveal. Progress while it runs; a summary with the
//! coordinator's overhead on the critical path, each process's peak memory, the sequences
//! finalized on chain, rewards per sender and work per prover, and the membership table. Every
//! root proof is also verified with the exported final key.
//!
//! One file per stage: this one orchestrates; `provers.rs` starts and stops the prover
//! processes, `rollup.rs` drives the rollup workload, `progress.rs` watches a work run, `critical_path.rs` measures the coordinator's
//! overhead, `summary.rs` prints the result. The coordinator itself is assembled by
//! [`sheaf_coordinator::CoordinatorService`], as in `sheaf coordinator`.

mod claims;
mod critical_path;
mod progress;
mod provers;
mod rollup;
mod summary;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;
use sheaf_chain::Address;
use sheaf_circuits::FinalKey;
use sheaf_coordinator::{CoordinatorService, Registry, ServiceOptions};
use sheaf_prover::ProverKey;
use sheaf_store::{Job, JobFilter, JobStatus, Store};
use sheaf_types::SequenceId;

use self::claims::ClaimsReport;
use self::critical_path::{critical_path, CriticalPath};
use self::progress::{watch_progress, watch_settlement};
use self::provers::{spawn_prover, stop_provers};
pub use self::rollup::{DevnetRollupArgs, RollupReport, Workload};
use self::summary::print_summary;
use crate::cmd::coordinator::{load_circuits, CoordinatorSettings};
use crate::cmd::devnet_chain::{ChainReport, DevnetChain, DevnetChainArgs};
use crate::process_stats::peak_rss_of;

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

/// How a run shows its progress on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Display {
    /// Bars redrawn in place: stderr is a terminal.
    Bars,
    /// A plain line now and then: stderr is a file or a pipe.
    Plain,
    /// Nothing (`--json`).
    Quiet,
}

impl Display {
    fn of(args: &DevnetArgs) -> Self {
        use std::io::IsTerminal as _;
        if args.json {
            Display::Quiet
        } else if std::io::stderr().is_terminal() {
            Display::Bars
        } else {
            Display::Plain
        }
    }

    /// A stage of the setup, as a plain line.
    fn stage(self, what: &str) {
        if self == Display::Plain {
            eprintln!("devnet: {what}");
        }
    }
}

/// Arguments of `devnet`.
#[derive(Args, Debug)]
pub struct DevnetArgs {
    /// What the network proves: `rollup` (transfers on a rollup, in blocks published, proven
    /// and settled) or `work` (synthetic sequences of work leaves).
    #[arg(long, env = "SHEAF_WORKLOAD", value_enum, default_value_t = Workload::Rollup)]
    pub workload: Workload,
    /// How many prover processes to start (a count; `coordinator --provers-file` takes a file).
    #[arg(long, env = "SHEAF_DEVNET_PROVERS", default_value_t = DEFAULT_DEVNET_PROVERS)]
    pub provers: usize,
    #[command(flatten)]
    pub rollup: DevnetRollupArgs,
    /// Sequences to prove (work workload).
    #[arg(long, env = "SHEAF_SEQUENCES", default_value_t = DEFAULT_DEVNET_SEQUENCES)]
    pub sequences: usize,
    /// Work leaves per sequence (work workload).
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
    pub settings: CoordinatorSettings,
}

/// Peak memory of one process.
#[derive(Debug, Serialize)]
pub struct ProcessMemory {
    /// `coordinator` or the prover's name.
    pub process: String,
    /// Peak resident set size.
    pub peak_rss_bytes: Option<u64>,
}

/// What `devnet` reports.
#[derive(Debug, Serialize)]
pub struct DevnetSummary {
    /// What was proved.
    pub workload: Workload,
    /// Prover processes.
    pub provers: usize,
    /// Sequences planned (with the rollup workload, one per block).
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
    /// The rollup workload's blocks, transactions, latencies and balance check.
    pub rollup: Option<RollupReport>,
    /// Every claimant's claim run and what the chain owes and paid.
    pub claims: ClaimsReport,
}

/// Run `devnet`.
pub fn run(args: DevnetArgs) -> anyhow::Result<()> {
    if args.provers == 0 {
        bail!("--provers must be at least 1");
    }
    match args.workload {
        Workload::Work if args.sequences == 0 || args.leaves == 0 => {
            bail!("--sequences and --leaves must each be at least 1");
        }
        Workload::Work => {}
        Workload::Rollup => args.rollup.check()?,
    }
    let temp;
    let data_dir = match &args.data_dir {
        Some(dir) => {
            refuse_earlier_run(dir)?;
            dir.clone()
        }
        None => {
            temp = tempfile::Builder::new().prefix("sheaf-devnet-").tempdir()?;
            temp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let runtime = tokio::runtime::Runtime::new()?;
    // On ctrl-c or SIGTERM the run is dropped: its prover processes are killed and waited for
    // (ProverProcess::drop) before the temporary directory is removed, at the end of `run`.
    let outcome = runtime.block_on(async {
        tokio::select! {
            biased;
            () = sheaf_coordinator::shutdown_signal() => Err(anyhow::anyhow!(
                "interrupted; the provers are stopped{}",
                match &args.data_dir {
                    Some(dir) => format!(", the data directory {} is kept", dir.display()),
                    None => " and the temporary data directory removed".to_owned(),
                }
            )),
            summary = devnet(&args, &data_dir) => summary,
        }
    });
    // A circuit build cut short may still run on a blocking thread: do not wait for it.
    runtime.shutdown_background();
    let mut summary = outcome?;
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
    let problems = summary.claims.problems();
    if !problems.is_empty() {
        bail!("rewards: {}", problems.join("; "));
    }
    if let Some(rollup) = &summary.rollup {
        if !rollup.balances_match {
            bail!(
                "the replayed blocks differ from the workload: {}",
                rollup.mismatches.join("; ")
            );
        }
        if rollup.blocks_settled != rollup.blocks_published {
            bail!(
                "{} of {} blocks settled",
                rollup.blocks_settled,
                rollup.blocks_published
            );
        }
    }
    Ok(())
}

/// Files a devnet writes into its data directory; finding one means an earlier run.
const DEVNET_FILES: [&str; 4] = ["coordinator.key", "final.key", "store", "chain"];

/// Refuses a data directory that holds a devnet from an earlier run, before anything is
/// written: its keys are registered on its own chain, and are never overwritten.
fn refuse_earlier_run(dir: &Path) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut found: Vec<String> = entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| {
            DEVNET_FILES.contains(&name.as_str())
                || (name.starts_with("prover-") && name.ends_with(".key"))
        })
        .collect();
    if found.is_empty() {
        return Ok(());
    }
    found.sort();
    bail!(
        "{} holds a devnet from an earlier run ({}): choose another --data-dir or remove it",
        dir.display(),
        found.join(", ")
    )
}

async fn devnet(args: &DevnetArgs, data_dir: &Path) -> anyhow::Result<DevnetSummary> {
    let setup = Instant::now();
    let display = Display::of(args);
    display.stage(&format!("data directory {}", data_dir.display()));
    let store = Store::open_data_dir(data_dir.join("store"))
        .await?
        .with_proof_blobs(sheaf_store::ProofBlobs::open(
            &data_dir.join("store").join("proofs").display().to_string(),
        )?);

    // Keys: one per prover, and the coordinator's, which registers and settles sequences.
    let mut keys = Vec::new();
    for i in 1..=args.provers {
        let name = format!("prover-{i}");
        let key = ProverKey::generate();
        key.write(&data_dir.join(format!("{name}.key")), false)?;
        keys.push((name, key));
    }
    let sender_key = ProverKey::generate();
    sender_key.write(&data_dir.join("coordinator.key"), false)?;
    let sender = Address(sender_key.signing.verifying_key().to_bytes());

    // The rollup's circuit set admits its kernels; its final key is another key than the
    // work-only set's, and the chain verifies with it.
    let mut circuit_args = args.settings.circuits.clone();
    let workload = match args.workload {
        Workload::Rollup => {
            circuit_args.rollup = true;
            display.stage("making the rollup's accounts");
            Some(args.rollup.workload().await?)
        }
        Workload::Work => None,
    };
    display.stage("loading or building circuits");
    let circuits = load_circuits(&circuit_args, args.json).await?;
    display.stage("starting the chain and the coordinator");
    let key_path = data_dir.join("final.key");
    let final_key = circuits.aggregation.final_key();
    final_key.write(&key_path)?;

    // The chain, the provers' memberships and the coordinator's stake.
    let mut accounts: Vec<_> = keys
        .iter()
        .map(|(_, key)| Address(key.signing.verifying_key().to_bytes()))
        .collect();
    accounts.push(sender);
    // The local client, whose proofs of its own halves earn it rewards: it claims them with a
    // key of its own, and the chain takes transactions from funded accounts only.
    let client = (args.workload == Workload::Rollup && args.rollup.local_every > 0).then(|| {
        let mut client = ProverKey::generate();
        client.worker = sheaf_wallet::local::worker_secret(rollup::LOCAL_PROVER_SEED);
        client
    });
    if let Some(client) = &client {
        accounts.push(Address(client.signing.verifying_key().to_bytes()));
    }
    let chain = DevnetChain::start(
        &data_dir.join("chain"),
        &args.chain,
        final_key.clone(),
        sender,
        &accounts,
    )
    .await?;
    let key_files: Vec<_> = keys
        .iter()
        .map(|(name, _)| (name.clone(), data_dir.join(format!("{name}.key"))))
        .collect();
    chain.admit(&key_files, &sender_key.signing).await?;
    let registry: Arc<dyn Registry> = args.settings.settlement.registry(&chain.url).await?;

    let rollup = match &workload {
        Some(workload) => Some(
            args.rollup
                .options(workload.genesis().build()?, circuit_args.arity)?,
        ),
        None => None,
    };
    let mut service = CoordinatorService::start(ServiceOptions {
        store: store.clone(),
        circuits,
        leaf_rows_log2: args.settings.circuits.leaf_rows_log2,
        config: args.settings.service.config()?,
        registry: Some(registry),
        sequences: if workload.is_some() {
            0
        } else {
            args.sequences as u64
        },
        leaves: args.leaves,
        listen: ([127, 0, 0, 1], 0).into(),
        metrics_listen: None,
        settlement: Some(
            args.settings
                .settlement
                .settlement(&chain.url, sender_key.signing.clone())?,
        ),
        rollup,
    })
    .await?;
    let url = service.url();
    // Always printed (even with --json, on stderr): the page to watch the run in.
    eprintln!("devnet: console {}", service.console_url());

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
            &circuit_args,
            data_dir,
        )?);
    }
    let setup_seconds = setup.elapsed().as_secs_f64();
    let (sequences, rollup_report) = match workload {
        Some(mut workload) => {
            display.stage(&format!(
                "{} provers started; {} accounts send {} transactions a second until {} blocks are published",
                args.provers, args.rollup.accounts, args.rollup.tps, args.rollup.blocks
            ));
            let report = rollup::run(
                &url,
                &circuit_args,
                &store,
                &mut workload,
                &args.rollup,
                &mut provers,
                display,
            )
            .await?;
            (report.blocks_published, Some(report))
        }
        None => {
            display.stage(&format!(
                "{} provers started; proving {} sequences of {} leaves",
                args.provers, args.sequences, args.leaves
            ));
            let total_jobs = store.list_jobs(JobFilter::default()).await?.len();
            watch_progress(service.coordinator(), &mut provers, total_jobs, display).await?;
            (args.sequences as u64, None)
        }
    };
    watch_settlement(&chain, sequences, display).await?;
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

    // Every prover, and the local client, claims what it is owed, as on its own machine.
    display.stage("every prover claims its rewards (sheaf claim)");
    let mut claimants: Vec<claims::Claimant> = keys
        .iter()
        .map(|(name, key)| claims::Claimant {
            name: name.clone(),
            key: data_dir.join(format!("{name}.key")),
            worker_pk: key.worker_pk().to_bytes(),
            exit: Address(key.signing.verifying_key().to_bytes()),
        })
        .collect();
    if let Some(client) = client {
        let path = data_dir.join("client.key");
        client.write(&path, false)?;
        claimants.push(claims::Claimant {
            name: "client".into(),
            key: path,
            worker_pk: client.worker_pk().to_bytes(),
            exit: Address(client.signing.verifying_key().to_bytes()),
        });
    }
    let sequence_ids: Vec<SequenceId> =
        store.list_sequences().await?.iter().map(|s| s.id).collect();
    let claims_report = claims::claim_all(
        &chain.url,
        &url,
        &store,
        &sequence_ids,
        &claimants,
        &circuit_args.cache_dir,
        cores,
    )
    .await?;
    service.stop_settling().await;
    let chain_report = chain.report(&store, sequences, &sender, &keys).await?;
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
    service.stop().await?;

    let key = FinalKey::read(&key_path)?;
    let mut roots_verified = 0;
    let sequences_stored = store.list_sequences().await?;
    for sequence in &sequences_stored {
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
    let released: HashMap<SequenceId, i64> = sequences_stored
        .iter()
        .map(|s| (s.id, s.created_ms))
        .collect();
    let critical_path = critical_path(&jobs, &released);
    let coordinator_overhead_fraction = if critical_path.seconds > 0.0 {
        critical_path.overhead_seconds / critical_path.seconds
    } else {
        0.0
    };
    Ok(DevnetSummary {
        provers: args.provers,
        workload: args.workload,
        sequences: sequences_stored.len(),
        sequences_proved: sequences_stored
            .iter()
            .filter(|s| s.proved_ms.is_some())
            .count(),
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
        rollup: rollup_report,
        claims: claims_report,
    })
}
