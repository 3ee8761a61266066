//! The coordinator's service: what each API call does, independent of HTTP.
//!
//! One file per stage of a job's life here: `lease.rs` hands jobs out and keeps their leases,
//! `submit.rs` checks a proof on receipt and stores it; this file holds the service itself,
//! admission of requests, hello, status and the sweeper.

mod lease;
mod submit;

pub(crate) use submit::stored_header;
pub use submit::ProofCheck;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use plonky2::plonk::circuit_data::VerifierCircuitData;
use sheaf_api::{
    CircuitSpec, HelloRequest, HelloResponse, JobCount, KindSpec, ProverLimits, SequenceStatus,
    StatusResponse, API_VERSION,
};
use sheaf_circuits::{CircuitSet, JobCircuit, C, D, F};
use sheaf_store::{Job, Prover, Store, StoreError};
use sheaf_types::clock::{millis, now_ms};
use sheaf_types::{JobId, SequenceId};
use tokio::sync::{Notify, Semaphore};

use crate::admission::{Registry, RegistryError};
use crate::config::CoordinatorConfig;
use crate::error::{AdmissionError, HelloError, InternalError, JobRefusal};
use crate::health::{ChainContact, ChainWatch, NotReady, Readiness, READY_STORE_TIMEOUT};
use crate::job_tree::plan_sequence;
use crate::metrics::{JOBS_DEAD, JOBS_REQUEUED, LEASES_EXPIRED, PROVER_LAST_SEEN};

/// Why the coordinator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The registry could not be read.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A circuit is missing from the set.
    #[error(transparent)]
    Circuits(#[from] sheaf_circuits::CircuitError),
}

/// The coordinator: leases jobs to provers, verifies what they submit, and keeps everything in
/// the store. Cheap to share (`Arc`); one per process, several per database.
pub struct Coordinator {
    store: Store,
    circuits: Arc<CircuitSet>,
    verifiers: HashMap<JobCircuit, Arc<VerifierCircuitData<F, C, D>>>,
    /// Checks a submitted proof with one of `verifiers`.
    proof_check: ProofCheck,
    spec: CircuitSpec,
    config: CoordinatorConfig,
    registry: Option<Arc<dyn Registry>>,
    /// Set when copying the registry into the store failed: the next sweep copies it again
    /// even if the registry reports no change (it counts the failed read as seen).
    registry_stale: std::sync::atomic::AtomicBool,
    /// The store's time (ms) at which this replica last judged leases with its store answering
    /// (a sweep, a grace); `None` before the first. A longer silence than
    /// [`Coordinator::grace_gap_ms`] means heartbeats could not be heard either: leases are
    /// then given their grace before any is judged again ([`Coordinator::grant_lease_grace`]).
    heard_at: std::sync::Mutex<Option<i64>>,
    /// Woken when a job may have become ready (a proof readied a parent, a lease expired).
    ready: Notify,
    /// Submissions in verification or waiting for it; none left means 503.
    verify_admission: Arc<Semaphore>,
    /// Verifications running at once.
    verify_workers: Arc<Semaphore>,
    /// Submissions of one job are serialized, so identical concurrent submissions cost one
    /// verification and store one proof.
    submit_locks: Mutex<HashMap<JobId, Weak<tokio::sync::Mutex<()>>>>,
    shutdown: tokio::sync::watch::Sender<bool>,
    /// When each prover last made an authenticated request (ms), for liveness metrics.
    seen: Mutex<HashMap<String, i64>>,
    /// Each prover's signed requests a second, when limited.
    request_rate: Option<RequestRate>,
    /// The chain the proof sender settles on, once it runs; readiness asks it.
    chain: std::sync::OnceLock<ChainWatch>,
    /// The rollup node publishing blocks to this coordinator's store, when it runs one.
    rollup: std::sync::OnceLock<Arc<crate::rollup::RollupNode>>,
    /// The live console's snapshots and events.
    console: crate::console::Console,
}

/// A token bucket per prover key ([`governor`]'s keyed limiter): `rate` requests a second,
/// bursts of twice as many. Only requests whose signature checked are counted, so it holds at
/// most one entry per registered prover. A key refused for its rate is remembered until its
/// next token: its requests until then are refused before anything else is spent on them (a
/// store read, the body, the signature), which a forger gains nothing from, since the key is
/// refused anyway. Those refusals are held until the token (up to
/// [`MAX_HELD_REFUSALS_PER_KEY`] of a key at once; beyond, refused at once), so a client that
/// comes straight back is answered at its rate, not as fast as it can ask.
struct RequestRate {
    rate: u32,
    burst: u32,
    limiter: governor::DefaultKeyedRateLimiter<[u8; 32]>,
    blocked: Mutex<HashMap<[u8; 32], Blocked>>,
}

/// Refusals of one key over its request rate held until its next token at once.
const MAX_HELD_REFUSALS_PER_KEY: u32 = 4;

/// What an authenticated request the rules refuse costs its key, in requests: the extra ones
/// are taken from its bucket, or, when it holds fewer, the key is refused until it would.
pub const REFUSED_REQUEST_COST: u32 = 10;

/// A key over its request rate: until when, how many of its refusals are held, and what it
/// owes.
struct Blocked {
    until: std::time::Instant,
    held: u32,
    /// Requests it owes for refused ones ([`REFUSED_REQUEST_COST`]), taken with its next.
    owed: u32,
}

/// One held refusal, let go of when dropped (answered, or its request abandoned).
struct HeldRefusal<'a> {
    rate: &'a RequestRate,
    key: [u8; 32],
}

impl Drop for HeldRefusal<'_> {
    fn drop(&mut self) {
        if let Some(blocked) = self.rate.blocked().get_mut(&self.key) {
            blocked.held = blocked.held.saturating_sub(1);
        }
    }
}

impl RequestRate {
    fn new(rate: u32) -> Option<Self> {
        let per_second = std::num::NonZeroU32::new(rate)?;
        let burst = per_second.saturating_mul(std::num::NonZeroU32::MIN.saturating_add(1));
        Some(RequestRate {
            rate,
            burst: burst.get(),
            limiter: governor::RateLimiter::keyed(
                governor::Quota::per_second(per_second).allow_burst(burst),
            ),
            blocked: Mutex::new(HashMap::new()),
        })
    }

    fn refusal(&self, wait: std::time::Duration) -> AdmissionError {
        AdmissionError::RequestRate {
            rate: self.rate,
            burst: self.burst,
            retry_after_ms: wait.as_millis() as u64,
        }
    }

    fn blocked(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Blocked>> {
        self.blocked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuse a request of `key` while the key is known to be over its rate, holding the
    /// refusal until the key's next token.
    async fn check_early(&self, key: &[u8; 32]) -> Result<(), AdmissionError> {
        let now = std::time::Instant::now();
        let until = {
            let mut blocked = self.blocked();
            match blocked.get_mut(key) {
                Some(b) if b.until > now && b.held < MAX_HELD_REFUSALS_PER_KEY => {
                    b.held += 1;
                    b.until
                }
                Some(b) if b.until > now => return Err(self.refusal(b.until - now)),
                _ => return Ok(()),
            }
        };
        let _held = HeldRefusal {
            rate: self,
            key: *key,
        };
        tokio::time::sleep_until(until.into()).await;
        Err(self.refusal(until.saturating_duration_since(std::time::Instant::now())))
    }

    /// Charge a refused request of `key` [`REFUSED_REQUEST_COST`] − 1 more requests (at most a
    /// burst): taken from its bucket now, or, when it holds fewer, owed: the key is over its
    /// rate until it would hold them, and its next request takes them with its own.
    fn charge_refusal(&self, key: &[u8; 32]) {
        let extra = (REFUSED_REQUEST_COST - 1).min(self.burst - 1);
        let Some(n) = std::num::NonZeroU32::new(extra) else {
            return;
        };
        match self.limiter.check_key_n(key, n) {
            Ok(Ok(())) => {}
            Ok(Err(not_until)) => self.block(key, wait_from(&not_until), extra),
            Err(_) => self.block(key, self.time_for(extra), extra),
        }
    }

    /// Count a request of `key` whose signature checked, with what the key owes.
    fn check(&self, key: &[u8; 32]) -> Result<(), AdmissionError> {
        let owed = self.blocked().get(key).map_or(0, |b| b.owed);
        let n = std::num::NonZeroU32::new(1 + owed).expect("one and more is not zero");
        let wait = match self.limiter.check_key_n(key, n) {
            Ok(Ok(())) => {
                if owed > 0 {
                    if let Some(b) = self.blocked().get_mut(key) {
                        b.owed = b.owed.saturating_sub(owed);
                    }
                }
                return Ok(());
            }
            Ok(Err(not_until)) => wait_from(&not_until),
            Err(_) => self.time_for(n.get()),
        };
        self.block(key, wait, owed);
        Err(self.refusal(wait))
    }

    /// The time `requests` take at the rate.
    fn time_for(&self, requests: u32) -> std::time::Duration {
        std::time::Duration::from_secs_f64(f64::from(requests) / f64::from(self.rate))
    }

    /// Mark `key` over its rate for `wait` (or longer, if it already is), owing `owed`
    /// requests (at most a burst's less one).
    fn block(&self, key: &[u8; 32], wait: std::time::Duration, owed: u32) {
        let until = std::time::Instant::now() + wait;
        let owed = owed.min(self.burst - 1);
        let mut blocked = self.blocked();
        let b = blocked.entry(*key).or_insert(Blocked {
            until,
            held: 0,
            owed,
        });
        b.until = b.until.max(until);
        b.owed = b.owed.max(owed);
    }
}

/// How long from now until `not_until`.
fn wait_from(
    not_until: &governor::NotUntil<governor::clock::QuantaInstant>,
) -> std::time::Duration {
    use governor::clock::Clock as _;
    not_until.wait_time_from(governor::clock::DefaultClock::default().now())
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("spec", &self.spec)
            .field("config", &self.config)
            .finish()
    }
}

impl Coordinator {
    /// A coordinator over `store`, verifying with `circuits` (whose work leaf has
    /// `2^leaf_rows_log2` rows), admitting the provers of `registry` (copied into the store now
    /// and whenever it changes; without a registry, the provers already in the store).
    pub async fn new(
        store: Store,
        circuits: Arc<CircuitSet>,
        leaf_rows_log2: usize,
        config: CoordinatorConfig,
        registry: Option<Arc<dyn Registry>>,
    ) -> Result<Self, StartError> {
        // Counters recorded before the recorder exists would be lost.
        crate::metrics::handle();
        if let Some(registry) = &registry {
            sync_provers(&store, registry.as_ref()).await?;
        }
        let mut circuit_names: Vec<JobCircuit> = circuits
            .kinds()
            .iter()
            .flat_map(|kind| {
                let kind = kind.name().to_owned();
                [
                    JobCircuit::Leaf { kind: kind.clone() },
                    JobCircuit::LeafNode { kind },
                ]
            })
            .collect();
        circuit_names.push(JobCircuit::Universal);
        circuit_names.extend(
            circuits
                .aggregation
                .rules()
                .iter()
                .map(|rule| JobCircuit::Kernel {
                    name: rule.name().to_owned(),
                }),
        );
        if circuits.aggregation.final_wrap().is_some() {
            circuit_names.push(JobCircuit::Wrap);
        }
        let verifiers = circuit_names
            .into_iter()
            .map(|c| Ok((c.clone(), Arc::new(circuits.verifier_data(&c)?))))
            .collect::<Result<_, sheaf_circuits::CircuitError>>()?;
        let settings = circuits.aggregation.settings();
        let spec = CircuitSpec {
            profile: settings.profile.to_string(),
            arity: settings.arity,
            final_zk: settings.final_zk,
            final_compact: settings.final_compact,
            leaf_rows_log2,
            kinds: circuits
                .kinds()
                .iter()
                .map(|kind| KindSpec {
                    name: kind.name().to_owned(),
                    key: kind.key_digest().to_string(),
                })
                .collect(),
            kernels: circuits
                .aggregation
                .rules()
                .iter()
                .map(|rule| rule.name().to_owned())
                .collect(),
            final_key_id: circuits.aggregation.final_key().id().to_string(),
            whitelist_root: circuits.aggregation.whitelist().root().to_string(),
        };
        let coordinator = Coordinator {
            store,
            verifiers,
            proof_check: sheaf_circuits::verify_job_proof,
            spec,
            verify_admission: Arc::new(Semaphore::new(config.verify_workers + config.verify_queue)),
            verify_workers: Arc::new(Semaphore::new(config.verify_workers.max(1))),
            request_rate: RequestRate::new(config.prover_request_rate),
            console: crate::console::Console::new(config.console_max_viewers),
            circuits,
            config,
            registry,
            ready: Notify::new(),
            registry_stale: std::sync::atomic::AtomicBool::new(false),
            heard_at: std::sync::Mutex::new(None),
            submit_locks: Mutex::new(HashMap::new()),
            shutdown: tokio::sync::watch::channel(false).0,
            seen: Mutex::new(HashMap::new()),
            chain: std::sync::OnceLock::new(),
            rollup: std::sync::OnceLock::new(),
        };
        Ok(coordinator)
    }

    /// Give every lease that ran out while this replica could not hear heartbeats one lease
    /// TTL from `now` to be renewed. While no coordinator answered (down, starting, cut off
    /// from or stalled on its store), no prover could heartbeat: a lease that ran out meanwhile
    /// was not abandoned, and taking it back would charge its prover (a back-off) and the job
    /// (one of its attempts) for the coordinator's outage. A prover that is really gone loses
    /// the lease one TTL later, as it would have.
    async fn grant_lease_grace(&self, now: i64) -> Result<(), StoreError> {
        let until = now.saturating_add(millis(self.config.lease_ttl));
        let extended = self.store.extend_leases(until).await?;
        self.heard(now);
        if extended > 0 {
            tracing::info!(
                target: "sheaf::coordinator",
                leases = extended,
                ttl_ms = millis(self.config.lease_ttl),
                "leases that ran out while heartbeats could not be heard may be renewed for one more TTL"
            );
        }
        Ok(())
    }

    /// Longest silence (ms of the store's time between two judgements of leases) after which
    /// leases get their grace: a quarter of the lease TTL, so that a prover heartbeating every
    /// quarter still had a try left before its lease ran out, but at least two sweep intervals,
    /// so that a sweeper merely late does not grant it.
    fn grace_gap_ms(&self) -> i64 {
        millis(self.config.lease_ttl / 4).max(2 * millis(self.config.sweep_interval))
    }

    /// Record that leases were judged at `now` with the store answering.
    fn heard(&self, now: i64) {
        let mut heard_at = self.heard_at.lock().unwrap_or_else(|e| e.into_inner());
        *heard_at = Some(heard_at.map_or(now, |at| at.max(now)));
    }

    /// The store's time, after granting leases their grace if this replica has not judged them
    /// for longer than [`Coordinator::grace_gap_ms`] (or ever): what the server does before its
    /// first request, the sweeper before each pass, and a heartbeat or a submission before it
    /// judges a lease by its expiry (the sweeper may not have come round yet since the store
    /// answered again).
    pub(crate) async fn lease_clock_ms(&self) -> Result<i64, StoreError> {
        let now = self.store_clock_ms().await?;
        let heard_at = *self.heard_at.lock().unwrap_or_else(|e| e.into_inner());
        if heard_at.is_none_or(|at| now.saturating_sub(at) > self.grace_gap_ms()) {
            self.grant_lease_grace(now).await?;
        }
        Ok(now)
    }

    /// The time that lease expiry, nonce windows and roles are measured by: the database's
    /// clock when replicas share one (PostgreSQL), else this replica's.
    pub(crate) async fn store_clock_ms(&self) -> Result<i64, StoreError> {
        Ok(match self.store.shared_clock_ms().await? {
            Some(now) => now,
            None => self.config.clock.now_ms(),
        })
    }

    /// Collects the proofs of sequences settled longer ago than the claims window (all but
    /// each one's top proof) and sweeps the proof store of objects no row needs
    /// ([`Store::collect_proofs`]).
    pub async fn collect_proofs(&self) -> Result<sheaf_store::CollectedProofs, StoreError> {
        let now = self.config.clock.now_ms();
        let before = |d: std::time::Duration| now.saturating_sub(d.as_millis() as i64);
        let collected = self
            .store
            .collect_proofs(
                before(self.config.claims_window),
                before(crate::config::UNNAMED_BLOB_GRACE),
                now,
            )
            .await?;
        if collected != sheaf_store::CollectedProofs::default() {
            tracing::info!(
                target: "sheaf::coordinator",
                sequences = collected.sequences,
                proofs = collected.proofs,
                bytes = collected.bytes,
                swept = collected.swept,
                "collected proofs past their claims window"
            );
        }
        Ok(collected)
    }

    /// Checks submitted proofs with `check` instead of [`sheaf_circuits::verify_job_proof`]:
    /// for tests of what the coordinator does when verification misbehaves (a panic).
    #[doc(hidden)]
    pub fn set_proof_check(&mut self, check: ProofCheck) {
        self.proof_check = check;
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    /// The circuits provers must prove with.
    pub fn spec(&self) -> &CircuitSpec {
        &self.spec
    }

    /// The circuits.
    pub fn circuits(&self) -> &CircuitSet {
        &self.circuits
    }

    /// The circuits, shared (for the proof sender).
    pub fn circuits_arc(&self) -> Arc<CircuitSet> {
        self.circuits.clone()
    }

    /// Note that `prover` made an authenticated request now.
    pub fn note_seen(&self, prover: &str) {
        let now = now_ms();
        metrics::gauge!(PROVER_LAST_SEEN, "prover" => prover.to_owned()).set(now as f64 / 1000.0);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        match seen.get_mut(prover) {
            Some(last) => *last = now,
            None => {
                seen.insert(prover.to_owned(), now);
            }
        }
    }

    /// Provers that made an authenticated request within the lease TTL.
    pub fn provers_live(&self) -> usize {
        let since = now_ms() - millis(self.config.lease_ttl);
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.values().filter(|last| **last >= since).count()
    }

    /// Submissions admitted to verification now, and the most that may be.
    pub fn verify_load(&self) -> (usize, usize) {
        let capacity = self.config.verify_workers + self.config.verify_queue;
        let free = self.verify_admission.available_permits();
        (capacity.saturating_sub(free), capacity)
    }

    /// Serve `node`'s rollup API (`/v1/rollup/…`). Only the first node counts.
    pub fn attach_rollup(&self, node: Arc<crate::rollup::RollupNode>) {
        let _ = self.rollup.set(node);
    }

    /// The rollup node, when this coordinator runs one.
    pub fn rollup(&self) -> Option<&Arc<crate::rollup::RollupNode>> {
        self.rollup.get()
    }

    /// New jobs are in the store (a published block's tree): wake the provers waiting for one.
    pub fn jobs_added(&self) {
        self.ready.notify_waiters();
    }

    /// Watch the chain the proof sender settles on: readiness requires it to have answered
    /// within `limit`. Only the first watch counts (one sender per coordinator).
    pub fn watch_chain(&self, contact: ChainContact, limit: std::time::Duration) {
        let _ = self.chain.set(ChainWatch { contact, limit });
    }

    /// Whether this replica can work now: the store answers, and the chain (when it settles)
    /// answered recently. See [`crate::health`].
    pub async fn readiness(&self) -> Readiness {
        let mut readiness = Readiness::default();
        match tokio::time::timeout(READY_STORE_TIMEOUT, self.store.schema_version()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => readiness.problems.push(NotReady::Store(e)),
            Err(_) => readiness
                .problems
                .push(NotReady::StoreTimeout(READY_STORE_TIMEOUT)),
        }
        if let Some(watch) = self.chain.get() {
            readiness.chain_checked = true;
            let silent_for = watch.contact.silent_for();
            if silent_for > watch.limit {
                readiness.problems.push(NotReady::ChainSilent {
                    silent_for,
                    limit: watch.limit,
                });
            }
        }
        readiness
    }

    /// The live console ([`crate::console`]).
    pub fn console(&self) -> &crate::console::Console {
        &self.console
    }

    /// Turns `true` when the coordinator begins to shut down.
    pub(crate) fn shutdown_watch(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Ends long-polls at once (they answer "no job"), for a graceful shutdown.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
        self.ready.notify_waiters();
    }

    /// Plans sequence `id` of `leaves` work leaves (seeded by its id). Planning a sequence
    /// that exists changes nothing and returns `false`.
    pub async fn plan(&self, id: SequenceId, leaves: usize) -> Result<bool, StartError> {
        let settings = self.circuits.aggregation.settings();
        let plan = plan_sequence(
            id,
            leaves,
            settings.arity,
            sheaf_circuits::work::WORK_LEAF_KIND,
            id.get(),
            self.circuits.aggregation.final_wrap().is_some(),
            now_ms(),
        )?;
        match self.store.insert_sequence(plan.sequence, &plan.jobs).await {
            Ok(()) => {
                tracing::info!(target: "sheaf::coordinator", sequence = %id, leaves, jobs = plan.jobs.len(), "planned sequence");
                self.ready.notify_waiters();
                Ok(true)
            }
            Err(StoreError::SequenceExists(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The registered prover whose key is `public_key`. A key the store does not admit is
    /// refused with the registry's reason when it has one (an expired membership, no
    /// membership), else as an unknown prover.
    pub async fn prover_by_key(&self, public_key: &[u8; 32]) -> Result<Prover, AdmissionError> {
        if let Some(prover) = self.store.prover_by_key(public_key).await? {
            return Ok(prover);
        }
        if let Some(refusal) = self.registry.as_ref().and_then(|r| r.refusal(public_key)) {
            return Err(AdmissionError::Refused(refusal));
        }
        Err(AdmissionError::UnknownProver {
            key: hex::encode(public_key),
        })
    }

    /// Refuses a request of `key` while the key is over its request rate
    /// ([`CoordinatorConfig::prover_request_rate`]), the refusal held until the key's next
    /// token; call it first thing.
    pub async fn check_request_rate_early(&self, key: &[u8; 32]) -> Result<(), AdmissionError> {
        match &self.request_rate {
            Some(limit) => limit.check_early(key).await,
            None => Ok(()),
        }
    }

    /// Charges a refused authenticated request of `key` against its request rate: it costs
    /// [`REFUSED_REQUEST_COST`] requests (the API calls this for every 4xx but 429).
    pub fn charge_refusal(&self, key: &[u8; 32]) {
        if let Some(limit) = &self.request_rate {
            limit.charge_refusal(key);
        }
    }

    /// Counts a signed request of `key` against its request rate; call it once the signature
    /// is checked (a forger must not spend a prover's rate) and before the nonce is stored (a
    /// flood must not cost the store).
    pub fn check_request_rate(&self, key: &[u8; 32]) -> Result<(), AdmissionError> {
        match &self.request_rate {
            Some(limit) => limit.check(key),
            None => Ok(()),
        }
    }

    /// Records a request nonce; a nonce seen within the clock-skew window is a replay.
    pub async fn check_nonce(
        &self,
        key: &[u8; 32],
        nonce: &[u8; 16],
        now: i64,
    ) -> Result<(), AdmissionError> {
        // Remembered by the store's clock, as the sweeper forgets by it; `now` (this replica's
        // clock, which the request's timestamp was checked against) where there is no other.
        let now = self.store.shared_clock_ms().await?.unwrap_or(now);
        let expires = now.saturating_add(2 * sheaf_api::MAX_CLOCK_SKEW_MS);
        if self
            .store
            .remember_nonce(&hex::encode(key), &hex::encode(nonce), expires)
            .await?
        {
            Ok(())
        } else {
            Err(AdmissionError::ReplayedNonce)
        }
    }

    /// Answer a prover's hello.
    pub fn hello(
        &self,
        prover: &Prover,
        request: &HelloRequest,
    ) -> Result<HelloResponse, HelloError> {
        if request.api_version != API_VERSION {
            return Err(HelloError::IncompatibleVersion {
                prover: request.api_version,
                coordinator: API_VERSION,
            });
        }
        tracing::info!(target: "sheaf::coordinator", prover = %prover.id, software = %request.software, "hello");
        Ok(HelloResponse {
            api_version: API_VERSION,
            prover: prover.id.clone(),
            circuits: self.spec.clone(),
            lease_ttl_ms: millis(self.config.lease_ttl),
            heartbeat_interval_ms: millis(self.config.heartbeat_interval) as u64,
            max_lease_wait_ms: millis(self.config.max_lease_wait) as u64,
            limits: ProverLimits {
                rate_limit: prover.rate_limit,
                epoch_ms: millis(self.config.epoch),
                max_concurrent: prover.max_concurrent,
            },
        })
    }

    /// Job `id` as a prover names it: unknown is a refusal.
    async fn job<E: From<JobRefusal> + From<InternalError>>(&self, id: JobId) -> Result<Job, E> {
        let stored = self.store.get_job(id).await;
        match stored.map_err(InternalError::Store)? {
            Some(job) => Ok(job),
            None => Err(JobRefusal::UnknownJob(id).into()),
        }
    }

    /// A job the store named (a child): missing is a failure of the store.
    async fn stored_job(&self, id: sheaf_store::JobId) -> Result<Job, InternalError> {
        self.store
            .get_job(id)
            .await?
            .ok_or(InternalError::Store(StoreError::UnknownJob(id)))
    }

    /// Sequences and jobs by status.
    pub async fn status(&self) -> Result<StatusResponse, InternalError> {
        let sequences = self
            .store
            .list_sequences()
            .await?
            .into_iter()
            .map(|s| SequenceStatus {
                id: s.id,
                leaves: s.leaves,
                root_job: s.root,
                proved: s.proved_ms.is_some(),
            })
            .collect();
        let jobs = self
            .store
            .counts_by_status()
            .await?
            .into_iter()
            .map(|c| JobCount {
                status: c.status.as_str().to_owned(),
                level: c.level,
                count: c.count,
            })
            .collect();
        Ok(StatusResponse { sequences, jobs })
    }

    /// One pass of the sweeper: take back expired leases (after giving them a grace of one TTL
    /// if this replica has not judged them, with its store answering, for longer than a
    /// quarter of the TTL: it could not hear heartbeats meanwhile), forget old nonces, pick up
    /// registry changes.
    pub async fn sweep(&self) -> Result<(), StartError> {
        let now = self.lease_clock_ms().await?;
        let backoff = sheaf_store::AbandonBackoff {
            base_ms: millis(self.config.abandon_backoff_base),
            max_ms: millis(self.config.abandon_backoff_max),
        };
        let expired = self
            .store
            .requeue_expired_with_backoff(now, self.config.max_attempts, backoff)
            .await?;
        self.heard(now);
        let taken_back = expired.requeued.len() + expired.dead.len();
        if taken_back > 0 {
            metrics::counter!(LEASES_EXPIRED).increment(taken_back as u64);
            metrics::counter!(JOBS_REQUEUED).increment(expired.requeued.len() as u64);
            metrics::counter!(JOBS_DEAD).increment(expired.dead.len() as u64);
            for job in &expired.requeued {
                self.console.record("requeued", job.to_string(), now);
            }
            for job in &expired.dead {
                self.console.record("dead", job.to_string(), now);
            }
            self.ready.notify_waiters();
        }
        self.store.prune_nonces(now).await?;
        use std::sync::atomic::Ordering;
        let stale = self.registry_stale.load(Ordering::Acquire);
        if let Some(registry) = self.registry.as_ref().filter(|r| stale || r.changed()) {
            self.registry_stale.store(true, Ordering::Release);
            sync_provers(&self.store, registry.as_ref()).await?;
            self.registry_stale.store(false, Ordering::Release);
            tracing::info!(target: "sheaf::coordinator", "provers registry reloaded");
        }
        Ok(())
    }
}

/// Copy `registry`'s admitted provers into `store`, and count each from zero.
async fn sync_provers(store: &Store, registry: &dyn Registry) -> Result<(), StartError> {
    let admitted = registry.admitted()?;
    store.sync_provers(&admitted).await?;
    for prover in &admitted {
        crate::metrics::register_prover(&prover.id);
    }
    Ok(())
}
