//! Network transactions the rollup API refuses, one test each, over real HTTP on a real SQLite
//! store: each answers a clear code and message, and changes nothing (the mempool, the store's
//! pending transactions, the published tip).

use std::sync::Arc;

use sheaf_api::{ErrorBody, ErrorCode};
use sheaf_coordinator::rollup::{RollupConfig, RollupNode, DEFAULT_CONCURRENT_BLOCKS};
use sheaf_coordinator::CoordinatorConfig;
use sheaf_rollup::demo::DemoRollup;
use sheaf_rollup::{AccountId, InputNote, MempoolConfig, Note, NoteOrigin, Transaction};
use sheaf_store::Store;
use sheaf_types::Amount;

use crate::harness::{sqlite_store, start_on, Net};
use crate::rollup::post_raw;

const TRANSACTIONS: &str = "/v1/rollup/transactions";

/// A coordinator with a rollup node over a demo of three accounts.
struct Rollup {
    net: Net,
    store: Store,
    node: Arc<RollupNode>,
    demo: DemoRollup,
    _dir: tempfile::TempDir,
}

impl Rollup {
    async fn start() -> Rollup {
        let (store, dir) = sqlite_store().await;
        let net = start_on(store.clone(), Vec::new(), CoordinatorConfig::default()).await;
        let demo = DemoRollup::new(3, 16, 1_000).unwrap();
        let config = RollupConfig {
            mempool: MempoolConfig::default(),
            arity: 2,
            concurrent_blocks: DEFAULT_CONCURRENT_BLOCKS,
        };
        let node = RollupNode::open(store.clone(), demo.state.clone(), config)
            .await
            .unwrap();
        net.coordinator.attach_rollup(node.clone());
        Rollup {
            net,
            store,
            node,
            demo,
            _dir: dir,
        }
    }

    async fn accept(&self, tx: &Transaction) {
        let answer = post_raw(&self.net, TRANSACTIONS, serde_json::to_vec(tx).unwrap()).await;
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
    }

    /// Post `tx`, which must be refused as a bad request whose message holds `why`, with the
    /// mempool, the store's pending transactions and the published tip as before.
    async fn refuse(&self, tx: &Transaction, why: &str) {
        let before = (
            self.node.pending().await,
            self.store
                .pending_rollup_transactions()
                .await
                .unwrap()
                .len(),
            self.store.rollup_tip().await.unwrap().map(|b| b.number),
        );
        let answer = post_raw(&self.net, TRANSACTIONS, serde_json::to_vec(tx).unwrap()).await;
        assert_eq!(answer.code(), ErrorCode::BadRequest);
        let body: ErrorBody = serde_json::from_slice(&answer.body).unwrap();
        assert!(
            body.error.message.contains(why),
            "{:?} does not say {why:?}",
            body.error.message
        );
        let after = (
            self.node.pending().await,
            self.store
                .pending_rollup_transactions()
                .await
                .unwrap()
                .len(),
            self.store.rollup_tip().await.unwrap().map(|b| b.number),
        );
        assert_eq!(after, before, "a refusal changed the node");
    }

    /// Publish a block of everything waiting.
    async fn publish(&self, timestamp: u64) -> u32 {
        self.node.select_batches().await;
        let header = self.node.build_and_publish(timestamp).await.unwrap();
        header.expect("a block").number
    }
}

/// Demo transfer 0 sends a note to account 2, and transfer 1 (account 2) consumes it as
/// unauthenticated: the note and the state account 2 is in after spending it.
fn spent_note(txs: &[Transaction]) -> (Note, sheaf_rollup::Account) {
    assert_eq!(txs[1].body.input_notes[0].note, txs[0].body.output_notes[0]);
    (txs[0].body.output_notes[0], txs[1].body.final_account())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_whose_signature_does_not_sign_it_is_refused() {
    let mut rollup = Rollup::start().await;
    let mut tx = rollup.demo.transfers(1).unwrap().remove(0);
    // Signed for one expiration, sent with another: the signature is over the old id.
    tx.body.expiration += 1;
    rollup.refuse(&tx, "signature").await;
    rollup.net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_spend_of_a_note_a_waiting_transaction_spends_is_refused() {
    let mut rollup = Rollup::start().await;
    let txs = rollup.demo.transfers(2).unwrap();
    for tx in &txs {
        rollup.accept(tx).await;
    }
    // Account 2 again, from the state its first spend leaves, spends the same note.
    let (note, account) = spent_note(&txs);
    let mut body = txs[1].body.clone();
    body.account = account;
    body.input_notes = vec![InputNote {
        note,
        origin: NoteOrigin::Unauthenticated,
    }];
    body.output_notes.clear();
    body.final_balance = Amount(account.balance.0 + note.amount.0);
    let again = rollup.demo.sign(body).unwrap();
    rollup
        .refuse(&again, "is spent by a transaction in the mempool")
        .await;
    rollup.net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_spend_of_a_note_a_published_block_spent_is_refused() {
    let mut rollup = Rollup::start().await;
    let txs = rollup.demo.transfers(2).unwrap();
    for tx in &txs {
        rollup.accept(tx).await;
    }
    let block = rollup.publish(2_000).await;
    // The note is now note 0 of the published block, and spent there.
    let (note, account) = spent_note(&txs);
    let body = sheaf_rollup::TransactionBody {
        account,
        input_notes: vec![InputNote {
            note,
            origin: NoteOrigin::Committed { block, index: 0 },
        }],
        output_notes: Vec::new(),
        final_balance: Amount(account.balance.0 + note.amount.0),
        expiration: block + 10,
    };
    let again = rollup.demo.sign(body).unwrap();
    rollup
        .refuse(&again, "is spent in the committed state")
        .await;
    rollup.net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_consuming_a_note_that_does_not_exist_is_refused() {
    let mut rollup = Rollup::start().await;
    let txs = rollup.demo.transfers(1).unwrap();
    rollup.accept(&txs[0]).await;
    let block = rollup.publish(2_000).await;
    let account = *rollup.node.state().await.account(AccountId(2)).unwrap();
    let made_up = Note {
        recipient: account.id,
        amount: Amount(500),
        serial: sheaf_circuits::Digest([7, 7, 7, 7]),
    };
    let consuming = |origin| sheaf_rollup::TransactionBody {
        account,
        input_notes: vec![InputNote {
            note: made_up,
            origin,
        }],
        output_notes: Vec::new(),
        final_balance: Amount(account.balance.0 + 500),
        expiration: block + 10,
    };
    // Named in the published block, at the place of the block's real note.
    let committed = rollup
        .demo
        .sign(consuming(NoteOrigin::Committed { block, index: 0 }))
        .unwrap();
    rollup
        .refuse(&committed, "is not note 0 of committed block 1")
        .await;
    // Named as the output of a waiting transaction (none makes it). The same one-time key
    // cannot sign a second message: a fresh demo signs it.
    let mut fresh = DemoRollup::new(3, 16, 1_000).unwrap();
    let unauthenticated = fresh.sign(consuming(NoteOrigin::Unauthenticated)).unwrap();
    rollup
        .refuse(
            &unauthenticated,
            "is not an output of a transaction in the mempool",
        )
        .await;
    rollup.net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_that_expires_before_a_block_can_take_it_is_refused() {
    let mut rollup = Rollup::start().await;
    let mut body = rollup.demo.transfers(1).unwrap().remove(0).body;
    // Valid only up to the tip plus the slack: it could expire while it waits.
    body.expiration = MempoolConfig::default().expiration_slack;
    let mut fresh = DemoRollup::new(3, 16, 1_000).unwrap();
    let expiring = fresh.sign(body.clone()).unwrap();
    rollup.refuse(&expiring, "expires at block 2").await;
    // Already past: expired at genesis.
    body.expiration = 0;
    let mut fresh = DemoRollup::new(3, 16, 1_000).unwrap();
    let expired = fresh.sign(body).unwrap();
    rollup.refuse(&expired, "expires at block 0").await;
    rollup.net.stop().await;
}
