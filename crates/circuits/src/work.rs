//! The work leaf: a Poseidon hash chain whose statement is `H(input, output)`.
//!
//! Its size is set by the row count it should fill (`2^rows_log2`), so benchmarks can use leaves
//! as large as real ones (2^8 to 2^14 rows) and tests can use tiny ones.

use plonky2::hash::hash_types::HashOutTarget;
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData};

use crate::cache::{ArtifactCache, Fingerprint};
use crate::digest::{Digest, WorkerSecret};
use crate::error::{CircuitError, Result};
use crate::leaf::{LeafCircuit, LeafHeaderBuilder};
use crate::{Proof, C, D, F};

/// Smallest supported leaf size.
pub const MIN_WORK_LEAF_ROWS_LOG2: usize = 5;
/// Largest supported leaf size.
pub const MAX_WORK_LEAF_ROWS_LOG2: usize = 20;
/// Rows the header, public-input hashing and constants take besides the chain.
const HEADER_ROWS: usize = 12;

/// The kind name of work leaves.
pub const WORK_LEAF_KIND: &str = "work";

/// Input of one work-leaf job: the chain's start.
pub type WorkInput = Digest;

/// The fields of a work leaf's job inputs (`{"kind":"work","seed":…,"index":…}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct WorkJobFields {
    /// Seed of the sequence's inputs.
    pub seed: u64,
    /// The leaf's index.
    pub index: u64,
}

/// A built work-leaf circuit.
pub struct WorkLeaf {
    rows_log2: usize,
    chain_len: usize,
    input: HashOutTarget,
    header: LeafHeaderBuilder,
    data: CircuitData<F, C, D>,
}

impl std::fmt::Debug for WorkLeaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkLeaf")
            .field("rows_log2", &self.rows_log2)
            .field("chain_len", &self.chain_len)
            .finish()
    }
}

impl WorkLeaf {
    /// Build a work leaf filling `2^rows_log2` rows with `config`.
    pub fn build(config: CircuitConfig, rows_log2: usize) -> Result<Self> {
        Self::load_or_build(config, rows_log2, None)
    }

    /// As [`WorkLeaf::build`], loading the circuit from `cache` when it is there.
    pub fn load_or_build(
        config: CircuitConfig,
        rows_log2: usize,
        cache: Option<&ArtifactCache>,
    ) -> Result<Self> {
        if !(MIN_WORK_LEAF_ROWS_LOG2..=MAX_WORK_LEAF_ROWS_LOG2).contains(&rows_log2) {
            return Err(CircuitError::InvalidArgument(format!(
                "work leaf rows must be 2^{MIN_WORK_LEAF_ROWS_LOG2} to 2^{MAX_WORK_LEAF_ROWS_LOG2}, got 2^{rows_log2}"
            )));
        }
        let chain_len = (1usize << rows_log2) - HEADER_ROWS;
        let mut builder = CircuitBuilder::<F, D>::new(config.clone());
        let header = LeafHeaderBuilder::new(&mut builder);
        let input = builder.add_virtual_hash();
        let mut state = input;
        for _ in 0..chain_len {
            state = builder.hash_n_to_hash_no_pad::<PoseidonHash>(state.elements.to_vec());
        }
        let statement = builder
            .hash_n_to_hash_no_pad::<PoseidonHash>([input.elements, state.elements].concat());
        header.finish(&mut builder, statement, rows_log2);
        let fp = Fingerprint::new(WORK_LEAF_KIND, &format!("rows=2^{rows_log2} {config:?}"));
        let data = match cache {
            Some(cache) => {
                cache
                    .circuit("work-leaf", &fp, || Ok(builder.build::<C>()))?
                    .0
            }
            None => builder.build::<C>(),
        };
        if data.common.degree_bits() != rows_log2 {
            return Err(CircuitError::Build(format!(
                "work leaf planned for 2^{rows_log2} rows built to 2^{}",
                data.common.degree_bits()
            )));
        }
        Ok(WorkLeaf {
            rows_log2,
            chain_len,
            input,
            header,
            data,
        })
    }

    /// Rows of the circuit, as a power of two.
    pub fn rows_log2(&self) -> usize {
        self.rows_log2
    }

    /// Native evaluation of the chain.
    pub fn output(&self, input: &WorkInput) -> Digest {
        (0..self.chain_len).fold(*input, |h, _| Digest::hash(&h.to_fields()))
    }
}

impl LeafCircuit for WorkLeaf {
    type Input = WorkInput;
    type JobFields = WorkJobFields;

    fn job_input(&self, fields: WorkJobFields) -> WorkInput {
        work_input(fields.seed, fields.index)
    }

    fn kind(&self) -> &'static str {
        WORK_LEAF_KIND
    }

    fn circuit(&self) -> &CircuitData<F, C, D> {
        &self.data
    }

    fn statement(&self, input: &WorkInput) -> Digest {
        Digest::two_to_one(*input, self.output(input))
    }

    fn prove(&self, input: &WorkInput, worker: &WorkerSecret) -> Result<Proof> {
        let mut pw = PartialWitness::new();
        self.header.set(&mut pw, worker)?;
        pw.set_hash_target(self.input, input.to_hash_out())
            .map_err(|e| CircuitError::Prove(e.to_string()))?;
        self.data
            .prove(pw)
            .map_err(|e| CircuitError::Prove(e.to_string()))
    }
}

/// Deterministic input of the `index`-th work leaf of a run seeded with `seed`.
pub fn work_input(seed: u64, index: u64) -> WorkInput {
    use plonky2::field::types::Field;
    Digest::hash(&[F::from_canonical_u64(seed), F::from_canonical_u64(index)])
}
