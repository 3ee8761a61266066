//! `sheaf bench scale`: the scheduler at a thousand provers, by simulation.
//!
//! ```text
//!  plan one sequence of L leaves (the coordinator's planner, into the store)
//!      │
//!      ▼  P simulated provers, spread over R coordinator replicas (one store)
//!   ┌────────────────────────────────────────────────────────────────────────────────┐
//!   │ Coordinator::lease (the real long-poll: wake-ups, rechecks, admission, claim)  │
//!   │   → a timed wait for proving (leaf or node time, jittered)                     │
//!   │   → the submission's reads (the job, its children's proofs), a timed wait for  │
//!   │     verification holding one of the replica's verifier slots, store.submit_proof│
//!   │     and the wake-up of the waiting provers when a parent became ready          │
//!   └────────────────────────────────────────────────────────────────────────────────┘
//!      │ until the root is stored
//!      ▼
//!  latency against the critical-path bound, prover idle fraction, store cycles per second,
//!  the process's CPU
//! ```
//!
//! Proving and verification are timed waits here, in the benchmark only: the service has no
//! way to skip verification. The bench's submission mirrors `Coordinator::submit` step for step
//! (its reads, a verifier slot for the verification time, the store's transaction, the
//! wake-up), without the plonky2 work.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use rand::Rng;
use serde::Serialize;
use sheaf_coordinator::{Coordinator, CoordinatorConfig};
use sheaf_store::{Prover, RewardEntry, SequenceId};
use tokio::sync::Semaphore;

use crate::circuit_args::CircuitArgs;
use crate::cmd::coordinator::{load_circuits, open_store_with, ProofStoreArg};
use crate::process_stats::cpu_seconds;

/// A work leaf's proving time (2^8 rows, one thread of this machine), measured with
/// `sheaf prove-tree --leaves 8 --threads 1 --json` on 2026-12-02: level 0, 1.43 s for 8.
pub const DEFAULT_LEAF_MS: u64 = 180;
/// An aggregation node's proving time (2^13 rows, one thread), measured in the same run:
/// levels 1 to 3, 23.4 s for 7 nodes (3.3 to 3.5 s each).
pub const DEFAULT_NODE_MS: u64 = 3_350;
/// Verification of one proof on the coordinator, measured in the same run (the root's, 4.8 ms).
pub const DEFAULT_VERIFY_MS: u64 = 5;

/// Arguments of `bench scale`.
#[derive(Args, Debug)]
pub struct ScaleArgs {
    /// Simulated provers, each holding one lease at a time.
    #[arg(long, default_value_t = 1_000)]
    pub provers: usize,
    /// Work leaves of the one sequence proved.
    #[arg(long, default_value_t = 100_000)]
    pub leaves: usize,
    /// Coordinator replicas over the one store, the provers spread among them (more than one
    /// needs PostgreSQL).
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
    /// Store URL: `sqlite://PATH` or `postgres://…` (a fresh database: the bench plans
    /// sequence 1). Unset, a temporary SQLite file.
    #[arg(long, env = "SHEAF_DB")]
    pub db: Option<String>,
    #[command(flatten)]
    pub proof_store: ProofStoreArg,
    /// Mean proving time of a leaf, in ms (each draw is jittered ±20 %).
    #[arg(long, default_value_t = DEFAULT_LEAF_MS)]
    pub leaf_ms: u64,
    /// Mean proving time of an aggregation node, in ms.
    #[arg(long, default_value_t = DEFAULT_NODE_MS)]
    pub node_ms: u64,
    /// Verification time of one proof on the coordinator, in ms, within its verifier slots
    /// (`--verify-workers` of each replica).
    #[arg(long, default_value_t = DEFAULT_VERIFY_MS)]
    pub verify_ms: u64,
    /// Verifier slots per replica (the coordinator's `--verify-workers`).
    #[arg(long, default_value_t = sheaf_coordinator::config::DEFAULT_VERIFY_WORKERS)]
    pub verify_workers: usize,
    /// Size of each stored proof, in bytes.
    #[arg(long, default_value_t = 1_024)]
    pub blob_bytes: usize,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub circuits: CircuitArgs,
}

/// What `bench scale` reports.
#[derive(Debug, Serialize)]
struct ScaleReport {
    engine: &'static str,
    provers: usize,
    leaves: usize,
    replicas: usize,
    jobs: u64,
    depth: u32,
    planning_s: f64,
    latency_s: f64,
    bound_s: f64,
    latency_over_bound: f64,
    work_bound_s: f64,
    latency_over_work_bound: f64,
    prover_idle_fraction: f64,
    cycles_per_second: f64,
    lease_calls: u64,
    empty_long_polls: u64,
    process_cpu_cores: f64,
    process_cpu_cores_per_1000_provers: f64,
}

/// Counters the simulated provers share.
#[derive(Default)]
struct Tally {
    proved: AtomicU64,
    busy_ms: AtomicU64,
    lease_calls: AtomicU64,
    empty: AtomicU64,
}

/// Runs `bench scale`.
pub fn run(args: ScaleArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.provers > 0 && args.leaves > 0 && args.replicas > 0 && args.verify_workers > 0,
        "--provers, --leaves, --replicas and --verify-workers must be positive"
    );
    let (url, _scratch) = match &args.db {
        Some(url) => (url.clone(), None),
        None => {
            let dir = tempfile::tempdir().context("creating a temporary store directory")?;
            let url = format!("sqlite://{}", dir.path().join("scale.db").display());
            (url, Some(dir))
        }
    };
    let engine = if url.starts_with("sqlite:") {
        anyhow::ensure!(
            args.replicas == 1,
            "several replicas share a PostgreSQL store (--db postgres://…)"
        );
        "sqlite"
    } else {
        "postgres"
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(simulate(&args, &url, engine))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report, &args);
    }
    Ok(())
}

async fn simulate(
    args: &ScaleArgs,
    url: &str,
    engine: &'static str,
) -> anyhow::Result<ScaleReport> {
    let circuits = load_circuits(&args.circuits, args.json).await?;
    let config = CoordinatorConfig {
        verify_workers: args.verify_workers,
        ..CoordinatorConfig::default()
    };
    let mut replicas = Vec::with_capacity(args.replicas);
    for _ in 0..args.replicas {
        let store = open_store_with(url, &args.proof_store).await?;
        replicas.push(Arc::new(
            Coordinator::new(
                store,
                circuits.clone(),
                args.circuits.leaf_rows_log2,
                config.clone(),
                None,
            )
            .await?,
        ));
    }
    let provers: Vec<Prover> = (0..args.provers)
        .map(|i| {
            let mut public_key = [0u8; 32];
            public_key[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let mut worker_pk = public_key;
            worker_pk[31] = 1;
            Prover {
                id: format!("sim-{i}"),
                public_key,
                worker_pk,
                rate_limit: i64::MAX / 4,
                max_concurrent: 1,
            }
        })
        .collect();
    let first = &replicas[0];
    first.store().sync_provers(&provers).await?;
    let planning = Instant::now();
    first.plan(SequenceId(1), args.leaves).await?;
    let planning_s = planning.elapsed().as_secs_f64();
    let sequence = first
        .store()
        .get_sequence(SequenceId(1))
        .await?
        .context("the planned sequence")?;
    // The root is the top level; the job count is summed per (status, level), not read job by
    // job (200,000 rows at full size).
    let depth = sequence.root.level;
    let total: u64 = first
        .store()
        .counts_by_status()
        .await?
        .iter()
        .map(|c| c.count as u64)
        .sum();
    for replica in &replicas {
        replica.jobs_added();
        tokio::spawn(sheaf_coordinator::server::sweep_forever(replica.clone()));
    }

    let tally = Arc::new(Tally::default());
    let done = Arc::new(AtomicBool::new(false));
    let verifiers: Vec<Arc<Semaphore>> = (0..args.replicas)
        .map(|_| Arc::new(Semaphore::new(args.verify_workers)))
        .collect();
    let bar = crate::progress::counter_bar(total, "jobs proved", args.json);
    let cpu_before = cpu_seconds();
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(args.provers);
    for (i, prover) in provers.into_iter().enumerate() {
        let sim = SimProver {
            coordinator: replicas[i % args.replicas].clone(),
            verifier: verifiers[i % args.replicas].clone(),
            prover,
            index: i as u64,
            tally: tally.clone(),
            done: done.clone(),
            bar: bar.clone(),
            leaf: Duration::from_millis(args.leaf_ms),
            node: Duration::from_millis(args.node_ms),
            verify: Duration::from_millis(args.verify_ms),
            blob_bytes: args.blob_bytes.max(16),
            root: sequence.root,
        };
        tasks.push(tokio::spawn(sim.run()));
    }
    for task in tasks {
        task.await??;
    }
    let latency_s = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    bar.finish_and_clear();
    let per_prover = args.leaves.div_ceil(args.provers) as f64;
    let bound_s =
        (per_prover * args.leaf_ms as f64 + f64::from(depth) * args.node_ms as f64) / 1000.0;
    // The proving the provers must do between them, spread evenly: with nodes as slow as here
    // (a node ~18× a leaf, and about as many nodes as leaves), this exceeds the critical path.
    let nodes = total - args.leaves as u64;
    let work_bound_s = (args.leaves as f64 * args.leaf_ms as f64
        + nodes as f64 * args.node_ms as f64)
        / args.provers as f64
        / 1000.0;
    let busy_s = tally.busy_ms.load(Ordering::Relaxed) as f64 / 1000.0;
    let cores = cpu / latency_s;
    Ok(ScaleReport {
        engine,
        provers: args.provers,
        leaves: args.leaves,
        replicas: args.replicas,
        jobs: total,
        depth,
        planning_s,
        latency_s,
        bound_s,
        latency_over_bound: latency_s / bound_s,
        work_bound_s,
        latency_over_work_bound: latency_s / work_bound_s,
        prover_idle_fraction: 1.0 - busy_s / (args.provers as f64 * latency_s),
        cycles_per_second: tally.proved.load(Ordering::Relaxed) as f64 / latency_s,
        lease_calls: tally.lease_calls.load(Ordering::Relaxed),
        empty_long_polls: tally.empty.load(Ordering::Relaxed),
        process_cpu_cores: cores,
        process_cpu_cores_per_1000_provers: cores * 1000.0 / args.provers as f64,
    })
}

/// One simulated prover.
struct SimProver {
    coordinator: Arc<Coordinator>,
    verifier: Arc<Semaphore>,
    prover: Prover,
    index: u64,
    tally: Arc<Tally>,
    done: Arc<AtomicBool>,
    bar: indicatif::ProgressBar,
    leaf: Duration,
    node: Duration,
    verify: Duration,
    blob_bytes: usize,
    root: sheaf_store::JobId,
}

impl SimProver {
    async fn run(self) -> anyhow::Result<()> {
        let mut blob = vec![0u8; self.blob_bytes];
        rand::thread_rng().fill(&mut blob[..]);
        let mut cycle = 0u64;
        while !self.done.load(Ordering::Relaxed) {
            self.tally.lease_calls.fetch_add(1, Ordering::Relaxed);
            let lease = match self
                .coordinator
                .lease(&self.prover, self.coordinator.config().max_lease_wait)
                .await
            {
                Ok(Some(lease)) => lease,
                Ok(None) => {
                    self.tally.empty.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Err(e) => anyhow::bail!("{}: lease: {e}", self.prover.id),
            };
            let mean = if lease.job.level == 0 {
                self.leaf
            } else {
                self.node
            };
            let proving = mean.mul_f64(rand::thread_rng().gen_range(0.8..1.2));
            tokio::time::sleep(proving).await;
            self.tally
                .busy_ms
                .fetch_add(proving.as_millis() as u64, Ordering::Relaxed);
            // The submission: the coordinator's reads, verification in a verifier slot, the
            // store's transaction, the wake-up.
            let store = self.coordinator.store();
            store.get_job(lease.job).await?;
            store.child_proofs(lease.job).await?;
            {
                let _slot = self.verifier.acquire().await?;
                tokio::time::sleep(self.verify).await;
            }
            // Distinct bytes per submission: (prover, cycle) in the first 16.
            cycle += 1;
            blob[..8].copy_from_slice(&self.index.to_le_bytes());
            blob[8..16].copy_from_slice(&cycle.to_le_bytes());
            let outcome = store
                .submit_proof(
                    lease.job,
                    lease.token,
                    &self.prover.id,
                    &blob,
                    RewardEntry {
                        worker_pk: self.prover.worker_pk,
                        work_units: 1,
                    },
                    sheaf_types::clock::now_ms(),
                    Some(proving.as_millis() as i64),
                )
                .await?;
            self.tally.proved.fetch_add(1, Ordering::Relaxed);
            self.bar.inc(1);
            if outcome.parent_ready.is_some() {
                self.coordinator.jobs_added();
            }
            if lease.job == self.root {
                self.done.store(true, Ordering::Relaxed);
                self.coordinator.begin_shutdown();
            }
        }
        Ok(())
    }
}

fn print_report(r: &ScaleReport, args: &ScaleArgs) {
    println!(
        "scheduler at scale: {} provers, {} leaves ({} jobs, depth {}), {} replica(s) on {}",
        r.provers, r.leaves, r.jobs, r.depth, r.replicas, r.engine
    );
    println!(
        "  simulated: leaf {} ms, node {} ms (±20 %), verification {} ms in {} slot(s) per replica",
        args.leaf_ms, args.node_ms, args.verify_ms, args.verify_workers
    );
    println!("  planning            {:>10.1} s", r.planning_s);
    println!(
        "  sequence latency    {:>10.1} s   bound {:.1} s (leaves/P × leaf + depth × node): {:.2}×",
        r.latency_s, r.bound_s, r.latency_over_bound
    );
    println!(
        "  work bound          {:>10.1} s   (every proof's time / P): {:.2}×",
        r.work_bound_s, r.latency_over_work_bound
    );
    println!(
        "  prover idle         {:>10.1} %",
        r.prover_idle_fraction * 100.0
    );
    println!(
        "  store cycles        {:>10.0} /s   ({} lease calls, {} long-polls ended empty)",
        r.cycles_per_second, r.lease_calls, r.empty_long_polls
    );
    println!(
        "  process CPU         {:>10.2} cores ({:.2} per 1,000 provers; coordinator and store, the provers only sleep)",
        r.process_cpu_cores, r.process_cpu_cores_per_1000_provers
    );
}
