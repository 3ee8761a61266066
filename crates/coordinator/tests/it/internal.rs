//! Failures of the coordinator itself: the prover gets an opaque reference, never the text.

use sheaf_api::{ErrorCode, LeaseRequest, PATH_LEASE, PATH_STATUS};
use sheaf_coordinator::CoordinatorConfig;
use sheaf_store::SQLITE_FILE_NAME;
use sqlx::Connection;

use crate::harness::{sqlite_store, start_on, Answer, TestProver};

/// Drops `table` from the SQLite store in `dir` behind the coordinator's back.
async fn drop_table(dir: &std::path::Path, table: &str) {
    let url = format!("sqlite://{}", dir.join(SQLITE_FILE_NAME).display());
    let mut db = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connect");
    sqlx::query(&format!("DROP TABLE {table}"))
        .execute(&mut db)
        .await
        .expect("drop");
}

/// The answer is `internal`, names a reference of 8 hex digits, and says nothing of the cause.
fn assert_opaque(answer: &Answer, table: &str) {
    assert_eq!(answer.status, 500);
    assert_eq!(answer.code(), ErrorCode::Internal);
    let body: sheaf_api::ErrorBody = serde_json::from_slice(&answer.body).expect("error body");
    let message = body.error.message;
    let reference = message
        .strip_prefix("internal error (reference ")
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no reference in {message:?}"));
    assert_eq!(reference.len(), 8, "{message:?}");
    assert!(
        reference.bytes().all(|b| b.is_ascii_hexdigit()),
        "{message:?}"
    );
    for leaked in ["no such table", table, "store", "sqlite"] {
        assert!(
            !message.contains(leaked),
            "{leaked:?} leaked in {message:?}"
        );
    }
}

#[tokio::test]
async fn store_failure_on_a_signed_request_answers_a_reference_not_its_text() {
    let alice = TestProver::new("alice");
    let (store, dir) = sqlite_store().await;
    let net = start_on(
        store,
        vec![alice.registered()],
        CoordinatorConfig::default(),
    )
    .await;
    // Every signed request records its nonce first.
    drop_table(dir.path(), "nonces").await;
    let body = serde_json::to_vec(&LeaseRequest { wait_ms: 0 }).unwrap();
    let answer = net.post(&alice, PATH_LEASE, body).await;
    assert_opaque(&answer, "nonces");
    net.stop().await;
}

#[tokio::test]
async fn store_failure_on_status_answers_a_reference_not_its_text() {
    let (store, dir) = sqlite_store().await;
    let net = start_on(store, Vec::new(), CoordinatorConfig::default()).await;
    drop_table(dir.path(), "sequences").await;
    let answer = net.get(PATH_STATUS).await;
    assert_opaque(&answer, "sequences");
    net.stop().await;
}
