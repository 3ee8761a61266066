//! The Lumoz two-step verification contract (being written).
