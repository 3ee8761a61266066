//! `sheaf jobs`: the operator's view of a coordinator's store — list and show jobs, requeue a
//! dead or stuck one (or every dead job of a sequence), cancel one.

use std::io::Write as _;

use sheaf_types::clock::now_ms;

use anyhow::{bail, Context};
use clap::{ArgGroup, Args, Subcommand};
use serde::Serialize;
use sheaf_store::{Job, JobCircuit, JobFilter, JobId, JobStatus, SequenceId, Store};

use crate::cmd::coordinator::{redact_url, DEFAULT_DB};
use crate::table::{write_table, Align};

/// The coordinator store an operator command works on.
#[derive(Args, Debug)]
pub struct StoreUrl {
    /// Store URL: `sqlite://PATH` (which must exist) or `postgres://…`.
    #[arg(long, env = "SHEAF_DB", default_value = DEFAULT_DB, global = true)]
    pub db: String,
}

impl StoreUrl {
    /// Connects to the store, which must already exist.
    pub async fn open(&self) -> anyhow::Result<Store> {
        open_existing(&self.db).await
    }
}

/// Arguments of `jobs`.
#[derive(Args, Debug)]
pub struct JobsArgs {
    #[command(flatten)]
    pub store: StoreUrl,
    #[command(subcommand)]
    pub command: JobsCommand,
}

/// What to do with the jobs.
#[derive(Subcommand, Debug)]
pub enum JobsCommand {
    /// List jobs in tree order (sequence, level, index).
    List {
        /// Only the jobs of this sequence.
        #[arg(long)]
        sequence: Option<SequenceId>,
        /// Only jobs in this state: waiting, ready, leased, proved, dead or cancelled.
        #[arg(long)]
        status: Option<JobStatus>,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show everything known about one job.
    Show {
        /// Job id, `s<sequence>-l<level>-i<index>` (e.g. `s3-l0-i12`).
        job: JobId,
        /// Print a JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Put a dead, leased or cancelled job back in line with a fresh retry budget (any lease
    /// on it becomes stale); or, with `--sequence N --status dead`, every dead job of sequence
    /// N (or every cancelled one) in one transaction.
    #[command(group(ArgGroup::new("which").required(true).args(["job", "sequence"])))]
    Requeue {
        /// Job id, `s<sequence>-l<level>-i<index>`.
        job: Option<JobId>,
        /// Requeue the jobs of this sequence that are in state `--status`, instead of one job.
        #[arg(long, requires = "status")]
        sequence: Option<SequenceId>,
        /// With `--sequence`: the state of the jobs to requeue, dead or cancelled (a leased job
        /// is requeued by its id, one lease broken at a time).
        #[arg(long, requires = "sequence")]
        status: Option<JobStatus>,
    },
    /// Withdraw a job that is not proved: it is never leased until requeued.
    Cancel {
        /// Job id, `s<sequence>-l<level>-i<index>`.
        job: JobId,
    },
}

/// Runs `jobs`.
pub fn run(args: JobsArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let store = args.store.open().await?;
        let result = dispatch(&store, args.command).await;
        store.close().await;
        result
    })
}

async fn dispatch(store: &Store, command: JobsCommand) -> anyhow::Result<()> {
    match command {
        JobsCommand::List {
            sequence,
            status,
            json,
        } => {
            let jobs = store.list_jobs(JobFilter { sequence, status }).await?;
            if json {
                let views: Vec<JobView> = jobs.iter().map(|job| JobView::of(job, false)).collect();
                println!("{}", serde_json::to_string_pretty(&views)?);
            } else {
                print_table(&jobs)?;
            }
        }
        JobsCommand::Show { job, json } => {
            let Some(found) = store.get_job(job).await? else {
                bail!("unknown job {job}");
            };
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&JobView::of(&found, true))?
                );
            } else {
                print_details(&found);
            }
        }
        JobsCommand::Requeue {
            job: Some(job),
            sequence: None,
            status: None,
        } => {
            let status = store.requeue_job(job).await?;
            println!("requeued {job}: now {status}");
        }
        JobsCommand::Requeue {
            job: None,
            sequence: Some(sequence),
            status: Some(status),
        } => requeue_sequence(store, sequence, status).await?,
        // clap's argument group and `requires` leave no other combination.
        JobsCommand::Requeue { .. } => bail!("requeue takes a job, or --sequence with --status"),
        JobsCommand::Cancel { job } => {
            store.cancel_job(job).await?;
            println!("cancelled {job}");
        }
    }
    Ok(())
}

/// Requeues the jobs of `sequence` in state `status` and lists them.
async fn requeue_sequence(
    store: &Store,
    sequence: SequenceId,
    status: JobStatus,
) -> anyhow::Result<()> {
    let requeued = store
        .requeue_sequence(sequence, status)
        .await
        .with_context(|| format!("requeueing the {status} jobs of sequence {sequence}"))?;
    let mut out = std::io::stdout().lock();
    if requeued.is_empty() {
        writeln!(
            out,
            "no {status} jobs in sequence {sequence}: nothing requeued"
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "requeued {} {status} jobs of sequence {sequence}:",
        requeued.len()
    )?;
    let rows: Vec<[String; 2]> = requeued
        .iter()
        .map(|(job, now)| [job.to_string(), now.to_string()])
        .collect();
    write_table(&mut out, ["JOB", "NOW"], [Align::Left; 2], &rows)?;
    Ok(())
}

/// Connects to a store that must already exist: inspecting a mistyped SQLite path must not
/// create an empty database there and report it has no jobs.
async fn open_existing(url: &str) -> anyhow::Result<Store> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap_or(path);
        if !std::path::Path::new(path).is_file() {
            bail!("no SQLite store at {path}");
        }
    }
    Store::connect(url)
        .await
        .with_context(|| format!("opening store {}", redact_url(url)))
}

/// A job as printed with `--json`: ids as strings, inputs as their size (and hex with `show`).
#[derive(Serialize)]
struct JobView {
    id: String,
    sequence: SequenceId,
    level: u32,
    index: u64,
    status: JobStatus,
    circuit: JobCircuit,
    parent: Option<String>,
    children: Vec<String>,
    attempts: i64,
    lease_token: i64,
    lease_holder: Option<String>,
    lease_expires_ms: Option<i64>,
    leased_ms: Option<i64>,
    proof_hash: Option<String>,
    proved_by: Option<String>,
    proved_ms: Option<i64>,
    prove_ms: Option<i64>,
    inputs_bytes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    inputs_hex: Option<String>,
}

impl JobView {
    fn of(job: &Job, with_inputs: bool) -> Self {
        JobView {
            id: job.id.to_string(),
            sequence: job.id.sequence,
            level: job.id.level,
            index: job.id.index,
            status: job.status,
            circuit: job.circuit.clone(),
            parent: job.parent.map(|p| p.to_string()),
            children: job.children.iter().map(ToString::to_string).collect(),
            attempts: job.attempts,
            lease_token: job.lease_token,
            lease_holder: job.lease_holder.clone(),
            lease_expires_ms: job.lease_expires_ms,
            leased_ms: job.leased_ms,
            proof_hash: job.proof_hash.clone(),
            proved_by: job.proved_by.clone(),
            proved_ms: job.proved_ms,
            prove_ms: job.prove_ms,
            inputs_bytes: job.inputs.to_bytes().len(),
            inputs_hex: with_inputs.then(|| hex(&job.inputs.to_bytes())),
        }
    }
}

/// A table whose columns are as wide as their longest cell (prover ids are long).
fn print_table(jobs: &[Job]) -> std::io::Result<()> {
    let now = now_ms();
    let rows: Vec<[String; 6]> = jobs
        .iter()
        .map(|job| {
            let lease = match (job.status, job.lease_expires_ms) {
                (JobStatus::Leased, Some(expires)) => relative(expires, now),
                _ => "-".to_owned(),
            };
            [
                job.id.to_string(),
                job.status.as_str().to_owned(),
                job.attempts.to_string(),
                job.lease_holder.clone().unwrap_or_else(|| "-".to_owned()),
                lease,
                job.proof_hash
                    .as_deref()
                    .map_or("-", |hash| &hash[..12.min(hash.len())])
                    .to_owned(),
            ]
        })
        .collect();
    let mut out = std::io::stdout().lock();
    use Align::{Left, Right};
    write_table(
        &mut out,
        ["JOB", "STATUS", "ATTEMPTS", "HOLDER", "LEASE", "PROOF"],
        [Left, Left, Right, Left, Left, Left],
        &rows,
    )?;
    writeln!(out, "{} jobs", jobs.len())
}

fn print_details(job: &Job) {
    let now = now_ms();
    let or_dash = |value: Option<String>| value.unwrap_or_else(|| "-".to_owned());
    let at = |ms: Option<i64>| or_dash(ms.map(|ms| format!("{ms} ({})", relative(ms, now))));
    let ids = |ids: &[JobId]| {
        if ids.is_empty() {
            "-".to_owned()
        } else {
            ids.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    let rows = [
        ("job", job.id.to_string()),
        ("status", job.status.to_string()),
        ("circuit", job.circuit.to_string()),
        ("inputs", format!("{} bytes", job.inputs.to_bytes().len())),
        ("parent", or_dash(job.parent.map(|p| p.to_string()))),
        ("children", ids(&job.children)),
        ("attempts", job.attempts.to_string()),
        ("lease token", job.lease_token.to_string()),
        ("lease holder", or_dash(job.lease_holder.clone())),
        ("lease expires", at(job.lease_expires_ms)),
        ("leased at", at(job.leased_ms)),
        ("proof sha256", or_dash(job.proof_hash.clone())),
        ("proved by", or_dash(job.proved_by.clone())),
        ("proved at", at(job.proved_ms)),
        (
            "proving time",
            or_dash(job.prove_ms.map(|ms| format!("{ms} ms"))),
        ),
    ];
    for (name, value) in rows {
        println!("{name:<14} {value}");
    }
}

/// `ms` (coordinator clock, Unix milliseconds) relative to `now`: `in 12.3 s`, `4.0 s ago`.
pub fn relative(ms: i64, now: i64) -> String {
    let seconds = (ms - now) as f64 / 1e3;
    if seconds >= 0.0 {
        format!("in {seconds:.1} s")
    } else {
        format!("{:.1} s ago", -seconds)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
