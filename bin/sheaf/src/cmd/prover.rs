//! `sheaf prover`: lease jobs from a coordinator, prove them and submit the proofs until
//! stopped.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use sheaf_circuits::ArtifactCache;
use sheaf_prover::{ProverConfig, ProverKey, ProverReport, DEFAULT_LEASE_WAIT_MS};

use crate::circuit_args::default_cache_dir;

/// Threads of the async runtime: it only moves requests; proving has its own pool.
const RUNTIME_THREADS: usize = 2;

/// Exit code when a second signal stops the prover in the middle of a job.
const EXIT_INTERRUPTED: i32 = 130;

/// Arguments of `prover`.
#[derive(Args, Debug)]
pub struct ProverArgs {
    /// Base URL of the coordinator (e.g. `http://127.0.0.1:7878`, the coordinator's default).
    #[arg(long, env = "SHEAF_COORDINATOR")]
    pub coordinator: String,
    /// The prover's key file (from `sheaf keygen`): its request key and worker secret.
    #[arg(long, env = "SHEAF_KEY")]
    pub key: PathBuf,
    /// Proving threads (0: one per core).
    #[arg(long, env = "SHEAF_THREADS", default_value_t = 0)]
    pub threads: usize,
    /// Exit after this many accepted proofs (default: run until stopped).
    #[arg(long, env = "SHEAF_MAX_JOBS")]
    pub max_jobs: Option<u64>,
    /// Long-poll wait of each lease request in ms, capped by the coordinator's maximum.
    #[arg(long, env = "SHEAF_LEASE_WAIT_MS", default_value_t = DEFAULT_LEASE_WAIT_MS)]
    pub lease_wait_ms: u64,
    /// Directory of built circuits, reused across runs.
    #[arg(long, env = "SHEAF_CACHE_DIR", default_value_os_t = default_cache_dir())]
    pub cache_dir: PathBuf,
    /// Build circuits fresh and do not touch the cache.
    #[arg(long, env = "SHEAF_NO_CACHE")]
    pub no_cache: bool,
    /// Print the report as one JSON line at exit.
    #[arg(long)]
    pub json: bool,
}

/// Run the prover until ctrl-c or SIGTERM (the job in hand is finished first; a second signal
/// exits at once) or until `--max-jobs` proofs are accepted.
pub fn run(args: ProverArgs) -> anyhow::Result<()> {
    let key = ProverKey::read(&args.key).context("cannot read the prover key")?;
    let config = ProverConfig {
        coordinator: args.coordinator.clone(),
        key,
        threads: args.threads,
        max_jobs: args.max_jobs,
        cache: (!args.no_cache).then(|| ArtifactCache::new(&args.cache_dir)),
        lease_wait_ms: args.lease_wait_ms,
        kinds: sheaf_rollup::kernel::catalog(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(RUNTIME_THREADS)
        .thread_name("sheaf-prover")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (stop, stopped) = tokio::sync::oneshot::channel();
    runtime.spawn(watch_signals(stop));
    let result = runtime.block_on(sheaf_prover::run(config, async {
        let _ = stopped.await;
    }));
    // A circuit build cut short by shutdown may still be running: do not wait for it.
    runtime.shutdown_background();
    let report = result.with_context(|| format!("prover of {}", args.coordinator))?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", summary(&report));
    }
    Ok(())
}

/// One line for people.
fn summary(r: &ProverReport) -> String {
    let circuits = if r.circuits_seconds > 0.0 {
        let how = if r.circuits_from_cache {
            "loaded from cache"
        } else {
            "built"
        };
        format!("circuits {how} in {:.1} s", r.circuits_seconds)
    } else {
        "circuits not loaded".to_owned()
    };
    let outside = r
        .outside_proving_ms
        .map(|q| {
            format!(
                "; outside proving per job p50 {} ms, p99 {} ms",
                q.p50, q.p99
            )
        })
        .unwrap_or_default();
    format!(
        "{} jobs proved, {} abandoned, {} rejected; {:.1} s proving in {:.1} s; {circuits}{outside}",
        r.jobs_proved, r.jobs_abandoned, r.submissions_rejected, r.prove_seconds, r.wall_seconds,
    )
}

/// At the first ctrl-c or SIGTERM, ask the prover to stop; at the second, exit at once.
async fn watch_signals(stop: tokio::sync::oneshot::Sender<()>) {
    signal().await;
    tracing::info!(
        "stopping once the job in hand, if any, is submitted (signal again to exit now)"
    );
    let _ = stop.send(());
    signal().await;
    tracing::warn!("exiting now; the current job's lease will expire");
    std::process::exit(EXIT_INTERRUPTED);
}

/// Completes at the next ctrl-c or SIGTERM; never, if signals cannot be listened to.
async fn signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    () = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => ctrl_c.await,
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}
