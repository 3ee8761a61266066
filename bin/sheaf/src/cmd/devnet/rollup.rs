//! The devnet's rollup workload: funded accounts send each other transfers over the node's API
//! while the network proves the published blocks and the coordinator settles them.
//!
//! ```text
//!  TransferWorkload ─ genesis ─▶ coordinator's rollup node (blocks every --block-interval-ms)
//!        │ next(tip) at --tps                     │ publish block n (before it is proven)
//!        ▼                                        ▼
//!  POST /v1/rollup/transactions          provers prove block n's tree ─▶ sender settles n
//!  GET /v1/rollup/status, /blocks/{n} ─▶ workload.published(n, created notes)
//!  … until --blocks blocks are published and every submitted transaction is in one
//!  then: every block proven and settled ─▶ the blocks replayed natively from genesis
//!        ─▶ every account's balance and notes equal what the workload expects
//! ```
//!
//! Timestamps: submission on this side (the same clock as the coordinator's), publication and
//! proof from the store, settlement when this side first sees the store's settled tip pass the
//! block (polled every [`WATCH_INTERVAL`]; the sender records it one pass after the chain).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::circuit_args::CircuitArgs;
use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use serde::Serialize;
use sheaf_coordinator::rollup::LocalTransaction;
use sheaf_coordinator::rollup::{RollupConfig, DEFAULT_BATCH_INTERVAL, DEFAULT_CONCURRENT_BLOCKS};
use sheaf_coordinator::RollupOptions;
use sheaf_rollup::producer::BlockProducer;
use sheaf_rollup::signature::DEFAULT_KEY_COUNT;
use sheaf_rollup::workload::{wallets_of, TransferWorkload};
use sheaf_rollup::{BlockHeader, MempoolConfig, RollupState, Transaction, TxId};
use sheaf_store::{JobFilter, JobStatus, Store};
use sheaf_types::clock::now_ms;
use sheaf_wallet::client::{ClientError, RollupClient};
use sheaf_wallet::LocalProver;

use super::progress::PLAIN_PROGRESS_INTERVAL;
use super::provers::ProverProcess;
use super::{Display, SETTLE_TIMEOUT};

/// Blocks a rollup devnet publishes unless told otherwise.
pub const DEFAULT_DEVNET_BLOCKS: u64 = 3;
/// Transactions per second the generator submits unless told otherwise: a few per block at the
/// default interval, so the default run stays short.
pub const DEFAULT_DEVNET_TPS: f64 = 2.0;
/// Funded accounts of the devnet's genesis unless told otherwise.
pub const DEFAULT_DEVNET_ACCOUNTS: usize = 8;
/// Milliseconds between blocks unless told otherwise: miden-node's 3 s.
pub const DEFAULT_DEVNET_BLOCK_INTERVAL_MS: u64 = 3_000;
/// Transactions per batch unless told otherwise: miden-node's 8.
pub const DEFAULT_DEVNET_MAX_TXS_PER_BATCH: usize = 8;
/// How often the rollup's status and the store are read while the devnet runs.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);
/// How often a refused transaction whose unauthenticated note was just committed is sent
/// again, each time with the notes of the blocks published meanwhile.
const SUBMIT_ATTEMPTS: usize = 20;
/// Longest wait, after the last submission, for every submitted transaction to be in a block.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(120);
/// Keys per account beyond the transfers the run is expected to send.
const SPARE_KEYS: u64 = 16;
/// Every this many transfers one is local, unless told otherwise: the default workload mixes
/// network and local transactions.
pub const DEFAULT_DEVNET_LOCAL_EVERY: u64 = 4;
/// Seed of the devnet's local prover: its worker key, which its proofs carry.
pub(super) const LOCAL_PROVER_SEED: sheaf_circuits::Digest =
    sheaf_circuits::Digest([0x10ca1, 0xde7, 0, 0]);

/// What `devnet` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Transfers on a rollup: blocks published, proven by the network and settled on chain.
    Rollup,
    /// Synthetic work sequences (`--sequences` of `--leaves` leaves).
    Work,
}

/// The rollup workload's flags.
#[derive(Args, Debug, Clone)]
pub struct DevnetRollupArgs {
    /// Blocks to publish (rollup workload): the generator stops once the last one is due, and
    /// the run ends when every block is proven and settled.
    #[arg(long, env = "SHEAF_DEVNET_BLOCKS", default_value_t = DEFAULT_DEVNET_BLOCKS)]
    pub blocks: u64,
    /// Transactions the generator submits per second (rollup workload).
    #[arg(long, env = "SHEAF_DEVNET_TPS", default_value_t = DEFAULT_DEVNET_TPS)]
    pub tps: f64,
    /// Funded accounts in the rollup's genesis (rollup workload; at least 2).
    #[arg(long, env = "SHEAF_DEVNET_ACCOUNTS", default_value_t = DEFAULT_DEVNET_ACCOUNTS)]
    pub accounts: usize,
    /// Milliseconds between blocks (rollup workload).
    #[arg(long, env = "SHEAF_BLOCK_INTERVAL_MS", default_value_t = DEFAULT_DEVNET_BLOCK_INTERVAL_MS)]
    pub block_interval_ms: u64,
    /// Transactions per batch of a block (rollup workload; 1 to 64).
    #[arg(long, env = "SHEAF_MAX_TXS_PER_BATCH", default_value_t = DEFAULT_DEVNET_MAX_TXS_PER_BATCH)]
    pub max_txs_per_batch: usize,
    /// Every Nth transfer is local (rollup workload): its signed half proved in the devnet's
    /// process, as a wallet proves it, and sent with the proof; the network proves the rest.
    /// 0: network transfers only. Proving holds the generator up (seconds a proof).
    #[arg(long, env = "SHEAF_DEVNET_LOCAL_EVERY", default_value_t = DEFAULT_DEVNET_LOCAL_EVERY)]
    pub local_every: u64,
}

impl DevnetRollupArgs {
    /// Refuse settings the run cannot go through with.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.blocks == 0 {
            bail!("--blocks must be at least 1");
        }
        if !(self.tps.is_finite() && self.tps > 0.0 && self.tps <= 1_000.0) {
            bail!("--tps must be above 0 and at most 1000, not {}", self.tps);
        }
        if self.accounts < 2 {
            bail!("--accounts must be at least 2");
        }
        if self.block_interval_ms == 0 {
            bail!("--block-interval-ms must be at least 1");
        }
        self.mempool()?;
        let keys = self.keys_per_account();
        if keys > DEFAULT_KEY_COUNT {
            bail!(
                "{} blocks at {} tx/s over {} accounts need {keys} one-time keys per account, \
                 more than {DEFAULT_KEY_COUNT}: add accounts or lower --tps or --blocks",
                self.blocks,
                self.tps,
                self.accounts
            );
        }
        Ok(())
    }

    /// One-time keys each account needs: twice the transfers the run should send, and spares.
    fn keys_per_account(&self) -> u64 {
        let seconds = self.block_interval_ms as f64 / 1000.0 * (self.blocks + 1) as f64;
        let transfers = (self.tps * seconds * 2.0).ceil() as u64;
        transfers.div_ceil(self.accounts as u64) + SPARE_KEYS
    }

    /// The workload: its accounts and their keys (CPU-heavy: about 2 ms a key).
    pub async fn workload(&self) -> anyhow::Result<TransferWorkload> {
        let (accounts, keys) = (self.accounts, self.keys_per_account());
        let genesis_ms = now_ms().max(0) as u64;
        let workload =
            tokio::task::spawn_blocking(move || TransferWorkload::new(accounts, keys, genesis_ms))
                .await??;
        Ok(workload)
    }

    /// The mempool's knobs: miden-node's defaults but the batch size.
    fn mempool(&self) -> anyhow::Result<MempoolConfig> {
        let defaults = MempoolConfig::default();
        let mempool = MempoolConfig::new(
            defaults.capacity,
            defaults.expiration_slack,
            self.max_txs_per_batch,
            defaults.max_batches_per_block,
        )
        .context("--max-txs-per-batch")?;
        Ok(mempool)
    }

    /// The coordinator's rollup node options, from the workload's genesis (the batch interval and
    /// the proving backlog at the node's defaults).
    pub fn options(&self, genesis: RollupState, arity: usize) -> anyhow::Result<RollupOptions> {
        Ok(RollupOptions {
            genesis,
            config: RollupConfig {
                mempool: self.mempool()?,
                arity,
                concurrent_blocks: DEFAULT_CONCURRENT_BLOCKS,
            },
            block_interval: Duration::from_millis(self.block_interval_ms),
            batch_interval: DEFAULT_BATCH_INTERVAL,
        })
    }
}

/// How a transaction reached the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TxKind {
    /// With its witness and signature; the network proves its tx kernel.
    Network,
    /// With the client's proof of its signed half (`POST /v1/rollup/transactions/local`):
    /// every `--local-every`th transfer.
    Local,
}

/// Seconds at the 50th and 99th percentiles, and the most.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// How many values.
    pub count: usize,
}

impl Percentiles {
    fn of(mut millis: Vec<i64>) -> Percentiles {
        if millis.is_empty() {
            return Percentiles::default();
        }
        millis.sort_unstable();
        let at = |p: f64| {
            let rank = ((p * millis.len() as f64).ceil() as usize).clamp(1, millis.len());
            millis[rank - 1].max(0) as f64 / 1000.0
        };
        Percentiles {
            p50: at(0.5),
            p99: at(0.99),
            max: at(1.0),
            count: millis.len(),
        }
    }
}

/// What the rollup workload reports.
#[derive(Debug, Serialize)]
pub struct RollupReport {
    /// Funded accounts.
    pub accounts: usize,
    /// Blocks published.
    pub blocks_published: u64,
    /// Blocks proven (the proven tip).
    pub blocks_proven: u64,
    /// Blocks settled on chain (the settled tip).
    pub blocks_settled: u64,
    /// Transactions in published blocks.
    pub transactions: usize,
    /// Of which network transactions.
    pub network_transactions: usize,
    /// Of which local transactions.
    pub local_transactions: usize,
    /// Transactions that consumed a note.
    pub notes_consumed: usize,
    /// Of which in the same block as the note's creator.
    pub notes_consumed_in_block: usize,
    /// Submissions sent again because the unauthenticated note they consume was committed
    /// meanwhile (then named by its block and index).
    pub resubmissions: usize,
    /// Transactions of proven blocks per second, from the first submission to the proven tip
    /// reaching the last block.
    pub proven_tps: f64,
    /// From submission to the transaction's block published.
    pub latency_published: Percentiles,
    /// From submission to the proven tip reaching its block.
    pub latency_proven: Percentiles,
    /// From submission to the settled tip reaching its block (as the store records it).
    pub latency_settled: Percentiles,
    /// Per block, from its publication to the proven tip reaching it.
    pub proven_tip_lag: Percentiles,
    /// Most blocks published but not under the proven tip, at any block's publication.
    pub proven_tip_lag_blocks: u64,
    /// Accounts whose replayed balance and notes equal what the workload expects.
    pub balances_matching: usize,
    /// Every account's balance and notes equal the native replay of the settled blocks.
    pub balances_match: bool,
    /// The accounts that differ, with how.
    pub mismatches: Vec<String>,
}

/// What the generator did: when each transaction was sent and which block took it.
struct Generated {
    submitted_ms: BTreeMap<TxId, i64>,
    kinds: BTreeMap<TxId, TxKind>,
    block_of: BTreeMap<TxId, u64>,
    resubmissions: usize,
}

/// The run as it is watched: the blocks fed to the workload, and when each block was first
/// seen under the settled tip.
struct Watch<'a> {
    client: RollupClient,
    local: Option<(u64, Arc<LocalProver>)>,
    store: &'a Store,
    provers: &'a mut [ProverProcess],
    display: Display,
    started: Instant,
    last_line: Option<Instant>,
    fed: u64,
    settled_ms: BTreeMap<u64, i64>,
}

impl Watch<'_> {
    /// Feed newly published blocks to the workload, record settlements, and fail if a prover
    /// exited or a job died. Returns the node's published tip.
    async fn observe(
        &mut self,
        workload: &mut TransferWorkload,
        generated: &mut Generated,
    ) -> anyhow::Result<u64> {
        let status = self.client.status().await?;
        let published = status.published_tip.unwrap_or(0).max(0) as u64;
        while self.fed < published {
            let number = self.fed + 1;
            let block = self.client.block(number as i64).await?;
            workload.published(block.header.number, &block.created_notes);
            for id in &block.transactions {
                generated.block_of.insert(*id, number);
            }
            self.fed = number;
        }
        let settled = self.store.rollup_settled_tip().await?.unwrap_or(0).max(0) as u64;
        let now = now_ms();
        for number in 1..=settled {
            self.settled_ms.entry(number).or_insert(now);
        }
        super::provers::check_provers(&mut *self.provers)?;
        let dead = JobFilter {
            sequence: None,
            status: Some(JobStatus::Dead),
        };
        if let Some(job) = self.store.list_jobs(dead).await?.first() {
            bail!("job {} is dead after {} attempts", job.id, job.attempts);
        }
        if self.display != Display::Quiet
            && self
                .last_line
                .is_none_or(|at| at.elapsed() >= PLAIN_PROGRESS_INTERVAL)
        {
            self.last_line = Some(Instant::now());
            eprintln!(
                "rollup: {} transactions sent, blocks published {published}, proven {}, settled {settled}, {} waiting ({:.0} s)",
                generated.submitted_ms.len(),
                status.proven_tip.unwrap_or(0),
                status.pending,
                self.started.elapsed().as_secs_f64()
            );
        }
        Ok(published)
    }
}

/// Run the workload against the coordinator at `url` (its circuits those `circuits` selects)
/// until `args.blocks` blocks (or more, if the last submissions needed them) are published,
/// proven and settled; then check every account against a native replay of the blocks.
pub async fn run(
    url: &str,
    circuits: &CircuitArgs,
    store: &Store,
    workload: &mut TransferWorkload,
    args: &DevnetRollupArgs,
    provers: &mut [ProverProcess],
    display: Display,
) -> anyhow::Result<RollupReport> {
    // The tx kernel, loaded from the cache the coordinator just filled (or built).
    let local = match args.local_every {
        0 => None,
        every => {
            let profile = circuits.profile;
            let cache = (!circuits.no_cache).then(|| circuits.cache_dir.clone());
            let prover = tokio::task::spawn_blocking(move || {
                LocalProver::build(LOCAL_PROVER_SEED, profile, cache.as_deref())
            })
            .await??;
            Some((every, Arc::new(prover)))
        }
    };
    let mut watch = Watch {
        client: RollupClient::new(url)?,
        local,
        store,
        provers,
        display,
        started: Instant::now(),
        last_line: None,
        fed: 0,
        settled_ms: BTreeMap::new(),
    };
    let mut generated = Generated {
        submitted_ms: BTreeMap::new(),
        kinds: BTreeMap::new(),
        block_of: BTreeMap::new(),
        resubmissions: 0,
    };

    // Submit at --tps until the last block is due: what waits then makes block --blocks.
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.tps));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let tip = watch.observe(workload, &mut generated).await?;
        let waiting = generated.submitted_ms.len() > generated.block_of.len();
        if tip >= args.blocks || (tip + 1 >= args.blocks && waiting) {
            break;
        }
        submit(&mut watch, workload, &mut generated, tip).await?;
    }

    // Every submitted transaction in a published block.
    let deadline = Instant::now() + PUBLISH_TIMEOUT;
    while generated
        .submitted_ms
        .keys()
        .any(|id| !generated.block_of.contains_key(id))
    {
        if Instant::now() >= deadline {
            bail!(
                "{} of {} transactions in published blocks after {} s",
                generated.block_of.len(),
                generated.submitted_ms.len(),
                PUBLISH_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(WATCH_INTERVAL).await;
        watch.observe(workload, &mut generated).await?;
    }
    let blocks = watch.fed;

    // Every block proven (no timeout: a dead job or an exited prover ends the run), then
    // settled within the settlement timeout.
    let mut settle_deadline = None;
    loop {
        watch.observe(workload, &mut generated).await?;
        let proven = store.rollup_proven_tip().await?.unwrap_or(0).max(0) as u64;
        let settled = watch.settled_ms.len() as u64;
        if proven >= blocks && settled >= blocks {
            break;
        }
        if proven >= blocks {
            let deadline = *settle_deadline.get_or_insert(Instant::now() + SETTLE_TIMEOUT);
            if Instant::now() >= deadline {
                bail!(
                    "{settled} of {blocks} blocks settled {} s after the last was proven; see \
                     the coordinator's log (sheaf::sender)",
                    SETTLE_TIMEOUT.as_secs()
                );
            }
        }
        tokio::time::sleep(WATCH_INTERVAL).await;
    }
    report(store, workload, args, &generated, &watch.settled_ms, blocks).await
}

/// Send the workload's next transfer (every `--local-every`th proved here first, as a
/// wallet's local transaction); a transfer refused because the unauthenticated note it
/// consumes was committed meanwhile is sent again with the note named by its place (the
/// origin is neither signed nor proved).
async fn submit(
    watch: &mut Watch<'_>,
    workload: &mut TransferWorkload,
    generated: &mut Generated,
    tip: u64,
) -> anyhow::Result<()> {
    let local = watch
        .local
        .as_ref()
        .filter(|(every, _)| (workload.transfers() + 1).is_multiple_of(*every))
        .map(|(_, prover)| prover.clone());
    let mut tx = workload.next(tip as u32)?;
    workload.authenticate(&mut tx);
    let proved = match local {
        Some(prover) => {
            let signed = tx.clone();
            let local = tokio::task::spawn_blocking(move || prover.prove(&signed)).await??;
            Some(local)
        }
        None => None,
    };
    let kind = if proved.is_some() {
        TxKind::Local
    } else {
        TxKind::Network
    };
    let submitted_ms = now_ms();
    for attempt in 1..=SUBMIT_ATTEMPTS {
        let sent = match &proved {
            Some(local) => {
                let local = LocalTransaction {
                    transaction: tx.clone(),
                    prover: local.prover,
                    proof: local.proof.clone(),
                };
                watch.client.submit_local(&local).await
            }
            None => watch.client.submit(&tx).await,
        };
        let refusal = match sent {
            Ok(id) => {
                generated.submitted_ms.insert(id, submitted_ms);
                generated.kinds.insert(id, kind);
                return Ok(());
            }
            Err(refusal @ ClientError::Refused { .. }) => refusal,
            Err(e) => return Err(e.into()),
        };
        let unauthenticated = tx
            .body
            .input_notes
            .iter()
            .any(|n| n.origin == sheaf_rollup::NoteOrigin::Unauthenticated);
        if !unauthenticated || attempt == SUBMIT_ATTEMPTS {
            return Err(anyhow::Error::new(refusal))
                .with_context(|| format!("submitting transfer {}", workload.transfers()));
        }
        // The note's block is published (the node publishes before it answers again): read
        // it and name the note by its place.
        watch.observe(workload, generated).await?;
        if workload.authenticate(&mut tx) {
            generated.resubmissions += 1;
        } else {
            tokio::time::sleep(WATCH_INTERVAL).await;
        }
    }
    Ok(())
}

/// The published blocks from the store, as the node stored them.
async fn stored_blocks(
    store: &Store,
    blocks: u64,
) -> anyhow::Result<Vec<(BlockHeader, Vec<Transaction>)>> {
    let mut out = Vec::new();
    for number in 1..=blocks as i64 {
        let block = store
            .rollup_block(number)
            .await?
            .with_context(|| format!("block {number} is not in the store"))?;
        let header: BlockHeader = serde_json::from_slice(&block.header)
            .with_context(|| format!("block {number}'s header"))?;
        let transactions = store
            .rollup_block_transactions(number)
            .await?
            .iter()
            .map(|row| serde_json::from_slice::<Transaction>(&row.body))
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("block {number}'s transactions"))?;
        out.push((header, transactions));
    }
    Ok(out)
}

async fn report(
    store: &Store,
    workload: &TransferWorkload,
    args: &DevnetRollupArgs,
    generated: &Generated,
    settled_ms: &BTreeMap<u64, i64>,
    blocks: u64,
) -> anyhow::Result<RollupReport> {
    let published = stored_blocks(store, blocks).await?;
    let mut published_ms = BTreeMap::new();
    let mut proved_ms = BTreeMap::new();
    for number in 1..=blocks {
        if let Some(block) = store.rollup_block(number as i64).await? {
            published_ms.insert(number, block.published_ms);
        }
    }
    for sequence in store.list_sequences().await? {
        if let Some(ms) = sequence.proved_ms {
            proved_ms.insert(sequence.id.0, ms);
        }
    }
    // When the proven tip reached each block: the latest proof among it and those before.
    let mut proven_tip_ms = BTreeMap::new();
    let mut latest = i64::MIN;
    for number in 1..=blocks {
        let Some(&ms) = proved_ms.get(&number) else {
            break;
        };
        latest = latest.max(ms);
        proven_tip_ms.insert(number, latest);
    }

    let since = |at: &BTreeMap<u64, i64>| {
        generated
            .submitted_ms
            .iter()
            .filter_map(|(id, sent)| Some(at.get(generated.block_of.get(id)?)? - sent))
            .collect::<Vec<i64>>()
    };
    let lag: Vec<i64> = proven_tip_ms
        .iter()
        .filter_map(|(n, proven)| Some(proven - published_ms.get(n)?))
        .collect();
    let lag_blocks = published_ms
        .iter()
        .map(|(n, at)| n.saturating_sub(proven_tip_ms.values().filter(|p| *p <= at).count() as u64))
        .max()
        .unwrap_or(0);

    let transactions: Vec<&Transaction> = published.iter().flat_map(|(_, txs)| txs).collect();
    let created_in: BTreeMap<_, u64> = published
        .iter()
        .flat_map(|(header, txs)| {
            txs.iter().flat_map(|tx| {
                tx.body
                    .output_notes
                    .iter()
                    .map(|n| (n.id(), header.number as u64))
            })
        })
        .collect();
    let consuming: Vec<(u64, &Transaction)> = published
        .iter()
        .flat_map(|(header, txs)| txs.iter().map(|tx| (header.number as u64, tx)))
        .filter(|(_, tx)| !tx.body.input_notes.is_empty())
        .collect();
    let in_block = consuming
        .iter()
        .filter(|(number, tx)| {
            tx.body
                .input_notes
                .iter()
                .all(|n| created_in.get(&n.note.id()) == Some(number))
        })
        .count();
    let kind_count = |kind: TxKind| {
        transactions
            .iter()
            .filter(|tx| generated.kinds.get(&tx.id()) == Some(&kind))
            .count()
    };
    let proven_transactions: usize = published
        .iter()
        .filter(|(header, _)| proven_tip_ms.contains_key(&(header.number as u64)))
        .map(|(_, txs)| txs.len())
        .sum();
    let first_sent = generated.submitted_ms.values().min().copied();
    let last_proven = proven_tip_ms.values().max().copied();
    let proven_tps = match (first_sent, last_proven) {
        (Some(first), Some(last)) if last > first => {
            proven_transactions as f64 / ((last - first) as f64 / 1000.0)
        }
        _ => 0.0,
    };

    // The native replay of the blocks, from the genesis, against what the workload expects.
    let genesis = workload.genesis().build()?;
    let replayed_txs: Vec<Transaction> = transactions.iter().map(|tx| (*tx).clone()).collect();
    let mut mismatches = Vec::new();
    let mut matching = 0;
    match BlockProducer::replay(genesis, published.clone(), args.max_txs_per_batch) {
        Ok(state) => {
            let actual = wallets_of(&state, &replayed_txs);
            for (id, expected) in workload.expected() {
                match actual.get(&id) {
                    Some(found) if *found == expected => matching += 1,
                    Some(found) => mismatches.push(format!(
                        "account {}: replayed balance {} with {} notes ({} in all), expected {} with {} notes ({} in all)",
                        id.0,
                        found.balance.base_units(),
                        found.notes.len(),
                        found.total(),
                        expected.balance.base_units(),
                        expected.notes.len(),
                        expected.total()
                    )),
                    None => mismatches.push(format!("account {} is not in the replayed state", id.0)),
                }
            }
        }
        Err(e) => mismatches.push(format!("the published blocks do not replay: {e}")),
    }

    Ok(RollupReport {
        accounts: args.accounts,
        blocks_published: blocks,
        blocks_proven: proven_tip_ms.len() as u64,
        blocks_settled: settled_ms.len() as u64,
        transactions: transactions.len(),
        network_transactions: kind_count(TxKind::Network),
        local_transactions: kind_count(TxKind::Local),
        notes_consumed: consuming.len(),
        notes_consumed_in_block: in_block,
        resubmissions: generated.resubmissions,
        proven_tps,
        latency_published: Percentiles::of(since(&published_ms)),
        latency_proven: Percentiles::of(since(&proven_tip_ms)),
        latency_settled: Percentiles::of(since(settled_ms)),
        proven_tip_lag: Percentiles::of(lag),
        proven_tip_lag_blocks: lag_blocks,
        balances_matching: matching,
        balances_match: mismatches.is_empty(),
        mismatches,
    })
}

#[cfg(test)]
mod tests {
    use super::Percentiles;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let p = Percentiles::of((1..=100).rev().map(|s| s * 1000).collect());
        assert_eq!((p.p50, p.p99, p.max, p.count), (50.0, 99.0, 100.0, 100));
        assert_eq!(Percentiles::of(Vec::new()), Percentiles::default());
    }
}
