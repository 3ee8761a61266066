//! The chain's tests.

mod health;
mod hostile;
mod membership;
mod node;
mod rpc;
mod settlement;
