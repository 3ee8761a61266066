//! The chain's tests.

mod admission;
mod durability;
mod health;
mod hostile;
mod membership;
mod node;
mod openrpc;
mod rpc;
mod settlement;
