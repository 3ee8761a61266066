//! Integration tests of the store, each run on SQLite and, when `SHEAF_TEST_POSTGRES_URL` is
//! set, on PostgreSQL.

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
