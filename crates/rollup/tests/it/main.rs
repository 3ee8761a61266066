//! The rollup's native rules, as specifications: one test per rejection path (a typed error and
//! an unchanged state), and the positive flows the circuits mirror; and the tx kernel, which
//! proves one transaction's rules and refuses every broken one; the merge and block kernels; the
//! block producer's mempool and the producer.

mod blocks;
mod genesis;
mod kernels;
mod mempool;
mod producer;
mod rejections;
mod signature;
mod smt;
mod support;
mod tx_kernel;
