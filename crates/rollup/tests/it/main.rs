//! The rollup's native rules, as specifications: one test per rejection path (a typed error and
//! an unchanged state), and the positive flows the circuits will mirror.

mod blocks;
mod genesis;
mod kernels;
mod rejections;
mod signature;
mod smt;
mod support;
