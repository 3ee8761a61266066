//! The rollup's inputs: a transaction as `POST /v1/rollup/transactions` takes it (decoding, the
//! rules, the signature, mempool admission, the block it goes into), a local transaction as
//! `POST /v1/rollup/transactions/local` takes it, a tx-kernel job as a prover leases it (the
//! block witness), and published blocks as the node replays them.

use std::sync::OnceLock;

use sheaf_circuits::Digest;
use sheaf_coordinator::config::DEFAULT_MAX_BODY_BYTES;
use sheaf_coordinator::rollup::{LocalTransaction, RollupNode, MAX_TRANSACTION_BYTES};
use sheaf_rollup::demo::DemoRollup;
use sheaf_rollup::kernel::{TxJob, TxMode};
use sheaf_rollup::limits::DEFAULT_MAX_TXS_PER_BATCH;
use sheaf_rollup::producer::{BlockProducer, BuildError};
use sheaf_rollup::{produce_block, BlockHeader, MempoolConfig, Transaction};

/// Accounts of the fuzzed rollup (ids 1 and 2).
const ACCOUNTS: usize = 2;
/// One-time keys per account: as many transactions each.
const KEYS: u64 = 4;
/// The fuzzed rollup's genesis time.
const GENESIS_MS: u64 = 1_764_547_200_000;
/// Children per node of a block's proving tree.
const ARITY: usize = 2;
/// Most published blocks one [`rollup_block`] input replays.
const MAX_BLOCKS: usize = 4;

fn demo() -> &'static DemoRollup {
    static DEMO: OnceLock<DemoRollup> = OnceLock::new();
    DEMO.get_or_init(|| {
        DemoRollup::new(ACCOUNTS, KEYS, GENESIS_MS).expect("the demo rollup starts")
    })
}

/// A producer over the demo's genesis state, with an empty mempool.
fn producer() -> BlockProducer {
    BlockProducer::new(demo().state.clone(), MempoolConfig::default(), ARITY)
        .expect("the default mempool configuration is valid")
}

/// Two valid transfers, the second spending the note the first creates.
fn transfers() -> Vec<Transaction> {
    demo().clone().transfers(2).expect("the demo signs")
}

/// The block after genesis that `transfers` make, with its witnesses.
fn block() -> (BlockHeader, Vec<Transaction>, Vec<sheaf_rollup::TxWitness>) {
    let txs = transfers();
    let produced = produce_block(
        &demo().state,
        &txs,
        GENESIS_MS + 1,
        DEFAULT_MAX_TXS_PER_BATCH,
    )
    .expect("the demo transfers make a block");
    (produced.header, txs, produced.witnesses)
}

/// Admit `tx` (a local one when `local`), then build a block: a transaction the mempool admits
/// builds into a block.
fn admit_and_build(tx: Transaction, local: bool) {
    let mut producer = producer();
    let admitted = if local {
        producer.submit_local(tx)
    } else {
        producer.submit(tx)
    };
    if admitted.is_err() {
        return;
    }
    producer.select_batches();
    match producer.build_block(GENESIS_MS + 1_000) {
        Ok(_) => {}
        Err(e @ BuildError::Refused { .. }) => panic!("the mempool admitted a refused tx: {e}"),
        Err(_) => {}
    }
}

/// `POST /v1/rollup/transactions`: decode (within the node's size limit), the transaction's own
/// rules and id, then mempool admission over the genesis state and a block.
pub fn rollup_transaction(data: &[u8]) {
    if data.len() > MAX_TRANSACTION_BYTES {
        return;
    }
    let Ok(tx) = serde_json::from_slice::<Transaction>(data) else {
        return;
    };
    let _ = tx.check_rules();
    let _ = tx.id();
    admit_and_build(tx, false);
}

/// The demo's transfers, one per input.
pub fn transaction_seeds() -> Vec<Vec<u8>> {
    transfers()
        .iter()
        .map(|tx| serde_json::to_vec(tx).expect("a transaction encodes"))
        .collect()
}

/// `POST /v1/rollup/transactions/local`: [`RollupNode::read_local`], the inputs its proof must
/// state, then admission as a local transaction. (Its proof's verification is the receipt
/// check's target.)
pub fn rollup_local_transaction(data: &[u8]) {
    let Ok(local) = RollupNode::read_local(data) else {
        return;
    };
    if LocalTransaction::inputs(&local.transaction).is_err() {
        return;
    }
    admit_and_build(local.transaction, true);
}

/// The demo's first transfer with a (short) proof.
pub fn local_seeds() -> Vec<Vec<u8>> {
    let local = LocalTransaction {
        transaction: transfers().remove(0),
        prover: Digest([1, 17, 0, 0]),
        proof: vec![0, 1, 2, 3, 255],
    };
    vec![serde_json::to_vec(&local).expect("a local transaction encodes")]
}

/// A tx-kernel job as a prover reads it from its lease: decode, the kernel's rules checked
/// natively over the transaction and its witness, the statement its proof would carry.
pub fn rollup_tx_job(data: &[u8]) {
    if data.len() > DEFAULT_MAX_BODY_BYTES {
        return;
    }
    let Ok(job) = serde_json::from_slice::<TxJob>(data) else {
        return;
    };
    let _ = job.check();
    let _ = job.statement();
}

/// The jobs of the demo block's transactions, in each mode.
pub fn tx_job_seeds() -> Vec<Vec<u8>> {
    let (_, txs, witnesses) = block();
    let mut jobs: Vec<TxJob> = txs
        .iter()
        .zip(witnesses)
        .map(|(tx, witness)| TxJob {
            transaction: tx.clone(),
            witness,
            mode: TxMode::Network,
        })
        .collect();
    jobs.push(TxJob {
        mode: TxMode::Apply,
        ..jobs[0].clone()
    });
    jobs.push(TxJob::local(txs[0].clone()));
    jobs.iter()
        .map(|job| serde_json::to_vec(job).expect("a job encodes"))
        .collect()
}

/// Published blocks (`[[header, [tx, …]], …]`) replayed from genesis, as the node does at
/// start: every block is produced again and must give its header.
pub fn rollup_block(data: &[u8]) {
    if data.len() > DEFAULT_MAX_BODY_BYTES {
        return;
    }
    let Ok(blocks) = serde_json::from_slice::<Vec<(BlockHeader, Vec<Transaction>)>>(data) else {
        return;
    };
    let _ = BlockProducer::replay(
        demo().state.clone(),
        blocks.into_iter().take(MAX_BLOCKS),
        DEFAULT_MAX_TXS_PER_BATCH,
    );
}

/// The demo block.
pub fn block_seeds() -> Vec<Vec<u8>> {
    let (header, txs, _) = block();
    vec![serde_json::to_vec(&[(header, txs)]).expect("a block encodes")]
}
