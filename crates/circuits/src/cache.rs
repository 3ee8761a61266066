//! The circuit artifact cache: built circuits serialized to a directory and loaded on the next
//! start.
//!
//! An artifact is keyed by a fingerprint of (crate version, configuration, circuit kind and its
//! parameters). Files are written atomically (temporary file, then rename) and carry a checksum;
//! a missing, stale or corrupt artifact is rebuilt, never fatal. Reads are size-bounded.
//!
//! Beside each circuit, its verifier side (`<kind>-verifier`: the shape and the verifier key,
//! a few KB) is stored too. A cache opened [`ArtifactCache::verifier_only`] loads only those,
//! into circuits without prover data ([`hollow`]): what a coordinator needs to check proofs,
//! at a fraction of the memory. Such circuits cannot prove; the [`crate::CircuitSet`] over
//! them refuses to.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use plonky2::fri::oracle::PolynomialBatch;
use plonky2::hash::merkle_tree::{MerkleCap, MerkleTree};
use plonky2::plonk::circuit_data::{CircuitData, ProverOnlyCircuitData, VerifierCircuitData};
use plonky2::util::serialization::{DefaultGateSerializer, DefaultGeneratorSerializer};
use sha2::{Digest as _, Sha256};

use crate::limits::MAX_ARTIFACT_BYTES;
use crate::{C, D, F};

const MAGIC: &[u8; 8] = b"SHEAFART";
const FORMAT_VERSION: u32 = 1;
const HEADER_BYTES: usize = 8 + 4 + 32 + 8 + 32;

/// A fingerprint naming one artifact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Fingerprint of a circuit `kind` described by `params`, under this crate version.
    pub fn new(kind: &str, params: &str) -> Self {
        let mut h = Sha256::new();
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        h.update([0]);
        h.update(kind.as_bytes());
        h.update([0]);
        h.update(params.as_bytes());
        Fingerprint(h.finalize().into())
    }

    fn hex(&self) -> String {
        self.0[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Serialize a circuit for the cache.
pub fn circuit_to_bytes(data: &CircuitData<F, C, D>) -> Option<Vec<u8>> {
    data.to_bytes(
        &DefaultGateSerializer,
        &DefaultGeneratorSerializer::<C, D>::default(),
    )
    .ok()
}

/// Deserialize a circuit from the cache.
pub fn circuit_from_bytes(bytes: &[u8]) -> Option<CircuitData<F, C, D>> {
    CircuitData::from_bytes(
        bytes,
        &DefaultGateSerializer,
        &DefaultGeneratorSerializer::<C, D>::default(),
    )
    .ok()
}

/// `data` without its prover side: the same shape and verifier key, no proving polynomials,
/// generators or Merkle trees. It verifies proofs as `data` does and cannot prove.
pub fn hollow(verifier: VerifierCircuitData<F, C, D>) -> CircuitData<F, C, D> {
    let prover_only = ProverOnlyCircuitData {
        generators: Vec::new(),
        generator_indices_by_watches: BTreeMap::new(),
        constants_sigmas_commitment: PolynomialBatch {
            polynomials: Vec::new(),
            merkle_tree: MerkleTree {
                leaves: Vec::new(),
                digests: Vec::new(),
                cap: MerkleCap(Vec::new()),
            },
            degree_log: 0,
            rate_bits: 0,
            blinding: false,
        },
        sigmas: Vec::new(),
        subgroup: Vec::new(),
        public_inputs: Vec::new(),
        representative_map: Vec::new(),
        fft_root_table: None,
        circuit_digest: verifier.verifier_only.circuit_digest,
        lookup_rows: Vec::new(),
        lut_to_lookups: Vec::new(),
    };
    CircuitData {
        prover_only,
        verifier_only: verifier.verifier_only,
        common: verifier.common,
    }
}

/// Whether `data` can prove (it is not [`hollow`]).
pub fn can_prove(data: &CircuitData<F, C, D>) -> bool {
    !data.prover_only.representative_map.is_empty()
}

fn verifier_artifact(kind: &str) -> String {
    format!("{kind}-verifier")
}

/// A directory of circuit artifacts.
#[derive(Clone, Debug)]
pub struct ArtifactCache {
    dir: PathBuf,
    verifier_only: bool,
}

impl ArtifactCache {
    /// A cache in `dir`, created on first write.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ArtifactCache {
            dir: dir.into(),
            verifier_only: false,
        }
    }

    /// This cache, loading circuits without their prover side ([`hollow`]): from the verifier
    /// artifacts when they are there, else from the whole circuit (or a build), thinned before
    /// it is returned.
    pub fn verifier_only(self) -> Self {
        ArtifactCache {
            verifier_only: true,
            ..self
        }
    }

    /// Whether circuits load without their prover side.
    pub fn is_verifier_only(&self) -> bool {
        self.verifier_only
    }

    /// The circuit stored as `kind` for `fp`: whole, or hollow when this cache is
    /// verifier-only.
    pub fn load_circuit(&self, kind: &str, fp: &Fingerprint) -> Option<CircuitData<F, C, D>> {
        match self.verifier_only {
            true => self.load_verifier(kind, fp).map(hollow),
            false => self.load(kind, fp).and_then(|b| circuit_from_bytes(&b)),
        }
    }

    /// The verifier side (shape and key) of the circuit stored as `kind` for `fp`: from its
    /// verifier artifact, else from the whole circuit, loaded alone and dropped (writing the
    /// verifier artifact for the next time).
    pub fn load_verifier(
        &self,
        kind: &str,
        fp: &Fingerprint,
    ) -> Option<VerifierCircuitData<F, C, D>> {
        let from_side = self.load(&verifier_artifact(kind), fp).and_then(|bytes| {
            std::panic::catch_unwind(|| {
                VerifierCircuitData::from_bytes(bytes, &DefaultGateSerializer)
            })
            .ok()?
            .ok()
        });
        if from_side.is_some() {
            return from_side;
        }
        let data = self.load(kind, fp).and_then(|b| circuit_from_bytes(&b))?;
        self.store_verifier(kind, fp, &data);
        Some(data.verifier_data())
    }

    /// Store the circuit `data` as `kind` for `fp`, with its verifier side (a hollow circuit
    /// stores only that).
    pub fn store_circuit(&self, kind: &str, fp: &Fingerprint, data: &CircuitData<F, C, D>) {
        if can_prove(data) {
            if let Some(bytes) = circuit_to_bytes(data) {
                self.store(kind, fp, &bytes);
            }
        }
        self.store_verifier(kind, fp, data);
    }

    fn store_verifier(&self, kind: &str, fp: &Fingerprint, data: &CircuitData<F, C, D>) {
        if let Ok(bytes) = data.verifier_data().to_bytes(&DefaultGateSerializer) {
            self.store(&verifier_artifact(kind), fp, &bytes);
        }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, kind: &str, fp: &Fingerprint) -> PathBuf {
        self.dir.join(format!("{kind}-{}.bin", fp.hex()))
    }

    /// The payload stored for `fp`, if present and intact.
    pub fn load(&self, kind: &str, fp: &Fingerprint) -> Option<Vec<u8>> {
        let path = self.path(kind, fp);
        let file = fs::File::open(&path).ok()?;
        let mut bytes = Vec::new();
        if let Err(e) = file.take(MAX_ARTIFACT_BYTES + 1).read_to_end(&mut bytes) {
            tracing::warn!(target: "sheaf::cache", path = %path.display(), error = %e, "unreadable artifact, rebuilding");
            return None;
        }
        match parse(&bytes, fp) {
            Some(payload) => Some(payload.to_vec()),
            None => {
                tracing::warn!(target: "sheaf::cache", path = %path.display(), "stale or corrupt artifact, rebuilding");
                None
            }
        }
    }

    /// Store `payload` for `fp`; failures are logged, not returned: the cache is an optimization.
    pub fn store(&self, kind: &str, fp: &Fingerprint, payload: &[u8]) {
        if let Err(e) = self.try_store(kind, fp, payload) {
            tracing::warn!(target: "sheaf::cache", dir = %self.dir.display(), error = %e, "could not write artifact");
        }
    }

    fn try_store(&self, kind: &str, fp: &Fingerprint, payload: &[u8]) -> std::io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let path = self.path(kind, fp);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut file = fs::File::create(&tmp)?;
        file.write_all(MAGIC)?;
        file.write_all(&FORMAT_VERSION.to_le_bytes())?;
        file.write_all(&fp.0)?;
        file.write_all(&(payload.len() as u64).to_le_bytes())?;
        file.write_all(&Sha256::digest(payload))?;
        file.write_all(payload)?;
        file.sync_all()?;
        fs::rename(&tmp, &path)
    }

    /// Load and deserialize a circuit (hollow when this cache is verifier-only), or build and
    /// store it.
    pub fn circuit(
        &self,
        kind: &str,
        fp: &Fingerprint,
        build: impl FnOnce() -> crate::Result<CircuitData<F, C, D>>,
    ) -> crate::Result<(CircuitData<F, C, D>, bool)> {
        if let Some(data) = self.load_circuit(kind, fp) {
            return Ok((data, true));
        }
        let data = build()?;
        self.store_circuit(kind, fp, &data);
        if self.verifier_only {
            return Ok((hollow(data.verifier_data()), false));
        }
        Ok((data, false))
    }
}

fn parse<'a>(bytes: &'a [u8], fp: &Fingerprint) -> Option<&'a [u8]> {
    if bytes.len() < HEADER_BYTES || bytes.len() as u64 > MAX_ARTIFACT_BYTES {
        return None;
    }
    let (head, payload) = bytes.split_at(HEADER_BYTES);
    let version = u32::from_le_bytes(head[8..12].try_into().ok()?);
    let len = u64::from_le_bytes(head[44..52].try_into().ok()?);
    let ok = &head[..8] == MAGIC
        && version == FORMAT_VERSION
        && head[12..44] == fp.0
        && len == payload.len() as u64
        && head[52..84] == Sha256::digest(payload)[..];
    ok.then_some(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_payload_loads_and_corruption_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ArtifactCache::new(dir.path());
        let fp = Fingerprint::new("test", "a");
        assert!(cache.load("test", &fp).is_none());
        cache.store("test", &fp, b"payload");
        assert_eq!(cache.load("test", &fp).unwrap(), b"payload");
        assert!(cache.load("test", &Fingerprint::new("test", "b")).is_none());

        let path = cache.path("test", &fp);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(cache.load("test", &fp).is_none());

        fs::write(&path, b"short").unwrap();
        assert!(cache.load("test", &fp).is_none());
    }
}
