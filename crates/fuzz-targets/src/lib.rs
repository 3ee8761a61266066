//! Sheaf's fuzz targets: every parser and check that a remote party's bytes reach, each a plain
//! `pub fn <target>(data: &[u8])` that returns on any input a server would refuse and panics
//! only on a defect (a panic in the code under test, or a broken invariant asserted here).
//!
//! ```text
//!  fuzz/fuzz_targets/<target>.rs ── cargo +nightly fuzz run <target> ──┐
//!                                                                      ├─▶ sheaf_fuzz::<target>(bytes)
//!  tests/it (cargo test -p sheaf-fuzz): seeds, regressions/<target>/*, ┘
//!        and a few thousand deterministic mutations of the seeds
//! ```
//!
//! | target | reaches | invariant asserted |
//! |---|---|---|
//! | [`proof_decode`] | `sheaf_circuits::decode_proof` (a work leaf's shape) | accepted bytes are the canonical encoding |
//! | [`receipt_check`] | `verify_job_proof`: decode, header check, plonky2 verification | accepted only with the expected header |
//! | [`signed_request`] | `SignedHeaders::parse` + `verify` over method, path, body | parsed headers round-trip through `to_pairs` |
//! | [`clock_skew`] | the coordinator's ±30 s timestamp check | agrees with the exact (128-bit) distance |
//! | [`api_bodies`] | `serde_json` of every prover-API body, both directions | a decoded body re-encodes to itself |
//! | [`claims_query`] | `ClaimsQuery::parse` and job-id paths | a parsed cursor prints as it parses |
//! | [`chain_rpc`] | the chain's JSON-RPC module, in process, on a fresh chain | answers are JSON-RPC responses |
//! | [`chain_tx`] | `SignedTx` decoding, signature check, hash | a decoded tx re-encodes to itself |
//! | [`rollup_transaction`] | `POST /v1/rollup/transactions`: decode, rules, mempool, block | an admitted tx builds a block |
//! | [`rollup_local_transaction`] | `POST /v1/rollup/transactions/local`: decode, job inputs, mempool | — |
//! | [`rollup_tx_job`] | a tx-kernel job as a prover leases it: decode, native rules, statement | — |
//! | [`rollup_block`] | published blocks replayed from genesis | — |
//!
//! Inputs above the limit a server applies to them are skipped: the server refuses them before
//! any of this code runs.
//!
//! The clock-skew target checks a copy of the coordinator's expression ([`auth::within_skew`])
//! until the coordinator exports its check.

pub mod api;
pub mod auth;
pub mod chain;
pub mod proof;
pub mod rollup;

pub use api::{api_bodies, claims_query};
pub use auth::{clock_skew, signed_request};
pub use chain::{chain_rpc, chain_tx};
pub use proof::{proof_decode, receipt_check};
pub use rollup::{rollup_block, rollup_local_transaction, rollup_transaction, rollup_tx_job};

/// A fuzz target: its name (as in `fuzz/fuzz_targets/<name>.rs`), its body, and the inputs it
/// starts from (valid requests of its kind, which mutations take apart).
#[derive(Clone, Copy)]
pub struct Target {
    /// The target's name.
    pub name: &'static str,
    /// Run one input.
    pub run: fn(&[u8]),
    /// Valid inputs to start from.
    pub seeds: fn() -> Vec<Vec<u8>>,
}

/// Every target.
pub const TARGETS: [Target; 12] = [
    Target {
        name: "proof_decode",
        run: proof_decode,
        seeds: proof::seeds,
    },
    Target {
        name: "receipt_check",
        run: receipt_check,
        seeds: proof::seeds,
    },
    Target {
        name: "signed_request",
        run: signed_request,
        seeds: auth::request_seeds,
    },
    Target {
        name: "clock_skew",
        run: clock_skew,
        seeds: auth::skew_seeds,
    },
    Target {
        name: "api_bodies",
        run: api_bodies,
        seeds: api::body_seeds,
    },
    Target {
        name: "claims_query",
        run: claims_query,
        seeds: api::query_seeds,
    },
    Target {
        name: "chain_rpc",
        run: chain_rpc,
        seeds: chain::rpc_seeds,
    },
    Target {
        name: "chain_tx",
        run: chain_tx,
        seeds: chain::tx_seeds,
    },
    Target {
        name: "rollup_transaction",
        run: rollup_transaction,
        seeds: rollup::transaction_seeds,
    },
    Target {
        name: "rollup_local_transaction",
        run: rollup_local_transaction,
        seeds: rollup::local_seeds,
    },
    Target {
        name: "rollup_tx_job",
        run: rollup_tx_job,
        seeds: rollup::tx_job_seeds,
    },
    Target {
        name: "rollup_block",
        run: rollup_block,
        seeds: rollup::block_seeds,
    },
];

/// The target named `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().copied().find(|t| t.name == name)
}

/// A fuzz process's start, from its target's `init` (untimed by libFuzzer): build the fixtures
/// of target `name` (a circuit and its proof, a signed rollup), so that its first input does
/// not pay for them, and let caught panics unwind again.
///
/// Under libFuzzer every panic aborts, even one the code under test catches on purpose (the
/// proof decoder runs plonky2's reader behind `catch_unwind`): the hook set here lets it
/// unwind, silently. A panic nothing catches still reaches libFuzzer's own `catch_unwind` and
/// is a crash; `cargo test -p sheaf-fuzz` replays its input with the message.
pub fn init(name: &str) {
    if let Some(target) = target(name) {
        (target.seeds)();
    }
    std::panic::set_hook(Box::new(|_| {}));
}
