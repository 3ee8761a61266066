//! Local transactions: the wallet proves its transaction's signed half itself (the tx kernel in
//! [`TxMode::Local`], seed 004's local transaction) and sends the proof with it, so the network
//! proves only the half that applies it to the state.
//!
//! ```text
//!  build (or load from the cache directory) the tx kernel ──▶ sign ──▶ prove the signed half
//!        ──▶ POST /v1/rollup/transactions/local { transaction, prover, proof }
//! ```
//!
//! The proof carries the wallet's worker key, derived from its seed, so the commitment chain
//! attributes that leaf to the wallet. The kernel is built for the coordinator's circuit
//! profile (the standard one unless it runs another); a kernel of another profile makes a proof
//! the coordinator refuses as of another circuit.
//!
//! [`TxMode::Local`]: sheaf_rollup::kernel::TxMode::Local

use std::path::Path;
use std::time::{Duration, Instant};

use sheaf_circuits::{
    encode_proof, ArtifactCache, CircuitError, Digest, LeafCircuit as _, Profile, WorkerSecret,
};
use sheaf_coordinator::rollup::LocalTransaction;
use sheaf_rollup::kernel::{TxJob, TxKernel};
use sheaf_rollup::Transaction;

/// What a local prover reports while it works.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LocalStage {
    /// Proving the signed half started.
    Proving,
    /// Proved, in this long.
    Proved(Duration),
}

/// Proves local transactions' signed halves on this machine.
pub struct LocalProver {
    kernel: TxKernel,
    worker: WorkerSecret,
    on_stage: Box<dyn Fn(LocalStage) + Send + Sync>,
}

impl std::fmt::Debug for LocalProver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalProver")
            .field("worker_pk", &self.worker.worker_pk())
            .finish()
    }
}

impl LocalProver {
    /// Build the tx kernel of circuit profile `profile` (or load it from `cache`, a directory)
    /// for a wallet whose seed is `seed`.
    pub fn build(
        seed: Digest,
        profile: Profile,
        cache: Option<&Path>,
    ) -> Result<LocalProver, CircuitError> {
        let cache = cache.map(|dir| ArtifactCache::new(dir.to_path_buf()));
        let kernel =
            TxKernel::load_or_build(profile.leaf_config(), cache.as_ref())?.into_pair_kind();
        Ok(LocalProver {
            kernel,
            worker: worker_secret(seed),
            on_stage: Box::new(|_| {}),
        })
    }

    /// Tell `on_stage` what the prover does (for a progress display).
    pub fn on_stage(mut self, on_stage: impl Fn(LocalStage) + Send + Sync + 'static) -> Self {
        self.on_stage = Box::new(on_stage);
        self
    }

    /// The worker key the wallet's proofs carry.
    pub fn worker_pk(&self) -> Digest {
        self.worker.worker_pk()
    }

    /// Prove `transaction`'s signed half: what `POST /v1/rollup/transactions/local` takes. A
    /// transaction that breaks a rule of its own (signature, value) is refused here, naming the
    /// rule.
    pub fn prove(&self, transaction: &Transaction) -> Result<LocalTransaction, CircuitError> {
        (self.on_stage)(LocalStage::Proving);
        let start = Instant::now();
        let job = TxJob::local(transaction.clone());
        let proof = self.kernel.prove(&job, &self.worker)?;
        (self.on_stage)(LocalStage::Proved(start.elapsed()));
        Ok(LocalTransaction {
            transaction: transaction.clone(),
            prover: self.worker.worker_pk(),
            proof: encode_proof(&proof),
        })
    }
}

/// The wallet's worker secret: derived from its seed, so it is the same on every run and no one
/// without the seed has it. It proves the wallet's local halves, and claims their rewards.
pub fn worker_secret(seed: Digest) -> WorkerSecret {
    // Tagged "worker": no key of the one-time signature scheme hashes this way.
    let tag = Digest([0x776f_726b_6572, 0, 0, 0]);
    WorkerSecret::from_digest(Digest::hash_digests(&[tag, seed]))
}
