//! `sheaf claim`: a prover redeems the rewards of the jobs it proved (seed 000's flow,
//! REFERENCE §5.1), on its own machine, in bounded memory.
//!
//! ```text
//!  1 circuits   GET /v1/circuits from the coordinator; load or build that circuit set (cache)
//!               and check its final key: claims verify with the network's one key
//!  2 jobs       GET /v1/claims/{worker_pk}: the key's proved jobs in finalized sequences, each
//!               with its commitment path (public data)
//!  3 nullifiers H(secret, sequence, position) per job; those the chain has spent are dropped
//!  4 per batch  prove each claim as the tree asks for it, aggregate depth first (at most
//!  (--batch)    `arity` proofs per level held), send one claim_rewards transaction, wait for
//!               its block, print what it paid
//! ```
//!
//! Ctrl-C stops between proofs and never leaves half a batch sent: a batch is one transaction,
//! all or nothing on chain. A rerun recomputes the nullifiers and skips what the chain has paid,
//! so it picks up where the last run stopped.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use clap::Args;
use serde::{Deserialize, Serialize};
use sheaf_chain::client::{ChainClient, DEFAULT_CHAIN_TIMEOUT};
use sheaf_chain::node::Event;
use sheaf_chain::tx::{Call, ClaimEntry};
use sheaf_chain::{Address, Amount};
use sheaf_circuits::claim::{ClaimInput, CLAIM_KIND};
use sheaf_circuits::{
    encode_proof, ArtifactCache, CircuitError, CircuitSet, Digest, JobInputs, TreePlan,
};
use sheaf_coordinator::claims::{ClaimableJob, ClaimsClient, MAX_CLAIMS_LIMIT};
use sheaf_prover::{check_circuits, load_lean_circuits, ProverKey};

use crate::circuit_args::default_cache_dir;
use crate::cmd::member::{parse_address, DEFAULT_CHAIN_URL};
use crate::cmd::prove_tree::prove_levels;
use crate::process_stats::{mib, peak_rss_bytes};
use crate::progress::spinner;

/// Claims per batch by default: the seed's app batches 16.
pub const DEFAULT_CLAIM_BATCH: u64 = 16;

/// Arguments of `claim`.
#[derive(Args, Debug)]
pub struct ClaimArgs {
    /// The base chain's JSON-RPC URL.
    #[arg(long, env = "SHEAF_CHAIN", default_value = DEFAULT_CHAIN_URL)]
    pub chain: String,
    /// Base URL of the coordinator the jobs were proved for.
    #[arg(long, env = "SHEAF_COORDINATOR")]
    pub coordinator: String,
    /// The prover's key file (from `sheaf keygen`): its worker secret proves the claims; its
    /// request key signs the chain transactions (it needs no balance).
    #[arg(long, env = "SHEAF_KEY")]
    pub key: PathBuf,
    /// The account paid: 64 hex characters, or a key file whose account it is.
    #[arg(long, value_parser = parse_address)]
    pub to: Address,
    /// Claims aggregated into one proof and one chain transaction.
    #[arg(long, default_value_t = DEFAULT_CLAIM_BATCH, value_parser = clap::value_parser!(u64).range(1..=sheaf_chain::settlement::MAX_CLAIMS_PER_BATCH as u64))]
    pub batch: u64,
    /// Proving threads (0: one per core).
    #[arg(long, env = "SHEAF_THREADS", default_value_t = 0)]
    pub threads: usize,
    /// Directory of built circuits, reused across runs.
    #[arg(long, env = "SHEAF_CACHE_DIR", default_value_os_t = default_cache_dir())]
    pub cache_dir: PathBuf,
    /// Seconds to wait for each batch's block.
    #[arg(long, env = "SHEAF_RECEIPT_WAIT_S", default_value_t = 60)]
    pub wait_s: u64,
    /// Print the report as one JSON object (and no progress).
    #[arg(long)]
    pub json: bool,
}

/// What a run did.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ClaimReport {
    /// The claimant's worker key.
    pub worker_pk: String,
    /// The account paid.
    pub exit: String,
    /// Proved jobs of the key in finalized sequences.
    pub jobs: usize,
    /// Of those, paid already (their nullifiers are spent).
    pub already_claimed: usize,
    /// Claimed by this run.
    pub claimed: usize,
    /// Their work units.
    pub units: u64,
    /// What this run was paid, in base units.
    pub amount: Amount,
    /// One per transaction.
    pub batches: Vec<BatchReport>,
    /// Peak resident memory of this process.
    pub peak_rss_bytes: u64,
    /// Wall seconds.
    pub seconds: f64,
}

/// One batch: one proof, one transaction.
#[derive(Debug, Serialize, Deserialize)]
pub struct BatchReport {
    /// Claims in it.
    pub claims: usize,
    /// Their work units.
    pub units: u64,
    /// What it paid the exit.
    pub amount: Amount,
    /// Its transaction.
    pub tx: String,
    /// The block that included it.
    pub block: u64,
    /// Seconds proving and aggregating.
    pub prove_seconds: f64,
}

/// Run `claim`.
pub fn run(args: ClaimArgs) -> anyhow::Result<()> {
    let key = ProverKey::read(&args.key)
        .with_context(|| format!("reading the key file {}", args.key.display()))?;
    let pool = Arc::new(sheaf_circuits::proving_pool(args.threads)?);
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        let watcher = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                watcher.store(true, Ordering::SeqCst);
            }
        });
        claim(&args, &key, pool, stop.clone()).await
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    if stop.load(Ordering::SeqCst) {
        eprintln!("stopped by ctrl-c; a rerun claims the rest");
        std::process::exit(130);
    }
    Ok(())
}

fn print_report(report: &ClaimReport) {
    println!(
        "worker {}: {} proved jobs in finalized sequences, {} paid before",
        report.worker_pk, report.jobs, report.already_claimed
    );
    for (i, batch) in report.batches.iter().enumerate() {
        println!(
            "  batch {}: {} claims, {} work units, paid {} (block {}, tx {}, proved in {:.1} s)",
            i + 1,
            batch.claims,
            batch.units,
            batch.amount,
            batch.block,
            batch.tx,
            batch.prove_seconds
        );
    }
    println!(
        "claimed {} jobs ({} work units): {} paid to {}; peak RSS {:.0} MiB",
        report.claimed,
        report.units,
        report.amount,
        report.exit,
        mib(report.peak_rss_bytes)
    );
}

async fn claim(
    args: &ClaimArgs,
    key: &ProverKey,
    pool: Arc<rayon::ThreadPool>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<ClaimReport> {
    let started = Instant::now();
    let worker_pk = key.worker_pk();
    let mut report = ClaimReport {
        worker_pk: worker_pk.to_string(),
        exit: args.to.to_string(),
        ..ClaimReport::default()
    };

    // 1. The network's circuits, as its coordinator names them.
    let step = spinner("preparing circuits (cached after the first run)", args.json);
    let claims_client = ClaimsClient::new(&args.coordinator)?;
    let spec = claims_client.circuits().await.with_context(|| {
        format!(
            "asking the coordinator at {} for its circuits",
            args.coordinator
        )
    })?;
    let cache = ArtifactCache::new(&args.cache_dir);
    let set = {
        let pool = pool.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<CircuitSet> {
            let catalog = sheaf_rollup::kernel::catalog();
            // Only the claim leaf, its leaf node and the universal node are held in full: a
            // claimant runs in a phone's memory.
            let set =
                pool.install(|| load_lean_circuits(&spec, &catalog, &cache, &[CLAIM_KIND]))?;
            check_circuits(&set, &spec)?;
            Ok(set)
        })
        .await??
    };
    step.finish_and_clear();
    let arity = set.aggregation.settings().arity;

    // 2. The key's proved jobs in finalized sequences.
    let step = spinner("fetching proved jobs", args.json);
    let mut jobs: Vec<ClaimableJob> = Vec::new();
    let mut after = None;
    loop {
        let page = claims_client
            .claimable(worker_pk, after, Some(MAX_CLAIMS_LIMIT))
            .await
            .with_context(|| format!("listing claimable jobs at {}", args.coordinator))?;
        jobs.extend(page.jobs);
        step.set_message(format!("fetching proved jobs: {}", jobs.len()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    step.finish_and_clear();
    // The paths are public data from the coordinator: each must climb to its root.
    for job in &jobs {
        ensure!(
            job.path.root(arity).ok() == Some(job.root) && job.path.worker_pk == worker_pk,
            "the coordinator served a path for {} that does not climb to its root",
            job.job
        );
    }
    report.jobs = jobs.len();

    // 3. Nullifiers; drop what the chain paid already.
    let step = spinner("checking the chain for claims paid already", args.json);
    let chain = ChainClient::with_timeout(args.chain.clone(), DEFAULT_CHAIN_TIMEOUT)?;
    let inputs: Vec<(ClaimInput, u64)> = jobs
        .iter()
        .map(|job: &ClaimableJob| {
            let input =
                ClaimInput::new(&key.worker, job.sequence, job.path.clone(), args.to, arity);
            (input, job.units)
        })
        .collect();
    let mut open = Vec::with_capacity(inputs.len());
    for chunk in inputs.chunks(sheaf_chain::rpc::MAX_NULLIFIERS_PER_QUERY) {
        let nullifiers: Vec<Digest> = chunk.iter().map(|(i, _)| i.nullifier).collect();
        let spent = chain
            .nullifiers_spent(&nullifiers)
            .await
            .with_context(|| format!("asking {} which claims are paid", args.chain))?;
        ensure!(
            spent.len() == chunk.len(),
            "the chain answered {} of {} nullifiers",
            spent.len(),
            chunk.len()
        );
        for (claim, spent) in chunk.iter().zip(spent) {
            if spent {
                report.already_claimed += 1;
            } else {
                open.push(claim.clone());
            }
        }
    }
    step.finish_and_clear();

    // 4. Batches: prove, aggregate, send, wait.
    let set = Arc::new(set);
    let batches = open.len().div_ceil(args.batch as usize);
    for (n, batch) in open.chunks(args.batch as usize).enumerate() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        if !args.json {
            eprintln!("batch {}/{batches}: proving {} claims", n + 1, batch.len());
        }
        let prove_started = Instant::now();
        let proof = {
            let (set, pool, stop) = (set.clone(), pool.clone(), stop.clone());
            let inputs: Vec<ClaimInput> = batch.iter().map(|(i, _)| i.clone()).collect();
            let worker = key.worker;
            let quiet = args.json;
            tokio::task::spawn_blocking(move || {
                pool.install(|| prove_batch(&set, &inputs, &worker, &stop, quiet))
            })
            .await?
        };
        let proof = match proof {
            Err(CircuitError::Cancelled) => break,
            other => other?,
        };
        let prove_seconds = prove_started.elapsed().as_secs_f64();
        let claims: Vec<ClaimEntry> = batch
            .iter()
            .map(|(input, _)| {
                let statement = input.statement(arity);
                ClaimEntry {
                    sequence: statement.sequence,
                    position: statement.position,
                    nullifier: statement.nullifier,
                    exit: statement.exit,
                }
            })
            .collect();
        let call = Call::ClaimRewards {
            arity: arity as u32,
            claims,
            proof: encode_proof(&proof),
        };
        let step = spinner(&format!("batch {}/{batches}: sending", n + 1), args.json);
        let hash = chain
            .send(&key.signing, call)
            .await
            .with_context(|| format!("sending batch {} to {}", n + 1, args.chain))?;
        let receipt = chain
            .wait_for_receipt(&hash, Duration::from_secs(args.wait_s))
            .await
            .with_context(|| {
                format!(
                    "waiting for batch {}'s transaction {hash}; a rerun sees whether it was paid",
                    n + 1
                )
            })?;
        step.finish_and_clear();
        if let Some(error) = receipt.error {
            bail!(
                "batch {} refused in block {}: {error}",
                n + 1,
                receipt.block
            );
        }
        let amount = receipt
            .events
            .iter()
            .filter_map(|event| match event {
                Event::Credited { account, amount } if *account == args.to => Some(*amount),
                _ => None,
            })
            .fold(Amount::ZERO, |sum, a| sum.saturating_add(a));
        let units = batch.iter().map(|(_, units)| units).sum();
        report.claimed += batch.len();
        report.units += units;
        report.amount = report.amount.saturating_add(amount);
        report.batches.push(BatchReport {
            claims: batch.len(),
            units,
            amount,
            tx: hash.to_string(),
            block: receipt.block,
            prove_seconds,
        });
    }
    report.peak_rss_bytes = peak_rss_bytes().unwrap_or(0);
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Prove `inputs`' claims one at a time as the tree asks for them and aggregate them, depth
/// first; [`CircuitError::Cancelled`] once `stop` is set.
fn prove_batch(
    set: &CircuitSet,
    inputs: &[ClaimInput],
    worker: &sheaf_circuits::WorkerSecret,
    stop: &AtomicBool,
    quiet: bool,
) -> sheaf_circuits::Result<sheaf_circuits::Proof> {
    let kind = set.kind(CLAIM_KIND)?;
    let plan = TreePlan::new(inputs.len(), set.aggregation.settings().arity)?;
    let mut leaf_proof = |i: usize| {
        if stop.load(Ordering::SeqCst) {
            return Err(CircuitError::Cancelled);
        }
        let fields = serde_json::to_value(&inputs[i])
            .map_err(|e| CircuitError::InvalidArgument(e.to_string()))?;
        let job = JobInputs::leaf(CLAIM_KIND, fields)
            .map_err(|e| CircuitError::InvalidArgument(e.to_string()))?;
        kind.prove_job(&job, worker)
    };
    let (root, _) = prove_levels(
        &set.aggregation,
        &kind.leaf_verifier(),
        &plan,
        *worker,
        &mut leaf_proof,
        quiet,
    )
    .map_err(|e| match e.downcast::<CircuitError>() {
        Ok(e) => e,
        Err(e) => CircuitError::Prove(format!("{e:#}")),
    })?;
    Ok(root)
}
