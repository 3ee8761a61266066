//! Operator endpoints: every metric the alerting rules and the dashboard use is exported with
//! HELP text, counters are there from zero, `/healthz` and `/readyz` say what they should, and
//! `--metrics-listen` moves `/metrics` to a port of its own. Metrics are one recorder per
//! process, shared by every test of this binary: each test looks only at series of its own
//! (its own prover names) or at presence, never at a value another test may move.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use sheaf_api::{ErrorCode, StatusResponse};
use sheaf_chain::node::{Chain, ChainConfig};
use sheaf_chain::settlement::RootVerifier;
use sheaf_circuits::Header;
use sheaf_coordinator::health::ChainContact;
use sheaf_coordinator::{CoordinatorConfig, CoordinatorService, ServiceOptions, StaticRegistry};
use sheaf_types::clock::now_ms;
use sheaf_types::SequenceId;

use crate::harness::{
    circuits, prove_leaf, sqlite_store, start, Answer, TestProver, LEAF_ROWS_LOG2,
};

/// The repository's deploy folder.
fn deploy(path: &str) -> String {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// Metric names (`sheaf_…` and `process_…`) in a PromQL expression, histogram series suffixes
/// stripped.
fn metric_names(expr: &str, names: &mut BTreeSet<String>) {
    for prefix in ["sheaf_", "process_"] {
        let mut rest = expr;
        while let Some(at) = rest.find(prefix) {
            let preceded_by_word = rest[..at]
                .chars()
                .last()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            if preceded_by_word {
                continue;
            }
            let name = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(&name);
            names.insert(name.to_owned());
        }
    }
}

/// Every metric name in the rules' `expr:` lines and the dashboard's targets.
fn referenced_metrics() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let rules = deploy("prometheus/sheaf.rules.yml");
    for line in rules.lines() {
        if let Some(expr) = line.trim_start().strip_prefix("expr:") {
            metric_names(expr, &mut names);
        }
    }
    let dashboard: serde_json::Value =
        serde_json::from_str(&deploy("grafana/sheaf-dashboard.json")).expect("dashboard JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    for target in panels
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
    {
        metric_names(target["expr"].as_str().expect("expr"), &mut names);
    }
    names
}

/// Whether `text` exports `name` (a sample line) with HELP text.
fn exported_with_help(text: &str, name: &str) -> bool {
    let help = text.lines().any(|l| {
        l.strip_prefix("# HELP ")
            .and_then(|l| l.strip_prefix(name))
            .is_some_and(|r| r.starts_with(' '))
    });
    let sample = text.lines().any(|l| {
        !l.starts_with('#')
            && ["", "_bucket", "_sum", "_count"].iter().any(|suffix| {
                l.strip_prefix(name)
                    .and_then(|r| r.strip_prefix(suffix))
                    .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
            })
    });
    help && sample
}

struct NoRootProofs;

impl RootVerifier for NoRootProofs {
    fn verify(&self, _proof: &[u8]) -> Result<Header, String> {
        Err("no root proofs here".into())
    }
}

/// A chain node's `/metrics`, after one block.
async fn chain_metrics() -> String {
    let config = ChainConfig {
        manual_blocks: true,
        ..ChainConfig::default()
    };
    let chain = Arc::new(Chain::open(config, Box::new(NoRootProofs)).expect("chain"));
    chain.produce_block().expect("block");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/metrics", listener.local_addr().expect("address"));
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(sheaf_chain::serve(chain, listener, async move {
        let _ = stopped.await;
    }));
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

async fn text(answer: Answer) -> String {
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    String::from_utf8(answer.body).expect("utf-8")
}

#[tokio::test]
async fn every_metric_of_the_rules_and_dashboard_is_exported_with_help() {
    let names = referenced_metrics();
    assert!(
        names.contains("sheaf_proof_seconds"),
        "the parser finds names: {names:?}"
    );
    assert!(names.contains("sheaf_settlement_lag_seconds"), "{names:?}");

    // A coordinator that leased, accepted one proof and refused one submission.
    let prover = TestProver::new("metrics-names");
    let net = start(vec![prover.registered()], CoordinatorConfig::default()).await;
    net.coordinator.plan(SequenceId(1), 2).await.unwrap();
    let first = net.lease(&prover).await;
    let proof = tokio::task::spawn_blocking({
        let first = first.clone();
        let worker = prover.worker;
        move || prove_leaf(&first, &worker)
    })
    .await
    .unwrap();
    let accepted = net.submit(&prover, &first.job, first.token, proof).await;
    assert_eq!(accepted.status, 200);
    let second = net.lease(&prover).await;
    let refused = net
        .submit(&prover, &second.job, second.token, vec![0; 10])
        .await;
    assert_eq!(refused.code(), ErrorCode::MalformedProof);
    let coordinator = text(net.get("/metrics").await).await;
    let chain = chain_metrics().await;

    let missing: Vec<&String> = names
        .iter()
        .filter(|name| {
            let text = if name.starts_with("sheaf_chain_") {
                &chain
            } else {
                &coordinator
            };
            !exported_with_help(text, name)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "referenced in deploy/ but not exported with HELP: {missing:?}\n{coordinator}\n{chain}"
    );
    net.stop().await;
}

#[tokio::test]
async fn counters_are_exported_from_zero() {
    // Zoe is admitted and never sends a request.
    let zoe = TestProver::new("zoe-from-zero");
    let net = start(vec![zoe.registered()], CoordinatorConfig::default()).await;
    let text = text(net.get("/metrics").await).await;
    for line in [
        "sheaf_leases_granted_total{prover=\"zoe-from-zero\"} 0",
        "sheaf_submissions_rejected_total{prover=\"zoe-from-zero\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line}:\n{text}");
    }
    for code in ErrorCode::ALL {
        let series = format!("sheaf_requests_rejected_total{{reason=\"{code}\"}} ");
        assert!(text.contains(&series), "{series}:\n{text}");
    }
    for name in [
        "sheaf_jobs_dead_total",
        "sheaf_leases_expired_total",
        "sheaf_jobs_requeued_total",
        "sheaf_settlement_sequences_finalized_total",
        "sheaf_settlement_transactions_total",
        "sheaf_provers_live",
        "sheaf_verify_in_flight",
        "sheaf_verify_capacity",
        "sheaf_settlement_lag_seconds",
        "sheaf_sequences_unsettled",
        "sheaf_sender_role_held",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
        "process_cpu_seconds_total",
    ] {
        assert!(exported_with_help(&text, name), "{name}:\n{text}");
    }
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        text.lines().any(|l| l.starts_with("sheaf_build_info{")
            && l.contains(&format!("version=\"{version}\""))
            && l.contains("git=\"")
            && l.ends_with(" 1")),
        "{text}"
    );
    // workers + queue of the default configuration.
    let config = CoordinatorConfig::default();
    let capacity = format!(
        "sheaf_verify_capacity {}",
        config.verify_workers + config.verify_queue
    );
    assert!(text.lines().any(|l| l == capacity), "{capacity}:\n{text}");
    net.stop().await;
}

#[tokio::test]
async fn refused_submissions_are_counted_by_prover_and_provers_seen_are_live() {
    let mallory = TestProver::new("mallory-refused");
    let net = start(vec![mallory.registered()], CoordinatorConfig::default()).await;
    net.coordinator.plan(SequenceId(1), 1).await.unwrap();
    let job = net.lease(&mallory).await;
    for _ in 0..2 {
        let refused = net.submit(&mallory, &job.job, job.token, vec![1; 10]).await;
        assert_eq!(refused.code(), ErrorCode::MalformedProof);
    }
    let text = text(net.get("/metrics").await).await;
    assert!(
        text.lines()
            .any(|l| l == "sheaf_submissions_rejected_total{prover=\"mallory-refused\"} 2"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("sheaf_prover_last_seen_seconds{prover=\"mallory-refused\"} ")),
        "{text}"
    );
    assert!(net.coordinator.provers_live() >= 1);
    // The store keeps the tally for `sheaf provers list`.
    let activity = net.store.prover_activity(now_ms()).await.unwrap();
    let mallory = activity.iter().find(|p| p.id == "mallory-refused").unwrap();
    assert_eq!(mallory.rejections, [("malformed_proof".to_owned(), 2)]);
    net.stop().await;
}

#[tokio::test]
async fn healthz_is_ok_and_readyz_is_ready_with_a_working_store() {
    let net = start(vec![], CoordinatorConfig::default()).await;
    let health = net.get("/healthz").await;
    assert_eq!(health.status, 200);
    assert_eq!(
        health.json::<serde_json::Value>(),
        serde_json::json!({ "status": "ok" })
    );
    let ready = net.get("/readyz").await;
    assert_eq!(ready.status, 200);
    let body: serde_json::Value = ready.json();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["store"], "ok");
    assert_eq!(body["checks"]["chain"], "not settling");
    net.stop().await;
}

#[tokio::test]
async fn readyz_is_unavailable_once_the_store_is_closed_while_healthz_stays_ok() {
    let net = start(vec![], CoordinatorConfig::default()).await;
    net.store.close().await;
    let ready = net.get("/readyz").await;
    assert_eq!(ready.code(), ErrorCode::Unavailable);
    let body: sheaf_api::ErrorBody = serde_json::from_slice(&ready.body).unwrap();
    assert!(
        body.error.message.contains("store"),
        "{}",
        body.error.message
    );
    assert!(
        !body.error.message.contains("chain"),
        "{}",
        body.error.message
    );
    assert_eq!(net.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn readyz_is_unavailable_while_the_chain_is_silent_past_the_limit() {
    let net = start(vec![], CoordinatorConfig::default()).await;
    let contact = ChainContact::now();
    net.coordinator
        .watch_chain(contact.clone(), Duration::from_millis(50));
    // Silent past the limit: poll until the check sees it (no assertion on timing).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let refused = loop {
        let ready = net.get("/readyz").await;
        if ready.status == 503 {
            break ready;
        }
        assert!(tokio::time::Instant::now() < deadline, "still ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(refused.code(), ErrorCode::Unavailable);
    let body: sheaf_api::ErrorBody = serde_json::from_slice(&refused.body).unwrap();
    assert!(
        body.error.message.contains("chain: no answer"),
        "{}",
        body.error.message
    );
    // The chain answers again: ready.
    contact.answered();
    let ready = net.get("/readyz").await;
    assert_eq!(
        ready.status,
        200,
        "{}",
        String::from_utf8_lossy(&ready.body)
    );
    assert_eq!(ready.json::<serde_json::Value>()["checks"]["chain"], "ok");
    net.stop().await;
}

#[tokio::test]
async fn metrics_listen_serves_metrics_on_its_own_port_and_the_api_stays_on_its_own() {
    let (store, _dir) = sqlite_store().await;
    let circuits = tokio::task::spawn_blocking(circuits).await.unwrap();
    let service = CoordinatorService::start(ServiceOptions {
        store,
        circuits,
        leaf_rows_log2: LEAF_ROWS_LOG2,
        config: CoordinatorConfig::default(),
        registry: Some(Arc::new(StaticRegistry(vec![]))),
        sequences: 1,
        leaves: 2,
        listen: ([127, 0, 0, 1], 0).into(),
        metrics_listen: Some(([127, 0, 0, 1], 0).into()),
        settlement: None,
        rollup: None,
    })
    .await
    .expect("service");
    let metrics = format!(
        "http://{}",
        service.metrics_address().expect("metrics port")
    );
    assert_ne!(service.metrics_address(), Some(service.address()));
    let get = |url: String| async move { Answer::read(reqwest::get(url).await.unwrap()).await };

    let scraped = text(get(format!("{metrics}/metrics")).await).await;
    assert!(scraped.contains("# HELP sheaf_build_info "), "{scraped}");
    assert!(
        scraped.contains("sheaf_jobs{status=\"ready\",level=\"0\"} 2"),
        "{scraped}"
    );
    assert_eq!(get(format!("{metrics}/healthz")).await.status, 200);
    assert_eq!(get(format!("{metrics}/readyz")).await.status, 200);
    assert_eq!(
        get(format!("{metrics}/v1/status")).await.code(),
        ErrorCode::NotFound
    );

    let api = service.url();
    let status: StatusResponse = get(format!("{api}/v1/status")).await.json();
    assert_eq!(status.sequences.len(), 1);
    assert_eq!(get(format!("{api}/healthz")).await.status, 200);
    assert_eq!(
        get(format!("{api}/metrics")).await.code(),
        ErrorCode::NotFound
    );
    service.stop().await.expect("stopped");
}
