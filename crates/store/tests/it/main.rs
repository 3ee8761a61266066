//! Integration tests of the store, each run on SQLite and, when `SHEAF_TEST_POSTGRES_URL` is
//! set (at build time, see build.rs), on PostgreSQL.

mod admission;
mod bench;
mod concurrency;
mod early_exit;
mod fixtures;
mod harness;
mod leases;
mod nonces;
mod operator;
mod outbox;
mod registry;
mod restart;
mod roles;
mod send;
mod submit;

/// Stands for the PostgreSQL half of every test above: with `SHEAF_TEST_POSTGRES_URL` it checks
/// that the server answers (so an unreachable server fails the run instead of skipping it);
/// without, it is reported as ignored, with the reason.
#[cfg_attr(
    not(sheaf_postgres),
    ignore = "SHEAF_TEST_POSTGRES_URL unset: every store test ran on SQLite only"
)]
#[tokio::test]
async fn postgres_server_answers() {
    use sqlx::Connection;
    let url = harness::postgres_admin_url().expect("built with SHEAF_TEST_POSTGRES_URL");
    let mut conn = sqlx::PgConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} does not answer: {e}"));
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
}
