//! `sheaf bench console`: what the live console's viewers cost the coordinator.
//!
//! A real coordinator (store on a temporary SQLite file, its console publisher, its HTTP
//! server) in this process, on threads named `coordinator`, and the viewers (HTTP clients
//! reading `/ui/events`) in a child process (`sheaf bench console-viewers`), so this process's
//! memory is the coordinator's. A churn task on the coordinator's
//! runtime leases and requeues a job every `--churn-ms`, so the trees change all the time and
//! every console interval makes a new snapshot for every viewer: the worst steady state. The
//! run is measured with no viewer, then with `--viewers`: the CPU of the coordinator's threads
//! (and SQLite's workers), and this process's resident memory.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use sheaf_coordinator::{Coordinator, CoordinatorConfig};
use sheaf_store::{SequenceId, Store};

use crate::circuit_args::CircuitArgs;
use crate::cmd::coordinator::load_circuits;
use crate::process_stats::{cpu_seconds_since, mib, rss_bytes, thread_cpu_seconds};

/// Thread name of the coordinator's runtime.
const SERVER_THREADS: &str = "coordinator";
/// SQLite's connection workers (sqlx names them `sqlx-sqlite-worker-N`), the store's share.
const SQLITE_THREADS: &str = "sqlx-sqlite";

/// Waited before the first phase, once the coordinator serves.
const SETTLE: Duration = Duration::from_secs(10);

/// Arguments of `bench console`.
#[derive(Args, Debug)]
pub struct BenchConsoleArgs {
    /// Viewers (event streams) of the measured phase; the first phase has none.
    #[arg(long, default_value_t = 100)]
    pub viewers: usize,
    /// Seconds each phase is measured (after 3 s of warm-up).
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Sequences planned, each with its tree shown.
    #[arg(long, default_value_t = 16)]
    pub sequences: u64,
    /// Leaves per sequence (a binary tree: about twice as many jobs).
    #[arg(long, default_value_t = 32)]
    pub leaves: usize,
    /// A job is leased (and, 8 leases later, put back) this often, in ms.
    #[arg(long, default_value_t = 100)]
    pub churn_ms: u64,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub circuits: CircuitArgs,
}

/// Arguments of `bench console-viewers` (the viewers' side of `bench console`).
#[derive(Args, Debug)]
pub struct ConsoleViewersArgs {
    /// The coordinator's URL.
    #[arg(long)]
    pub url: String,
    /// Event streams to open.
    #[arg(long)]
    pub viewers: usize,
}

/// One measured phase.
#[derive(Debug, Serialize)]
struct Phase {
    viewers: usize,
    seconds: f64,
    /// CPU of the coordinator's threads and SQLite's workers, in cores.
    coordinator_cpu_cores: f64,
    /// Mean and peak resident memory of the process during the phase.
    rss_mean_mib: f64,
    rss_peak_mib: f64,
    /// Snapshots each viewer received per second, on average.
    snapshots_per_viewer_per_s: f64,
    /// Bytes each viewer received per second, on average.
    bytes_per_viewer_per_s: f64,
}

/// What `bench console` reports.
#[derive(Debug, Serialize)]
struct ConsoleReport {
    jobs: usize,
    snapshot_bytes: usize,
    console_interval_ms: u64,
    phases: Vec<Phase>,
    extra_cpu_cores: f64,
    extra_rss_mib: f64,
}

/// What the viewers read, together.
#[derive(Default)]
struct Received {
    bytes: AtomicU64,
    snapshots: AtomicU64,
    last_size: AtomicU64,
}

/// Runs `bench console`.
pub fn run(args: BenchConsoleArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.seconds > 0 && args.sequences > 0 && args.leaves > 0 && args.churn_ms > 0,
        "--seconds, --sequences, --leaves and --churn-ms must be positive"
    );
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(SERVER_THREADS)
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir().context("a temporary store directory")?;
    let config = CoordinatorConfig {
        console_max_viewers: args.viewers.max(1),
        ..CoordinatorConfig::default()
    };
    let interval_ms = config.console_interval.as_millis() as u64;
    let (url, jobs, stop) = server.block_on(start(&args, dir.path(), config))?;
    // Loading the circuits leaves memory and threads behind for a while: let them go first.
    std::thread::sleep(SETTLE);

    let mut phases = Vec::new();
    let mut snapshot_bytes = 0;
    for count in [0, args.viewers] {
        let received = Arc::new(Received::default());
        let mut child = (count > 0)
            .then(|| spawn_viewers(&url, count, received.clone()))
            .transpose()?;
        std::thread::sleep(Duration::from_secs(3));
        let (bytes0, snaps0) = (
            received.bytes.load(Ordering::Relaxed),
            received.snapshots.load(Ordering::Relaxed),
        );
        let cpu0 = thread_cpu_seconds(&[SERVER_THREADS, SQLITE_THREADS]);
        let started = Instant::now();
        let mut rss = Vec::new();
        while started.elapsed() < Duration::from_secs(args.seconds) {
            rss.extend(rss_bytes());
            std::thread::sleep(Duration::from_millis(250));
        }
        let seconds = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds_since(
            &cpu0,
            &thread_cpu_seconds(&[SERVER_THREADS, SQLITE_THREADS]),
        );
        let per_viewer = |n: u64| n as f64 / seconds / count.max(1) as f64;
        phases.push(Phase {
            viewers: count,
            seconds,
            coordinator_cpu_cores: cpu / seconds,
            rss_mean_mib: mib(rss.iter().sum::<u64>() / rss.len().max(1) as u64),
            rss_peak_mib: mib(rss.iter().copied().max().unwrap_or(0)),
            snapshots_per_viewer_per_s: per_viewer(
                received.snapshots.load(Ordering::Relaxed) - snaps0,
            ),
            bytes_per_viewer_per_s: per_viewer(received.bytes.load(Ordering::Relaxed) - bytes0),
        });
        snapshot_bytes = snapshot_bytes.max(received.last_size.load(Ordering::Relaxed) as usize);
        if let Some(child) = child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let _ = stop.send(());
    server.shutdown_timeout(Duration::from_secs(5));
    let report = ConsoleReport {
        jobs,
        snapshot_bytes,
        console_interval_ms: interval_ms,
        extra_cpu_cores: phases[1].coordinator_cpu_cores - phases[0].coordinator_cpu_cores,
        extra_rss_mib: phases[1].rss_mean_mib - phases[0].rss_mean_mib,
        phases,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

/// The coordinator, its planned sequences and the churn: its URL, its jobs, and what stops it.
async fn start(
    args: &BenchConsoleArgs,
    dir: &std::path::Path,
    config: CoordinatorConfig,
) -> anyhow::Result<(String, usize, tokio::sync::oneshot::Sender<()>)> {
    let circuits = load_circuits(&args.circuits, args.json).await?;
    let store = Store::open_data_dir(dir).await?;
    let coordinator = Arc::new(
        Coordinator::new(
            store.clone(),
            circuits,
            args.circuits.leaf_rows_log2,
            config,
            None,
        )
        .await?,
    );
    for id in 1..=args.sequences {
        coordinator.plan(SequenceId(id), args.leaves).await?;
    }
    let jobs = store
        .list_jobs(sheaf_store::JobFilter::default())
        .await?
        .len();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(sheaf_coordinator::serve(
        coordinator.clone(),
        listener,
        async {
            let _ = stopped.await;
        },
    ));
    tokio::spawn(churn(store, Duration::from_millis(args.churn_ms)));
    Ok((url, jobs, stop))
}

/// Leases a job every `period` and puts the lease 8 before it back, forever.
async fn churn(store: Store, period: Duration) {
    let mut held = VecDeque::new();
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        let now = sheaf_types::clock::now_ms();
        match store.lease_next_job("bench-churn", now, 600_000).await {
            Ok(Some(lease)) => held.push_back(lease.job),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "churn lease"),
        }
        if held.len() > 8 || (!held.is_empty() && store.has_ready_job().await.ok() == Some(false)) {
            if let Some(job) = held.pop_front() {
                if let Err(e) = store.requeue_job(job).await {
                    tracing::warn!(error = %e, "churn requeue");
                }
            }
        }
    }
}

/// Starts `count` viewers in a child process; a thread copies what they report into
/// `received` until the child ends.
fn spawn_viewers(
    url: &str,
    count: usize,
    received: Arc<Received>,
) -> anyhow::Result<std::process::Child> {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["bench", "console-viewers", "--url", url, "--viewers"])
        .arg(count.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting the viewers' process")?;
    let stdout = child.stdout.take().context("the viewers' output")?;
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            let numbers: Vec<u64> = line
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect();
            if let [bytes, snapshots, last_size] = numbers[..] {
                received.bytes.store(bytes, Ordering::Relaxed);
                received.snapshots.store(snapshots, Ordering::Relaxed);
                received.last_size.store(last_size, Ordering::Relaxed);
            }
        }
    });
    Ok(child)
}

/// Runs `bench console-viewers`: opens the streams and prints, every 250 ms, the bytes and
/// snapshots received so far and the last snapshot's size, until killed.
pub fn viewers(args: ConsoleViewersArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let received = Arc::new(Received::default());
        for _ in 0..args.viewers {
            tokio::spawn(view(args.url.clone(), received.clone()));
        }
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            println!(
                "{} {} {}",
                received.bytes.load(Ordering::Relaxed),
                received.snapshots.load(Ordering::Relaxed),
                received.last_size.load(Ordering::Relaxed)
            );
        }
    })
}

/// One viewer: reads the event stream, counting bytes and snapshots, until the process ends.
async fn view(url: String, received: Arc<Received>) {
    let http = reqwest::Client::new();
    let Ok(mut response) = http.get(format!("{url}/ui/events")).send().await else {
        return;
    };
    let mut event = 0u64;
    while let Ok(Some(chunk)) = response.chunk().await {
        received
            .bytes
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        event += chunk.len() as u64;
        let ends = chunk.windows(2).filter(|w| w == b"\n\n").count() as u64;
        if ends > 0 {
            received.snapshots.fetch_add(ends, Ordering::Relaxed);
            received.last_size.store(event / ends, Ordering::Relaxed);
            event = 0;
        }
    }
}

fn print_report(report: &ConsoleReport) {
    println!(
        "console: {} jobs shown, snapshot {} bytes, a new one every {} ms (churn)",
        report.jobs, report.snapshot_bytes, report.console_interval_ms
    );
    println!(
        "{:>8} {:>18} {:>14} {:>14} {:>22} {:>20}",
        "viewers",
        "coordinator CPU",
        "RSS mean MiB",
        "RSS peak MiB",
        "snapshots/viewer/s",
        "bytes/viewer/s"
    );
    for p in &report.phases {
        println!(
            "{:>8} {:>17.1}% {:>14.1} {:>14.1} {:>22.2} {:>20.0}",
            p.viewers,
            100.0 * p.coordinator_cpu_cores,
            p.rss_mean_mib,
            p.rss_peak_mib,
            p.snapshots_per_viewer_per_s,
            p.bytes_per_viewer_per_s
        );
    }
    println!(
        "{} viewers cost the coordinator {:.1}% of a core and {:.1} MiB more",
        report.phases.last().map_or(0, |p| p.viewers),
        100.0 * report.extra_cpu_cores,
        report.extra_rss_mib
    );
}
