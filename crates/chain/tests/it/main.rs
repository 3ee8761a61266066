//! The chain's tests.

mod admission;
mod durability;
mod health;
mod hostile;
mod membership;
mod node;
mod rpc;
mod settlement;
