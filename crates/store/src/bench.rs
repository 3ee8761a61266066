//! A load test of the store alone: clients lease jobs and submit proof-sized blobs back to
//! back, with no proving, to measure how many lease→submit cycles per second the store
//! sustains.
//!
//! ```text
//!  plan a fresh sequence (a binary tree over enough leaves)
//!      │
//!      ▼  clients × ┌──────────────────────────────────────────────┐
//!                   │ lease_admitted ──▶ submit_proof(random blob) │  one cycle, timed
//!                   └──────────────────────────────────────────────┘
//!      │  out of ready jobs (only with a duration): plan another sequence
//!      ▼
//!  cancel the bench's unfinished jobs, report
//! ```
//!
//! The bench leases whatever is ready and plans sequences of its own, so it refuses a store
//! holding any job but its own: run it on a scratch database. Its clients are registered
//! provers (with limits they never reach) and lease as the coordinator does, through
//! [`Store::lease_admitted`] with its admission checks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::RngCore;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use sheaf_types::clock::now_ms;
use sheaf_types::{JobCircuit, JobId, JobInputs, SequenceId};

use crate::error::{Result, StoreError};
use crate::model::{LeaseOutcome, NewJob, NewSequence, Prover, RewardEntry};
use crate::Store;

/// Clients the bench runs when not told otherwise.
pub const DEFAULT_BENCH_CLIENTS: usize = 8;

/// Cycles each client runs when not told otherwise: enough for the rate to settle (a few
/// seconds at 8 clients), few enough that 8 clients write about 1 GB of blobs.
pub const DEFAULT_BENCH_CYCLES_PER_CLIENT: u64 = 1_000;

/// Size of each submitted blob: about a real root proof (plonky2, standard configuration).
pub const DEFAULT_BENCH_BLOB_BYTES: usize = 135_000;

/// Smallest blob the bench submits: each cycle writes a 16-byte tag into its blob to make it
/// distinct.
pub const BENCH_MIN_BLOB_BYTES: usize = 16;

/// Lease TTL of the bench's leases (milliseconds): far longer than a cycle, so none expires.
pub const BENCH_LEASE_TTL_MS: i64 = 60_000;

/// Children per aggregation job in the bench's trees: Sheaf's default tree is binary, so
/// about half the cycles release a parent.
pub const BENCH_ARITY: usize = 2;

/// Leaves of each sequence the bench plans while running for a duration, when the planned
/// jobs run out. Planning happens inside the measured time: larger sequences plan less often
/// but stall the client that plans for longer.
pub const BENCH_SEQUENCE_LEAVES: i64 = 2_048;

/// Leaf kind of the bench's circuits (`leaf:bench`, `node:bench`), which tells its jobs apart.
const BENCH_KIND: &str = "bench";

/// How long the bench runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BenchLength {
    /// Each client runs this many cycles. Every job is planned before the clock starts.
    CyclesPerClient(u64),
    /// Clients start cycles until this much time has passed. Jobs are planned in sequences of
    /// [`BENCH_SEQUENCE_LEAVES`] leaves as they run out, inside the measured time.
    Duration(Duration),
}

/// What [`run_store_bench`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreBenchConfig {
    /// Concurrent clients, each a lease→submit loop of its own.
    pub clients: usize,
    /// How long to run.
    pub length: BenchLength,
    /// Size of each submitted blob (random bytes, distinct per cycle), at least
    /// [`BENCH_MIN_BLOB_BYTES`].
    pub blob_bytes: usize,
}

impl Default for StoreBenchConfig {
    fn default() -> Self {
        Self {
            clients: DEFAULT_BENCH_CLIENTS,
            length: BenchLength::CyclesPerClient(DEFAULT_BENCH_CYCLES_PER_CLIENT),
            blob_bytes: DEFAULT_BENCH_BLOB_BYTES,
        }
    }
}

/// What one bench run measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoreBenchReport {
    /// Concurrent clients.
    pub clients: usize,
    /// Size of each blob.
    pub blob_bytes: usize,
    /// Lease→submit cycles completed.
    pub cycles: u64,
    /// Wall time from the first lease to the last submission.
    pub seconds: f64,
    /// `cycles / seconds`.
    pub cycles_per_second: f64,
    /// Median time of one cycle (lease call to submission returned), milliseconds.
    pub p50_ms: f64,
    /// 99th percentile of the cycle time, milliseconds.
    pub p99_ms: f64,
    /// Sequences the bench planned (their unfinished jobs are cancelled at the end).
    pub sequences: Vec<SequenceId>,
}

/// Runs `cfg.clients` lease→submit loops on `store` and measures them.
///
/// Plans its own sequences, from the next free sequence id. Refuses, with
/// [`StoreError::InvalidArgument`], zero clients, a zero length, blobs smaller than
/// [`BENCH_MIN_BLOB_BYTES`], and a store holding jobs other than the bench's (it would lease
/// and "prove" them, and its sequences would take the coordinator's sequence ids).
pub async fn run_store_bench(store: &Store, cfg: StoreBenchConfig) -> Result<StoreBenchReport> {
    check_config(&cfg)?;
    let foreign: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE circuit NOT IN ($1, $2)")
            .bind(leaf_circuit())
            .bind(node_circuit())
            .fetch_one(store.reader())
            .await?;
    if foreign > 0 {
        return Err(StoreError::InvalidArgument(format!(
            "the store holds {foreign} jobs that are not the bench's: run it on a scratch \
             database"
        )));
    }
    let first_sequence = store
        .list_sequences()
        .await?
        .last()
        .map_or(SequenceId(0), |s| s.id.next());
    let planner = Arc::new(Planner {
        generation: AtomicU64::new(0),
        state: Mutex::new(PlannerState {
            next_sequence: first_sequence,
            planned: Vec::new(),
        }),
    });
    let first_leaves = match cfg.length {
        // A leaf per cycle: however the leases interleave, a leaf is ready until the last
        // cycle has leased, so no client waits for planning inside the measured time.
        BenchLength::CyclesPerClient(cycles) => i64::try_from(cycles)
            .ok()
            .and_then(|cycles| cycles.checked_mul(cfg.clients as i64))
            .ok_or_else(|| StoreError::InvalidArgument("too many cycles".into()))?,
        BenchLength::Duration(_) => BENCH_SEQUENCE_LEAVES,
    };
    planner.plan(store, first_leaves).await?;

    let started = Instant::now();
    let deadline = match cfg.length {
        BenchLength::Duration(duration) => Some(started + duration),
        BenchLength::CyclesPerClient(_) => None,
    };
    for client in 0..cfg.clients {
        store
            .upsert_prover(&Prover {
                id: client_name(client),
                public_key: client_key(client),
                worker_pk: client_key(client),
                rate_limit: i64::MAX,
                max_concurrent: i64::MAX,
            })
            .await?;
    }
    let clients: Vec<_> = (0..cfg.clients)
        .map(|client| {
            let client = Client {
                store: store.clone(),
                planner: planner.clone(),
                name: client_name(client),
                id: client as u64,
                blob: random_blob(cfg.blob_bytes),
            };
            tokio::spawn(client.run(cfg.length, deadline))
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failure = None;
    for client in clients {
        match client.await {
            Ok(Ok(times)) => latencies.extend(times),
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let sequences = planner.state.lock().await.planned.clone();
    cancel_unfinished(store, &sequences).await?;
    if let Some(e) = failure {
        return Err(e);
    }

    latencies.sort_unstable();
    let cycles = latencies.len() as u64;
    let report = StoreBenchReport {
        clients: cfg.clients,
        blob_bytes: cfg.blob_bytes,
        cycles,
        seconds,
        cycles_per_second: cycles as f64 / seconds,
        p50_ms: percentile_ms(&latencies, 0.50),
        p99_ms: percentile_ms(&latencies, 0.99),
        sequences,
    };
    tracing::info!(
        target: "sheaf::store::bench",
        clients = report.clients,
        cycles = report.cycles,
        seconds = report.seconds,
        cycles_per_second = report.cycles_per_second,
        "store bench done"
    );
    Ok(report)
}

fn check_config(cfg: &StoreBenchConfig) -> Result<()> {
    let zero_length = match cfg.length {
        BenchLength::CyclesPerClient(cycles) => cycles == 0,
        BenchLength::Duration(duration) => duration.is_zero(),
    };
    if cfg.clients == 0 || zero_length || cfg.blob_bytes < BENCH_MIN_BLOB_BYTES {
        return Err(StoreError::InvalidArgument(format!(
            "the bench needs at least one client, a non-zero length and blobs of at least \
             {BENCH_MIN_BLOB_BYTES} bytes, got {cfg:?}"
        )));
    }
    Ok(())
}

/// The registered name of bench client `client`.
fn client_name(client: usize) -> String {
    format!("bench-{client}")
}

/// A distinct 32-byte key for bench client `client` (never used to sign: the bench calls the
/// store directly).
fn client_key(client: usize) -> [u8; 32] {
    let mut key = [0xbe; 32];
    key[..8].copy_from_slice(&(client as u64).to_le_bytes());
    key
}

/// The rate-limit epoch of the bench's leases (its clients' limits are never reached).
const BENCH_EPOCH_MS: i64 = 60_000;

/// One lease→submit loop.
struct Client {
    store: Store,
    planner: Arc<Planner>,
    name: String,
    id: u64,
    /// Random bytes; each cycle overwrites the first 16 with (client, cycle) so every blob is
    /// distinct (a row of its own) without generating megabytes of randomness per second.
    blob: Vec<u8>,
}

impl Client {
    /// Runs cycles until the length is reached; returns each cycle's time.
    async fn run(
        mut self,
        length: BenchLength,
        deadline: Option<Instant>,
    ) -> Result<Vec<Duration>> {
        let mut times = Vec::new();
        let reward = RewardEntry {
            worker_pk: [self.id as u8; 32],
            work_units: 1,
        };
        let mut cycle: u64 = 0;
        loop {
            let done = match length {
                BenchLength::CyclesPerClient(cycles) => cycle >= cycles,
                BenchLength::Duration(_) => deadline.is_some_and(|d| Instant::now() >= d),
            };
            if done {
                return Ok(times);
            }
            let generation = self.planner.generation.load(Ordering::Acquire);
            let start = Instant::now();
            let outcome = self
                .store
                .lease_admitted(&self.name, now_ms(), BENCH_LEASE_TTL_MS, BENCH_EPOCH_MS)
                .await?;
            let lease = match outcome {
                LeaseOutcome::Leased(lease) => Some(lease),
                LeaseOutcome::NoWork => None,
                refused => {
                    return Err(StoreError::InvalidArgument(format!(
                        "bench client {} refused a lease: {refused:?}",
                        self.name
                    )))
                }
            };
            let Some(lease) = lease else {
                self.planner
                    .plan_after(&self.store, generation, BENCH_SEQUENCE_LEAVES)
                    .await?;
                continue;
            };
            let tag = ((self.id as u128) << 64) | cycle as u128;
            self.blob[..BENCH_MIN_BLOB_BYTES].copy_from_slice(&tag.to_le_bytes());
            self.store
                .submit_proof(
                    lease.job,
                    lease.token,
                    &self.name,
                    &self.blob,
                    reward.clone(),
                    now_ms(),
                    None,
                )
                .await?;
            times.push(start.elapsed());
            cycle += 1;
        }
    }
}

/// Plans the bench's sequences, one at a time.
struct Planner {
    /// Sequences planned so far, read by clients without waiting on a planning client: one
    /// that ran out of jobs before the latest plan plans none.
    generation: AtomicU64,
    state: Mutex<PlannerState>,
}

struct PlannerState {
    next_sequence: SequenceId,
    planned: Vec<SequenceId>,
}

impl Planner {
    /// Plans a sequence of `leaves` leaves, unless one was planned since `seen`: then the
    /// caller just leases again.
    async fn plan_after(&self, store: &Store, seen: u64, leaves: i64) -> Result<()> {
        let mut state = self.state.lock().await;
        if self.generation.load(Ordering::Acquire) > seen {
            return Ok(());
        }
        self.plan_locked(&mut state, store, leaves).await
    }

    async fn plan(&self, store: &Store, leaves: i64) -> Result<()> {
        self.plan_locked(&mut *self.state.lock().await, store, leaves)
            .await
    }

    async fn plan_locked(
        &self,
        state: &mut PlannerState,
        store: &Store,
        leaves: i64,
    ) -> Result<()> {
        let id = state.next_sequence;
        let sequence = NewSequence {
            id,
            leaves,
            created_ms: now_ms(),
        };
        store.insert_sequence(sequence, &tree(id, leaves)).await?;
        state.next_sequence = id.next();
        state.planned.push(id);
        self.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }
}

fn leaf_circuit() -> JobCircuit {
    JobCircuit::Leaf {
        kind: BENCH_KIND.to_owned(),
    }
}

fn node_circuit() -> JobCircuit {
    JobCircuit::LeafNode {
        kind: BENCH_KIND.to_owned(),
    }
}

/// A complete tree of [`BENCH_ARITY`] over `leaves` leaves; every aggregation job is a
/// `node:bench`.
fn tree(sequence: SequenceId, leaves: i64) -> Vec<NewJob> {
    let seed = sequence.get();
    let mut jobs: Vec<NewJob> = (0..leaves.unsigned_abs())
        .map(|index| NewJob {
            id: JobId::new(sequence, 0, index),
            circuit: leaf_circuit(),
            inputs: JobInputs::Work { seed, index },
            children: vec![],
        })
        .collect();
    let mut below: Vec<JobId> = jobs.iter().map(|job| job.id).collect();
    let mut level = 0;
    while below.len() > 1 {
        level += 1;
        let parents: Vec<NewJob> = (0u64..)
            .zip(below.chunks(BENCH_ARITY))
            .map(|(index, children)| NewJob {
                id: JobId::new(sequence, level, index),
                circuit: node_circuit(),
                inputs: JobInputs::Aggregate,
                children: children.to_vec(),
            })
            .collect();
        below = parents.iter().map(|job| job.id).collect();
        jobs.extend(parents);
    }
    jobs
}

/// Cancels the jobs of `sequences` that are not proved, so the next run starts clean.
async fn cancel_unfinished(store: &Store, sequences: &[SequenceId]) -> Result<()> {
    for &sequence in sequences {
        sqlx::query(
            "UPDATE jobs SET status = 'cancelled', lease_holder = NULL, \
             lease_expires_ms = NULL WHERE sequence = $1 AND status <> 'proved'",
        )
        .bind(sequence)
        .execute(store.writer())
        .await?;
    }
    Ok(())
}

fn random_blob(bytes: usize) -> Vec<u8> {
    let mut blob = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut blob);
    blob
}

/// Nearest-rank percentile of sorted `times`, in milliseconds; 0 when there are none.
fn percentile_ms(times: &[Duration], p: f64) -> f64 {
    if times.is_empty() {
        return 0.0;
    }
    let rank = ((p * times.len() as f64).ceil() as usize).clamp(1, times.len());
    times[rank - 1].as_secs_f64() * 1e3
}
