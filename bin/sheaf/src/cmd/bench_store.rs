//! `sheaf bench store`: how many lease→submit cycles per second the store sustains, with
//! proof-sized blobs and no proving, for each of several client counts.

use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;
use sheaf_store::bench::{
    run_store_bench, BenchLength, StoreBenchConfig, StoreBenchReport, DEFAULT_BENCH_BLOB_BYTES,
    DEFAULT_BENCH_CYCLES_PER_CLIENT,
};

use crate::cmd::coordinator::{open_store_with, ProofStoreArg};

/// Client counts `bench store` runs unless told otherwise: one client (latency-bound) and
/// eight (throughput-bound).
pub const DEFAULT_STORE_BENCH_CLIENTS: [usize; 2] = [1, 8];

/// Arguments of `bench store`.
#[derive(Args, Debug)]
pub struct BenchStoreArgs {
    /// Store URL to load: `sqlite://PATH` (created if missing) or `postgres://…` (the database
    /// must exist). It must hold no jobs but the bench's own, which it leaves behind. Unset, a
    /// temporary SQLite file is used and removed.
    #[arg(long, env = "SHEAF_DB")]
    pub db: Option<String>,
    #[command(flatten)]
    pub proof_store: ProofStoreArg,
    /// Client counts to run, one after the other on the same store.
    #[arg(long, env = "SHEAF_BENCH_CLIENTS", value_delimiter = ',', default_values_t = DEFAULT_STORE_BENCH_CLIENTS)]
    pub clients: Vec<usize>,
    /// Cycles each client runs (all jobs are planned before the clock starts).
    #[arg(long, env = "SHEAF_BENCH_CYCLES", default_value_t = DEFAULT_BENCH_CYCLES_PER_CLIENT, conflicts_with = "seconds")]
    pub cycles: u64,
    /// Run each client count for this many seconds instead of a number of cycles (jobs are
    /// then planned as they run out, inside the measured time).
    #[arg(long, env = "SHEAF_BENCH_SECONDS")]
    pub seconds: Option<f64>,
    /// Size of each submitted blob in bytes (random, distinct per cycle); the default is about
    /// a real root proof.
    #[arg(long, env = "SHEAF_BENCH_BLOB_BYTES", default_value_t = DEFAULT_BENCH_BLOB_BYTES)]
    pub blob_bytes: usize,
    /// Print the results as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Everything `bench store --json` prints.
#[derive(Serialize)]
struct Summary {
    engine: &'static str,
    /// Where the blobs went: a directory, a bucket, or `database`.
    proof_store: String,
    blob_bytes: usize,
    length: BenchLength,
    runs: Vec<StoreBenchReport>,
}

/// Runs `bench store`.
pub fn run(args: BenchStoreArgs) -> anyhow::Result<()> {
    let length = match args.seconds {
        Some(seconds) if seconds.is_finite() && seconds > 0.0 => {
            BenchLength::Duration(Duration::from_secs_f64(seconds))
        }
        Some(seconds) => bail!("--seconds must be positive, got {seconds}"),
        None => BenchLength::CyclesPerClient(args.cycles),
    };
    // The temporary directory is kept until the end of the run: dropping it removes the store.
    let (url, _scratch) = match args.db {
        Some(url) => (url, None),
        None => {
            let dir = tempfile::tempdir().context("creating a temporary store directory")?;
            let url = format!("sqlite://{}", dir.path().join("bench.db").display());
            (url, Some(dir))
        }
    };
    let engine = if url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgres"
    };

    let runtime = tokio::runtime::Runtime::new()?;
    let (runs, proof_store) = runtime.block_on(async {
        let store = open_store_with(&url, &args.proof_store).await?;
        let proof_store = store
            .proof_blobs()
            .map_or("database".to_owned(), |b| b.location().to_owned());
        let mut runs = Vec::with_capacity(args.clients.len());
        for &clients in &args.clients {
            let cfg = StoreBenchConfig {
                clients,
                length,
                blob_bytes: args.blob_bytes,
            };
            let report = run_store_bench(&store, cfg)
                .await
                .with_context(|| format!("store bench with {clients} clients"))?;
            if !args.json {
                if runs.is_empty() {
                    print_header(engine, &proof_store, args.blob_bytes, length);
                }
                print_row(&report);
            }
            runs.push(report);
        }
        store.close().await;
        anyhow::Ok((runs, proof_store))
    })?;
    if args.json {
        let summary = Summary {
            engine,
            proof_store,
            blob_bytes: args.blob_bytes,
            length,
            runs,
        };
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    Ok(())
}

fn print_header(engine: &str, proof_store: &str, blob_bytes: usize, length: BenchLength) {
    let length = match length {
        BenchLength::CyclesPerClient(cycles) => format!("{cycles} cycles per client"),
        BenchLength::Duration(duration) => format!("{:.1} s per run", duration.as_secs_f64()),
    };
    println!("store bench: {engine}, {blob_bytes}-byte blobs in {proof_store}, {length}");
    println!(
        "{:>8} {:>8} {:>9} {:>10} {:>8} {:>8}",
        "clients", "cycles", "seconds", "cycles/s", "p50 ms", "p99 ms"
    );
}

fn print_row(report: &StoreBenchReport) {
    println!(
        "{:>8} {:>8} {:>9.2} {:>10.0} {:>8.2} {:>8.2}",
        report.clients,
        report.cycles,
        report.seconds,
        report.cycles_per_second,
        report.p50_ms,
        report.p99_ms
    );
}
