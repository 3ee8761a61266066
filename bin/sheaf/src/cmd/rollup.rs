//! `sheaf rollup prove-block` (`status` and `genesis` are in [`super::rollup_node`]): make a block of N transfers on a demo rollup and prove it with the
//! tree a coordinator plans for it (tx kernels, merge and block kernels, a universal root).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde::Serialize;
use sheaf_circuits::{encode_proof, Digest, Header, JobCircuit, JobInputs, WorkerSecret};
use sheaf_rollup::demo::DemoRollup;
use sheaf_rollup::kernel::{BlockTree, TX_KIND};
use sheaf_rollup::limits::{DEFAULT_MAX_TXS_PER_BATCH, MAX_TXS_PER_BATCH};
use sheaf_rollup::BlockHeader;

use crate::circuit_args::CircuitArgs;
use crate::cmd::prove_tree::write_summary;
use crate::process_stats::{cpu_seconds, mib, peak_rss_bytes};
use crate::progress::{spinner, LevelBars};

/// `sheaf rollup …`.
#[derive(Subcommand, Debug)]
pub enum RollupCommand {
    /// Make a block of N valid transfers on a demo rollup (some consume notes created earlier
    /// in the block), prove every tx, batch and block job of its tree, verify the root with the
    /// final key of the rollup's circuit set (`sheaf export-key --rollup`), and report rows and
    /// prove time per kernel, the critical path and peak memory.
    ProveBlock(ProveBlockArgs),
    /// A running rollup node's published, proven and settled tips and the transactions
    /// waiting (`GET /v1/rollup/status`).
    Status(super::rollup_node::StatusArgs),
    /// Write a rollup genesis file (for `sheaf coordinator --rollup-genesis`) funding wallets'
    /// accounts, numbered 1, 2, … in the order given.
    Genesis(super::rollup_node::GenesisArgs),
}

/// Arguments of `rollup prove-block`.
#[derive(Args, Debug)]
pub struct ProveBlockArgs {
    /// Transactions in the block (1 to 4096).
    #[arg(long, env = "SHEAF_TXS")]
    pub txs: usize,
    /// Directory for `root.proof`, `header.json` and `summary.json` (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Transactions per batch (1 to 64; miden-node's default is 8).
    #[arg(long, default_value_t = DEFAULT_MAX_TXS_PER_BATCH)]
    pub batch_size: usize,
    /// Funded accounts the transfers go between (2 to 1024).
    #[arg(long, default_value_t = 16)]
    pub accounts: usize,
    /// Proving threads (0: one per core).
    #[arg(long, env = "SHEAF_THREADS", default_value_t = 0)]
    pub threads: usize,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub circuits: CircuitArgs,
}

/// Most transactions `prove-block` makes.
const MAX_TXS: usize = 4096;

/// Rows and proving time of one circuit of the tree.
#[derive(Debug, Clone, Serialize)]
struct KernelReport {
    circuit: String,
    rows_log2: usize,
    proofs: usize,
    total_seconds: f64,
    mean_seconds: f64,
    slowest_seconds: f64,
}

/// What `prove-block` reports.
#[derive(Debug, Serialize)]
struct Summary {
    txs: usize,
    batch_size: usize,
    batches: usize,
    arity: usize,
    profile: String,
    proofs: usize,
    kernels: Vec<KernelReport>,
    circuits_from_cache: bool,
    build_seconds: f64,
    prove_wall_seconds: f64,
    prove_cpu_seconds: f64,
    critical_path_seconds: f64,
    txs_per_cpu_second: f64,
    peak_rss_bytes: Option<u64>,
    proof_bytes: usize,
    verify_ms: f64,
    root: Header,
    key_id: Digest,
    block: BlockHeader,
    block_commitment: Digest,
    block_statement: Digest,
    root_proof: PathBuf,
}

/// Run `sheaf rollup …`.
pub fn run(command: RollupCommand) -> anyhow::Result<()> {
    match command {
        RollupCommand::Status(args) => super::rollup_node::status(args),
        RollupCommand::Genesis(args) => super::rollup_node::genesis(args),
        RollupCommand::ProveBlock(args) => {
            if !(1..=MAX_TXS).contains(&args.txs) {
                anyhow::bail!("--txs must be 1 to {MAX_TXS}, got {}", args.txs);
            }
            if !(1..=MAX_TXS_PER_BATCH).contains(&args.batch_size) {
                anyhow::bail!(
                    "--batch-size must be 1 to {MAX_TXS_PER_BATCH}, got {}",
                    args.batch_size
                );
            }
            if !(2..=1024).contains(&args.accounts) {
                anyhow::bail!("--accounts must be 2 to 1024, got {}", args.accounts);
            }
            std::fs::create_dir_all(&args.out)
                .with_context(|| format!("creating {}", args.out.display()))?;
            let pool = sheaf_circuits::proving_pool(args.threads)?;
            pool.install(|| prove_block(&args))
        }
    }
}

fn prove_block(args: &ProveBlockArgs) -> anyhow::Result<()> {
    // The block, natively: a genesis, then N transfers produced into block 1.
    let keys = args.txs.div_ceil(args.accounts) as u64 + 1;
    let mut demo = DemoRollup::new(args.accounts, keys, 1_000)?;
    let previous = *demo.state.tip();
    let chain_path = demo.state.chain_path(previous.number);
    let txs = demo.transfers(args.txs)?;
    let block = demo
        .state
        .apply_block(&txs, 2_000, args.batch_size)
        .context("producing the block")?;

    let build_start = Instant::now();
    let spin = spinner("loading or building the rollup's circuits", args.json);
    let circuits = args.circuits.rollup_circuits()?;
    spin.finish_and_clear();
    let build_seconds = build_start.elapsed().as_secs_f64();

    let arity = circuits.aggregation.settings().arity;
    let tree = BlockTree::plan(
        &previous,
        chain_path,
        &txs,
        &[],
        &block,
        args.batch_size,
        arity,
    )?;
    let worker = WorkerSecret::random();
    let levels = tree.jobs.iter().map(|j| j.level).max().unwrap_or(0) + 1;
    let per_level: Vec<usize> = (0..levels)
        .map(|l| tree.jobs.iter().filter(|j| j.level == l).count())
        .collect();
    let bars = LevelBars::new(&per_level, args.json);
    let mut seconds = vec![0.0; tree.jobs.len()];
    let prove_start = Instant::now();
    let cpu_start = cpu_seconds();
    let mut root = tree.prove(&circuits, &worker, &mut |job, s| {
        seconds[job] = s;
        bars.inc(tree.jobs[job].level);
    })?;
    if circuits.aggregation.final_wrap().is_some() {
        let start = Instant::now();
        root = circuits.prove_job(
            &JobCircuit::Wrap,
            &JobInputs::Aggregate,
            &[(JobCircuit::Universal, root)],
            &worker,
        )?;
        seconds.push(start.elapsed().as_secs_f64());
    }
    let prove_wall_seconds = prove_start.elapsed().as_secs_f64();
    let prove_cpu_seconds = cpu_seconds() - cpu_start;
    bars.finish();

    let bytes = encode_proof(&root);
    let root_path = args.out.join("root.proof");
    std::fs::write(&root_path, &bytes)
        .with_context(|| format!("writing {}", root_path.display()))?;
    std::fs::write(
        args.out.join("header.json"),
        serde_json::to_string_pretty(&tree.header)?,
    )?;
    let key = circuits.aggregation.final_key();
    let verified = key.verify_bytes(&bytes)?;
    let block_statement = sheaf_rollup::block_statement(&tree.previous, &tree.header);
    if verified.header.statement != Digest::hash_digests(&[block_statement]) {
        anyhow::bail!("the root proves another statement than the block's");
    }

    let mut kernels: BTreeMap<String, KernelReport> = BTreeMap::new();
    for (job, s) in tree.jobs.iter().zip(&seconds) {
        let name = job.circuit.to_string();
        let rows_log2 = circuits.common(&job.circuit)?.degree_bits();
        let entry = kernels.entry(name.clone()).or_insert(KernelReport {
            circuit: name,
            rows_log2,
            proofs: 0,
            total_seconds: 0.0,
            mean_seconds: 0.0,
            slowest_seconds: 0.0,
        });
        entry.proofs += 1;
        entry.total_seconds += s;
        entry.slowest_seconds = entry.slowest_seconds.max(*s);
    }
    let mut kernels: Vec<KernelReport> = kernels.into_values().collect();
    for k in &mut kernels {
        k.mean_seconds = k.total_seconds / k.proofs as f64;
    }
    // Leaves first, then up the tree.
    let order = |c: &str| match c {
        c if c == format!("leaf:{TX_KIND}") => 0,
        c if c == format!("node:{TX_KIND}") => 1,
        "kernel:merge" => 2,
        "kernel:block" => 3,
        "universal" => 4,
        _ => 5,
    };
    kernels.sort_by_key(|k| order(&k.circuit));

    let summary = Summary {
        txs: args.txs,
        batch_size: args.batch_size,
        batches: args.txs.div_ceil(args.batch_size),
        arity,
        profile: args.circuits.profile.to_string(),
        proofs: seconds.len(),
        kernels,
        circuits_from_cache: circuits.aggregation.from_cache(),
        build_seconds,
        prove_wall_seconds,
        prove_cpu_seconds,
        critical_path_seconds: tree.critical_path(&seconds)
            + seconds.get(tree.jobs.len()).copied().unwrap_or(0.0),
        txs_per_cpu_second: args.txs as f64 / prove_cpu_seconds.max(f64::MIN_POSITIVE),
        peak_rss_bytes: peak_rss_bytes(),
        proof_bytes: bytes.len(),
        verify_ms: verified.verify_ms,
        root: verified.header,
        key_id: key.id(),
        block: tree.header,
        block_commitment: tree.header.commitment(),
        block_statement,
        root_proof: root_path,
    };
    write_summary(&args.out, &summary, args.json, print_summary)
}

fn print_summary(s: &Summary) {
    println!(
        "proved block {} of {} transactions ({} batches of ≤ {}, arity {}, {} profile): {} proofs, root verified",
        s.block.number, s.txs, s.batches, s.batch_size, s.arity, s.profile, s.proofs
    );
    println!(
        "circuits: {:.1} s ({})",
        s.build_seconds,
        if s.circuits_from_cache {
            "from cache"
        } else {
            "built"
        }
    );
    println!(
        "{:>14} {:>6} {:>7} {:>9} {:>9} {:>10}",
        "circuit", "rows", "proofs", "total s", "mean s", "slowest s"
    );
    for k in &s.kernels {
        println!(
            "{:>14} {:>6} {:>7} {:>9.2} {:>9.2} {:>10.2}",
            k.circuit,
            format!("2^{}", k.rows_log2),
            k.proofs,
            k.total_seconds,
            k.mean_seconds,
            k.slowest_seconds
        );
    }
    println!(
        "proving: {:.1} s wall, {:.1} s CPU ({:.2} transactions per CPU second); critical path {:.1} s",
        s.prove_wall_seconds, s.prove_cpu_seconds, s.txs_per_cpu_second, s.critical_path_seconds
    );
    println!(
        "peak RSS {}, root proof {} bytes, verify {:.2} ms",
        s.peak_rss_bytes
            .map(|b| format!("{:.0} MiB", mib(b)))
            .unwrap_or_else(|| "n/a".into()),
        s.proof_bytes,
        s.verify_ms
    );
    println!(
        "block {}: commitment {}, statement {}; root statement {}",
        s.block.number, s.block_commitment, s.block_statement, s.root.statement
    );
    println!("wrote {}", s.root_proof.display());
}
