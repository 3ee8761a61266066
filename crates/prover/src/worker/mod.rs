//! The prover's loop: hello, load the circuits, then lease, prove and submit until told to stop.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use sheaf_api::API_VERSION;
use sheaf_circuits::{proving_pool, ArtifactCache, CircuitError, KindCatalog};
use thiserror::Error;
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::client::{Client, ClientError};
use crate::key::ProverKey;

mod heartbeat;
mod job;
mod startup;

use job::Worker;
pub use startup::{build_circuits, check_circuits, load_lean_circuits};
use startup::{load_circuits, say_hello};

/// Default long-poll wait of a lease request: long enough that an idle prover asks rarely,
/// short enough that a lost connection is noticed soon. The coordinator caps it with its
/// `max_lease_wait_ms`.
pub const DEFAULT_LEASE_WAIT_MS: u64 = 20_000;

/// Shortest heartbeat interval followed, whatever the coordinator asks: a floor against a
/// misconfigured coordinator turning heartbeats into a busy loop.
pub const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(100);

/// Tracing target of the prover.
const TARGET: &str = "sheaf::prover";

/// What a prover runs with.
#[derive(Clone, Debug)]
pub struct ProverConfig {
    /// The coordinator's base URL (`http://host:port`).
    pub coordinator: String,
    /// The prover's key.
    pub key: ProverKey,
    /// Proving threads (0: one per core).
    pub threads: usize,
    /// Stop after this many accepted proofs (`None`: run until shut down).
    pub max_jobs: Option<u64>,
    /// Where built circuits are kept across runs (`None`: build them every run).
    pub cache: Option<ArtifactCache>,
    /// Long-poll wait of each lease request, capped by the coordinator's `max_lease_wait_ms`.
    pub lease_wait_ms: u64,
    /// The leaf kinds this prover can build ([`KindCatalog::standard`]: the work leaf); a
    /// coordinator naming another kind is refused at startup.
    pub kinds: KindCatalog,
}

/// What a prover did, for its operator.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ProverReport {
    /// Jobs whose proof the coordinator accepted.
    pub jobs_proved: u64,
    /// Jobs given up: lease lost (stale, already proved, unknown, expired before submission) or
    /// not provable here.
    pub jobs_abandoned: u64,
    /// Proofs the coordinator refused for a reason that retrying would not fix.
    pub submissions_rejected: u64,
    /// Time spent proving, summed over every proof made (abandoned ones too).
    pub prove_seconds: f64,
    /// Time from start to exit.
    pub wall_seconds: f64,
    /// Time spent building or loading the circuits.
    pub circuits_seconds: f64,
    /// Whether the aggregation circuits came from the artifact cache.
    pub circuits_from_cache: bool,
    /// Time outside proving per accepted job: from the lease request to the proof's
    /// acceptance, less the proving (lease round trip, heartbeats' share, submission and its
    /// retries). Over the last [`OVERHEAD_SAMPLES`] jobs; `None` before the first.
    pub outside_proving_ms: Option<Quantiles>,
    /// The samples behind `outside_proving_ms`, newest last.
    #[serde(skip)]
    overhead_samples: VecDeque<u64>,
}

/// Jobs whose time outside proving the report keeps: a long-running prover holds a bounded
/// window, not every job it ever proved.
pub const OVERHEAD_SAMPLES: usize = 4096;

/// The median, the 99th percentile and the largest of some samples, in ms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Quantiles {
    /// Samples counted.
    pub samples: usize,
    /// The median.
    pub p50: u64,
    /// The 99th percentile (nearest rank).
    pub p99: u64,
    /// The largest.
    pub max: u64,
}

impl Quantiles {
    /// The quantiles of `samples`; `None` if there are none.
    pub fn of(samples: impl IntoIterator<Item = u64>) -> Option<Quantiles> {
        let mut sorted: Vec<u64> = samples.into_iter().collect();
        sorted.sort_unstable();
        let rank =
            |q: f64| sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
        let max = *sorted.last()?;
        Some(Quantiles {
            samples: sorted.len(),
            p50: rank(0.50),
            p99: rank(0.99),
            max,
        })
    }
}

impl ProverReport {
    /// Count one accepted job's time outside proving.
    fn record_overhead(&mut self, outside: Duration) {
        if self.overhead_samples.len() == OVERHEAD_SAMPLES {
            self.overhead_samples.pop_front();
        }
        self.overhead_samples.push_back(millis(outside));
        self.outside_proving_ms = Quantiles::of(self.overhead_samples.iter().copied());
    }
}

/// Why a prover stopped with an error.
#[derive(Debug, Error)]
pub enum ProverError {
    /// The client could not be set up (bad coordinator URL, TLS backend).
    #[error("cannot set up the client")]
    Setup(#[source] ClientError),
    /// The coordinator refused the hello for a reason that retrying will not fix (the key is
    /// not registered, the signature or the clock is off, …).
    #[error("the coordinator refused hello")]
    Hello(#[source] ClientError),
    /// The coordinator speaks another API version.
    #[error("the coordinator speaks API version {coordinator}, this prover {prover}")]
    IncompatibleVersion {
        /// The coordinator's version.
        coordinator: u32,
        /// Ours ([`API_VERSION`]).
        prover: u32,
    },
    /// The coordinator's circuit profile is unknown here.
    #[error("unknown circuit profile: {0}")]
    UnknownProfile(String),
    /// Building or loading the circuits, or the proving pool, failed.
    #[error("cannot build the circuits")]
    Circuits(#[source] CircuitError),
    /// The circuits built here are not those the coordinator verifies with: their proofs would
    /// all be refused.
    #[error(
        "circuit mismatch: the coordinator verifies with final key {coordinator_key} (whitelist \
         {coordinator_whitelist}), these circuits have {local_key} (whitelist {local_whitelist})"
    )]
    CircuitMismatch {
        /// The coordinator's final key id.
        coordinator_key: String,
        /// The coordinator's whitelist root.
        coordinator_whitelist: String,
        /// The final key id of the circuits built here.
        local_key: String,
        /// Their whitelist root.
        local_whitelist: String,
    },
    /// The coordinator's circuit set has a leaf kind this prover cannot build.
    #[error(
        "the coordinator's circuits have leaf kind {kind:?}, which this prover cannot build \
         (it builds {known:?})"
    )]
    UnknownKind {
        /// The kind.
        kind: String,
        /// The kinds this prover builds.
        known: Vec<String>,
    },
    /// A leaf kind built here has another key than the coordinator's.
    #[error(
        "leaf kind {kind:?} differs: the coordinator's key is {coordinator_key}, this prover's \
         {local_key}"
    )]
    KindMismatch {
        /// The kind.
        kind: String,
        /// Its key digest at the coordinator.
        coordinator_key: String,
        /// Its key digest here.
        local_key: String,
    },
    /// Building the circuits panicked.
    #[error("building the circuits panicked: {0}")]
    Panicked(String),
    /// The coordinator refused a lease for a reason that retrying will not fix.
    #[error("the coordinator refused a lease")]
    Lease(#[source] ClientError),
}

/// Run a prover until `shutdown` completes or `max_jobs` proofs are accepted.
///
/// On shutdown, a job being proved is finished and submitted first; a lease request or a
/// backoff pause is cut short.
pub async fn run(
    config: ProverConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<ProverReport, ProverError> {
    let started = Instant::now();
    tokio::pin!(shutdown);
    let mut shutdown = Shutdown {
        signal: shutdown,
        fired: false,
    };
    let mut report = ProverReport::default();
    let finish = |mut report: ProverReport| {
        report.wall_seconds = started.elapsed().as_secs_f64();
        report
    };

    let client =
        Client::new(&config.coordinator, config.key.clone()).map_err(ProverError::Setup)?;
    let Some(hello) = say_hello(&client, &mut shutdown).await? else {
        return Ok(finish(report));
    };
    if hello.api_version != API_VERSION {
        return Err(ProverError::IncompatibleVersion {
            coordinator: hello.api_version,
            prover: API_VERSION,
        });
    }
    info!(
        target: TARGET,
        prover = %hello.prover,
        lease_ttl_ms = hello.lease_ttl_ms,
        heartbeat_interval_ms = hello.heartbeat_interval_ms,
        rate_limit = hello.limits.rate_limit,
        max_concurrent = hello.limits.max_concurrent,
        "registered with the coordinator"
    );

    let pool = Arc::new(proving_pool(config.threads).map_err(ProverError::Circuits)?);
    let Some(circuits) = load_circuits(
        &hello.circuits,
        &config.kinds,
        pool.clone(),
        config.cache.clone(),
        &mut shutdown,
        &mut report,
    )
    .await?
    else {
        return Ok(finish(report));
    };
    check_circuits(&circuits, &hello.circuits)?;

    let worker = Worker {
        client,
        circuits: Arc::new(circuits),
        pool,
        secret: config.key.worker,
        lease_ttl: Duration::from_millis(u64::try_from(hello.lease_ttl_ms).unwrap_or(0)),
        heartbeat_interval: Duration::from_millis(hello.heartbeat_interval_ms)
            .max(MIN_HEARTBEAT_INTERVAL),
    };
    let wait_ms = config.lease_wait_ms.min(hello.max_lease_wait_ms);
    let mut backoff = Backoff::new();
    while !shutdown.fired && config.max_jobs.is_none_or(|max| report.jobs_proved < max) {
        let asked = Instant::now();
        let leased = tokio::select! {
            leased = worker.client.lease(wait_ms) => leased,
            () = shutdown.wait() => break,
        };
        match leased {
            Ok(Some(assignment)) => {
                backoff.reset();
                let (proved, proving) = (report.jobs_proved, report.prove_seconds);
                worker.run_job(assignment, &mut report).await;
                if report.jobs_proved > proved {
                    let proving = Duration::from_secs_f64(report.prove_seconds - proving);
                    report.record_overhead(asked.elapsed().saturating_sub(proving));
                }
            }
            Ok(None) if asked.elapsed() < Duration::from_millis(wait_ms / 2) => {
                // An empty answer long before the wait was up: do not poll in a tight loop.
                let delay = backoff.next_delay();
                debug!(target: TARGET, delay_ms = millis(delay), "no job; pausing");
                shutdown.sleep(delay).await;
            }
            Ok(None) => backoff.reset(),
            Err(e) if e.is_retryable() => {
                let delay = backoff.next_delay();
                warn!(
                    target: TARGET,
                    attempt = backoff.failures(),
                    delay_ms = millis(delay),
                    error = %error_chain(&e),
                    "lease failed; retrying"
                );
                shutdown.sleep(delay).await;
            }
            Err(e) => return Err(ProverError::Lease(e)),
        }
    }
    let report = finish(report);
    info!(
        target: TARGET,
        jobs_proved = report.jobs_proved,
        jobs_abandoned = report.jobs_abandoned,
        submissions_rejected = report.submissions_rejected,
        "prover stopped"
    );
    Ok(report)
}

/// The shutdown signal, remembered once it has fired.
struct Shutdown<'a, F> {
    signal: Pin<&'a mut F>,
    fired: bool,
}

impl<F: Future<Output = ()>> Shutdown<'_, F> {
    /// Completes when shutdown is asked for (at once if it was already).
    async fn wait(&mut self) {
        if !self.fired {
            self.signal.as_mut().await;
            self.fired = true;
            info!(target: TARGET, "shutting down");
        }
    }

    /// Sleep for `delay`, or less if shutdown is asked for meanwhile.
    async fn sleep(&mut self, delay: Duration) {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = self.wait() => {}
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// An error and its sources, `: `-separated, for logs.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_take_the_nearest_rank() {
        assert_eq!(Quantiles::of([]), None);
        let q = Quantiles::of((1..=200).rev()).unwrap();
        assert_eq!((q.samples, q.p50, q.p99, q.max), (200, 100, 198, 200));
        let one = Quantiles::of([7]).unwrap();
        assert_eq!((one.p50, one.p99, one.max), (7, 7, 7));
    }

    #[test]
    fn the_overhead_window_is_bounded() {
        let mut report = ProverReport::default();
        for ms in 0..(OVERHEAD_SAMPLES as u64 + 10) {
            report.record_overhead(Duration::from_millis(ms));
        }
        let q = report.outside_proving_ms.unwrap();
        assert_eq!(q.samples, OVERHEAD_SAMPLES);
        // The oldest ten fell out of the window.
        assert_eq!(report.overhead_samples.front(), Some(&10));
        assert_eq!(q.max, OVERHEAD_SAMPLES as u64 + 9);
    }
}
