//! The chain's tests.

mod health;
mod membership;
mod node;
mod rpc;
mod settlement;
