//! Integration tests of the proving core, with real proofs. Circuits are built once per test
//! binary (see `fixture`), with small leaves so the suite stays fast.

mod cache;
mod claims;
mod decode;
mod fixture;
mod golden;
mod kinds;
mod lean;
mod plan;
mod rejections;
mod roots;
