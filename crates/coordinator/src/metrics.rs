//! Prometheus metrics: jobs by status and level, leases granted/expired/requeued, submissions
//! rejected by reason, verification latency, per-prover counts.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sheaf_store::{JobStatus, StatusCount};

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
/// Seconds spent verifying a submitted proof.
pub const VERIFY_SECONDS: &str = "sheaf_verify_seconds";
/// Chain transactions signed by the proof sender, by kind.
pub const SETTLEMENT_TXS: &str = "sheaf_settlement_transactions_total";
/// Sequences finalized on chain by this coordinator's proofs.
pub const SETTLEMENT_FINALIZED: &str = "sheaf_settlement_sequences_finalized_total";
/// 1 while this replica's proof sender holds the sender role and sends, 0 while it stands by.
pub const SENDER_ROLE_HELD: &str = "sheaf_sender_role_held";
/// Jobs by status and level (sampled from the store at each scrape).
pub const JOBS: &str = "sheaf_jobs";

/// The process's Prometheus recorder, installed once (several coordinators in one process,
/// as in tests, share it).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(VERIFY_SECONDS.to_owned()),
                &[0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0],
            )
            .expect("static buckets are valid")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may be installed (by an embedding program); then our metrics go
        // there and this handle renders nothing, which is not worth failing for.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Render the metrics, with the jobs gauge set from `counts`.
pub fn render(counts: &[StatusCount]) -> String {
    let handle = handle();
    let levels: std::collections::BTreeSet<u32> = counts.iter().map(|c| c.level).collect();
    for level in levels {
        // Every status of a level is set, so a status that emptied reads 0, not its last value.
        for status in JobStatus::ALL {
            let count = counts
                .iter()
                .find(|c| c.level == level && c.status == status)
                .map_or(0, |c| c.count);
            metrics::gauge!(JOBS, "status" => status.as_str(), "level" => level.to_string())
                .set(count as f64);
        }
    }
    handle.render()
}
