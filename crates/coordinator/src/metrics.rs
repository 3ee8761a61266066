//! Prometheus metrics: jobs by status and level, leases granted/expired/requeued, submissions
//! rejected by reason and by prover, lease-to-proof and proving times, verification latency and
//! queue, prover liveness, settlement lag, the sender role, build info and process metrics.
//!
//! Every metric is described (HELP text with its unit) when the recorder is installed, and the
//! counters whose labels are known at start (every rejection reason, every transaction kind,
//! every admitted prover) are registered at zero, so a rate over them is defined from the first
//! scrape and a dashboard never shows "no data" for "nothing happened". Gauges that are cheap to
//! read (jobs by status, provers live, verifications in flight, process metrics) are sampled
//! at each scrape.

use std::sync::OnceLock;

use metrics::Unit;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sheaf_api::ErrorCode;
use sheaf_store::{JobStatus, OutboxKind, StatusCount};

/// Leases granted, by prover.
pub const LEASES_GRANTED: &str = "sheaf_leases_granted_total";
/// Leases that expired and were taken back, and what became of their jobs.
pub const LEASES_EXPIRED: &str = "sheaf_leases_expired_total";
/// Jobs requeued after an expired lease.
pub const JOBS_REQUEUED: &str = "sheaf_jobs_requeued_total";
/// Jobs that used up their attempts.
pub const JOBS_DEAD: &str = "sheaf_jobs_dead_total";
/// Proofs accepted, by prover and level.
pub const PROOFS_ACCEPTED: &str = "sheaf_proofs_accepted_total";
/// Requests refused, by reason (the error code).
pub const REQUESTS_REJECTED: &str = "sheaf_requests_rejected_total";
/// Proof submissions refused for the prover's own fault, by prover (the reason is in
/// [`REQUESTS_REJECTED`]).
pub const SUBMISSIONS_REJECTED: &str = "sheaf_submissions_rejected_total";
/// Seconds spent verifying a submitted proof.
pub const VERIFY_SECONDS: &str = "sheaf_verify_seconds";
/// Submissions admitted to verification (verifying or waiting for a verifier).
pub const VERIFY_IN_FLIGHT: &str = "sheaf_verify_in_flight";
/// Submissions that may be admitted to verification at once; beyond it, 503.
pub const VERIFY_CAPACITY: &str = "sheaf_verify_capacity";
/// Seconds from a lease granted to its proof accepted, by level, as the coordinator saw it.
pub const PROOF_SECONDS: &str = "sheaf_proof_seconds";
/// Seconds of proving the prover reported with its accepted proof, by level.
pub const PROVING_SECONDS: &str = "sheaf_proving_seconds";
/// When a prover last made an authenticated request (Unix seconds), by prover.
pub const PROVER_LAST_SEEN: &str = "sheaf_prover_last_seen_seconds";
/// Provers that made an authenticated request within the lease TTL.
pub const PROVERS_LIVE: &str = "sheaf_provers_live";
/// Chain transactions signed by the proof sender, by kind.
pub const SETTLEMENT_TXS: &str = "sheaf_settlement_transactions_total";
/// Sequences finalized on chain by this coordinator's proofs.
pub const SETTLEMENT_FINALIZED: &str = "sheaf_settlement_sequences_finalized_total";
/// 1 when this coordinator settles on a chain (a proof sender runs), 0 when it only proves.
pub const SETTLEMENT_CONFIGURED: &str = "sheaf_settlement_configured";
/// Age of the oldest sequence proved in the store but not finalized on chain, in seconds.
pub const SETTLEMENT_LAG: &str = "sheaf_settlement_lag_seconds";
/// Sequences proved in the store but not finalized on chain.
pub const SEQUENCES_UNSETTLED: &str = "sheaf_sequences_unsettled";
/// 1 while this replica's proof sender holds the sender role and sends, 0 while it stands by.
pub const SENDER_ROLE_HELD: &str = "sheaf_sender_role_held";
/// Jobs by status and level (sampled from the store at each scrape).
pub const JOBS: &str = "sheaf_jobs";
/// Always 1, labelled with the build's version and git commit.
pub const BUILD_INFO: &str = "sheaf_build_info";

/// The git commit the binary was built from, when the build set `SHEAF_GIT_COMMIT` (a packaging
/// script does; a plain `cargo build` leaves it `unknown` rather than run git at build time).
pub const GIT_COMMIT: &str = match option_env!("SHEAF_GIT_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

/// Buckets of the verification time: a node proof verifies in ~10 ms.
const VERIFY_BUCKETS: &[f64] = &[0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0];
/// Buckets of the lease-to-proof and proving times: a small leaf proves in well under a second,
/// a node of a production profile in tens of seconds, and a lease lives 30 s between heartbeats
/// but may be held for many minutes.
const PROOF_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0,
];

/// The process's Prometheus recorder, installed once (several coordinators in one process,
/// as in tests, share it), with every metric described.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(VERIFY_SECONDS.to_owned()), VERIFY_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(PROOF_SECONDS.to_owned()), PROOF_BUCKETS)
            })
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(PROVING_SECONDS.to_owned()), PROOF_BUCKETS)
            })
            .expect("static buckets are valid")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may be installed (by an embedding program); then our metrics go
        // there and this handle renders nothing, which is not worth failing for.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        register_at_start();
        handle
    })
}

fn process() -> &'static metrics_process::Collector {
    static PROCESS: OnceLock<metrics_process::Collector> = OnceLock::new();
    PROCESS.get_or_init(metrics_process::Collector::default)
}

/// HELP text and unit of every metric.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(LEASES_GRANTED, Unit::Count, "Leases granted, by prover.");
    describe_counter!(
        LEASES_EXPIRED,
        Unit::Count,
        "Leases that expired without a proof and were taken back by the sweeper."
    );
    describe_counter!(
        JOBS_REQUEUED,
        Unit::Count,
        "Jobs made ready again after an expired lease."
    );
    describe_counter!(
        JOBS_DEAD,
        Unit::Count,
        "Jobs that used up their attempts and wait for an operator."
    );
    describe_counter!(
        PROOFS_ACCEPTED,
        Unit::Count,
        "Proofs verified and stored, by prover and tree level."
    );
    describe_counter!(
        REQUESTS_REJECTED,
        Unit::Count,
        "Prover API requests refused, by reason (the API error code)."
    );
    describe_counter!(
        SUBMISSIONS_REJECTED,
        Unit::Count,
        "Proof submissions refused for the prover's own fault (not for overload), by prover."
    );
    describe_histogram!(
        VERIFY_SECONDS,
        Unit::Seconds,
        "Time spent verifying one submitted proof."
    );
    describe_gauge!(
        VERIFY_IN_FLIGHT,
        Unit::Count,
        "Submissions admitted to verification: verifying or waiting for a verifier."
    );
    describe_gauge!(
        VERIFY_CAPACITY,
        Unit::Count,
        "Submissions admitted to verification at most (workers + queue); beyond it, 503."
    );
    describe_histogram!(
        PROOF_SECONDS,
        Unit::Seconds,
        "Time from a lease granted to its proof accepted, by tree level, on the coordinator's clock."
    );
    describe_histogram!(
        PROVING_SECONDS,
        Unit::Seconds,
        "Proving time the prover reported with its accepted proof, by tree level."
    );
    describe_gauge!(
        PROVER_LAST_SEEN,
        Unit::Seconds,
        "Unix time of a prover's last authenticated request, by prover."
    );
    describe_gauge!(
        PROVERS_LIVE,
        Unit::Count,
        "Provers whose last authenticated request is within the lease TTL."
    );
    describe_counter!(
        SETTLEMENT_TXS,
        Unit::Count,
        "Chain transactions signed by the proof sender, by kind."
    );
    describe_counter!(
        SETTLEMENT_FINALIZED,
        Unit::Count,
        "Sequences finalized on chain by this coordinator's proofs."
    );
    describe_gauge!(
        SETTLEMENT_CONFIGURED,
        "1 when this coordinator settles on a chain, 0 when it only proves."
    );
    describe_gauge!(
        SETTLEMENT_LAG,
        Unit::Seconds,
        "Age of the oldest sequence proved in the store and not yet finalized on chain (0 when none; set by the replica that sends)."
    );
    describe_gauge!(
        SEQUENCES_UNSETTLED,
        Unit::Count,
        "Sequences proved in the store and not yet finalized on chain (set by the replica that sends)."
    );
    describe_gauge!(
        SENDER_ROLE_HELD,
        "1 while this replica's proof sender holds the sender role and sends, 0 while it stands by."
    );
    describe_gauge!(
        JOBS,
        Unit::Count,
        "Jobs by status and tree level, over all sequences in the store."
    );
    describe_gauge!(BUILD_INFO, "Always 1; the labels say which build runs.");
    process().describe();
}

/// The metrics whose labels are known at start, at zero (gauges at their idle value).
fn register_at_start() {
    for code in ErrorCode::ALL {
        metrics::counter!(REQUESTS_REJECTED, "reason" => code.as_str()).increment(0);
    }
    for kind in [
        OutboxKind::Register,
        OutboxKind::ProofHash,
        OutboxKind::Proof,
    ] {
        metrics::counter!(SETTLEMENT_TXS, "kind" => kind.as_str()).increment(0);
    }
    for counter in [
        LEASES_EXPIRED,
        JOBS_REQUEUED,
        JOBS_DEAD,
        SETTLEMENT_FINALIZED,
    ] {
        metrics::counter!(counter).increment(0);
    }
    for gauge in [
        PROVERS_LIVE,
        SETTLEMENT_CONFIGURED,
        SETTLEMENT_LAG,
        SEQUENCES_UNSETTLED,
        SENDER_ROLE_HELD,
    ] {
        metrics::gauge!(gauge).set(0.0);
    }
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "git" => GIT_COMMIT)
        .set(1.0);
}

/// The per-prover counters of `prover`, at zero if new: called for every admitted prover when
/// the registry is copied into the store.
pub(crate) fn register_prover(prover: &str) {
    metrics::counter!(LEASES_GRANTED, "prover" => prover.to_owned()).increment(0);
    metrics::counter!(SUBMISSIONS_REJECTED, "prover" => prover.to_owned()).increment(0);
}

/// What a scrape samples besides the recorded metrics.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// Jobs by status and level, from the store.
    pub counts: Vec<StatusCount>,
    /// Provers seen within the lease TTL.
    pub provers_live: usize,
    /// Submissions admitted to verification.
    pub verify_in_flight: usize,
    /// Submissions admissible at once.
    pub verify_capacity: usize,
}

/// Render the metrics, with the sampled gauges set from `sample`.
pub fn render(sample: &Sample) -> String {
    let handle = handle();
    let levels: std::collections::BTreeSet<u32> = sample.counts.iter().map(|c| c.level).collect();
    for level in levels {
        // Every status of a level is set, so a status that emptied reads 0, not its last value.
        for status in JobStatus::ALL {
            let count = sample
                .counts
                .iter()
                .find(|c| c.level == level && c.status == status)
                .map_or(0, |c| c.count);
            metrics::gauge!(JOBS, "status" => status.as_str(), "level" => level.to_string())
                .set(count as f64);
        }
    }
    metrics::gauge!(PROVERS_LIVE).set(sample.provers_live as f64);
    metrics::gauge!(VERIFY_IN_FLIGHT).set(sample.verify_in_flight as f64);
    metrics::gauge!(VERIFY_CAPACITY).set(sample.verify_capacity as f64);
    process().collect();
    handle.render()
}
