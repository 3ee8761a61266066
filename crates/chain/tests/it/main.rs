//! The chain's tests.

mod membership;
mod node;
mod rpc;
mod settlement;
