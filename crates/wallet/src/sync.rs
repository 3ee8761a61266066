//! Bringing a wallet up to the node's published tip: find the account in the genesis once, then
//! read every published block after the cursor.
//!
//! ```text
//!  no account yet ─▶ GET /v1/rollup/genesis ─▶ the account whose auth commitment is ours
//!                                              cursor = (0, genesis block's commitment)
//!  GET /v1/rollup/status ─▶ published tip
//!  for n in cursor+1 ..= tip: GET /v1/rollup/blocks/n
//!     prev commitment == cursor's?  (else: another rollup than the wallet's)
//!     created notes to our account  ─▶ owned, with (n, index)
//!     spent nullifiers              ─▶ owned notes they spend are gone
//!     our pending tx among its txs  ─▶ account = its final account (balance, nonce + 1)
//!  pending tx expired before the tip and not included ─▶ dropped (it never can be)
//! ```
//!
//! Only the account's own one-time key authorizes a change of its balance, and the wallet
//! signed every such change: its balance and nonce follow from the genesis and its own
//! transactions, which the blocks confirm by id. Notes are public in the blocks. So a wallet
//! needs no account query, only the published blocks; it must be the one wallet of its account
//! (a copy that signs elsewhere makes the other's nonce stale, which the node then refuses).

use sheaf_rollup::chain::BlockNumber;
use sheaf_rollup::{AccountId, GenesisError, TxId};

use crate::client::{ClientError, RollupClient, RollupStatusView};
use crate::file::{Cursor, OwnedNote, WalletFile};

/// Why a wallet could not catch up with the node.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The node could not be asked.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The node's genesis funds no account with this wallet's keys.
    #[error(
        "the rollup's genesis has no account with this wallet's auth commitment {auth_commitment} \
         (fund it with `sheaf rollup genesis --fund WALLET=TOKENS`)"
    )]
    NotInGenesis {
        /// The wallet's auth commitment.
        auth_commitment: sheaf_circuits::Digest,
    },
    /// The node's genesis does not build.
    #[error("the node's genesis is unusable: {0}")]
    Genesis(#[from] GenesisError),
    /// The node's blocks do not continue what the wallet read: another rollup (or a reset one).
    #[error("the node's block {block} does not follow the wallet's: {reason}; this wallet belongs to another rollup")]
    OtherRollup {
        /// The block that does not fit.
        block: i64,
        /// How.
        reason: String,
    },
}

/// What a sync found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// The node's status when the sync started.
    pub status: Option<RollupStatusView>,
    /// Blocks read.
    pub blocks_read: u64,
    /// Notes received.
    pub notes_received: usize,
    /// Own transactions found in blocks, with their block.
    pub included: Vec<(TxId, BlockNumber)>,
    /// An own transaction that expired without a block including it.
    pub dropped: Option<TxId>,
}

impl WalletFile {
    /// The account's id, once found in the genesis.
    pub fn account_id(&self) -> Option<AccountId> {
        self.account.map(|a| a.id)
    }

    /// Find the account in the node's genesis, if not yet found.
    pub async fn find_account(&mut self, client: &RollupClient) -> Result<AccountId, SyncError> {
        if let Some(account) = self.account {
            return Ok(account.id);
        }
        let genesis = client.genesis().await?;
        let state = genesis.build()?;
        let account = state
            .accounts()
            .find(|a| a.auth_commitment == self.auth_commitment)
            .copied()
            .ok_or(SyncError::NotInGenesis {
                auth_commitment: self.auth_commitment,
            })?;
        self.account = Some(account);
        self.cursor = Some(Cursor {
            block: 0,
            commitment: state.tip().commitment(),
        });
        self.notes.clear();
        Ok(account.id)
    }

    /// Read every block published since the cursor.
    pub async fn sync(&mut self, client: &RollupClient) -> Result<SyncReport, SyncError> {
        let id = self.find_account(client).await?;
        let status = client.status().await?;
        let mut report = SyncReport {
            status: Some(status.clone()),
            ..SyncReport::default()
        };
        let tip = status.published_tip.unwrap_or(0);
        let mut cursor = self.cursor.expect("an account found has a cursor");
        if tip < i64::from(cursor.block) {
            return Err(SyncError::OtherRollup {
                block: tip,
                reason: format!(
                    "its tip is block {tip}, the wallet has read up to block {}",
                    cursor.block
                ),
            });
        }
        for number in i64::from(cursor.block) + 1..=tip {
            let block = client.block(number).await?;
            if block.header.prev_block_commitment != cursor.commitment
                || i64::from(block.header.number) != number
            {
                return Err(SyncError::OtherRollup {
                    block: number,
                    reason: format!(
                        "it follows {}, the wallet's block {} is {}",
                        block.header.prev_block_commitment, cursor.block, cursor.commitment
                    ),
                });
            }
            for (index, note) in block.created_notes.iter().enumerate() {
                if note.recipient == id {
                    self.notes.push(OwnedNote {
                        note: *note,
                        block: block.header.number,
                        index: index as u32,
                    });
                    report.notes_received += 1;
                }
            }
            self.notes
                .retain(|owned| !block.spent_nullifiers.contains(&owned.note.nullifier()));
            if let Some(tx) = &self.pending {
                if block.transactions.contains(&tx.id()) {
                    self.account = Some(tx.body.final_account());
                    report.included.push((tx.id(), block.header.number));
                    self.pending = None;
                }
            }
            cursor = Cursor {
                block: block.header.number,
                commitment: block.commitment,
            };
            self.cursor = Some(cursor);
            report.blocks_read += 1;
        }
        // A block numbered past the expiration cannot include the transaction any more.
        if let Some(tx) = &self.pending {
            if i64::from(tx.body.expiration) <= tip {
                report.dropped = Some(tx.id());
                self.pending = None;
            }
        }
        Ok(report)
    }
}
