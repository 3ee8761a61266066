//! Leaf circuits: the proofs at the bottom of a tree, behind one trait so new kinds plug in.
//!
//! Every leaf circuit ends with [`LeafHeaderBuilder::finish`], which proves
//! `worker_pk = H(secret)`, sets `commitment = worker_pk` and fixes the job stats to
//! `(1, 0, weight)`, then registers the header as the first public inputs.

use std::sync::Arc;

use plonky2::field::types::Field;
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::target::Target;
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitData, CommonCircuitData, VerifierOnlyCircuitData};

use crate::digest::{Digest, WorkerSecret};
use crate::error::{CircuitError, Result};
use crate::header::{Header, HeaderTarget};
use crate::rule::NodeRule;
use crate::{Proof, C, D, F};

/// Rows per work unit: a circuit's weight is its row count divided by this.
pub const ROWS_PER_WORK_UNIT: usize = 256;

/// Work units of a circuit with `2^degree_bits` rows (at least one).
pub fn work_units_for_rows(degree_bits: usize) -> u64 {
    ((1usize << degree_bits) / ROWS_PER_WORK_UNIT).max(1) as u64
}

/// The header of a leaf proof of a circuit of `2^degree_bits` rows with `statement`, by the
/// worker `worker_pk`: what [`LeafHeaderBuilder::finish`] makes every leaf circuit output.
pub fn leaf_header(degree_bits: usize, statement: Digest, worker_pk: Digest) -> Header {
    Header {
        commitment: worker_pk,
        worker_pk,
        stats: crate::header::JobStats {
            leaf_jobs: 1,
            aggregation_jobs: 0,
            work_units: work_units_for_rows(degree_bits),
        },
        statement,
    }
}

/// A kind of leaf circuit, typed by its input. Every one is a [`crate::kind::LeafKind`], the
/// form the network registers.
pub trait LeafCircuit: Send + Sync {
    /// The witness of one leaf job.
    type Input;

    /// The fields of a job's inputs (`{"kind":"<kind>", …fields}`) that determine its witness.
    type JobFields: serde::de::DeserializeOwned;

    /// The witness of a job with `fields`.
    fn job_input(&self, fields: Self::JobFields) -> Self::Input;

    /// Short stable name of the kind, used in cache keys and the whitelist listing.
    fn kind(&self) -> &'static str;

    /// The built circuit.
    fn circuit(&self) -> &CircuitData<F, C, D>;

    /// The statement hash the proof of `input` will carry.
    fn statement(&self, input: &Self::Input) -> Digest;

    /// Prove one leaf job for `worker`.
    fn prove(&self, input: &Self::Input, worker: &WorkerSecret) -> Result<Proof>;

    /// The rule this kind's leaf node applies to its children's statements; by default none
    /// (the node states the hash of their statements).
    fn node_rule(&self) -> Option<Arc<dyn NodeRule>> {
        None
    }

    /// What an aggregation node needs to verify proofs of this kind.
    fn verifier(&self) -> LeafVerifier {
        LeafVerifier {
            kind: self.kind().to_string(),
            common: self.circuit().common.clone(),
            verifier_only: self.circuit().verifier_only.clone(),
            node_rule: self.node_rule(),
        }
    }

    /// The header a proof of `input` by `worker` carries.
    fn expected_header(&self, input: &Self::Input, worker: &WorkerSecret) -> Header {
        leaf_header(
            self.circuit().common.degree_bits(),
            self.statement(input),
            worker.worker_pk(),
        )
    }
}

/// The verifying side of a leaf kind: its name, shape and key, and the rule of its leaf node.
#[derive(Clone, Debug)]
pub struct LeafVerifier {
    /// The kind's name.
    pub kind: String,
    /// Shape of its proofs.
    pub common: CommonCircuitData<F, D>,
    /// Its verifier key.
    pub verifier_only: VerifierOnlyCircuitData<C, D>,
    /// The rule the kind's leaf node applies to its children's statements (see
    /// [`crate::rule`]); `None`: the plain hash of their statements.
    pub node_rule: Option<Arc<dyn NodeRule>>,
}

/// Adds the standard leaf header to a circuit under construction.
#[derive(Debug)]
pub struct LeafHeaderBuilder {
    secret: [Target; 4],
}

impl LeafHeaderBuilder {
    /// Reserve the secret's targets.
    pub fn new(builder: &mut CircuitBuilder<F, D>) -> Self {
        LeafHeaderBuilder {
            secret: std::array::from_fn(|_| builder.add_virtual_target()),
        }
    }

    /// The secret's targets, for a circuit that proves more about the secret (a claim's
    /// nullifier).
    pub fn secret(&self) -> [Target; 4] {
        self.secret
    }

    /// Register the header with `statement`; the weight is derived from the final circuit size,
    /// so it is given here as the planned row count's log.
    pub fn finish(
        &self,
        builder: &mut CircuitBuilder<F, D>,
        statement: HashOutTarget,
        degree_bits: usize,
    ) {
        let worker_pk = builder.hash_n_to_hash_no_pad::<PoseidonHash>(self.secret.to_vec());
        let header = HeaderTarget {
            commitment: worker_pk,
            worker_pk,
            stats: [
                builder.one(),
                builder.zero(),
                builder.constant(F::from_canonical_u64(work_units_for_rows(degree_bits))),
            ],
            statement,
        };
        header.register(builder);
    }

    /// Set the secret in a witness.
    pub fn set(&self, pw: &mut PartialWitness<F>, worker: &WorkerSecret) -> Result<()> {
        pw.set_target_arr(&self.secret, &worker.expose().to_fields())
            .map_err(|e| CircuitError::Prove(e.to_string()))
    }
}
