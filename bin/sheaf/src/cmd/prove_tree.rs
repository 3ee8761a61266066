//! `sheaf prove-tree`: prove N work leaves and aggregate them into one root proof.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use sheaf_circuits::work::WORK_LEAF_KIND;
use sheaf_circuits::wrap::conjectured_security_bits;
use sheaf_circuits::{
    encode_proof, AggregationCircuits, Digest, Header, JobInputs, Proof, TreePlan, TreeProver,
    WorkerSecret,
};

use crate::circuit_args::CircuitArgs;
use crate::process_stats::{cpu_seconds, mib, peak_rss_bytes};
use crate::progress::{spinner, LevelBars};

/// Arguments of `prove-tree`.
#[derive(Args, Debug)]
pub struct ProveTreeArgs {
    /// Number of work leaves (1 to 1,048,576).
    #[arg(long, env = "SHEAF_LEAVES")]
    pub leaves: usize,
    /// Directory for `root.proof` and `summary.json` (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Proving threads (0: one per core).
    #[arg(long, env = "SHEAF_THREADS", default_value_t = 0)]
    pub threads: usize,
    /// Seed of the leaves' inputs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub circuits: CircuitArgs,
}

/// Time spent on one level of the tree.
#[derive(Debug, Clone, Serialize)]
pub struct LevelReport {
    /// Level (0: leaves).
    pub level: usize,
    /// Proofs made at this level.
    pub nodes: usize,
    /// Wall seconds of all its proofs.
    pub wall_seconds: f64,
    /// CPU seconds of all its proofs.
    pub cpu_seconds: f64,
    /// The slowest single proof.
    pub slowest_node_seconds: f64,
}

/// Prove `plan`'s tree with per-level accounting.
pub fn prove_levels(
    circuits: &AggregationCircuits,
    leaf_key: &sheaf_circuits::LeafVerifier,
    plan: &TreePlan,
    worker: WorkerSecret,
    leaf_proof: &mut dyn FnMut(usize) -> sheaf_circuits::Result<Proof>,
    quiet: bool,
) -> anyhow::Result<(Proof, Vec<LevelReport>)> {
    let mut level_sizes = plan.level_sizes().to_vec();
    if circuits.final_wrap().is_some() {
        level_sizes.push(1);
    }
    let bars = LevelBars::new(&level_sizes, quiet);
    let mut levels: Vec<LevelReport> = (0..level_sizes.len())
        .map(|level| LevelReport {
            level,
            nodes: 0,
            wall_seconds: 0.0,
            cpu_seconds: 0.0,
            slowest_node_seconds: 0.0,
        })
        .collect();
    let prover = TreeProver::new(circuits, &leaf_key.kind, &leaf_key.verifier_only, worker);
    let mut cpu_mark = cpu_seconds();
    let root = prover.prove(plan, leaf_proof, &mut |node| {
        let now = cpu_seconds();
        let report = &mut levels[node.level];
        report.nodes += 1;
        report.wall_seconds += node.wall_seconds;
        report.cpu_seconds += now - cpu_mark;
        report.slowest_node_seconds = report.slowest_node_seconds.max(node.wall_seconds);
        cpu_mark = now;
        bars.inc(node.level);
    })?;
    bars.finish();
    Ok((root, levels))
}

/// What `prove-tree` reports.
#[derive(Debug, Serialize)]
struct Summary {
    leaves: usize,
    arity: usize,
    profile: String,
    zero_knowledge: bool,
    leaf_rows_log2: usize,
    node_rows_log2: usize,
    nodes_proved: usize,
    circuits_from_cache: bool,
    build_seconds: f64,
    prove_wall_seconds: f64,
    prove_cpu_seconds: f64,
    critical_path_seconds: f64,
    levels: Vec<LevelReport>,
    peak_rss_bytes: Option<u64>,
    proof_bytes: usize,
    verify_ms: f64,
    security_bits: usize,
    root: Header,
    key_id: Digest,
    root_proof: PathBuf,
}

/// Run `prove-tree`.
pub fn run(args: ProveTreeArgs) -> anyhow::Result<()> {
    let plan = TreePlan::new(args.leaves, args.circuits.arity)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let pool = sheaf_circuits::proving_pool(args.threads)?;
    pool.install(|| prove_tree(&args, &plan))
}

fn prove_tree(args: &ProveTreeArgs, plan: &TreePlan) -> anyhow::Result<()> {
    let build_start = Instant::now();
    let spin = spinner("loading or building circuits", args.json);
    let circuits = args.circuits.circuits()?;
    spin.finish_and_clear();
    let build_seconds = build_start.elapsed().as_secs_f64();

    let worker = WorkerSecret::random();
    let leaf = circuits.kind(WORK_LEAF_KIND)?;
    let prove_start = Instant::now();
    let cpu_start = cpu_seconds();
    let (root, levels) = prove_levels(
        &circuits.aggregation,
        &leaf.leaf_verifier(),
        plan,
        worker,
        &mut |i| {
            let inputs = JobInputs::Work {
                seed: args.seed,
                index: i as u64,
            };
            leaf.prove_job(&inputs, &worker)
        },
        args.json,
    )?;
    let prove_wall_seconds = prove_start.elapsed().as_secs_f64();
    let prove_cpu_seconds = cpu_seconds() - cpu_start;

    let bytes = encode_proof(&root);
    let root_path = args.out.join("root.proof");
    std::fs::write(&root_path, &bytes)
        .with_context(|| format!("writing {}", root_path.display()))?;
    let key = circuits.aggregation.final_key();
    let verified = key.verify_bytes(&bytes)?;

    let summary = Summary {
        leaves: plan.leaves(),
        arity: plan.arity(),
        profile: args.circuits.profile.to_string(),
        zero_knowledge: args.circuits.settings().final_is_zero_knowledge(),
        leaf_rows_log2: leaf.leaf_data().common.degree_bits(),
        node_rows_log2: key.degree_bits(),
        nodes_proved: levels.iter().map(|l| l.nodes).sum(),
        circuits_from_cache: circuits.aggregation.from_cache(),
        build_seconds,
        prove_wall_seconds,
        prove_cpu_seconds,
        critical_path_seconds: levels.iter().map(|l| l.slowest_node_seconds).sum(),
        levels,
        peak_rss_bytes: peak_rss_bytes(),
        proof_bytes: bytes.len(),
        verify_ms: verified.verify_ms,
        // The weakest link: the final key's stage, or the nodes below a wrap of higher security.
        security_bits: key.security_bits().min(conjectured_security_bits(
            &args.circuits.settings().node_config().fri_config,
        )),
        root: verified.header,
        key_id: key.id(),
        root_proof: root_path,
    };
    write_summary(&args.out, &summary, args.json, print_summary)
}

/// Write `summary` to `out/summary.json`, then print it: one JSON object with `json`, else as
/// `print` lays it out.
pub fn write_summary<S: Serialize>(
    out: &std::path::Path,
    summary: &S,
    json: bool,
    print: fn(&S),
) -> anyhow::Result<()> {
    std::fs::write(
        out.join("summary.json"),
        serde_json::to_string_pretty(summary)?,
    )?;
    if json {
        println!("{}", serde_json::to_string(summary)?);
    } else {
        print(summary);
    }
    Ok(())
}

fn print_summary(s: &Summary) {
    println!(
        "proved {} leaves at arity {} ({} profile, zero-knowledge final proof: {}): {} proofs, root verified",
        s.leaves, s.arity, s.profile, s.zero_knowledge, s.nodes_proved
    );
    println!(
        "circuits: {:.1} s ({}), nodes 2^{} rows, leaves 2^{} rows",
        s.build_seconds,
        if s.circuits_from_cache {
            "from cache"
        } else {
            "built"
        },
        s.node_rows_log2,
        s.leaf_rows_log2
    );
    println!(
        "{:>8} {:>6} {:>10} {:>10} {:>13}",
        "level", "nodes", "wall s", "cpu s", "slowest s"
    );
    for l in &s.levels {
        println!(
            "{:>8} {:>6} {:>10.2} {:>10.2} {:>13.2}",
            l.level, l.nodes, l.wall_seconds, l.cpu_seconds, l.slowest_node_seconds
        );
    }
    println!(
        "proving: {:.1} s wall, {:.1} s CPU; critical path {:.1} s",
        s.prove_wall_seconds, s.prove_cpu_seconds, s.critical_path_seconds
    );
    println!(
        "peak RSS {}, root proof {} bytes, verify {:.2} ms, {} bits of conjectured security",
        s.peak_rss_bytes
            .map(|b| format!("{:.0} MiB", mib(b)))
            .unwrap_or_else(|| "n/a".into()),
        s.proof_bytes,
        s.verify_ms,
        s.security_bits
    );
    println!(
        "root: commitment {} stats {}/{}/{} statement {}",
        s.root.commitment,
        s.root.stats.leaf_jobs,
        s.root.stats.aggregation_jobs,
        s.root.stats.work_units,
        s.root.statement
    );
    println!("written: {}", s.root_proof.display());
}
