//! The public-input header that every proof entering an aggregation tree starts with.
//!
//! Layout (QED's): `[0..4]` commitment, `[4..8]` worker_pk, `[8..11]` job stats
//! (leaf jobs, aggregation jobs, work units), `[11..15]` statement hash. Aggregation proofs
//! follow it with the circuit whitelist root at `[15..19]`.

use std::fmt;

use plonky2::field::types::{Field, PrimeField64};
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::iop::target::Target;
use plonky2::plonk::circuit_builder::CircuitBuilder;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{CircuitError, Result};
use crate::{D, F};

/// Number of public inputs in the header.
pub const HEADER_LEN: usize = 15;
/// Number of public inputs of an aggregation proof: the header and the whitelist root.
pub const NODE_PUBLIC_INPUTS: usize = HEADER_LEN + 4;

/// Counters summed up the tree; rewards are split by work units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStats {
    /// Leaf jobs in the subtree.
    pub leaf_jobs: u64,
    /// Aggregation jobs in the subtree, this node included.
    pub aggregation_jobs: u64,
    /// Work units in the subtree (each circuit's weight).
    pub work_units: u64,
}

impl JobStats {
    /// Component-wise sum.
    pub fn plus(self, other: JobStats) -> JobStats {
        JobStats {
            leaf_jobs: self.leaf_jobs + other.leaf_jobs,
            aggregation_jobs: self.aggregation_jobs + other.aggregation_jobs,
            work_units: self.work_units + other.work_units,
        }
    }
}

/// The header of a proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Tagged Merkle commitment of who proved what in the subtree.
    pub commitment: Digest,
    /// `H(secret)` of the prover of this proof.
    pub worker_pk: Digest,
    /// Job counters of the subtree.
    pub stats: JobStats,
    /// Circuit-specific statement hash.
    pub statement: Digest,
}

/// Names a header field, for mismatch errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderField {
    /// `[0..4]`.
    Commitment,
    /// `[4..8]`.
    WorkerPk,
    /// `[8..11]`.
    Stats,
    /// `[11..15]`.
    Statement,
}

impl fmt::Display for HeaderField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeaderField::Commitment => "commitment",
            HeaderField::WorkerPk => "worker_pk",
            HeaderField::Stats => "stats",
            HeaderField::Statement => "statement",
        })
    }
}

impl Header {
    /// Encode as the first [`HEADER_LEN`] public inputs.
    pub fn to_fields(&self) -> [F; HEADER_LEN] {
        let mut out = [F::ZERO; HEADER_LEN];
        out[0..4].copy_from_slice(&self.commitment.to_fields());
        out[4..8].copy_from_slice(&self.worker_pk.to_fields());
        out[8] = F::from_canonical_u64(self.stats.leaf_jobs);
        out[9] = F::from_canonical_u64(self.stats.aggregation_jobs);
        out[10] = F::from_canonical_u64(self.stats.work_units);
        out[11..15].copy_from_slice(&self.statement.to_fields());
        out
    }

    /// Decode from a proof's public inputs (which may continue past the header).
    pub fn from_public_inputs(pis: &[F]) -> Result<Self> {
        if pis.len() < HEADER_LEN {
            return Err(CircuitError::WrongCircuit(format!(
                "{} public inputs, a header needs {HEADER_LEN}",
                pis.len()
            )));
        }
        Ok(Header {
            commitment: Digest::from_fields(&pis[0..4]),
            worker_pk: Digest::from_fields(&pis[4..8]),
            stats: JobStats {
                leaf_jobs: pis[8].to_canonical_u64(),
                aggregation_jobs: pis[9].to_canonical_u64(),
                work_units: pis[10].to_canonical_u64(),
            },
            statement: Digest::from_fields(&pis[11..15]),
        })
    }

    /// The first field that differs from `expected`, if any. The worker_pk is compared first:
    /// a proof made by another prover differs in its commitment too, and "another prover's
    /// proof" is the diagnosis that matters.
    pub fn check(&self, expected: &Header) -> Result<()> {
        let field = if self.worker_pk != expected.worker_pk {
            HeaderField::WorkerPk
        } else if self.commitment != expected.commitment {
            HeaderField::Commitment
        } else if self.stats != expected.stats {
            HeaderField::Stats
        } else if self.statement != expected.statement {
            HeaderField::Statement
        } else {
            return Ok(());
        };
        Err(CircuitError::HeaderMismatch { field })
    }
}

/// In-circuit header.
#[derive(Clone, Debug)]
pub struct HeaderTarget {
    /// `[0..4]`.
    pub commitment: HashOutTarget,
    /// `[4..8]`.
    pub worker_pk: HashOutTarget,
    /// `[8..11]`.
    pub stats: [Target; 3],
    /// `[11..15]`.
    pub statement: HashOutTarget,
}

impl HeaderTarget {
    /// The header at the start of a child proof's public inputs.
    pub fn from_public_inputs(pis: &[Target]) -> Self {
        let hash = |at: usize| HashOutTarget {
            elements: std::array::from_fn(|i| pis[at + i]),
        };
        HeaderTarget {
            commitment: hash(0),
            worker_pk: hash(4),
            stats: [pis[8], pis[9], pis[10]],
            statement: hash(11),
        }
    }

    /// Register as this circuit's first public inputs, in layout order.
    pub fn register(&self, builder: &mut CircuitBuilder<F, D>) {
        builder.register_public_inputs(&self.commitment.elements);
        builder.register_public_inputs(&self.worker_pk.elements);
        builder.register_public_inputs(&self.stats);
        builder.register_public_inputs(&self.statement.elements);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_through_public_inputs() {
        let h = Header {
            commitment: Digest([1, 2, 3, 4]),
            worker_pk: Digest([5, 6, 7, 8]),
            stats: JobStats {
                leaf_jobs: 9,
                aggregation_jobs: 10,
                work_units: 11,
            },
            statement: Digest([12, 13, 14, 15]),
        };
        let mut pis = h.to_fields().to_vec();
        pis.extend([F::ONE; 4]);
        assert_eq!(Header::from_public_inputs(&pis).unwrap(), h);
        assert!(Header::from_public_inputs(&pis[..14]).is_err());
    }

    #[test]
    fn check_names_the_first_differing_field() {
        let h = Header {
            commitment: Digest::ZERO,
            worker_pk: Digest::ZERO,
            stats: JobStats::default(),
            statement: Digest::ZERO,
        };
        let mut other = h;
        other.statement = Digest([1, 0, 0, 0]);
        assert!(matches!(
            h.check(&other),
            Err(CircuitError::HeaderMismatch {
                field: HeaderField::Statement
            })
        ));
        assert!(h.check(&h).is_ok());
    }
}
