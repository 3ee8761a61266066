//! The block producer, natively: the mempool over the current state, a block built from it on
//! demand with its proving tree, and the replay that rebuilds the state from published blocks.
//!
//! ```text
//!  submit(tx) ──▶ Mempool::add_transaction (over the current state)
//!  select_batches() ──▶ Mempool::select_batches (every batch interval)
//!  build_block(t) ──▶ select_block (every block interval: the waiting batches) ──▶ produce_block (on a copy) ──▶ BlockTree::plan
//!        │ refused: rollback (the block's transactions and their descendants dropped)
//!        ▼
//!  BuiltBlock { header, transactions, tree, reverted }   state := the block's state
//!  replay(genesis, published blocks) ──▶ the same state, every header checked
//! ```
//!
//! No I/O here: the service around it publishes each built block (header, transactions and
//! tree in one store transaction) before the network proves it, and on restart replays the
//! published blocks and resubmits the pending transactions. A block is built only when at
//! least one batch waits: the block kernel proves a block's transactions, and an empty block
//! would have nothing to prove. Selected batches are only in memory: after a restart their
//! transactions are queued again, in arrival order.

use crate::block::{produce_block, ProducedBlock};
use std::collections::HashMap;

use crate::chain::{BlockHeader, BlockNumber};
use crate::error::BlockError;
use crate::kernel::{BlockTree, PlanError};
use crate::mempool::{CommitError, Mempool, MempoolConfig, MempoolConfigError, MempoolError};
use crate::notes::NoteId;
use crate::state::RollupState;
use crate::tx::{NoteOrigin, Transaction, TxId};

/// A block the producer built, ready to publish and prove.
#[derive(Clone, Debug)]
pub struct BuiltBlock {
    /// Its header.
    pub header: BlockHeader,
    /// The previous block's header.
    pub previous: BlockHeader,
    /// Its transactions, in block order.
    pub transactions: Vec<Transaction>,
    /// Its proving tree.
    pub tree: BlockTree,
    /// Queued transactions the block made invalid (expired, or their parents gone), dropped.
    pub reverted: Vec<TxId>,
}

/// Why the producer could not build a block; the state and the queue are as the error says.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The rules refused the selected transactions (which the mempool should have prevented):
    /// they and their descendants were dropped, the state is unchanged.
    #[error("the block was refused ({error}); {} transactions dropped", dropped.len())]
    Refused {
        /// Why.
        error: BlockError,
        /// The dropped transactions.
        dropped: Vec<TxId>,
    },
    /// The block could not be planned for proving; its transactions were dropped, the state is
    /// unchanged.
    #[error("the block could not be planned ({error}); {} transactions dropped", dropped.len())]
    Plan {
        /// Why.
        error: PlanError,
        /// The dropped transactions.
        dropped: Vec<TxId>,
    },
    /// The mempool refused the produced block (a bug: it is the block it proposed).
    #[error(transparent)]
    Commit(#[from] CommitError),
}

/// Why published blocks do not replay.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A block's transactions are refused on the state before it.
    #[error("block {number} does not replay: {error}")]
    Refused {
        /// The block.
        number: u32,
        /// Why.
        error: BlockError,
    },
    /// A block replays to another header than the one published.
    #[error("block {number} replays to another header than the one published")]
    HeaderMismatch {
        /// The block.
        number: u32,
    },
}

/// The producer: the current state and the mempool over it.
#[derive(Clone)]
pub struct BlockProducer {
    state: RollupState,
    mempool: Mempool,
    arity: usize,
    /// The queued transactions that are local (their clients prove their signed halves).
    local: std::collections::HashSet<TxId>,
}

impl BlockProducer {
    /// A producer over `state` with a mempool of `config`, planning trees of `arity`.
    pub fn new(
        state: RollupState,
        config: MempoolConfig,
        arity: usize,
    ) -> Result<BlockProducer, MempoolConfigError> {
        let mempool = Mempool::new(config, &state)?;
        Ok(BlockProducer {
            state,
            mempool,
            arity,
            local: Default::default(),
        })
    }

    /// The state after the last built block.
    pub fn state(&self) -> &RollupState {
        &self.state
    }

    /// The mempool.
    pub fn mempool(&self) -> &Mempool {
        &self.mempool
    }

    /// Admit a transaction to the mempool.
    pub fn submit(&mut self, tx: Transaction) -> Result<TxId, MempoolError> {
        self.mempool.add_transaction(tx, &self.state)
    }

    /// Admit a local transaction: as [`BlockProducer::submit`], and its block's tree gets a pair
    /// node for it, whose signed half its client proved (the caller verified that proof).
    pub fn submit_local(&mut self, tx: Transaction) -> Result<TxId, MempoolError> {
        let id = self.submit(tx)?;
        self.local.insert(id);
        Ok(id)
    }

    /// Cut the queued transactions into batches (see [`Mempool::select_batches`]); how many.
    pub fn select_batches(&mut self) -> usize {
        self.mempool.select_batches()
    }

    /// Build the next block at `timestamp` from the selected batches; `Ok(None)` when no batch
    /// waits.
    pub fn build_block(&mut self, timestamp: u64) -> Result<Option<BuiltBlock>, BuildError> {
        if self.mempool.selected_batches() == 0 {
            return Ok(None);
        }
        let Some(proposed) = self.mempool.select_block() else {
            return Ok(None);
        };
        let previous = *self.state.tip();
        let produced = match produce_block(
            &self.state,
            &proposed.transactions,
            timestamp,
            proposed.batch_size,
        ) {
            Ok(produced) => produced,
            Err(error) => {
                let dropped = self.mempool.rollback_block();
                return Err(BuildError::Refused { error, dropped });
            }
        };
        let chain_path = self.state.chain_path(previous.number);
        let local: Vec<TxId> = proposed
            .transactions
            .iter()
            .map(Transaction::id)
            .filter(|id| self.local.contains(id))
            .collect();
        let tree = match BlockTree::plan(
            &previous,
            chain_path,
            &proposed.transactions,
            &local,
            &produced,
            proposed.batch_size,
            self.arity,
        ) {
            Ok(tree) => tree,
            Err(error) => {
                let dropped = self.mempool.rollback_block();
                return Err(BuildError::Plan { error, dropped });
            }
        };
        let reverted = self.mempool.commit_block(&produced, &produced.state)?;
        for id in local.iter().chain(&reverted) {
            self.local.remove(id);
        }
        let ProducedBlock { state, header, .. } = produced;
        self.state = state;
        Ok(Some(BuiltBlock {
            header,
            previous,
            transactions: proposed.transactions,
            tree,
            reverted,
        }))
    }

    /// Rebuild the state after `blocks` (each published header with its transactions, in
    /// order) from `genesis`: every block is produced again and must give its header.
    pub fn replay(
        genesis: RollupState,
        blocks: impl IntoIterator<Item = (BlockHeader, Vec<Transaction>)>,
        batch_size: usize,
    ) -> Result<RollupState, ReplayError> {
        Ok(Replayed::blocks(genesis, blocks, batch_size)?.state)
    }
}

/// Published blocks replayed: the state they lead to, and where each note they created is.
#[derive(Clone, Debug)]
pub struct Replayed {
    /// The state after the last block.
    pub state: RollupState,
    created: HashMap<NoteId, (BlockNumber, u32)>,
}

impl Replayed {
    /// Replay `blocks` from `genesis` (see [`BlockProducer::replay`]). A transaction is stored
    /// as it was submitted: an input note it named unauthenticated, whose creator a block
    /// before its own took, is named by its block and index again, as the mempool did when it
    /// built the block (the origin is not signed, so the transaction is the same).
    pub fn blocks(
        genesis: RollupState,
        blocks: impl IntoIterator<Item = (BlockHeader, Vec<Transaction>)>,
        batch_size: usize,
    ) -> Result<Replayed, ReplayError> {
        let mut replayed = Replayed {
            state: genesis,
            created: HashMap::new(),
        };
        for (header, mut transactions) in blocks {
            let number = header.number;
            for tx in &mut transactions {
                replayed.authenticate(tx);
            }
            let produced =
                produce_block(&replayed.state, &transactions, header.timestamp, batch_size)
                    .map_err(|error| ReplayError::Refused { number, error })?;
            if produced.header != header {
                return Err(ReplayError::HeaderMismatch { number });
            }
            for (note, update) in produced.witnesses.iter().flat_map(|w| &w.note_inserts) {
                replayed.created.insert(*note, (number, update.key as u32));
            }
            replayed.state = produced.state;
        }
        Ok(replayed)
    }

    /// Name each unauthenticated input note of `tx` that a replayed block created by its
    /// block and index.
    pub fn authenticate(&self, tx: &mut Transaction) {
        for input in &mut tx.body.input_notes {
            if input.origin == NoteOrigin::Unauthenticated {
                if let Some(&(block, index)) = self.created.get(&input.note.id()) {
                    input.origin = NoteOrigin::Committed { block, index };
                }
            }
        }
    }
}
