//! Integration tests of the prover: its key file, retry schedule and client against canned
//! answers, and whole runs against a fake coordinator that verifies what it receives (with
//! small circuits built once per test binary, see `fake`).

mod backoff;
mod client;
mod fake;
mod key;
mod worker;
