//! The one rule of a window's phases, which the contract enforces and every sender follows.
//!
//! ```text
//!  block:  f ──── hash phase ────▶ f+T1 ──── proof phase ────▶ f+T1+T2 ──── closed ──▶
//! ```
//!
//! The contract checks each hash and proof against [`phase`] at the block it lands in; a sender
//! asks [`phase`] about the block its transaction would land in (the head's next), so the two
//! sides cannot disagree by a block. The RPC view of a sequence carries the phase too.

use serde::{Deserialize, Serialize};

use super::SettlementParams;

/// Where a window stands at one block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowPhase {
    /// `[f, f+T1)`: hashes are accepted, proofs are too early.
    Hash,
    /// `[f+T1, f+T1+T2)`: proofs are accepted, hashes are refused.
    Proof,
    /// From `f+T1+T2`: no proof is accepted any more; the next hash reopens the window (if the
    /// sequence is not finalized).
    Closed,
}

/// The phase at `block` of a window opened at block `opened_at` (f, the block of its first
/// hash). A block before `f` counts as the hash phase: no window is earlier than its opening.
pub fn phase(opened_at: u64, block: u64, params: &SettlementParams) -> WindowPhase {
    if block < params.proof_phase_start(opened_at) {
        WindowPhase::Hash
    } else if block < params.window_end(opened_at) {
        WindowPhase::Proof
    } else {
        WindowPhase::Closed
    }
}

impl SettlementParams {
    /// `f + T1`: the first block of the proof phase of a window opened at `opened_at`.
    pub fn proof_phase_start(&self, opened_at: u64) -> u64 {
        opened_at + self.hash_window_blocks
    }

    /// `f + T1 + T2`: the first block after the proof phase of a window opened at `opened_at`.
    pub fn window_end(&self, opened_at: u64) -> u64 {
        opened_at + self.window_blocks()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_follow_each_other_without_overlap() {
        let params = SettlementParams {
            hash_window_blocks: 2,
            proof_window_blocks: 3,
            ..SettlementParams::default()
        };
        let phases: Vec<_> = (10..=15).map(|b| phase(10, b, &params)).collect();
        use WindowPhase::*;
        assert_eq!(phases, [Hash, Hash, Proof, Proof, Proof, Closed]);
        assert_eq!(phase(10, 9, &params), Hash);
    }
}
