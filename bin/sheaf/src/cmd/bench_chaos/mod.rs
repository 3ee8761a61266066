//! `sheaf bench chaos`: the network as separate processes of this binary — a `sheaf chain`, a
//! `sheaf coordinator` settling on it (on SQLite, or on a PostgreSQL server of the harness's
//! own), N `sheaf prover`s — under a seeded schedule of faults, then the invariants checked.
//!
//! ```text
//!   provers ──▶ proxy ──▶ coordinator ──▶ proxy ──▶ chain
//!      ▲          ▲          ▲   │ store                ▲
//!      └──────────┴──────────┴───┴─ harness: SIGKILL, crash at a failpoint, partition, restart
//! ```
//!
//! Faults: provers and the coordinator killed (SIGKILL) at random moments; the coordinator
//! and the provers started armed to abort at one failpoint (`failpoints.rs`) and restarted when
//! they do (each failpoint with work published for it, and tried again while it crashed fewer
//! times than asked); the chain killed and restarted on its state; the PostgreSQL server
//! restarted in immediate mode; partitions (`proxy.rs`) shorter and longer than the lease TTL between the
//! provers and the coordinator and between the coordinator and the chain. Every process that
//! ends is started again. Every choice comes from one RNG seeded by `--seed`, printed, so a run
//! replays its schedule (the moments the processes reach are the machine's).
//!
//! Once the schedule is done, the links heal, nothing is armed any more, and the network gets
//! time to prove and settle everything; then `checks.rs` reads the store, the chain and the
//! proofs, the table is printed, and the run fails unless every invariant holds.

mod checks;
pub mod failpoints;
mod postgres;
mod process;
mod proxy;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};
use serde::Serialize;
use sheaf_chain::membership::MembershipParams;
use sheaf_chain::node::{Allocation, Genesis};
use sheaf_chain::settlement::{Address, Amount, SettlementParams};
use sheaf_chain::{Call, ChainClient};
use sheaf_circuits::FinalKey;
use sheaf_prover::ProverKey;
use sheaf_store::{JobFilter, JobStatus, OutboxStatus, Store};

use sheaf_coordinator::job_tree::plan_sequence;

use self::checks::{Checks, Expected};
use self::postgres::PrivatePostgres;
use self::process::{Ended, Process};
use self::proxy::{FaultProxy, Mode};
use crate::circuit_args::CircuitArgs;

/// Jobs a run plans at least, unless told otherwise.
pub const DEFAULT_CHAOS_JOBS: usize = 200;
/// Work leaves per sequence.
pub const DEFAULT_CHAOS_LEAVES: usize = 8;
/// Prover processes.
pub const DEFAULT_CHAOS_PROVERS: usize = 4;
/// Prover SIGKILLs at random moments.
pub const DEFAULT_PROVER_KILLS: usize = 100;
/// Coordinator SIGKILLs at random moments.
pub const DEFAULT_COORDINATOR_KILLS: usize = 20;
/// Crashes at each failpoint (coordinator's and provers').
pub const DEFAULT_FAILPOINT_CRASHES: usize = 5;
/// Immediate restarts of the private PostgreSQL server (with `--store postgres`).
pub const DEFAULT_POSTGRES_RESTARTS: usize = 5;
/// Chain SIGKILLs.
pub const DEFAULT_CHAIN_KILLS: usize = 5;
/// Partitions of each link, of each length (shorter and longer than the lease TTL).
pub const DEFAULT_PARTITIONS: usize = 2;
/// Lease TTL of the coordinator: short, so partitions longer than it are short too.
pub const DEFAULT_CHAOS_LEASE_TTL_MS: u64 = 3_000;
/// Longest wait for an armed process to reach its failpoint before the schedule moves on
/// (the failpoint is tried again at the end of the schedule).
pub const DEFAULT_FAILPOINT_WAIT_MS: u64 = 30_000;
/// Longest wait, once the faults stop, for everything to be proved and settled.
pub const DEFAULT_SETTLE_TIMEOUT_S: u64 = 900;
/// Pause between two faults: drawn between these, in ms.
const GAP_MS: (u64, u64) = (200, 1_200);
/// Blocks of the chain: a quarter second, as the devnet's.
const BLOCK_MS: u64 = 250;
/// T1 of the chain, in blocks.
const HASH_WINDOW_BLOCKS: u64 = 4;
/// T2 of the chain, in blocks: long enough for a reveal across a short partition.
const PROOF_WINDOW_BLOCKS: u64 = 16;
/// Membership rate limit of each prover: the registry's maximum, so no prover is throttled.
const MEMBER_RATE: u32 = 600;
/// Genesis balance of every account: a membership deposit and the stake, many times over.
const BALANCE: Amount = Amount::tokens(1_000_000);
/// The coordinator's sender role lease: a killed one's successor takes over soon.
const SENDER_ROLE_TTL_MS: u64 = 2_000;
/// The coordinator's (and the harness's) longest wait for one chain RPC answer.
const CHAIN_TIMEOUT_MS: u64 = 2_000;
/// Receipts the chain keeps: all of a run's, so every outbox row can be checked.
const RECEIPTS_KEPT: usize = 1_000_000;
/// The sender's stake, in minimum stakes: a reveal missed under the faults costs a penalty
/// (a few per cent of the minimum), and a sender below the minimum commits no more.
const STAKE_MINIMUMS: u128 = 4;
/// Transactions the sender makes before the coordinator runs: its stake.
const SETUP_TRANSACTIONS: u64 = 1;
/// How often the harness looks at its processes and its schedule.
const TICK: Duration = Duration::from_millis(50);
/// How often a progress line is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// Longest wait for a setup step (the chain's RPC, a setup transaction).
const SETUP_TIMEOUT: Duration = Duration::from_secs(120);
/// Times a crash at a failpoint that was not reached is tried again (while the failpoint has
/// crashed fewer than `--failpoint-crashes` times).
const FAILPOINT_RETRIES: u32 = 4;
/// Sequences the coordinator plans at its start; the harness publishes the others one by one
/// as the schedule goes ([`Publisher`]), so there is work to lease, prove and settle while the
/// faults last, not only at their start.
const INITIAL_SEQUENCES: u64 = 2;

/// The store the coordinator runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// A SQLite file in the work directory.
    Sqlite,
    /// A PostgreSQL server the harness initializes and starts itself on a free port.
    Postgres,
}

/// Arguments of `bench chaos`.
#[derive(Args, Debug)]
pub struct ChaosArgs {
    /// Seed of every random choice (printed; the same seed replays the schedule). Default: a
    /// random one.
    #[arg(long, env = "SHEAF_CHAOS_SEED")]
    pub seed: Option<u64>,
    /// The coordinator's store.
    #[arg(long, value_enum, default_value_t = StoreKind::Sqlite)]
    pub store: StoreKind,
    /// Jobs to plan at least: sequences of `--leaves` leaves are planned until they reach it.
    #[arg(long, default_value_t = DEFAULT_CHAOS_JOBS)]
    pub jobs: usize,
    /// Work leaves per sequence.
    #[arg(long, default_value_t = DEFAULT_CHAOS_LEAVES)]
    pub leaves: usize,
    /// Prover processes.
    #[arg(long, default_value_t = DEFAULT_CHAOS_PROVERS)]
    pub provers: usize,
    /// Prover SIGKILLs at random moments.
    #[arg(long, default_value_t = DEFAULT_PROVER_KILLS)]
    pub prover_kills: usize,
    /// Coordinator SIGKILLs at random moments.
    #[arg(long, default_value_t = DEFAULT_COORDINATOR_KILLS)]
    pub coordinator_kills: usize,
    /// Crashes at each failpoint of the coordinator and of the prover loop (needs a `sheaf`
    /// built with `--features failpoints`; 0 runs without).
    #[arg(long, default_value_t = DEFAULT_FAILPOINT_CRASHES)]
    pub failpoint_crashes: usize,
    /// Immediate restarts of the private PostgreSQL server (`--store postgres` only).
    #[arg(long, default_value_t = DEFAULT_POSTGRES_RESTARTS)]
    pub postgres_restarts: usize,
    /// Chain SIGKILLs (restarted on the same state).
    #[arg(long, default_value_t = DEFAULT_CHAIN_KILLS)]
    pub chain_kills: usize,
    /// Partitions of each link (provers–coordinator, coordinator–chain) of each length: half
    /// the lease TTL and twice it.
    #[arg(long, default_value_t = DEFAULT_PARTITIONS)]
    pub partitions: usize,
    /// The coordinator's lease TTL in ms (heartbeats every quarter of it).
    #[arg(long, default_value_t = DEFAULT_CHAOS_LEASE_TTL_MS)]
    pub lease_ttl_ms: u64,
    /// The coordinator's attempt cap: distinct provers that may abandon a job before it is
    /// dead. Default: the number of provers (at least the coordinator's default, 3), so that
    /// a job dies only when every prover lost it; at 3 with 4 provers, seed 1 lost one root
    /// job to kills and a partition longer than the TTL within 20 s
    #[arg(long)]
    pub max_attempts: Option<i64>,
    /// Longest wait in ms for an armed process to reach its failpoint.
    #[arg(long, default_value_t = DEFAULT_FAILPOINT_WAIT_MS)]
    pub failpoint_wait_ms: u64,
    /// Longest wait in seconds, once the faults stop, for every sequence to settle.
    #[arg(long, default_value_t = DEFAULT_SETTLE_TIMEOUT_S)]
    pub settle_timeout_s: u64,
    /// Work directory (stores, keys, chain state, logs); kept. Default: a temporary one,
    /// removed at the end.
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub circuits: CircuitArgs,
}

/// One fault of the schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Fault {
    /// SIGKILL prover `i`.
    KillProver(usize),
    /// SIGKILL the coordinator.
    KillCoordinator,
    /// Restart the coordinator armed at a failpoint; wait until it crashes there.
    CrashCoordinator(&'static str),
    /// Restart prover `i` armed at a failpoint; wait until it crashes there.
    CrashProver(usize, &'static str),
    /// `pg_ctl restart -m immediate`.
    RestartPostgres,
    /// SIGKILL the chain.
    KillChain,
    /// Partition a link (blackholed or reset) for half the lease TTL or twice it.
    Partition {
        /// Which link.
        link: Link,
        /// Twice the lease TTL, rather than half.
        long: bool,
        /// Reset the link's connections rather than blackhole them.
        reset: bool,
    },
}

/// A proxied link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
enum Link {
    /// Every prover to the coordinator.
    ProversCoordinator,
    /// The coordinator to the chain.
    CoordinatorChain,
}

/// A fault and the pause after it.
#[derive(Clone, Copy, Debug)]
struct Planned {
    fault: Fault,
    gap: Duration,
    retries: u32,
}

/// The schedule a seed gives: every fault asked for, shuffled, with a pause after each.
fn schedule(args: &ChaosArgs, rng: &mut rand::rngs::StdRng) -> Vec<Planned> {
    let mut faults = Vec::new();
    for _ in 0..args.prover_kills {
        faults.push(Fault::KillProver(rng.gen_range(0..args.provers)));
    }
    faults.extend(std::iter::repeat_n(
        Fault::KillCoordinator,
        args.coordinator_kills,
    ));
    for _ in 0..args.failpoint_crashes {
        for name in failpoints::COORDINATOR {
            faults.push(Fault::CrashCoordinator(name));
        }
        for name in failpoints::PROVER {
            faults.push(Fault::CrashProver(rng.gen_range(0..args.provers), name));
        }
    }
    if args.store == StoreKind::Postgres {
        faults.extend(std::iter::repeat_n(
            Fault::RestartPostgres,
            args.postgres_restarts,
        ));
    }
    faults.extend(std::iter::repeat_n(Fault::KillChain, args.chain_kills));
    for link in [Link::ProversCoordinator, Link::CoordinatorChain] {
        for long in [false, true] {
            for _ in 0..args.partitions {
                faults.push(Fault::Partition {
                    link,
                    long,
                    reset: rng.gen_bool(0.5),
                });
            }
        }
    }
    faults.shuffle(rng);
    faults
        .into_iter()
        .map(|fault| Planned {
            fault,
            gap: Duration::from_millis(rng.gen_range(GAP_MS.0..=GAP_MS.1)),
            retries: 0,
        })
        .collect()
}

/// Jobs of one sequence of `leaves` leaves aggregated `arity` at a time.
fn jobs_per_sequence(leaves: usize, arity: usize) -> usize {
    let (mut level, mut jobs) = (leaves, leaves);
    while level > 1 {
        level = level.div_ceil(arity.max(2));
        jobs += level;
    }
    jobs
}

/// Crashes at one failpoint.
#[derive(Debug, Default, Serialize)]
pub struct FailpointCrashes {
    /// Its name.
    pub failpoint: String,
    /// Processes started armed at it.
    pub armed: u64,
    /// Processes that crashed there.
    pub crashed: u64,
}

/// The faults a run injected.
#[derive(Debug, Default, Serialize)]
pub struct Injected {
    /// Provers killed.
    pub prover_kills: u64,
    /// Coordinators killed at random moments.
    pub coordinator_kills: u64,
    /// Chains killed.
    pub chain_kills: u64,
    /// PostgreSQL restarts in immediate mode.
    pub postgres_restarts: u64,
    /// Partitions per link and length (`short`: half the lease TTL, `long`: twice it).
    pub partitions: BTreeMap<String, u64>,
    /// Crashes per failpoint.
    pub failpoints: Vec<FailpointCrashes>,
    /// Processes that ended on their own (not killed, not at a failpoint), per process: a
    /// peer down when they started, mostly.
    pub exits: BTreeMap<String, u64>,
}

/// What `bench chaos` reports.
#[derive(Debug, Serialize)]
pub struct ChaosReport {
    /// The seed: `--seed` replays the schedule.
    pub seed: u64,
    /// The coordinator's store.
    pub store: StoreKind,
    /// Prover processes.
    pub provers: usize,
    /// Sequences planned.
    pub sequences: u64,
    /// Of them, published beyond those `--jobs` asks for, for an armed failpoint that had no
    /// work to reach it with.
    pub extra_sequences: u64,
    /// Leaves per sequence.
    pub leaves: usize,
    /// Faults in the schedule.
    pub scheduled: usize,
    /// What was injected.
    pub injected: Injected,
    /// Seconds under faults.
    pub fault_seconds: f64,
    /// Seconds from the end of the faults until everything settled (or the timeout).
    pub settle_seconds: f64,
    /// The sender's stake at the start, in minimum stakes.
    pub stake_minimums: u128,
    /// The sender's stake at the end, net of penalties for reveals the faults made it miss
    /// (none if the chain did not answer).
    pub stake_left: Option<Amount>,
    /// The invariants.
    pub checks: Checks,
    /// The invariants that failed (empty: the run passed).
    pub failures: Vec<String>,
    /// The work directory, when kept.
    pub work_dir: Option<PathBuf>,
}

/// Run `bench chaos`.
pub fn run(args: ChaosArgs) -> anyhow::Result<()> {
    if args.provers == 0 || args.leaves == 0 || args.jobs == 0 {
        bail!("--provers, --leaves and --jobs must each be at least 1");
    }
    if args.lease_ttl_ms < 4 || args.max_attempts.is_some_and(|cap| cap < 1) {
        bail!("--lease-ttl-ms must be at least 4 and --max-attempts at least 1");
    }
    if args.failpoint_crashes > 0 && !failpoints::compiled_in() {
        bail!(
            "--failpoint-crashes {} needs failpoints: build sheaf with `--features failpoints` (its tests do), or pass --failpoint-crashes 0",
            args.failpoint_crashes
        );
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    eprintln!("chaos: seed {seed} (--seed {seed} replays this schedule)");
    let temp;
    let dir = match &args.work_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir.clone()
        }
        None => {
            temp = tempfile::Builder::new().prefix("sheaf-chaos-").tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let outcome = runtime.block_on(async {
        tokio::select! {
            biased;
            () = sheaf_coordinator::shutdown_signal() => Err(anyhow::anyhow!("interrupted")),
            report = chaos(&args, seed, &dir) => report,
        }
    });
    runtime.shutdown_background();
    let mut report = outcome?;
    report.work_dir = args.work_dir.clone();
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    if !report.failures.is_empty() {
        bail!("chaos (seed {seed}): {}", report.failures.join("; "));
    }
    Ok(())
}

/// The network under test.
struct Network {
    chain: Process,
    coordinator: Process,
    provers: Vec<Process>,
    postgres: Option<PrivatePostgres>,
    prover_link: FaultProxy,
    chain_link: FaultProxy,
}

impl Network {
    fn processes(&mut self) -> impl Iterator<Item = &mut Process> {
        std::iter::once(&mut self.chain)
            .chain(std::iter::once(&mut self.coordinator))
            .chain(self.provers.iter_mut())
    }

    fn link(&self, link: Link) -> &FaultProxy {
        match link {
            Link::ProversCoordinator => &self.prover_link,
            Link::CoordinatorChain => &self.chain_link,
        }
    }

    /// Restart every process that ended, counting how it ended.
    fn supervise(&mut self, injected: &mut Injected) -> anyhow::Result<()> {
        for process in self.processes() {
            if let Some((ended, status)) = process.ended() {
                match ended {
                    Ended::AtFailpoint(name) => {
                        if let Some(c) =
                            injected.failpoints.iter_mut().find(|c| c.failpoint == name)
                        {
                            c.crashed += 1;
                        }
                    }
                    Ended::Exited => {
                        *injected.exits.entry(process.name.clone()).or_default() += 1;
                        tracing::debug!(target: "sheaf::chaos", process = %process.name, %status, "exited: {}", process.log_tail(3));
                    }
                }
            }
            if !process.running() && process.may_restart() {
                process.start(process.armed())?;
            }
        }
        Ok(())
    }
}

async fn chaos(args: &ChaosArgs, seed: u64, dir: &Path) -> anyhow::Result<ChaosReport> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let exe = std::env::current_exe().context("locating this sheaf binary")?;
    let circuit_env = circuit_env(&args.circuits);
    let per_sequence = jobs_per_sequence(args.leaves, args.circuits.arity);
    let sequences = args.jobs.div_ceil(per_sequence) as u64;
    let plan = schedule(args, &mut rng);
    eprintln!(
        "chaos: {sequences} sequences of {} leaves ({} jobs), {} provers, {} faults scheduled, store {:?}, work directory {}",
        args.leaves,
        sequences as usize * per_sequence,
        args.provers,
        plan.len(),
        args.store,
        dir.display()
    );

    // The final key, the keys, the genesis.
    let key_path = dir.join("final.key");
    let exported = std::process::Command::new(&exe)
        .arg("export-key")
        .arg("--out")
        .arg(&key_path)
        .envs(circuit_env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .output()
        .context("running sheaf export-key")?;
    if !exported.status.success() {
        bail!(
            "sheaf export-key: {}",
            String::from_utf8_lossy(&exported.stderr)
        );
    }
    let final_key = FinalKey::read(&key_path)?;
    let mut prover_keys = Vec::new();
    for i in 1..=args.provers {
        let key = ProverKey::generate();
        let path = dir.join(format!("prover-{i}.key"));
        key.write(&path, true)?;
        prover_keys.push((path, key));
    }
    let sender_key = ProverKey::generate();
    let sender_key_path = dir.join("coordinator.key");
    sender_key.write(&sender_key_path, true)?;
    let sender = Address(sender_key.signing.verifying_key().to_bytes());
    let genesis_path = dir.join("genesis.json");
    write_genesis(&genesis_path, sender, &prover_keys)?;

    // The store.
    let postgres = match args.store {
        StoreKind::Sqlite => None,
        StoreKind::Postgres => Some(PrivatePostgres::start(free_port()?)?),
    };
    let db = match &postgres {
        Some(server) => server.url(),
        None => format!("sqlite://{}", dir.join("store").join("sheaf.db").display()),
    };

    // The chain, its proxy, the memberships and the stake.
    let chain_address: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
    let mut chain = Process::new(
        "chain",
        &exe,
        os_args([
            "chain".into(),
            "--key".into(),
            key_path.clone().into(),
            "--genesis".into(),
            genesis_path.clone().into(),
            "--data".into(),
            dir.join("chain").into(),
            "--listen".into(),
            chain_address.to_string().into(),
            "--block-ms".into(),
            BLOCK_MS.to_string().into(),
            "--receipts-kept".into(),
            RECEIPTS_KEPT.to_string().into(),
        ]),
        circuit_env.clone(),
        dir,
    );
    chain.start(None)?;
    let client = ChainClient::with_timeout(
        format!("http://{chain_address}"),
        Duration::from_millis(CHAIN_TIMEOUT_MS),
    )?;
    admit(&client, &mut chain, &prover_keys, &sender_key).await?;
    let chain_link = FaultProxy::start(chain_address).await?;

    // The coordinator behind its proxy, the provers.
    let coordinator_address: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
    let prover_link = FaultProxy::start(coordinator_address).await?;
    let ttl = args.lease_ttl_ms;
    let coordinator = Process::new(
        "coordinator",
        &exe,
        os_args([
            "coordinator".into(),
            "--db".into(),
            db.clone().into(),
            "--listen".into(),
            coordinator_address.to_string().into(),
            "--chain".into(),
            chain_link.url().into(),
            "--sender-key".into(),
            sender_key_path.into(),
            "--sequences".into(),
            INITIAL_SEQUENCES.min(sequences).to_string().into(),
            "--leaves".into(),
            args.leaves.to_string().into(),
            "--lease-ttl-ms".into(),
            ttl.to_string().into(),
            "--heartbeat-ms".into(),
            (ttl / 4).to_string().into(),
            "--max-attempts".into(),
            attempt_cap(args).to_string().into(),
            "--sender-poll-ms".into(),
            "100".into(),
            "--chain-poll-ms".into(),
            "500".into(),
            "--sender-role-ttl-ms".into(),
            SENDER_ROLE_TTL_MS.to_string().into(),
            "--chain-timeout-ms".into(),
            CHAIN_TIMEOUT_MS.to_string().into(),
        ]),
        circuit_env.clone(),
        dir,
    );
    let provers = prover_keys
        .iter()
        .enumerate()
        .map(|(i, (path, _))| {
            Process::new(
                &format!("prover-{}", i + 1),
                &exe,
                os_args([
                    "prover".into(),
                    "--coordinator".into(),
                    prover_link.url().into(),
                    "--key".into(),
                    path.clone().into(),
                    "--threads".into(),
                    "1".into(),
                    "--lease-wait-ms".into(),
                    "1000".into(),
                ]),
                circuit_env.clone(),
                dir,
            )
        })
        .collect();
    let mut net = Network {
        chain,
        coordinator,
        provers,
        postgres,
        prover_link,
        chain_link,
    };
    let mut injected = Injected {
        failpoints: failpoints::COORDINATOR
            .iter()
            .chain(failpoints::PROVER.iter())
            .map(|name| FailpointCrashes {
                failpoint: (*name).to_owned(),
                ..FailpointCrashes::default()
            })
            .collect(),
        ..Injected::default()
    };
    net.supervise(&mut injected)?;

    // The faults.
    let faults_started = Instant::now();
    let scheduled = plan.len();
    let mut publisher = Publisher {
        db: db.clone(),
        store: None,
        leaves: args.leaves,
        arity: args.circuits.arity,
        wrap: args.circuits.settings().wraps_final(),
        first: INITIAL_SEQUENCES.min(sequences),
        next: INITIAL_SEQUENCES.min(sequences) + 1,
        last: sequences,
        extras: 0,
        max_extras: sequences,
    };
    run_schedule(args, &mut net, plan, &mut injected, &client, &mut publisher).await?;
    let (sequences, extra_sequences) = (publisher.last, publisher.extras);
    let fault_seconds = faults_started.elapsed().as_secs_f64();

    // Healed and disarmed: everything gets time to prove and settle.
    eprintln!(
        "chaos: faults stopped after {fault_seconds:.0} s; waiting for every sequence to settle"
    );
    for link in [Link::ProversCoordinator, Link::CoordinatorChain] {
        net.link(link).set(Mode::Pass);
    }
    for process in net.processes() {
        if process.armed().is_some() {
            process.kill();
            process.start(None)?;
        }
    }
    let settling = Instant::now();
    let deadline = settling + Duration::from_secs(args.settle_timeout_s);
    let mut last_progress = Instant::now();
    loop {
        net.supervise(&mut injected)?;
        publisher.publish_up_to(sequences).await;
        match settled(&client, &db, sequences).await {
            Settlement::Done => break,
            Settlement::Stuck(dead) => {
                eprintln!("chaos: {dead} jobs are dead and wait for an operator: nothing more will settle");
                break;
            }
            Settlement::Going => {}
        }
        if Instant::now() > deadline {
            eprintln!(
                "chaos: not settled after {} s; checking what there is",
                args.settle_timeout_s
            );
            break;
        }
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            eprintln!(
                "chaos: settling, {} of {sequences} sequences finalized",
                finalized(&client).await
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let settle_seconds = settling.elapsed().as_secs_f64();

    // The provers and the coordinator stop; the chain answers the checks.
    for prover in &mut net.provers {
        prover.kill();
    }
    net.coordinator.kill();
    if !net.chain.running() {
        net.chain.start(None)?;
    }
    wait_for_chain(&client, &mut net.chain).await?;
    let store = crate::cmd::coordinator::open_store(&db).await?;
    let checks = checks::check(
        &store,
        &client,
        &Expected {
            sequences,
            attempt_cap: attempt_cap(args),
            sender: &sender,
            setup_transactions: SETUP_TRANSACTIONS,
            key: &final_key,
        },
    )
    .await;
    // The stake the sender lost to penalties (missed reveals), as the next block would find it.
    let stake_left = client.account(&sender).await.map(|a| a.stake).ok();
    store.close().await;
    if let Some(store) = publisher.store.take() {
        store.close().await;
    }
    net.chain.kill();
    drop(net);
    let checks = checks?;
    let failures = checks.failures();
    Ok(ChaosReport {
        seed,
        store: args.store,
        provers: args.provers,
        sequences,
        extra_sequences,
        leaves: args.leaves,
        scheduled,
        injected,
        fault_seconds,
        settle_seconds,
        stake_minimums: STAKE_MINIMUMS,
        stake_left,
        checks,
        failures,
        work_dir: None,
    })
}

/// Play the schedule: each fault, then its pause; a crash at a failpoint waits until the armed
/// process gets there (or [`ChaosArgs::failpoint_wait_ms`] passes: then it is tried again at
/// the end). Processes that end are restarted all along; partitions heal when due.
async fn run_schedule(
    args: &ChaosArgs,
    net: &mut Network,
    plan: Vec<Planned>,
    injected: &mut Injected,
    client: &ChainClient,
    publisher: &mut Publisher,
) -> anyhow::Result<()> {
    let sequences = publisher.last;
    let mut queue: std::collections::VecDeque<Planned> = plan.into();
    let total = queue.len();
    let mut done = 0usize;
    let mut healing: BTreeMap<Link, Instant> = BTreeMap::new();
    let mut next_at = Instant::now();
    // The armed process (coordinator: None, prover i: Some(i)), its failpoint and deadline.
    let mut waiting: Option<(Option<usize>, &'static str, Instant, Planned)> = None;
    let mut last_progress = Instant::now();
    let ttl = Duration::from_millis(args.lease_ttl_ms);
    loop {
        net.supervise(injected)?;
        // Sequences published in step with the schedule, the last one when nine tenths of it
        // are done: the provers outrun the faults, and a failpoint in the lease or submit path
        // is reached only while there is work.
        let (first, total) = (publisher.first, total.max(1) as u64);
        let due = first + (sequences - first) * (10 * done as u64).min(9 * total) / (9 * total);
        publisher.publish_up_to(due).await;
        let now = Instant::now();
        healing.retain(|link, until| {
            let due = now >= *until;
            if due {
                net.link(*link).set(Mode::Pass);
            }
            !due
        });
        if let Some((who, name, until, planned)) = waiting {
            let process = match who {
                None => &net.coordinator,
                Some(i) => &net.provers[i],
            };
            if process.armed() != Some(name) {
                waiting = None;
            } else if now >= until {
                waiting = None;
                // Tried again later, with work published for it then if need be.
                if planned.retries < FAILPOINT_RETRIES
                    && crashes_at(injected, name) < args.failpoint_crashes as u64
                {
                    queue.push_back(Planned {
                        retries: planned.retries + 1,
                        ..planned
                    });
                }
            }
        }
        if waiting.is_none() && now >= next_at {
            let Some(planned) = queue.pop_front() else {
                if healing.is_empty() {
                    return Ok(());
                }
                tokio::time::sleep(TICK).await;
                continue;
            };
            done += 1;
            next_at = now + planned.gap;
            match planned.fault {
                Fault::KillProver(i) => {
                    if net.provers[i].kill() {
                        injected.prover_kills += 1;
                    }
                }
                Fault::KillCoordinator => {
                    if net.coordinator.kill() {
                        injected.coordinator_kills += 1;
                    }
                }
                Fault::KillChain => {
                    if net.chain.kill() {
                        injected.chain_kills += 1;
                    }
                }
                Fault::RestartPostgres => {
                    if let Some(server) = &net.postgres {
                        server.restart_immediate()?;
                        injected.postgres_restarts += 1;
                    }
                }
                Fault::CrashCoordinator(name) => {
                    arm(&mut net.coordinator, name, injected)?;
                    work_for_failpoint(name, publisher, client).await;
                    waiting = Some((None, name, now + wait(args), planned));
                }
                Fault::CrashProver(i, name) => {
                    arm(&mut net.provers[i], name, injected)?;
                    work_for_failpoint(name, publisher, client).await;
                    waiting = Some((Some(i), name, now + wait(args), planned));
                }
                Fault::Partition { link, long, reset } => {
                    let length = if long { ttl * 2 } else { ttl / 2 };
                    net.link(link)
                        .set(if reset { Mode::Reset } else { Mode::Blackhole });
                    let until = healing.entry(link).or_insert(now);
                    *until = (*until).max(now + length);
                    let key = format!(
                        "{}_{}",
                        match link {
                            Link::ProversCoordinator => "provers_coordinator",
                            Link::CoordinatorChain => "coordinator_chain",
                        },
                        if long { "long" } else { "short" }
                    );
                    *injected.partitions.entry(key).or_default() += 1;
                }
            }
        }
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            eprintln!(
                "chaos: fault {done} of {total}{}, {} of {} sequences finalized",
                match waiting {
                    Some((_, name, _, _)) => format!(" (waiting for a crash at {name})"),
                    None => String::new(),
                },
                finalized(client).await,
                publisher.last,
            );
        }
        tokio::time::sleep(TICK).await;
    }
}

/// The coordinator's attempt cap: `--max-attempts`, or the number of provers (at least the
/// coordinator's default).
fn attempt_cap(args: &ChaosArgs) -> i64 {
    args.max_attempts.unwrap_or_else(|| {
        (args.provers as i64).max(sheaf_coordinator::config::DEFAULT_MAX_ATTEMPTS)
    })
}

/// Crashes so far at failpoint `name`.
fn crashes_at(injected: &Injected, name: &str) -> u64 {
    injected
        .failpoints
        .iter()
        .find(|c| c.failpoint == name)
        .map_or(0, |c| c.crashed)
}

/// Make sure an armed failpoint has work to reach it with: a settlement step (the sender's
/// sends, the outbox) comes once per sequence, when its root is proved, so one more sequence
/// is published for it now; the store's and the prover's steps come with any job, so one is
/// published only when every sequence published so far is finalized. The sequence is the next
/// of the run's, or, once they are all published, an extra one (at most as many extras as the
/// run's sequences).
async fn work_for_failpoint(name: &str, publisher: &mut Publisher, client: &ChainClient) {
    let settlement = failpoints::SETTLEMENT.contains(&name);
    if settlement || finalized(client).await + 1 >= publisher.next {
        publisher.publish_one_more().await;
    }
}

fn wait(args: &ChaosArgs) -> Duration {
    Duration::from_millis(args.failpoint_wait_ms)
}

/// Start `process` armed at `name`, unless it still is (a retry of a crash whose process is
/// slow to get there: it keeps its time).
fn arm(process: &mut Process, name: &'static str, injected: &mut Injected) -> anyhow::Result<()> {
    if process.armed() != Some(name) {
        process.start(Some(name))?;
        count_armed(injected, name);
    }
    Ok(())
}

fn count_armed(injected: &mut Injected, name: &str) {
    if let Some(c) = injected.failpoints.iter_mut().find(|c| c.failpoint == name) {
        c.armed += 1;
    }
}

/// Publishes the run's sequences after the coordinator's first ones, as its `--sequences` would
/// have (the same plan: [`plan_sequence`] seeded by the id), through its store.
struct Publisher {
    db: String,
    /// Open while the store answers; dropped on an error (a restarting PostgreSQL server).
    store: Option<Store>,
    leaves: usize,
    arity: usize,
    wrap: bool,
    /// Sequences the coordinator planned itself (1..=first).
    first: u64,
    /// The next sequence to publish.
    next: u64,
    /// The run's last sequence (grows by the extras).
    last: u64,
    /// Sequences published beyond the run's, for failpoints ([`work_for_failpoint`]).
    extras: u64,
    /// Most extras.
    max_extras: u64,
}

impl Publisher {
    /// Publish the next sequence now: the run's next, or an extra one once they are all
    /// published (while extras are allowed).
    async fn publish_one_more(&mut self) {
        if self.next > self.last && self.extras < self.max_extras {
            self.last += 1;
            self.extras += 1;
        }
        self.publish_up_to(self.next).await;
    }

    /// Publish sequences up to `target` (at most the last), in order; what fails (the store is
    /// down) is tried again at the next call.
    async fn publish_up_to(&mut self, target: u64) {
        while self.next <= target.min(self.last) {
            if self.store.is_none() {
                match Store::connect(&self.db).await {
                    Ok(store) => self.store = Some(store),
                    Err(e) => {
                        tracing::debug!(target: "sheaf::chaos", "publishing: {e}");
                        return;
                    }
                }
            }
            let Some(store) = &self.store else { return };
            let id = sheaf_types::SequenceId(self.next);
            let plan = match plan_sequence(
                id,
                self.leaves,
                self.arity,
                sheaf_circuits::work::WORK_LEAF_KIND,
                id.get(),
                self.wrap,
                sheaf_types::clock::now_ms(),
            ) {
                Ok(plan) => plan,
                Err(e) => {
                    tracing::warn!(target: "sheaf::chaos", "planning sequence {id}: {e}");
                    return;
                }
            };
            match store.insert_sequence(plan.sequence, &plan.jobs).await {
                Ok(()) | Err(sheaf_store::StoreError::SequenceExists(_)) => self.next += 1,
                Err(e) => {
                    tracing::debug!(target: "sheaf::chaos", "publishing sequence {id}: {e}");
                    if let Some(store) = self.store.take() {
                        store.close().await;
                    }
                    return;
                }
            }
        }
    }
}

/// Sequences the chain finalized (0 while it does not answer).
async fn finalized(client: &ChainClient) -> u64 {
    client
        .settlement_status()
        .await
        .map_or(0, |s| s.next_to_finalize.get().saturating_sub(1))
}

/// Where settling stands once the faults stopped.
enum Settlement {
    /// Every sequence finalized on chain, nothing in flight in the outbox.
    Done,
    /// Jobs are dead: they wait for an operator, so their sequences never settle.
    Stuck(usize),
    /// Still proving or settling.
    Going,
}

async fn settled(client: &ChainClient, db: &str, sequences: u64) -> Settlement {
    let Ok(store) = Store::connect(db).await else {
        return Settlement::Going;
    };
    let dead = store
        .list_jobs(JobFilter {
            status: Some(JobStatus::Dead),
            ..JobFilter::default()
        })
        .await
        .map_or(0, |jobs| jobs.len());
    let rows = store.outbox_all().await;
    store.close().await;
    if dead > 0 {
        return Settlement::Stuck(dead);
    }
    let quiet = rows.is_ok_and(|rows| {
        rows.iter()
            .all(|r| matches!(r.status, OutboxStatus::Included | OutboxStatus::Failed))
    });
    if quiet && finalized(client).await >= sequences {
        Settlement::Done
    } else {
        Settlement::Going
    }
}

/// Register each prover as a member and stake the coordinator's minimum; wait for the blocks.
async fn admit(
    client: &ChainClient,
    chain: &mut Process,
    provers: &[(PathBuf, ProverKey)],
    sender: &ProverKey,
) -> anyhow::Result<()> {
    wait_for_chain(client, chain).await?;
    let mut pending = Vec::new();
    let chain_id = client.chain_id().await?;
    for (path, key) in provers {
        let prover = key.clone();
        let possession =
            tokio::task::spawn_blocking(move || prover.possession_proof(chain_id)).await??;
        let call = Call::Register {
            id_commitment: key.worker_pk(),
            rate_limit: MEMBER_RATE,
            erase_list: Vec::new(),
            possession,
        };
        pending.push((
            format!("registering {}", path.display()),
            client.send(&key.signing, call).await?,
        ));
    }
    let min_stake = client.settlement_status().await?.params.min_stake;
    let stake = Amount(min_stake.0.saturating_mul(STAKE_MINIMUMS));
    pending.push((
        "staking the coordinator".to_owned(),
        client
            .send(&sender.signing, Call::DepositStake { amount: stake })
            .await?,
    ));
    for (what, tx) in pending {
        let receipt = client
            .wait_for_receipt(&tx, SETUP_TIMEOUT)
            .await
            .with_context(|| what.clone())?;
        if let Some(error) = receipt.error {
            bail!("{what}: {error}");
        }
    }
    Ok(())
}

/// Wait until the chain answers, restarting it if it ends.
async fn wait_for_chain(client: &ChainClient, chain: &mut Process) -> anyhow::Result<()> {
    let start = Instant::now();
    while client.height().await.is_err() {
        if start.elapsed() > SETUP_TIMEOUT {
            bail!("the chain does not answer: {}", chain.log_tail(20));
        }
        if !chain.running() || chain.ended().is_some() {
            chain.start(None)?;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// A genesis funding the coordinator and every prover, with the harness's settlement windows.
fn write_genesis(
    path: &Path,
    coordinator: Address,
    provers: &[(PathBuf, ProverKey)],
) -> anyhow::Result<()> {
    let allocations = provers
        .iter()
        .map(|(_, key)| Address(key.signing.verifying_key().to_bytes()))
        .chain(std::iter::once(coordinator))
        .map(|address| Allocation {
            address,
            balance: BALANCE,
        })
        .collect();
    let genesis = Genesis {
        genesis_time_ms: u64::try_from(sheaf_types::clock::now_ms()).unwrap_or(0),
        block_ms: BLOCK_MS,
        coordinator,
        allocations,
        settlement: SettlementParams {
            hash_window_blocks: HASH_WINDOW_BLOCKS,
            proof_window_blocks: PROOF_WINDOW_BLOCKS,
            ..SettlementParams::default()
        },
        membership: MembershipParams::default(),
        ..Genesis::default()
    };
    std::fs::write(path, serde_json::to_vec_pretty(&genesis)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// The circuit flags, as the environment of every process the harness starts.
fn circuit_env(circuits: &CircuitArgs) -> Vec<(String, String)> {
    vec![
        ("SHEAF_PROFILE".into(), circuits.profile.to_string()),
        ("SHEAF_ARITY".into(), circuits.arity.to_string()),
        ("SHEAF_FINAL_ZK".into(), circuits.final_zk.to_string()),
        (
            "SHEAF_FINAL_COMPACT".into(),
            circuits.final_compact.to_string(),
        ),
        (
            "SHEAF_LEAF_ROWS_LOG2".into(),
            circuits.leaf_rows_log2.to_string(),
        ),
        (
            "SHEAF_CACHE_DIR".into(),
            circuits.cache_dir.display().to_string(),
        ),
        ("SHEAF_NO_CACHE".into(), circuits.no_cache.to_string()),
        ("SHEAF_ROLLUP".into(), "false".into()),
    ]
}

fn os_args<const N: usize>(args: [OsString; N]) -> Vec<OsString> {
    args.into()
}

/// A loopback port free at the time of asking.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn print_report(report: &ChaosReport) {
    let i = &report.injected;
    println!(
        "chaos run, seed {} (--seed {} replays it), store {:?}, {} provers, {} sequences ({} of them for failpoints) of {} leaves ({} jobs)",
        report.seed,
        report.seed,
        report.store,
        report.provers,
        report.sequences,
        report.extra_sequences,
        report.leaves,
        report.checks.jobs
    );
    println!(
        "faults: {} scheduled, {:.0} s; settled {:.0} s after",
        report.scheduled, report.fault_seconds, report.settle_seconds
    );
    println!("  prover SIGKILLs              {:>5}", i.prover_kills);
    println!("  coordinator SIGKILLs         {:>5}", i.coordinator_kills);
    println!("  chain SIGKILLs               {:>5}", i.chain_kills);
    println!("  PostgreSQL immediate restarts{:>5}", i.postgres_restarts);
    for (link, count) in &i.partitions {
        println!("  partition {link:<19}{count:>5}");
    }
    println!("  crashes at failpoints (armed / crashed):");
    for c in &i.failpoints {
        println!("    {:<34}{:>5} / {}", c.failpoint, c.armed, c.crashed);
    }
    for (process, count) in &i.exits {
        println!("  exits on its own: {process:<11}{count:>5}");
    }
    if let Some(left) = report.stake_left {
        println!(
            "  sender's stake: {} minimums at the start, {left} at the end (penalties for missed reveals)",
            report.stake_minimums
        );
    }
    let c = &report.checks;
    let row = |what: &str, value: String, ok: bool| {
        println!(
            "  {what:<24}{value:>10}  {}",
            if ok { "ok" } else { "FAIL" }
        );
    };
    println!("checks:");
    row("jobs lost", c.jobs_lost.to_string(), c.jobs_lost == 0);
    row(
        "rewards duplicated",
        c.rewards_duplicated.to_string(),
        c.rewards_duplicated == 0,
    );
    row(
        "attempts ≤ cap",
        format!(
            "{} ≤ {} (abandoning provers; most leases of a job: {})",
            c.max_abandoners, c.attempt_cap, c.max_attempts
        ),
        c.attempts_over_cap == 0,
    );
    row("dead jobs", c.dead_jobs.to_string(), c.dead_jobs == 0);
    row(
        "outbox ≡ chain",
        format!("{} of {}", c.outbox_mismatches, c.outbox_rows),
        c.outbox_mismatches == 0,
    );
    row(
        "roots verified",
        format!("{} / {}", c.roots_verified, c.sequences),
        c.roots_verified == c.sequences,
    );
    row(
        "sequences settled",
        format!("{} / {}", c.sequences_settled, c.sequences),
        c.sequences_settled == c.sequences,
    );
    for detail in c.details.iter().take(20) {
        println!("  - {detail}");
    }
    if c.details.len() > 20 {
        println!("  - … {} more", c.details.len() - 20);
    }
    if report.failures.is_empty() {
        println!("PASS");
    } else {
        println!("FAIL: {}", report.failures.join("; "));
    }
}
