//! Integration tests of the store, each run on SQLite and, when `SHEAF_TEST_POSTGRES_URL` is
//! set, on PostgreSQL.

mod concurrency;
mod harness;
mod leases;
mod operator;
mod restart;
mod send;
mod submit;
