//! A proof check that panics costs the submitter its proof, not the coordinator: the submission
//! is refused with `invalid_proof` in the API's error shape (not a 500), and the coordinator
//! keeps serving.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use plonky2::plonk::circuit_data::VerifierCircuitData;
use sheaf_api::{
    ErrorCode, JobAssignment, LeaseRequest, SignedHeaders, SubmitResponse, PATH_LEASE,
};
use sheaf_circuits::{verify_job_proof, CircuitError, Expected, Proof, C, D, F};
use sheaf_coordinator::{Coordinator, CoordinatorConfig, StaticRegistry};
use sheaf_types::clock::now_ms;
use sheaf_types::SequenceId;

use crate::harness::{circuits, prove_leaf, sqlite_store, Answer, TestProver, LEAF_ROWS_LOG2};

/// Checks run by [`panics_first`].
static CHECKS: AtomicUsize = AtomicUsize::new(0);

/// Panics on the first proof it checks (as a verifier bug reached by crafted bytes would), then
/// verifies as the coordinator does.
fn panics_first(
    bytes: &[u8],
    verifier: &VerifierCircuitData<F, C, D>,
    expected: &Expected,
) -> Result<Proof, CircuitError> {
    if CHECKS.fetch_add(1, Ordering::SeqCst) == 0 {
        panic!("index out of bounds: the len is 3 but the index is 7");
    }
    verify_job_proof(bytes, verifier, expected)
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    prover: &TestProver,
    path: &str,
    body: Vec<u8>,
) -> Answer {
    let headers = SignedHeaders::sign(&prover.signing, "POST", path, &body, now_ms());
    let mut request = http.post(format!("{url}{path}")).body(body);
    for (name, value) in headers.to_pairs() {
        request = request.header(name, value);
    }
    Answer::read(request.send().await.expect("request")).await
}

#[tokio::test]
async fn a_verifier_panic_refuses_the_proof_and_the_coordinator_keeps_serving() {
    let alice = TestProver::new("alice");
    let (store, _dir) = sqlite_store().await;
    let circuits = tokio::task::spawn_blocking(circuits).await.unwrap();
    let mut coordinator = Coordinator::new(
        store,
        circuits,
        LEAF_ROWS_LOG2,
        CoordinatorConfig::default(),
        Some(Arc::new(StaticRegistry(vec![alice.registered()]))),
    )
    .await
    .expect("coordinator");
    coordinator.set_proof_check(panics_first);
    let coordinator = Arc::new(coordinator);
    coordinator.plan(SequenceId(1), 2).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sheaf_coordinator::serve(coordinator, listener, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let lease = || async {
        let body = serde_json::to_vec(&LeaseRequest { wait_ms: 0 }).unwrap();
        post(&http, &url, &alice, PATH_LEASE, body)
            .await
            .json::<JobAssignment>()
    };
    let submit = |job: JobAssignment, bytes: Vec<u8>| {
        let path = format!("/v1/jobs/{}/proof?token={}&prove_ms=1", job.job, job.token);
        let (http, url, alice) = (&http, &url, &alice);
        async move { post(http, url, alice, &path, bytes).await }
    };

    let first = lease().await;
    let proof = prove_leaf(&first, &alice.worker);
    let refused = submit(first.clone(), proof.clone()).await;
    assert_eq!(refused.status.as_u16(), 422, "a refusal, not a 500");
    assert_eq!(refused.code(), ErrorCode::InvalidProof);
    let message = String::from_utf8_lossy(&refused.body);
    assert!(!message.contains("index out of bounds"), "{message}");

    // Still serving: the next lease, and the same proof again, now verified for real.
    let second = lease().await;
    assert_ne!(second.job, first.job);
    submit(first, proof).await.json::<SubmitResponse>();
    let proof = prove_leaf(&second, &alice.worker);
    submit(second, proof).await.json::<SubmitResponse>();
    assert_eq!(CHECKS.load(Ordering::SeqCst), 3);

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
