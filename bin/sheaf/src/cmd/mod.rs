//! The `sheaf` subcommands.

pub mod bench;
pub mod bench_abuse;
pub mod bench_chaos;
pub mod bench_claims;
pub mod bench_console;
pub mod bench_scale;
pub mod bench_store;
pub mod chain;
pub mod claim;
pub mod coordinator;
pub mod devnet;
pub mod devnet_chain;
pub mod genesis;
pub mod jobs;
pub mod keygen;
pub mod keys;
pub mod member;
pub mod proof;
pub mod prove_tree;
pub mod prover;
pub mod provers;
pub mod rollup;
pub mod rollup_node;
pub mod status;
pub mod wallet;
