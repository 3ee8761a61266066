//! Integration tests of the store, each run on SQLite and, when `SHEAF_TEST_POSTGRES_URL` is
//! set (at build time, see build.rs), on PostgreSQL.

mod abandon;
mod admission;
mod bench;
mod blobs;
mod claims;
mod concurrency;
mod console;
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
mod rollup;
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

/// Coordinators on other hosts reach PostgreSQL over TLS: sqlx is built with rustls, so a URL
/// with `sslmode=require` gets an encrypted connection (docs/DEPLOYMENT.md).
#[cfg_attr(
    not(sheaf_postgres),
    ignore = "needs SHEAF_TEST_POSTGRES_URL (PostgreSQL)"
)]
#[tokio::test]
async fn a_postgres_url_may_require_tls() {
    use sqlx::Connection;
    let url = harness::postgres_admin_url().expect("built with SHEAF_TEST_POSTGRES_URL");
    let mut plain = sqlx::PgConnection::connect(&url).await.unwrap();
    let ssl: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(&mut plain)
        .await
        .unwrap();
    if ssl != "on" {
        eprintln!("skipped: PostgreSQL at {url} has ssl = {ssl}, so TLS cannot be tried");
        return;
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    let mut tls = sqlx::PgConnection::connect(&format!("{url}{separator}sslmode=require"))
        .await
        .unwrap_or_else(|e| panic!("sslmode=require refused: {e}"));
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&mut tls)
            .await
            .unwrap();
    assert!(
        encrypted,
        "the connection asked for TLS and is not encrypted"
    );
}
