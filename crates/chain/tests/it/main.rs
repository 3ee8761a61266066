//! The chain's tests.

mod membership;
mod settlement;
