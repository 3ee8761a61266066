//! Bad input, one test each: the exact error code, the one error shape, and nothing changed.

use sheaf_api::{
    ErrorCode, HelloRequest, SignedHeaders, API_VERSION, MAX_CLOCK_SKEW_MS, PATH_HELLO, PATH_LEASE,
    PATH_STATUS,
};
use std::sync::Arc;

use sheaf_coordinator::CoordinatorConfig;
use sheaf_store::{JobId, JobStatus};
use sheaf_types::clock::now_ms;

use crate::harness::{alice_leasing, prove_leaf, start, Answer, Net, TestProver};
use sheaf_types::SequenceId;

async fn net_with(prover: &TestProver, leaves: usize) -> Net {
    let net = start(vec![prover.registered()], CoordinatorConfig::default()).await;
    net.coordinator
        .plan(SequenceId(1), leaves)
        .await
        .expect("plan");
    net
}

/// The leased job is still leased to the same lease, with no proof and no reward.
async fn assert_unchanged(net: &Net, job: &sheaf_api::JobId, token: i64) {
    let job: JobId = job.to_string().parse().unwrap();
    let stored = net.store.get_job(job).await.unwrap().unwrap();
    assert_eq!(stored.status, JobStatus::Leased);
    assert_eq!(stored.lease_token, token);
    assert!(stored.proof_hash.is_none());
    assert!(net.rewards_of_sequence_one().await.is_empty());
}

/// Alice and bob registered, one leaf planned and leased to alice.
async fn leased_to_alice_with_bob_registered(
) -> (TestProver, TestProver, Net, sheaf_api::JobAssignment) {
    let alice = TestProver::new("alice");
    let bob = TestProver::new("bob");
    let net = start(
        vec![alice.registered(), bob.registered()],
        CoordinatorConfig::default(),
    )
    .await;
    net.coordinator.plan(SequenceId(1), 1).await.unwrap();
    let job = net.lease(&alice).await;
    (alice, bob, net, job)
}

fn lease_body() -> Vec<u8> {
    br#"{"wait_ms":0}"#.to_vec()
}

#[tokio::test]
async fn request_with_bad_signature_is_refused() {
    let alice = TestProver::new("alice");
    let net = net_with(&alice, 2).await;
    let body = lease_body();
    let mut headers = SignedHeaders::sign(&alice.signing, "POST", PATH_LEASE, &body, now_ms());
    let mut signature = headers.signature.to_bytes();
    signature[0] ^= 1;
    headers.signature = ed25519_dalek::Signature::from_bytes(&signature);
    let answer = net.send(PATH_LEASE, body, &headers).await;
    assert_eq!(answer.code(), ErrorCode::BadSignature);
    // Nothing was leased.
    let leased = net.store.counts_by_status().await.unwrap();
    assert!(leased.iter().all(|c| c.status != JobStatus::Leased));
    net.stop().await;
}

#[tokio::test]
async fn request_signed_over_another_body_is_refused() {
    let alice = TestProver::new("alice");
    let net = net_with(&alice, 1).await;
    let headers = SignedHeaders::sign(
        &alice.signing,
        "POST",
        PATH_LEASE,
        br#"{"wait_ms":1}"#,
        now_ms(),
    );
    let answer = net.send(PATH_LEASE, lease_body(), &headers).await;
    assert_eq!(answer.code(), ErrorCode::BadSignature);
    net.stop().await;
}

#[tokio::test]
async fn replayed_nonce_is_refused() {
    let alice = TestProver::new("alice");
    let net = net_with(&alice, 2).await;
    let body = lease_body();
    let headers = SignedHeaders::sign(&alice.signing, "POST", PATH_LEASE, &body, now_ms());
    net.send(PATH_LEASE, body.clone(), &headers)
        .await
        .json::<sheaf_api::JobAssignment>();
    let replay = net.send(PATH_LEASE, body, &headers).await;
    assert_eq!(replay.code(), ErrorCode::ReplayedNonce);
    // The replay leased nothing more.
    let leased: i64 = net
        .store
        .counts_by_status()
        .await
        .unwrap()
        .iter()
        .filter(|c| c.status == JobStatus::Leased)
        .map(|c| c.count)
        .sum();
    assert_eq!(leased, 1);
    net.stop().await;
}

#[tokio::test]
async fn stale_timestamp_is_refused() {
    let alice = TestProver::new("alice");
    let net = net_with(&alice, 1).await;
    let body = lease_body();
    for skew in [-(MAX_CLOCK_SKEW_MS + 5_000), MAX_CLOCK_SKEW_MS + 5_000] {
        let headers =
            SignedHeaders::sign(&alice.signing, "POST", PATH_LEASE, &body, now_ms() + skew);
        let answer = net.send(PATH_LEASE, body.clone(), &headers).await;
        assert_eq!(answer.code(), ErrorCode::StaleTimestamp, "skew {skew} ms");
    }
    net.stop().await;
}

#[tokio::test]
async fn unknown_prover_is_refused() {
    let alice = TestProver::new("alice");
    let mallory = TestProver::new("mallory");
    let net = net_with(&alice, 1).await;
    let answer = net.try_lease(&mallory, 0).await;
    assert_eq!(answer.code(), ErrorCode::UnknownProver);
    net.stop().await;
}

#[tokio::test]
async fn missing_signature_headers_are_refused() {
    let alice = TestProver::new("alice");
    let net = net_with(&alice, 1).await;
    let response = reqwest::Client::new()
        .post(format!("{}{PATH_LEASE}", net.url))
        .body(lease_body())
        .send()
        .await
        .unwrap();
    let answer = crate::harness::Answer::read(response).await;
    assert_eq!(answer.code(), ErrorCode::Unauthenticated);
    net.stop().await;
}

#[tokio::test]
async fn incompatible_api_version_is_refused_at_hello() {
    let alice = TestProver::new("alice");
    let net = net_with(&alice, 1).await;
    let hello = |version| {
        serde_json::to_vec(&HelloRequest {
            api_version: version,
            software: "test".into(),
        })
        .unwrap()
    };
    let ok: sheaf_api::HelloResponse = net
        .post(&alice, PATH_HELLO, hello(API_VERSION))
        .await
        .json();
    assert_eq!(ok.prover, "alice");
    assert_eq!(
        ok.circuits.final_key_id,
        net.coordinator.spec().final_key_id
    );
    // The standard set's kinds, by name: claims are a kind of every network's set.
    let kind = |name: &str| sheaf_api::KindSpec {
        name: name.into(),
        key: net
            .coordinator
            .circuits()
            .kind(name)
            .unwrap()
            .key_digest()
            .to_string(),
    };
    assert_eq!(
        ok.circuits.kinds,
        [kind("claim"), kind("work")],
        "the hello names the set's kinds and their keys"
    );
    let answer = net.post(&alice, PATH_HELLO, hello(API_VERSION + 1)).await;
    assert_eq!(answer.code(), ErrorCode::IncompatibleVersion);
    net.stop().await;
}

#[tokio::test]
async fn lease_beyond_rate_limit_is_429() {
    let alice = TestProver::new("alice");
    let net = start(vec![alice.entry(1, 4)], CoordinatorConfig::default()).await;
    net.coordinator.plan(SequenceId(1), 3).await.unwrap();
    net.lease(&alice).await;
    let answer = net.try_lease(&alice, 0).await;
    assert_eq!(answer.status, 429);
    assert_eq!(answer.code(), ErrorCode::RateLimited);
    assert!(answer.retry_after.is_some());
    net.stop().await;
}

#[tokio::test]
async fn lease_beyond_concurrency_cap_is_429() {
    let alice = TestProver::new("alice");
    let net = start(vec![alice.entry(100, 1)], CoordinatorConfig::default()).await;
    net.coordinator.plan(SequenceId(1), 3).await.unwrap();
    net.lease(&alice).await;
    let answer = net.try_lease(&alice, 0).await;
    assert_eq!(answer.code(), ErrorCode::TooManyLeases);
    net.stop().await;
}

#[tokio::test]
async fn oversized_body_is_413_and_changes_nothing() {
    let config = CoordinatorConfig {
        max_body_bytes: 64 * 1024,
        ..CoordinatorConfig::default()
    };
    let (alice, net, job) = alice_leasing(config, 1).await;
    let answer = net
        .submit(&alice, &job.job, job.token, vec![7u8; 64 * 1024 + 1])
        .await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.code(), ErrorCode::PayloadTooLarge);
    assert_unchanged(&net, &job.job, job.token).await;
    net.stop().await;
}

#[tokio::test]
async fn garbage_proof_bytes_are_refused() {
    let alice = TestProver::new("alice");
    let net = net_with(&alice, 1).await;
    let job = net.lease(&alice).await;
    let answer = net
        .submit(
            &alice,
            &job.job,
            job.token,
            b"definitely not a proof".to_vec(),
        )
        .await;
    assert_eq!(answer.code(), ErrorCode::MalformedProof);
    assert_unchanged(&net, &job.job, job.token).await;
    net.stop().await;
}

#[tokio::test]
async fn proof_with_trailing_bytes_is_refused() {
    let alice = TestProver::new("alice");
    let net = net_with(&alice, 1).await;
    let job = net.lease(&alice).await;
    let mut bytes = prove_leaf(&job, &alice.worker);
    bytes.push(0);
    let answer = net.submit(&alice, &job.job, job.token, bytes).await;
    assert_eq!(answer.code(), ErrorCode::MalformedProof);
    assert_unchanged(&net, &job.job, job.token).await;
    net.stop().await;
}

#[tokio::test]
async fn proof_for_another_job_is_refused() {
    let alice = TestProver::new("alice");
    let net = net_with(&alice, 2).await;
    let first = net.lease(&alice).await;
    let second = net.lease(&alice).await;
    let proof_of_second = prove_leaf(&second, &alice.worker);
    let answer = net
        .submit(&alice, &first.job, first.token, proof_of_second)
        .await;
    assert_eq!(answer.code(), ErrorCode::HeaderMismatch);
    assert_unchanged(&net, &first.job, first.token).await;
    net.stop().await;
}

#[tokio::test]
async fn proof_carrying_another_provers_worker_pk_is_refused() {
    let (alice, bob, net, job) = leased_to_alice_with_bob_registered().await;
    // A valid proof of the right job, but made with bob's worker secret (stolen, say).
    let bobs_proof = prove_leaf(&job, &bob.worker);
    let answer = net.submit(&alice, &job.job, job.token, bobs_proof).await;
    assert_eq!(answer.code(), ErrorCode::WrongWorker);
    assert_unchanged(&net, &job.job, job.token).await;
    net.stop().await;
}

#[tokio::test]
async fn unknown_job_id_is_404() {
    let alice = TestProver::new("alice");
    let net = net_with(&alice, 1).await;
    let answer = net.submit(&alice, "s9-l0-i0", 1, vec![1, 2, 3]).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.code(), ErrorCode::UnknownJob);
    let heartbeat = net
        .post(
            &alice,
            &sheaf_api::heartbeat_path("s9-l0-i0".parse().unwrap()),
            br#"{"token":1}"#.to_vec(),
        )
        .await;
    assert_eq!(heartbeat.code(), ErrorCode::UnknownJob);
    let malformed = net.submit(&alice, "job-one", 1, vec![1]).await;
    assert_eq!(malformed.code(), ErrorCode::BadRequest);
    net.stop().await;
}

#[tokio::test]
async fn unknown_route_is_404_in_the_error_shape() {
    let alice = TestProver::new("alice");
    let net = net_with(&alice, 1).await;
    let answer = net.get("/v1/nowhere").await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.code(), ErrorCode::NotFound);
    assert_eq!(message(&answer), "no endpoint GET /v1/nowhere");
    net.stop().await;
}

#[tokio::test]
async fn wrong_method_is_405_in_the_error_shape() {
    let alice = TestProver::new("alice");
    let net = net_with(&alice, 1).await;
    let get_lease = net.get(PATH_LEASE).await;
    assert_eq!(get_lease.status, 405);
    assert_eq!(get_lease.code(), ErrorCode::MethodNotAllowed);
    assert_eq!(message(&get_lease), "/v1/lease does not take GET");
    let post_status = net.post(&alice, PATH_STATUS, Vec::new()).await;
    assert_eq!(post_status.status, 405);
    assert_eq!(post_status.code(), ErrorCode::MethodNotAllowed);
    assert_eq!(message(&post_status), "/v1/status does not take POST");
    net.stop().await;
}

fn message(answer: &Answer) -> String {
    serde_json::from_slice::<sheaf_api::ErrorBody>(&answer.body)
        .expect("error body")
        .error
        .message
}

#[tokio::test]
async fn submission_of_another_provers_lease_is_refused() {
    let (_alice, bob, net, job) = leased_to_alice_with_bob_registered().await;
    let bobs_proof = prove_leaf(&job, &bob.worker);
    let answer = net.submit(&bob, &job.job, job.token, bobs_proof).await;
    assert_eq!(answer.code(), ErrorCode::StaleLease);
    assert_unchanged(&net, &job.job, job.token).await;
    net.stop().await;
}

#[tokio::test]
async fn submission_beyond_verifier_capacity_is_503_with_retry_after() {
    // No verifier slot and no queue: every submission overflows.
    let config = CoordinatorConfig {
        verify_workers: 0,
        verify_queue: 0,
        ..CoordinatorConfig::default()
    };
    let (alice, net, job) = alice_leasing(config, 1).await;
    let answer = net
        .submit(&alice, &job.job, job.token, prove_leaf(&job, &alice.worker))
        .await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.code(), ErrorCode::Overloaded);
    assert!(answer.retry_after.is_some());
    assert_unchanged(&net, &job.job, job.token).await;
    net.stop().await;
}

#[tokio::test]
async fn malformed_submission_query_is_400_and_changes_nothing() {
    let alice = TestProver::new("alice");
    let net = net_with(&alice, 1).await;
    let job = net.lease(&alice).await;
    let proof = prove_leaf(&job, &alice.worker);
    for query in ["", "?token=x", &format!("?token={}&prove_ms=-5", job.token)] {
        let path = format!("/v1/jobs/{}/proof{query}", job.job);
        let answer = net.post(&alice, &path, proof.clone()).await;
        assert_eq!(answer.code(), ErrorCode::BadRequest, "{path}");
    }
    assert_unchanged(&net, &job.job, job.token).await;
    net.stop().await;
}

/// A prover sending faster than `--prover-request-rate` is refused 429 rate_limited with a
/// Retry-After, before its nonce is stored (the same request is accepted once the rate allows);
/// requests forged with its key do not spend its rate, and other provers are served meanwhile.
#[tokio::test]
async fn a_prover_over_its_request_rate_is_refused_and_others_are_served() {
    let alice = TestProver::new("alice");
    let bob = TestProver::new("bob");
    let config = CoordinatorConfig {
        prover_request_rate: 2, // bursts of 4
        ..CoordinatorConfig::default()
    };
    let net = start(vec![alice.registered(), bob.registered()], config).await;
    let body = |who: &str| {
        serde_json::to_vec(&HelloRequest {
            api_version: API_VERSION,
            software: who.to_owned(),
        })
        .unwrap()
    };
    // A forger knows alice's key, not her secret: refused for the signature, uncounted.
    let forger = TestProver::new("forger");
    for _ in 0..8 {
        let mut headers =
            SignedHeaders::sign(&forger.signing, "POST", PATH_HELLO, &body("a"), now_ms());
        headers.key = alice.signing.verifying_key();
        let answer = net.send(PATH_HELLO, body("a"), &headers).await;
        assert_eq!(answer.code(), ErrorCode::BadSignature);
    }
    for i in 0..4 {
        let headers = SignedHeaders::sign(&alice.signing, "POST", PATH_HELLO, &body("a"), now_ms());
        let answer = net.send(PATH_HELLO, body("a"), &headers).await;
        assert!(answer.status.is_success(), "request {i} of the burst");
    }
    let over = SignedHeaders::sign(&alice.signing, "POST", PATH_HELLO, &body("a"), now_ms());
    let refused = net.send(PATH_HELLO, body("a"), &over).await;
    assert_eq!(refused.code(), ErrorCode::RateLimited);
    assert_eq!(refused.retry_after.as_deref(), Some("1"));
    let headers = SignedHeaders::sign(&bob.signing, "POST", PATH_HELLO, &body("b"), now_ms());
    assert!(net
        .send(PATH_HELLO, body("b"), &headers)
        .await
        .status
        .is_success());
    // Half a second refills one request at 2 a second: the refused request, sent again, is
    // no replay (its nonce was not stored).
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let again = net.send(PATH_HELLO, body("a"), &over).await;
    assert!(
        again.status.is_success(),
        "{}",
        String::from_utf8_lossy(&again.body)
    );
    net.stop().await;
}

/// A request the rules refuse (here, heartbeats of a job that does not exist) costs its key
/// `REFUSED_REQUEST_COST` requests: a key that sends only those gets a tenth of its rate
/// served, owing the rest, while another prover is served.
#[tokio::test]
async fn refused_requests_cost_their_key_several_requests() {
    let alice = TestProver::new("alice");
    let bob = TestProver::new("bob");
    let config = CoordinatorConfig {
        prover_request_rate: 20, // bursts of 40: 4 refused requests, then 2 a second
        ..CoordinatorConfig::default()
    };
    let net = start(vec![alice.registered(), bob.registered()], config).await;
    let started = std::time::Instant::now();
    let (mut served, mut limited) = (0, 0);
    while started.elapsed() < std::time::Duration::from_secs(2) {
        let answer = net
            .post(
                &alice,
                &sheaf_api::heartbeat_path("s9-l0-i0".parse().unwrap()),
                br#"{"token":1}"#.to_vec(),
            )
            .await;
        match answer.code() {
            ErrorCode::UnknownJob => served += 1,
            ErrorCode::RateLimited => limited += 1,
            other => panic!("{other:?}"),
        }
    }
    // 4 from the burst and about 2 a second; at one request each, 40 and 20 a second.
    assert!(
        (4..=12).contains(&served) && limited > 0,
        "{served} served, {limited} refused for the rate"
    );
    let hello = serde_json::to_vec(&HelloRequest {
        api_version: API_VERSION,
        software: "b".to_owned(),
    })
    .unwrap();
    assert!(net.post(&bob, PATH_HELLO, hello).await.status.is_success());
    net.stop().await;
}

/// A prover that comes straight back while over its rate has its refusals held until its next
/// token, so it is answered at about its rate, not as fast as it asks; beyond a few held at
/// once, its refusals come at once.
#[tokio::test]
async fn refusals_over_the_request_rate_are_held_until_the_next_token() {
    let alice = TestProver::new("alice");
    let config = CoordinatorConfig {
        prover_request_rate: 2, // bursts of 4, a token every 500 ms
        ..CoordinatorConfig::default()
    };
    let net = Arc::new(start(vec![alice.registered()], config).await);
    let hello = || {
        let body = serde_json::to_vec(&HelloRequest {
            api_version: API_VERSION,
            software: "a".to_owned(),
        })
        .unwrap();
        let headers = SignedHeaders::sign(&alice.signing, "POST", PATH_HELLO, &body, now_ms());
        (body, headers)
    };
    // The burst, then one refusal that blocks the key until its next token, about half a
    // second away.
    for i in 0..4 {
        let (body, headers) = hello();
        let answer = net.send(PATH_HELLO, body, &headers).await;
        assert!(answer.status.is_success(), "request {i} of the burst");
    }
    let (body, headers) = hello();
    assert_eq!(
        net.send(PATH_HELLO, body, &headers).await.code(),
        ErrorCode::RateLimited
    );
    // Many at once while blocked: a few are held, the rest refused at once.
    let mut at_once = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let (body, headers) = hello();
        let net = net.clone();
        at_once.spawn(async move {
            let sent = std::time::Instant::now();
            let answer = net.send(PATH_HELLO, body, &headers).await;
            (answer.code(), sent.elapsed())
        });
    }
    let (mut quick, mut held) = (0, 0);
    while let Some(answer) = at_once.join_next().await {
        let (code, took) = answer.unwrap();
        assert_eq!(code, ErrorCode::RateLimited);
        if took < std::time::Duration::from_millis(150) {
            quick += 1;
        } else {
            held += 1;
        }
    }
    assert!(
        (1..=4).contains(&held) && quick >= 8,
        "{held} held, {quick} refused at once"
    );
    // Straight back, one request after another, for a second: about three answers a token
    // (one served, one refused at its signature, one held), not the hundreds a loopback
    // client gets without the hold.
    let started = std::time::Instant::now();
    let mut answers = 0;
    while started.elapsed() < std::time::Duration::from_secs(1) {
        let (body, headers) = hello();
        let answer = net.send(PATH_HELLO, body, &headers).await;
        assert!(
            answer.status.is_success() || answer.code() == ErrorCode::RateLimited,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        answers += 1;
    }
    assert!(answers <= 12, "{answers} answers in a second at 2 a second");
    Arc::into_inner(net).unwrap().stop().await;
}
