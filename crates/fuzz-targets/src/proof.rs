//! Proof bytes as the coordinator receives them (`POST /v1/jobs/{id}/proof`): decoding, and the
//! receipt check it runs before storing a proof.

use std::sync::OnceLock;

use plonky2::plonk::circuit_data::VerifierCircuitData;
use sheaf_circuits::limits::MAX_PROOF_BYTES;
use sheaf_circuits::work::work_input;
use sheaf_circuits::{
    decode_proof, encode_proof, verify_job_proof, Digest, Expected, Header, LeafCircuit, Profile,
    WorkLeaf, WorkerSecret, C, D, F,
};

/// Rows of the fuzzed work leaf, as a power of two: the smallest realistic shape, built in a
/// fraction of a second, so a fuzz process starts fast without a circuit cache.
const LEAF_ROWS_LOG2: usize = 6;

struct Fixture {
    verifier: VerifierCircuitData<F, C, D>,
    expected: Expected,
    proof: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let leaf = WorkLeaf::build(Profile::Standard.leaf_config(), LEAF_ROWS_LOG2)
            .expect("the work leaf builds");
        let input = work_input(1, 0);
        let worker = WorkerSecret::from_digest(Digest([1, 17, 0, 0]));
        let proof = leaf.prove(&input, &worker).expect("the work leaf proves");
        Fixture {
            verifier: leaf.circuit().verifier_data(),
            expected: Expected {
                header: leaf.expected_header(&input, &worker),
                whitelist_root: None,
            },
            proof: encode_proof(&proof),
        }
    })
}

/// A real proof of the fuzzed leaf.
pub fn seeds() -> Vec<Vec<u8>> {
    vec![fixture().proof.clone()]
}

/// `decode_proof` with the leaf's common data: any input is refused with a typed error or
/// decoded, and what decodes is exactly its own canonical encoding.
pub fn proof_decode(data: &[u8]) {
    if data.len() > MAX_PROOF_BYTES {
        return;
    }
    let fx = fixture();
    if let Ok(proof) = decode_proof(data, &fx.verifier.common, MAX_PROOF_BYTES) {
        assert_eq!(encode_proof(&proof), data, "a decoded proof is canonical");
    }
}

/// The coordinator's receipt check of a submitted leaf proof ([`verify_job_proof`]): decode,
/// header against the expected one, plonky2 verification. Nothing panics, and a proof is
/// accepted only with the expected header.
pub fn receipt_check(data: &[u8]) {
    if data.len() > MAX_PROOF_BYTES {
        return;
    }
    let fx = fixture();
    if let Ok(proof) = verify_job_proof(data, &fx.verifier, &fx.expected) {
        let header = Header::from_public_inputs(&proof.public_inputs)
            .expect("an accepted proof has a header");
        assert_eq!(header, fx.expected.header, "an accepted proof is the job's");
    }
}
