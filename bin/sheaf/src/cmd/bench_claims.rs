//! `sheaf bench claims`: a prover's reward claims proved and aggregated in one process, as a
//! phone would (seed 000's mobile app), with Sheaf's tree against the seed's flat circuit.
//!
//! Both sides prove the same claims (one prover's `--claims` jobs of a synthetic finalized
//! sequence, the same inputs) and aggregate them: Sheaf's side with the network's circuit set
//! (the work and claim kinds under the one final key) depth first, so it holds at most `arity`
//! proofs per level; the flat side with one circuit verifying them all at once, so it holds
//! them all. Each side runs in its own child process so its peak RSS is its own; cold sides
//! build their circuits, warm sides load them from the cache the cold side wrote.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, ensure, Context};
use clap::Args;
use serde::Serialize;
use sheaf_circuits::claim::{batch_statement, plan_path, ClaimInput, ClaimLeaf, CLAIM_KIND};
use sheaf_circuits::config::seed_aggregator_config;
use sheaf_circuits::flat::{flat_aggregator, store_flat_aggregator};
use sheaf_circuits::work::WORK_LEAF_KIND;
use sheaf_circuits::{
    encode_proof, AggregationSettings, ArtifactCache, Child, CircuitSet, Digest, KindCatalog,
    LeafCircuit, Profile, Proof, TreePlan, WorkerSecret, DEFAULT_ARITY,
};
use sheaf_types::{Address, SequenceId};

use crate::circuit_args::DEFAULT_LEAF_ROWS_LOG2;
use crate::cmd::bench::{measured, median_ms, median_report, tempfile_dir, Side, SideReport};
use crate::cmd::prove_tree::prove_levels;
use crate::process_stats::{cpu_seconds, mib};

/// The claimant's phone is told to stay under this (iOS stops apps without the
/// increased-memory entitlement at about 1.4 GB; the seed's app peaked at 2.3 GB for 16).
const PEAK_TARGET_MIB: f64 = 512.0;

/// Parameters both the parent and each side need.
#[derive(Args, Debug, Clone)]
pub struct ClaimsParams {
    /// Claims to prove and aggregate (the seed's app batches 16).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub claims: u32,
    /// Children per Sheaf node.
    #[arg(long, default_value_t = DEFAULT_ARITY)]
    pub arity: usize,
    /// Proving threads per side (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// Arguments of `bench claims`.
#[derive(Args, Debug)]
pub struct ClaimsArgs {
    #[command(flatten)]
    pub params: ClaimsParams,
    /// Sides to run, in order.
    #[arg(long, value_delimiter = ',', default_values_t = [Side::BaselineCold, Side::SheafCold, Side::BaselineWarm, Side::SheafWarm])]
    pub sides: Vec<Side>,
    /// Run the sides this many times (in turn) and report each figure's median.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=9))]
    pub repeat: u32,
    /// Work directory (circuit caches); a temporary one is used and removed if not given.
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Print the results as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `bench claims-side`.
#[derive(Args, Debug)]
pub struct ClaimsSideArgs {
    #[command(flatten)]
    pub params: ClaimsParams,
    /// Which side.
    #[arg(long)]
    pub side: Side,
    /// The work directory of `bench claims`.
    #[arg(long)]
    pub dir: PathBuf,
}

/// Run `bench claims`.
pub fn run(args: ClaimsArgs) -> anyhow::Result<()> {
    let temp;
    let dir = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile_dir()?;
            temp.path().to_path_buf()
        }
    };
    let p = &args.params;
    let exe = std::env::current_exe().context("locating the sheaf binary")?;
    let mut runs: Vec<Vec<SideReport>> = vec![Vec::new(); args.sides.len()];
    for (side, run) in (0..args.repeat).flat_map(|_| args.sides.iter().zip(0..)) {
        if !args.json {
            eprintln!("running {side} …");
        }
        let output = Command::new(&exe)
            .args(["bench", "claims-side", "--side", &side.to_string(), "--dir"])
            .arg(&dir)
            .args(["--claims", &p.claims.to_string()])
            .args(["--arity", &p.arity.to_string()])
            .args(["--threads", &p.threads.to_string()])
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
    let sides: Vec<SideReport> = runs.into_iter().map(median_report).collect();
    let comparison = Comparison::new(p, sides);
    if args.json {
        println!("{}", serde_json::to_string(&comparison)?);
    } else {
        comparison.print();
    }
    Ok(())
}

/// Run one side in this process and print its report as JSON.
pub fn side(args: ClaimsSideArgs) -> anyhow::Result<()> {
    let pool = sheaf_circuits::proving_pool(args.params.threads)?;
    let report = pool.install(|| run_side(&args))?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// The claimant and the claims: it proved the first `claims` leaves of a sequence of twice as
/// many, every other job was someone else's.
struct Claimant {
    secret: WorkerSecret,
    inputs: Vec<ClaimInput>,
}

fn claimant(p: &ClaimsParams) -> anyhow::Result<Claimant> {
    let secret = WorkerSecret::from_digest(Digest([7, 7, 7, 7]));
    let own = secret.worker_pk();
    let claims = p.claims as usize;
    let plan = TreePlan::new(2 * claims, p.arity)?;
    let worker = |level: usize, index: usize| match level {
        0 if index < claims => own,
        _ => WorkerSecret::from_digest(Digest([level as u64, index as u64, 1, 2])).worker_pk(),
    };
    let inputs = (0..claims)
        .map(|i| {
            let path = plan_path(&plan, 0, i, worker)?;
            Ok(ClaimInput::new(
                &secret,
                SequenceId(1),
                path,
                Address([9; 32]),
                p.arity,
            ))
        })
        .collect::<sheaf_circuits::Result<_>>()?;
    Ok(Claimant { secret, inputs })
}

fn run_side(args: &ClaimsSideArgs) -> anyhow::Result<SideReport> {
    let p = &args.params;
    let claimant = claimant(p)?;
    let cache = ArtifactCache::new(args.dir.join(if args.side.is_baseline() {
        "cache-baseline"
    } else {
        "cache-sheaf"
    }));
    if args.side.is_warm() {
        ensure!(
            cache.dir().exists(),
            "no cached circuits for {}: run its cold side first",
            args.side
        );
    } else {
        let _ = std::fs::remove_dir_all(cache.dir());
    }
    let start = Instant::now();
    let cpu_start = cpu_seconds();

    if args.side.is_baseline() {
        // The seed's app: every claim proved and held, then one flat circuit over them all.
        let leaf =
            ClaimLeaf::load_or_build(Profile::Standard.leaf_config(), p.arity, Some(&cache))?;
        let verifier = leaf.verifier();
        let config = seed_aggregator_config();
        let n = claimant.inputs.len();
        let (flat, _) = flat_aggregator(
            config.clone(),
            &verifier,
            n,
            args.side.is_warm().then_some(&cache),
        )?;
        let circuit_seconds = start.elapsed().as_secs_f64();
        let prove_start = Instant::now();
        let proofs = claimant
            .inputs
            .iter()
            .map(|input| leaf.prove(input, &claimant.secret))
            .collect::<sheaf_circuits::Result<Vec<Proof>>>()?;
        let children: Vec<Child<'_>> = proofs
            .iter()
            .map(|proof| Child {
                proof,
                key: &verifier.verifier_only,
            })
            .collect();
        let whitelist = sheaf_circuits::whitelist::Whitelist::new(vec![Default::default()])?;
        let proof = flat.prove(&children, &claimant.secret, &whitelist)?;
        let prove_seconds = prove_start.elapsed().as_secs_f64();
        let report = measured(args.side, start, cpu_start, circuit_seconds, prove_seconds);
        let verify_ms = median_ms(|| flat.data.verify(proof.clone()))?;
        if !args.side.is_warm() {
            store_flat_aggregator(&flat, &config, &verifier, &cache);
        }
        return Ok(SideReport {
            critical_path_seconds: prove_seconds,
            proofs: 1,
            rows_log2: flat.data.common.degree_bits(),
            proof_bytes: encode_proof(&proof).len(),
            verify_ms,
            ..report
        });
    }

    // Sheaf: the network's set, claims proved one at a time as the tree asks for them.
    let settings = AggregationSettings {
        profile: Profile::Standard,
        arity: p.arity,
        final_zk: false,
        final_compact: false,
    };
    // Cold: the network's whole set, built and stored once. Warm: the claimant's lean set.
    let set = match args.side.is_warm() {
        true => CircuitSet::load_lean(
            settings,
            &KindCatalog::standard(),
            [WORK_LEAF_KIND, CLAIM_KIND],
            DEFAULT_LEAF_ROWS_LOG2,
            &[],
            &cache,
            &[CLAIM_KIND],
        )?,
        false => CircuitSet::load_or_build(settings, DEFAULT_LEAF_ROWS_LOG2, Some(&cache))?,
    };
    let circuit_seconds = start.elapsed().as_secs_f64();
    let kind = set.kind(CLAIM_KIND)?;
    let leaf_key = kind.leaf_verifier();
    let plan = TreePlan::new(claimant.inputs.len(), p.arity)?;
    let prove_start = Instant::now();
    let mut leaf_proof = |i: usize| {
        let input = serde_json::to_value(&claimant.inputs[i]).expect("claims serialize");
        let inputs = sheaf_circuits::JobInputs::leaf(CLAIM_KIND, input)
            .map_err(|e| sheaf_circuits::CircuitError::InvalidArgument(e.to_string()))?;
        kind.prove_job(&inputs, &claimant.secret)
    };
    let (root, levels) = prove_levels(
        &set.aggregation,
        &leaf_key,
        &plan,
        claimant.secret,
        &mut leaf_proof,
        true,
    )?;
    let prove_seconds = prove_start.elapsed().as_secs_f64();
    let report = measured(args.side, start, cpu_start, circuit_seconds, prove_seconds);
    let key = set.aggregation.final_key();
    let bytes = encode_proof(&root);
    let verified = key.verify_bytes(&bytes)?;
    let statements: Vec<_> = claimant
        .inputs
        .iter()
        .map(|input| input.statement(p.arity))
        .collect();
    ensure!(
        verified.header.statement == batch_statement(&statements, p.arity)?,
        "the aggregated claims do not state the batch the chain would recompute"
    );
    let verify_ms = median_ms(|| Ok(key.verify_bytes(&bytes).map(drop)?))?;
    Ok(SideReport {
        critical_path_seconds: levels.iter().map(|l| l.slowest_node_seconds).sum(),
        proofs: levels.iter().map(|l| l.nodes).sum(),
        rows_log2: key.degree_bits(),
        proof_bytes: bytes.len(),
        verify_ms,
        ..report
    })
}

/// The table and ratios of a run.
#[derive(Debug, Serialize)]
struct Comparison {
    claims: u32,
    arity: usize,
    threads: usize,
    sides: Vec<SideReport>,
    ratios: Vec<Ratio>,
}

#[derive(Debug, Serialize)]
struct Ratio {
    what: String,
    value: f64,
    target: String,
    met: Option<bool>,
}

impl Comparison {
    fn new(p: &ClaimsParams, sides: Vec<SideReport>) -> Self {
        let get = |s: Side| sides.iter().find(|r| r.side == s);
        let mut ratios = Vec::new();
        for (start, baseline, sheaf) in [
            ("cold", Side::BaselineCold, Side::SheafCold),
            ("warm", Side::BaselineWarm, Side::SheafWarm),
        ] {
            if let Some(s) = get(sheaf) {
                let peak = mib(s.peak_rss_bytes);
                ratios.push(Ratio {
                    what: format!("sheaf peak RSS MiB ({start})"),
                    value: peak,
                    target: format!("<= {PEAK_TARGET_MIB}"),
                    met: Some(peak <= PEAK_TARGET_MIB),
                });
            }
            let (Some(b), Some(s)) = (get(baseline), get(sheaf)) else {
                continue;
            };
            let rss = s.peak_rss_bytes as f64 / b.peak_rss_bytes as f64;
            ratios.push(Ratio {
                what: format!("sheaf peak RSS / flat ({start})"),
                value: rss,
                target: "<= 0.25".into(),
                met: Some(rss <= 0.25),
            });
            ratios.push(Ratio {
                what: format!("sheaf wall / flat ({start})"),
                value: s.wall_seconds / b.wall_seconds,
                target: "reported".into(),
                met: None,
            });
        }
        Comparison {
            claims: p.claims,
            arity: p.arity,
            threads: p.threads,
            sides,
            ratios,
        }
    }

    fn print(&self) {
        println!(
            "{} claims, arity {}, {} proving threads per side (0: one per core)",
            self.claims, self.arity, self.threads
        );
        println!(
            "{:<14} {:>9} {:>8} {:>8} {:>9} {:>8} {:>7} {:>6} {:>9} {:>9}",
            "side",
            "RSS MiB",
            "wall s",
            "CPU s",
            "circuit s",
            "prove s",
            "proofs",
            "rows",
            "proof B",
            "verify ms"
        );
        for r in &self.sides {
            println!(
                "{:<14} {:>9.0} {:>8.1} {:>8.1} {:>9.1} {:>8.1} {:>7} {:>6} {:>9} {:>9.2}",
                r.side.to_string(),
                mib(r.peak_rss_bytes),
                r.wall_seconds,
                r.cpu_seconds,
                r.circuit_seconds,
                r.prove_seconds,
                r.proofs,
                format!("2^{}", r.rows_log2),
                r.proof_bytes,
                r.verify_ms
            );
        }
        for r in &self.ratios {
            let verdict = match r.met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "",
            };
            println!(
                "{:<36} {:>8.3}  target {:<8} {verdict}",
                r.what, r.value, r.target
            );
        }
    }
}
