//! What a job proves from.

use serde::{Deserialize, Serialize};

use crate::sql::stored_as;

/// What a job proves from, besides its children's proofs. Stored (`jobs.inputs`) and sent as
/// JSON: `{"kind":"work","seed":5,"index":9}`, `{"kind":"aggregate"}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobInputs {
    /// A work leaf: input `work_input(seed, index)`.
    Work {
        /// Seed of the sequence's inputs.
        seed: u64,
        /// The leaf's index.
        index: u64,
    },
    /// An aggregation job: everything is in the children.
    Aggregate,
}

impl JobInputs {
    /// The stored form (JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        // A tagged enum of integers always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses the stored form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

stored_as!(
    JobInputs,
    Vec<u8>,
    |i: &JobInputs| Ok::<_, serde_json::Error>(i.to_bytes()),
    |b: Vec<u8>| JobInputs::from_bytes(&b)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_form_round_trips() {
        for inputs in [JobInputs::Work { seed: 5, index: 9 }, JobInputs::Aggregate] {
            assert_eq!(JobInputs::from_bytes(&inputs.to_bytes()).unwrap(), inputs);
        }
        assert_eq!(
            JobInputs::Work { seed: 5, index: 9 }.to_bytes(),
            br#"{"kind":"work","seed":5,"index":9}"#
        );
    }
}
