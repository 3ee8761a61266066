//! The RLNv2 membership registry (being written).
