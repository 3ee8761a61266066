//! Whole prover runs against the fake coordinator, which verifies every proof it accepts.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sheaf_api::ErrorCode;
use sheaf_prover::{run, ClientError, ProverConfig, ProverError, ProverKey, ProverReport};

use crate::fake::{self, circuits, leaf_job, node_job, Fake};

/// Longest a test run may take before it counts as hung.
const RUN_LIMIT: Duration = Duration::from_secs(120);

fn config(base: &str, key: &ProverKey, max_jobs: Option<u64>) -> ProverConfig {
    ProverConfig {
        coordinator: base.to_owned(),
        key: key.clone(),
        threads: 1,
        max_jobs,
        cache: Some(circuits().cache.clone()),
        lease_wait_ms: 200,
        kinds: sheaf_circuits::KindCatalog::standard(),
    }
}

async fn run_until(
    config: ProverConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<ProverReport, ProverError> {
    tokio::time::timeout(RUN_LIMIT, run(config, shutdown))
        .await
        .expect("the prover run hung")
}

fn never() -> impl Future<Output = ()> {
    std::future::pending()
}

/// A coordinator for a new key, with the circuits built before it serves.
/// Runs a prover until the coordinator took its one job away, and checks that it abandoned it.
async fn run_until_the_lease_is_lost(fake: &Arc<Fake>, base: &str, key: &ProverKey) {
    let fake2 = fake.clone();
    let report = run_until(config(base, key, None), async move {
        fake2.lease_lost.notified().await
    })
    .await
    .unwrap();
    assert_eq!(report.jobs_abandoned, 1);
    assert_eq!(report.jobs_proved, 0);
}

/// The API code of a refusal, `None` for any other client error.
fn api_code(e: &ClientError) -> Option<ErrorCode> {
    match e {
        ClientError::Api { code, .. } => Some(*code),
        _ => None,
    }
}

/// The error a prover stops with against a coordinator that `arrange` set up.
async fn stops_with(arrange: impl FnOnce(&Fake)) -> ProverError {
    let (key, fake, base) = setup().await;
    arrange(&fake);
    run_until(config(&base, &key, None), never())
        .await
        .unwrap_err()
}

async fn setup() -> (ProverKey, Arc<Fake>, String) {
    tokio::task::spawn_blocking(circuits).await.unwrap();
    let key = ProverKey::generate();
    let fake = Fake::new(key.worker_pk());
    let base = fake.serve().await;
    (key, fake, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prover_proves_a_leaf_and_then_its_parent() {
    let (key, fake, base) = setup().await;
    fake.push_job(leaf_job(0, 1));
    fake.parents
        .lock()
        .unwrap()
        .insert("s1-l0-i0".into(), node_job(0, 2));

    let report = run_until(config(&base, &key, Some(2)), never())
        .await
        .unwrap();

    assert_eq!(
        *fake.accepted.lock().unwrap(),
        ["s1-l0-i0", "s1-l1-i0"],
        "both proofs verified on receipt, with this prover's worker_pk"
    );
    assert_eq!(report.jobs_proved, 2);
    assert_eq!(report.jobs_abandoned, 0);
    assert_eq!(report.submissions_rejected, 0);
    assert!(report.circuits_from_cache);
    assert!(report.prove_seconds > 0.0);
    assert!(report.wall_seconds >= report.prove_seconds);
    let submissions = fake.submissions.lock().unwrap();
    assert_eq!(
        submissions.iter().map(|s| s.token).collect::<Vec<_>>(),
        [1, 2]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submission_is_retried_with_the_same_bytes_and_token_while_overloaded() {
    let (key, fake, base) = setup().await;
    fake.push_job(leaf_job(1, 5));
    fake.submit_errors
        .lock()
        .unwrap()
        .extend([ErrorCode::Overloaded, ErrorCode::Unavailable]);

    let report = run_until(config(&base, &key, Some(1)), never())
        .await
        .unwrap();

    assert_eq!(report.jobs_proved, 1);
    let submissions = fake.submissions.lock().unwrap();
    assert_eq!(submissions.len(), 3);
    for s in submissions.iter() {
        assert_eq!((s.job.as_str(), s.token), ("s1-l0-i1", 5));
        assert_eq!(s.bytes, submissions[0].bytes);
        assert_eq!(s.prove_ms, submissions[0].prove_ms);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_submission_is_counted_and_the_prover_moves_on() {
    let (key, fake, base) = setup().await;
    fake.push_job(leaf_job(2, 1));
    fake.push_job(leaf_job(3, 1));
    fake.submit_errors
        .lock()
        .unwrap()
        .push_back(ErrorCode::HeaderMismatch);

    let report = run_until(config(&base, &key, Some(1)), never())
        .await
        .unwrap();

    assert_eq!(report.submissions_rejected, 1);
    assert_eq!(report.jobs_proved, 1);
    assert_eq!(*fake.accepted.lock().unwrap(), ["s1-l0-i3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_lost_while_proving_abandons_the_job() {
    let (key, fake, base) = setup().await;
    // A node job: proving it takes far longer than a heartbeat interval.
    let leaf = circuits()
        .set
        .prove_job(
            &leaf_job(0, 1).circuit,
            &leaf_job(0, 1).inputs,
            &[],
            &key.worker,
        )
        .unwrap();
    let mut node = node_job(4, 1);
    node.children = vec![sheaf_api::ChildProof {
        job: "s1-l0-i0".parse().unwrap(),
        circuit: leaf_job(0, 1).circuit,
        proof: sheaf_circuits::encode_proof(&leaf),
    }];
    fake.push_job(node);
    *fake.heartbeat_error.lock().unwrap() = Some(ErrorCode::StaleLease);

    run_until_the_lease_is_lost(&fake, &base, &key).await;
    assert!(
        fake.submissions.lock().unwrap().is_empty(),
        "the abandoned proof is dropped, not submitted"
    );
    assert!(fake.heartbeats.load(Ordering::SeqCst) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_lost_while_retrying_a_submission_abandons_the_job() {
    let (key, fake, base) = setup().await;
    fake.push_job(leaf_job(8, 1));
    // The coordinator stays overloaded and, meanwhile, hands the job to someone else.
    fake.submit_errors
        .lock()
        .unwrap()
        .extend([ErrorCode::Overloaded; 20]);
    *fake.submit_delay.lock().unwrap() = Duration::from_millis(150);
    *fake.heartbeat_error_once_submitted.lock().unwrap() = Some(ErrorCode::StaleLease);

    run_until_the_lease_is_lost(&fake, &base, &key).await;
    let attempts = fake.submissions.lock().unwrap().len();
    assert!((1..20).contains(&attempts), "{attempts} attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_with_undecodable_children_is_abandoned() {
    let (key, fake, base) = setup().await;
    let mut node = node_job(1, 1);
    node.children = vec![sheaf_api::ChildProof {
        job: "s1-l0-i0".parse().unwrap(),
        circuit: sheaf_api::JobCircuit::Leaf {
            kind: "work".into(),
        },
        proof: vec![1, 2, 3],
    }];
    fake.push_job(node);
    fake.push_job(leaf_job(5, 1));

    let report = run_until(config(&base, &key, Some(1)), never())
        .await
        .unwrap();

    assert_eq!(report.jobs_abandoned, 1);
    assert_eq!(report.jobs_proved, 1);
    assert_eq!(
        fake.submissions.lock().unwrap().len(),
        1,
        "nothing sent for the bad job"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_is_retried_while_the_coordinator_is_rate_limiting() {
    let (key, fake, base) = setup().await;
    fake.lease_errors
        .lock()
        .unwrap()
        .extend([ErrorCode::RateLimited, ErrorCode::TooManyLeases]);
    fake.push_job(leaf_job(6, 1));

    let report = run_until(config(&base, &key, Some(1)), never())
        .await
        .unwrap();

    assert_eq!(report.jobs_proved, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_is_retried_until_the_coordinator_is_up() {
    tokio::task::spawn_blocking(circuits).await.unwrap();
    let key = ProverKey::generate();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let prover = tokio::spawn(run_until(
        config(&format!("http://{addr}"), &key, Some(1)),
        never(),
    ));

    tokio::time::sleep(Duration::from_millis(700)).await;
    let fake = Fake::new(key.worker_pk());
    fake.push_job(leaf_job(7, 1));
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    fake::serve_on(listener, fake.router());

    let report = prover.await.unwrap().unwrap();
    assert_eq!(report.jobs_proved, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cuts_a_lease_wait_short() {
    let (key, fake, base) = setup().await;
    fake.hello.lock().unwrap().max_lease_wait_ms = 60_000;
    let mut config = config(&base, &key, None);
    config.lease_wait_ms = 60_000;

    let fake2 = fake.clone();
    let started = Instant::now();
    let report = run_until(config, async move { fake2.lease_asked.notified().await })
        .await
        .unwrap();

    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the 60 s lease wait was cut short"
    );
    assert_eq!(report.jobs_proved + report.jobs_abandoned, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_api_version_is_refused() {
    let err = stops_with(|fake| {
        fake.hello.lock().unwrap().api_version = sheaf_api::API_VERSION + 1;
    })
    .await;
    assert!(
        matches!(err, ProverError::IncompatibleVersion { coordinator, prover } if coordinator == prover + 1),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuits_other_than_the_coordinators_are_refused() {
    let err = stops_with(|fake| {
        fake.hello.lock().unwrap().circuits.final_key_id = "00".repeat(32);
    })
    .await;
    assert!(
        matches!(err, ProverError::CircuitMismatch { .. }),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("circuit mismatch"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_circuit_profile_is_refused() {
    let err = stops_with(|fake| {
        fake.hello.lock().unwrap().circuits.profile = "turbo".into();
    })
    .await;
    assert!(matches!(err, ProverError::UnknownProfile(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregistered_prover_is_refused_at_hello() {
    let err = stops_with(|fake| {
        *fake.hello_error.lock().unwrap() = Some(ErrorCode::UnknownProver);
    })
    .await;
    let ProverError::Hello(refusal) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(api_code(refusal), Some(ErrorCode::UnknownProver), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_lease_refusal_stops_the_prover() {
    let err = stops_with(|fake| {
        fake.lease_errors
            .lock()
            .unwrap()
            .push_back(ErrorCode::UnknownProver);
    })
    .await;
    let ProverError::Lease(refusal) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(api_code(refusal), Some(ErrorCode::UnknownProver), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_set_with_an_unknown_kind_is_refused() {
    let err = stops_with(|fake| {
        fake.hello
            .lock()
            .unwrap()
            .circuits
            .kinds
            .push(sheaf_api::KindSpec {
                name: "preimage".into(),
                key: "00".repeat(32),
            });
    })
    .await;
    assert!(
        matches!(&err, ProverError::UnknownKind { kind, known } if kind == "preimage" && known == &["claim", "work"]),
        "{err:?}"
    );
    assert!(err.to_string().contains("cannot build"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kind_with_another_key_is_refused() {
    let err = stops_with(|fake| {
        let mut hello = fake.hello.lock().unwrap();
        let work = hello
            .circuits
            .kinds
            .iter_mut()
            .find(|k| k.name == "work")
            .unwrap();
        work.key = "00".repeat(32);
    })
    .await;
    assert!(
        matches!(&err, ProverError::KindMismatch { kind, .. } if kind == "work"),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_naming_no_kinds_means_the_work_leaf() {
    // A coordinator older than kinds sends no `kinds`: the prover builds the work leaf alone and
    // checks the final key. This fake's set admits claims too, so its whitelist differs from the
    // work-only set's and the prover refuses it rather than prove under another key.
    let err = stops_with(|fake| {
        fake.hello.lock().unwrap().circuits.kinds.clear();
    })
    .await;
    assert!(
        matches!(&err, ProverError::CircuitMismatch { coordinator_whitelist, local_whitelist, .. } if coordinator_whitelist != local_whitelist),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_set_with_an_unknown_kernel_is_refused() {
    // The standard catalog builds no kernel rules: a coordinator naming one (a rollup network)
    // is refused before anything is built.
    let err = stops_with(|fake| {
        fake.hello
            .lock()
            .unwrap()
            .circuits
            .kernels
            .push("merge".into());
    })
    .await;
    assert!(
        matches!(&err, ProverError::UnknownKind { kind, known } if kind == "kernel:merge" && known == &["claim", "work"]),
        "{err:?}"
    );
}
