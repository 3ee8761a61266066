//! Sheaf's base chain for devnets and tests. Its contracts are native Rust state machines: the
//! Lumoz two-step verification contract ([`settlement`]) and the RLNv2 membership registry
//! ([`membership`]). Block production, persistence and the JSON-RPC server come next.

pub mod membership;
pub mod settlement;
