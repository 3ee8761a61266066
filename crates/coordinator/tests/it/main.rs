//! The coordinator's tests: real SQLite files (and PostgreSQL when `SHEAF_TEST_POSTGRES_URL` is
//! set), real HTTP over loopback, real proofs of small circuits built once per test binary.

mod abandon;
mod chain_registry;
mod claims;
mod clock_skew;
mod console;
mod harness;
mod hostile;
mod internal;
mod leases;
mod metrics;
mod network;
mod openapi;
mod postgres;
mod registry;
mod rejections;
mod rollup;
mod rollup_rejections;
mod rollup_restart;
mod settlement;
mod verify_panic;
