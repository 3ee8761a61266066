//! `sheaf bench aggregate`: Sheaf's tree against the seed's flat aggregator, side by side.
//!
//! The parent proves the leaves once and writes them to a work directory; each side then runs in
//! its own child process (`sheaf bench side …`), so its peak RSS (the kernel's `VmHWM`) is its
//! own. Cold sides build their circuits; warm sides load them from the cache the cold side wrote
//! after it finished measuring.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use sheaf_circuits::config::{seed_aggregator_config, seed_leaf_config};
use sheaf_circuits::flat::{flat_aggregator, store_flat_aggregator};
use sheaf_circuits::limits::MAX_PROOF_BYTES;
use sheaf_circuits::work::{work_input, WorkLeaf};
use sheaf_circuits::{
    decode_proof, encode_proof, AggregationCircuits, AggregationSettings, ArtifactCache, Child,
    CircuitError, LeafCircuit, Profile, Proof, TreePlan, WorkerSecret, DEFAULT_ARITY,
};

use crate::circuit_args::DEFAULT_LEAF_ROWS_LOG2;
use crate::cmd::prove_tree::prove_levels;
use crate::process_stats::{cpu_seconds, mib, peak_rss_bytes};
use crate::progress::LevelBars;

/// Benchmarks.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Aggregate the same leaf proofs with the seed's flat circuit and with Sheaf's tree, each
    /// side in its own process, and compare memory, time, proof size and verification.
    Aggregate(AggregateArgs),
    /// Lease→submit cycles per second of a store, with no proving (blobs of a real proof's
    /// size), at 1 and 8 concurrent clients.
    Store(crate::cmd::bench_store::BenchStoreArgs),
    /// Prove and aggregate a prover's reward claims in one process, as a phone would: Sheaf's
    /// tree under the network's final key against the seed's flat circuit over the same claims,
    /// each side in its own process.
    Claims(crate::cmd::bench_claims::ClaimsArgs),
    /// An honest prover's time outside proving per job, alone and under floods by hostile
    /// clients (invalid proofs, heartbeats, slow connections), an honest chain user's
    /// transfers alone and under junk transactions, and each server's peak memory.
    Abuse(crate::cmd::bench_abuse::AbuseArgs),
    /// The network as separate processes (chain, coordinator, provers) under a seeded schedule
    /// of SIGKILLs, crashes at failpoints, PostgreSQL restarts and partitions; fails unless no
    /// job is lost, no reward doubled, every root verifies and every sequence settles.
    Chaos(crate::cmd::bench_chaos::ChaosArgs),
    /// The scheduler at scale, by simulation: the real planner, store and lease path
    /// (long-polls and wake-ups included) under simulated provers whose proving and the
    /// coordinator's verification are timed waits; sequence latency against the critical-path
    /// bound, prover idle fraction, store cycles per second and CPU.
    Scale(crate::cmd::bench_scale::ScaleArgs),
    /// What the live console's viewers cost the coordinator: a real coordinator whose trees
    /// change all the time, measured with no viewer and with `--viewers` event streams open
    /// (CPU of its threads, resident memory, snapshots and bytes per viewer).
    Console(crate::cmd::bench_console::BenchConsoleArgs),
    /// The viewers of `bench console` (run by it in a child process).
    #[command(hide = true)]
    ConsoleViewers(crate::cmd::bench_console::ConsoleViewersArgs),
    /// One side of `bench aggregate` (run by it in a child process).
    #[command(hide = true)]
    Side(SideArgs),
    /// One side of `bench claims` (run by it in a child process).
    #[command(hide = true)]
    ClaimsSide(crate::cmd::bench_claims::ClaimsSideArgs),
}

/// Parameters both the parent and each side need.
#[derive(Args, Debug, Clone)]
pub struct BenchParams {
    /// Number of leaf proofs to aggregate.
    #[arg(long, default_value_t = 16)]
    pub leaves: usize,
    /// Rows of each leaf, as a power of two (the seed's real leaf is about 2^8).
    #[arg(long = "leaf-rows-log2", default_value_t = DEFAULT_LEAF_ROWS_LOG2)]
    pub leaf_rows_log2: usize,
    /// Configuration of Sheaf's aggregation nodes (the leaves always use the seed's).
    #[arg(long, default_value_t = Profile::Standard)]
    pub profile: Profile,
    /// Children per Sheaf node.
    #[arg(long, default_value_t = DEFAULT_ARITY)]
    pub arity: usize,
    /// Wrap Sheaf's root in one zero-knowledge proof.
    #[arg(long)]
    pub final_zk: bool,
    /// Proving threads per side (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// Arguments of `bench aggregate`.
#[derive(Args, Debug)]
pub struct AggregateArgs {
    #[command(flatten)]
    pub params: BenchParams,
    /// Sides to run, in order.
    #[arg(long, value_delimiter = ',', default_values_t = Side::ALL)]
    pub sides: Vec<Side>,
    /// Run the sides this many times (in turn) and report each figure's median.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=9))]
    pub repeat: u32,
    /// Work directory (leaf proofs, caches); a temporary one is used and removed if not given.
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Print the results as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `bench side`.
#[derive(Args, Debug)]
pub struct SideArgs {
    #[command(flatten)]
    pub params: BenchParams,
    /// Which side.
    #[arg(long)]
    pub side: Side,
    /// The work directory prepared by `bench aggregate`.
    #[arg(long)]
    pub dir: PathBuf,
}

/// One side of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    /// The seed's flat circuit, built fresh.
    BaselineCold,
    /// The seed's flat circuit, loaded prebuilt.
    BaselineWarm,
    /// Sheaf's tree, circuits built.
    SheafCold,
    /// Sheaf's tree, circuits from the cache.
    SheafWarm,
}

impl Side {
    /// Baseline and Sheaf alternate, so a drift in machine speed touches both alike.
    const ALL: [Side; 4] = [
        Side::BaselineCold,
        Side::SheafCold,
        Side::BaselineWarm,
        Side::SheafWarm,
    ];

    pub(crate) fn is_baseline(self) -> bool {
        matches!(self, Side::BaselineCold | Side::BaselineWarm)
    }

    pub(crate) fn is_warm(self) -> bool {
        matches!(self, Side::BaselineWarm | Side::SheafWarm)
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.to_possible_value().expect("no skipped variants");
        f.write_str(v.get_name())
    }
}

/// What one side measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SideReport {
    /// Which side.
    pub side: Side,
    /// Peak resident memory of the side's process.
    pub peak_rss_bytes: u64,
    /// Wall seconds: circuits, loading the leaves, proving.
    pub wall_seconds: f64,
    /// CPU seconds of the same.
    pub cpu_seconds: f64,
    /// Seconds building or loading circuits.
    pub circuit_seconds: f64,
    /// Seconds proving.
    pub prove_seconds: f64,
    /// Time to the root if every node had its own prover (sum of each level's slowest node).
    pub critical_path_seconds: f64,
    /// Aggregation proofs made.
    pub proofs: usize,
    /// Rows of the aggregation circuit, as a power of two.
    pub rows_log2: usize,
    /// Bytes of the final proof.
    pub proof_bytes: usize,
    /// Milliseconds to verify the final proof (median of [`VERIFY_RUNS`]).
    pub verify_ms: f64,
}

const LEAF_CACHE: &str = "leaf-cache";
const LEAVES: &str = "leaves";

/// Run `bench aggregate`.
pub fn aggregate(args: AggregateArgs) -> anyhow::Result<()> {
    let temp;
    let dir = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile_dir()?;
            temp.path().to_path_buf()
        }
    };
    let p = &args.params;
    prepare_leaves(p, &dir, args.json)?;

    let exe = std::env::current_exe().context("locating the sheaf binary")?;
    let mut runs: Vec<Vec<SideReport>> = vec![Vec::new(); args.sides.len()];
    for (side, run) in (0..args.repeat).flat_map(|_| args.sides.iter().zip(0..)) {
        if !args.json {
            eprintln!("running {side} …");
        }
        let output = Command::new(&exe)
            .args(["bench", "side", "--side", &side.to_string(), "--dir"])
            .arg(&dir)
            .args(["--leaves", &p.leaves.to_string()])
            .args(["--leaf-rows-log2", &p.leaf_rows_log2.to_string()])
            .args(["--profile", &p.profile.to_string()])
            .args(["--arity", &p.arity.to_string()])
            .args(["--threads", &p.threads.to_string()])
            .args(p.final_zk.then_some("--final-zk"))
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("running side {side}"))?;
        if !output.status.success() {
            bail!("side {side} failed ({})", output.status);
        }
        let report: SideReport = serde_json::from_slice(&output.stdout)
            .with_context(|| format!("reading the report of side {side}"))?;
        runs[run].push(report);
    }
    let reports = runs.into_iter().map(median_report).collect();
    let comparison = Comparison::new(p, reports);
    if args.json {
        println!("{}", serde_json::to_string(&comparison)?);
    } else {
        comparison.print();
    }
    Ok(())
}

pub(crate) fn tempfile_dir() -> anyhow::Result<TempDir> {
    let path = std::env::temp_dir().join(format!("sheaf-bench-{}", std::process::id()));
    std::fs::create_dir_all(&path)?;
    Ok(TempDir(path))
}

/// A directory removed when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn leaf_circuit(p: &BenchParams, dir: &Path) -> anyhow::Result<WorkLeaf> {
    Ok(WorkLeaf::load_or_build(
        seed_leaf_config(),
        p.leaf_rows_log2,
        Some(&ArtifactCache::new(dir.join(LEAF_CACHE))),
    )?)
}

fn leaf_path(dir: &Path, index: usize) -> PathBuf {
    dir.join(LEAVES).join(format!("{index}.proof"))
}

/// Prove the leaves once (each by its own worker), unless already there.
fn prepare_leaves(p: &BenchParams, dir: &Path, quiet: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join(LEAVES))?;
    let leaf = leaf_circuit(p, dir)?;
    let bars = LevelBars::new(&[p.leaves], quiet);
    for i in 0..p.leaves {
        let path = leaf_path(dir, i);
        if !path.exists() {
            let proof = leaf.prove(&work_input(7, i as u64), &WorkerSecret::random())?;
            std::fs::write(&path, encode_proof(&proof))?;
        }
        bars.inc(0);
    }
    bars.finish();
    Ok(())
}

/// Run one side in this process and print its report as JSON.
pub fn side(args: SideArgs) -> anyhow::Result<()> {
    let pool = sheaf_circuits::proving_pool(args.params.threads)?;
    let report = pool.install(|| run_side(&args))?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn load_leaf(dir: &Path, leaf: &WorkLeaf, index: usize) -> sheaf_circuits::Result<Proof> {
    let path = leaf_path(dir, index);
    let bytes = std::fs::read(&path).map_err(|e| CircuitError::io(path, e))?;
    decode_proof(&bytes, &leaf.circuit().common, MAX_PROOF_BYTES)
}

fn load_leaves(p: &BenchParams, dir: &Path, leaf: &WorkLeaf) -> anyhow::Result<Vec<Proof>> {
    Ok((0..p.leaves)
        .map(|i| load_leaf(dir, leaf, i))
        .collect::<sheaf_circuits::Result<_>>()?)
}

fn run_side(args: &SideArgs) -> anyhow::Result<SideReport> {
    let p = &args.params;
    let leaf = leaf_circuit(p, &args.dir)?;
    let leaf_verifier = leaf.verifier();
    let worker = WorkerSecret::random();
    let cache = ArtifactCache::new(args.dir.join(if args.side.is_baseline() {
        "cache-baseline"
    } else {
        "cache-sheaf"
    }));
    let start = Instant::now();
    let cpu_start = cpu_seconds();

    if args.side.is_baseline() {
        let config = seed_aggregator_config();
        let (flat, _) = flat_aggregator(
            config.clone(),
            &leaf_verifier,
            p.leaves,
            args.side.is_warm().then_some(&cache),
        )?;
        let circuit_seconds = start.elapsed().as_secs_f64();
        let leaves = load_leaves(p, &args.dir, &leaf)?;
        let children: Vec<Child<'_>> = leaves
            .iter()
            .map(|proof| Child {
                proof,
                key: &leaf.circuit().verifier_only,
            })
            .collect();
        let whitelist = sheaf_circuits::whitelist::Whitelist::new(vec![Default::default()])?;
        let prove_start = Instant::now();
        let proof = flat.prove(&children, &worker, &whitelist)?;
        let prove_seconds = prove_start.elapsed().as_secs_f64();
        let report = measured(args.side, start, cpu_start, circuit_seconds, prove_seconds);
        let verify_ms = median_ms(|| flat.data.verify(proof.clone()))?;
        let report = SideReport {
            critical_path_seconds: prove_seconds,
            proofs: 1,
            rows_log2: flat.data.common.degree_bits(),
            proof_bytes: encode_proof(&proof).len(),
            verify_ms,
            ..report
        };
        if !args.side.is_warm() {
            store_flat_aggregator(&flat, &config, &leaf_verifier, &cache);
        }
        return Ok(report);
    }

    let settings = AggregationSettings {
        profile: p.profile,
        arity: p.arity,
        final_zk: p.final_zk,
        final_compact: false,
    };
    let leaf_kinds = [leaf_verifier.clone()];
    let circuits = if args.side.is_warm() {
        AggregationCircuits::load(settings, &leaf_kinds, &cache)
            .context("no cached Sheaf circuits: run the sheaf-cold side first")?
    } else {
        AggregationCircuits::build(settings, &leaf_kinds)?
    };
    let circuit_seconds = start.elapsed().as_secs_f64();
    let plan = TreePlan::new(p.leaves, p.arity)?;
    let prove_start = Instant::now();
    // Leaves are read as the tree needs them, so memory does not grow with their number.
    let (root, levels) = prove_levels(
        &circuits,
        &leaf_verifier,
        &plan,
        worker,
        &mut |i| load_leaf(&args.dir, &leaf, i),
        true,
    )?;
    let prove_seconds = prove_start.elapsed().as_secs_f64();
    let report = measured(args.side, start, cpu_start, circuit_seconds, prove_seconds);
    let key = circuits.final_key();
    let bytes = encode_proof(&root);
    let verify_ms = median_ms(|| Ok(key.verify_bytes(&bytes).map(drop)?))?;
    let report = SideReport {
        critical_path_seconds: levels[1..].iter().map(|l| l.slowest_node_seconds).sum(),
        proofs: levels[1..].iter().map(|l| l.nodes).sum(),
        rows_log2: key.degree_bits(),
        proof_bytes: bytes.len(),
        verify_ms,
        ..report
    };
    if !args.side.is_warm() {
        circuits.store(&cache);
    }
    Ok(report)
}

/// Each figure's median over repeated runs of one side.
pub(crate) fn median_report(mut runs: Vec<SideReport>) -> SideReport {
    fn median(values: impl Iterator<Item = f64>) -> f64 {
        let mut v: Vec<f64> = values.collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }
    let m = |f: fn(&SideReport) -> f64| median(runs.iter().map(f));
    SideReport {
        peak_rss_bytes: m(|r| r.peak_rss_bytes as f64) as u64,
        wall_seconds: m(|r| r.wall_seconds),
        cpu_seconds: m(|r| r.cpu_seconds),
        circuit_seconds: m(|r| r.circuit_seconds),
        prove_seconds: m(|r| r.prove_seconds),
        critical_path_seconds: m(|r| r.critical_path_seconds),
        verify_ms: m(|r| r.verify_ms),
        ..runs.swap_remove(0)
    }
}

/// Verifications timed for the reported median.
const VERIFY_RUNS: usize = 5;

/// Median milliseconds of [`VERIFY_RUNS`] runs of `verify` (the first pays one-time costs).
pub(crate) fn median_ms(verify: impl Fn() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let mut times = Vec::with_capacity(VERIFY_RUNS);
    for _ in 0..VERIFY_RUNS {
        let start = Instant::now();
        verify()?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[VERIFY_RUNS / 2])
}

pub(crate) fn measured(
    side: Side,
    start: Instant,
    cpu_start: f64,
    circuit_seconds: f64,
    prove_seconds: f64,
) -> SideReport {
    SideReport {
        side,
        peak_rss_bytes: peak_rss_bytes().unwrap_or(0),
        wall_seconds: start.elapsed().as_secs_f64(),
        cpu_seconds: cpu_seconds() - cpu_start,
        circuit_seconds,
        prove_seconds,
        critical_path_seconds: 0.0,
        proofs: 0,
        rows_log2: 0,
        proof_bytes: 0,
        verify_ms: 0.0,
    }
}

/// The table and ratios of a benchmark run.
#[derive(Debug, Serialize)]
struct Comparison {
    leaves: usize,
    leaf_rows_log2: usize,
    sheaf_profile: String,
    sheaf_arity: usize,
    sides: Vec<SideReport>,
    ratios: Vec<Ratio>,
}

#[derive(Debug, Serialize)]
struct Ratio {
    what: String,
    value: f64,
    target: String,
    met: bool,
}

impl Comparison {
    fn new(p: &BenchParams, sides: Vec<SideReport>) -> Self {
        let get = |s: Side| sides.iter().find(|r| r.side == s);
        let mut ratios = Vec::new();
        let mut ratio = |what: &str, value: f64, limit: f64| {
            ratios.push(Ratio {
                what: what.into(),
                value,
                target: format!("<= {limit}"),
                met: value <= limit,
            })
        };
        // (start, baseline, sheaf, wall-time limit): a warm start may take longer relative to its
        // baseline, and only the cold one is held to the critical path.
        let pairs = [
            ("cold", Side::BaselineCold, Side::SheafCold, 1.2),
            ("warm", Side::BaselineWarm, Side::SheafWarm, 1.5),
        ];
        for (start, baseline, sheaf, wall_limit) in pairs {
            let (Some(b), Some(s)) = (get(baseline), get(sheaf)) else {
                continue;
            };
            ratio(
                &format!("sheaf peak RSS / baseline ({start})"),
                s.peak_rss_bytes as f64 / b.peak_rss_bytes as f64,
                0.25,
            );
            ratio(
                &format!("sheaf wall / baseline ({start})"),
                s.wall_seconds / b.wall_seconds,
                wall_limit,
            );
            if sheaf == Side::SheafCold {
                ratio(
                    "sheaf critical path / baseline prove",
                    s.critical_path_seconds / b.prove_seconds,
                    0.5,
                );
            }
        }
        if let Some(s) = get(Side::SheafWarm).or(get(Side::SheafCold)) {
            ratio("sheaf root proof KB", s.proof_bytes as f64 / 1000.0, 150.0);
            ratio("sheaf verify ms", s.verify_ms, 10.0);
        }
        Comparison {
            leaves: p.leaves,
            leaf_rows_log2: p.leaf_rows_log2,
            sheaf_profile: p.profile.to_string(),
            sheaf_arity: p.arity,
            sides,
            ratios,
        }
    }

    fn print(&self) {
        println!(
            "{} leaves of 2^{} rows (seed leaf config); Sheaf: {} profile, arity {}",
            self.leaves, self.leaf_rows_log2, self.sheaf_profile, self.sheaf_arity
        );
        println!(
            "{:<14} {:>9} {:>8} {:>8} {:>9} {:>8} {:>9} {:>7} {:>6} {:>9} {:>9}",
            "side",
            "RSS MiB",
            "wall s",
            "CPU s",
            "circuit s",
            "prove s",
            "crit. s",
            "proofs",
            "rows",
            "proof B",
            "verify ms"
        );
        for r in &self.sides {
            println!(
                "{:<14} {:>9.0} {:>8.1} {:>8.1} {:>9.1} {:>8.1} {:>9.1} {:>7} {:>6} {:>9} {:>9.2}",
                r.side.to_string(),
                mib(r.peak_rss_bytes),
                r.wall_seconds,
                r.cpu_seconds,
                r.circuit_seconds,
                r.prove_seconds,
                r.critical_path_seconds,
                r.proofs,
                format!("2^{}", r.rows_log2),
                r.proof_bytes,
                r.verify_ms
            );
        }
        for r in &self.ratios {
            println!(
                "{:<40} {:>8.3}  target {:<8} {}",
                r.what,
                r.value,
                r.target,
                if r.met { "met" } else { "MISSED" }
            );
        }
    }
}
