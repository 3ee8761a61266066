//! The client against canned answers: signed requests, the one error shape, garbage, limits.

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Router;
use sheaf_api::{ErrorCode, PATH_STATUS};
use sheaf_prover::client::{error_from_body, MAX_RESPONSE_BYTES};
use sheaf_prover::{Client, ClientError, ProverKey};

use crate::fake::{self, leaf_job, Fake};

/// A server answering every request with `status` and `body`.
async fn canned(status: u16, body: &'static [u8]) -> String {
    let status = StatusCode::from_u16(status).unwrap();
    fake::serve(Router::new().fallback(move || async move { (status, body).into_response() })).await
}

fn client(base: &str) -> Client {
    Client::new(base, ProverKey::generate()).unwrap()
}

#[tokio::test]
async fn signed_requests_verify_over_the_path_and_query_sent() {
    let key = ProverKey::generate();
    let fake = Fake::new(key.worker_pk());
    fake.push_job(leaf_job(0, 3));
    let base = fake.serve().await;
    // A trailing slash on the base URL must not change the signed path.
    let client = Client::new(&format!("{base}/"), key).unwrap();

    let hello = client.hello().await.unwrap();
    assert_eq!(hello.circuits, fake::circuits().spec);
    let job = client.lease(10).await.unwrap().expect("a job");
    assert_eq!(job, leaf_job(0, 3));
    assert_eq!(
        client
            .heartbeat(job.job, job.token)
            .await
            .unwrap()
            .expires_ms,
        1
    );
    // Not a valid proof: the submission reaches verification (so it was signed with its query)
    // and is refused there.
    let err = client
        .submit(job.job, job.token, 42, b"\x00\x01proof")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Api {
                status: 422,
                code: ErrorCode::InvalidProof,
                ..
            }
        ),
        "{err:?}"
    );
    let submissions = fake.submissions.lock().unwrap().clone();
    assert_eq!(submissions.len(), 1);
    assert_eq!(submissions[0].token, 3);
    assert_eq!(submissions[0].prove_ms, 42);
    assert_eq!(submissions[0].bytes, b"\x00\x01proof");
    assert_eq!(client.lease(10).await.unwrap(), None, "204 is no job");
}

#[tokio::test]
async fn api_errors_are_parsed_from_the_error_body() {
    let base = canned(
        429,
        br#"{"error":{"code":"rate_limited","message":"600 leases this epoch"}}"#,
    )
    .await;
    let err = client(&base).lease(0).await.unwrap_err();
    match &err {
        ClientError::Api {
            status,
            code,
            message,
        } => {
            assert_eq!(*status, 429);
            assert_eq!(*code, ErrorCode::RateLimited);
            assert_eq!(message, "600 leases this epoch");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.is_retryable());
    assert_eq!(err.code(), Some(ErrorCode::RateLimited));
}

#[tokio::test]
async fn final_api_errors_are_not_retryable() {
    let base = canned(
        403,
        br#"{"error":{"code":"unknown_prover","message":"not registered"}}"#,
    )
    .await;
    let err = client(&base).hello().await.unwrap_err();
    assert!(matches!(
        err,
        ClientError::Api {
            status: 403,
            code: ErrorCode::UnknownProver,
            ..
        }
    ));
    assert!(!err.is_retryable());
}

#[test]
fn error_bodies_parse_without_a_server() {
    let err = error_from_body(
        409,
        br#"{"error":{"code":"stale_lease","message":"token 2 is not current"}}"#,
    );
    assert!(matches!(
        err,
        ClientError::Api { status: 409, code: ErrorCode::StaleLease, ref message } if message == "token 2 is not current"
    ));
    for garbage in [
        &b""[..],
        b"<html>bad gateway</html>",
        br#"{"error":{"code":"no_such_code","message":"x"}}"#,
        br#"{"error":"flat"}"#,
        b"\xff\xfe\x00",
    ] {
        assert!(
            matches!(
                error_from_body(500, garbage),
                ClientError::BadResponse { status: 500, .. }
            ),
            "{garbage:?}"
        );
    }
}

#[tokio::test]
async fn an_error_without_the_error_body_is_a_bad_response() {
    let base = canned(500, b"Internal Server Error").await;
    let err = client(&base).hello().await.unwrap_err();
    assert!(
        matches!(err, ClientError::BadResponse { status: 500, .. }),
        "{err:?}"
    );
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn gateway_errors_without_the_error_body_are_retryable() {
    let base = canned(502, b"<html>Bad Gateway</html>").await;
    let err = client(&base).hello().await.unwrap_err();
    assert!(
        matches!(err, ClientError::BadResponse { status: 502, .. }),
        "{err:?}"
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_success_that_is_not_the_promised_json_is_a_bad_response() {
    for body in [&b"not json"[..], br#"{"api_version":"one"}"#, b"[]"] {
        let body: &'static [u8] = Box::leak(body.to_vec().into_boxed_slice());
        let base = canned(200, body).await;
        let err = client(&base).hello().await.unwrap_err();
        assert!(
            matches!(err, ClientError::BadResponse { status: 200, .. }),
            "{err:?}"
        );
        assert!(!err.is_retryable());
    }
    let base = canned(200, b"{\"job\": 5}").await;
    let err = client(&base).lease(0).await.unwrap_err();
    assert!(
        matches!(err, ClientError::BadResponse { status: 200, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_oversized_answer_is_refused_unread() {
    let huge: &'static [u8] = Box::leak(vec![b'x'; MAX_RESPONSE_BYTES + 1].into_boxed_slice());
    let base = canned(200, huge).await;
    let err = client(&base).status().await.unwrap_err();
    assert!(
        matches!(&err, ClientError::BadResponse { status: 200, reason } if reason.contains("larger")),
        "{err:?}"
    );
}

#[tokio::test]
async fn status_is_an_unsigned_get() {
    let base = fake::serve(Router::new().route(
        PATH_STATUS,
        axum::routing::get(|headers: axum::http::HeaderMap| async move {
            assert!(headers.get(sheaf_api::auth::HEADER_SIGNATURE).is_none());
            axum::Json(sheaf_api::StatusResponse {
                sequences: vec![],
                jobs: vec![],
            })
        }),
    ))
    .await;
    let status = client(&base).status().await.unwrap();
    assert!(status.sequences.is_empty());
}

#[tokio::test]
async fn an_unreachable_coordinator_is_a_retryable_transport_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = client(&format!("http://{addr}")).hello().await.unwrap_err();
    assert!(matches!(err, ClientError::Transport(_)), "{err:?}");
    assert!(err.is_retryable());
}

#[test]
fn bad_coordinator_urls_are_refused() {
    for url in [
        "",
        "localhost:8080",
        "ftp://host",
        "http://host/?q=1",
        "not a url",
    ] {
        assert!(
            matches!(
                Client::new(url, ProverKey::generate()),
                Err(ClientError::InvalidUrl { .. })
            ),
            "{url:?}"
        );
    }
}

#[tokio::test]
async fn an_assignment_with_a_malformed_job_id_is_a_bad_response() {
    // Job ids go into paths: one that is not `s<sequence>-l<level>-i<index>` never gets that
    // far, since the answer that carries it does not decode.
    let base = canned(
        200,
        br#"{"job":"../hello","token":1,"attempt":1,"expires_ms":1,"circuit":"leaf:work","inputs":{"kind":"work","seed":1,"index":0},"children":[]}"#,
    )
    .await;
    let err = client(&base).lease(10).await.unwrap_err();
    assert!(
        matches!(err, ClientError::BadResponse { status: 200, .. }),
        "{err:?}"
    );
}
