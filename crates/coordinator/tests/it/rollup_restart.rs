//! A rollup node reopened on its store (a restart) takes back every pending transaction it had
//! admitted, whatever was published meanwhile and however the store orders them.

use sheaf_coordinator::rollup::{RollupConfig, RollupNode, DEFAULT_CONCURRENT_BLOCKS};
use sheaf_rollup::demo::DemoRollup;
use sheaf_rollup::MempoolConfig;
use sheaf_store::NewRollupTransaction;

use crate::harness::sqlite_store;

/// Blocks of one transaction.
fn one_per_block() -> RollupConfig {
    RollupConfig {
        mempool: MempoolConfig {
            max_txs_per_batch: 1,
            max_batches_per_block: 1,
            ..MempoolConfig::default()
        },
        arity: 2,
        concurrent_blocks: DEFAULT_CONCURRENT_BLOCKS,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_readmits_a_transaction_whose_unauthenticated_note_was_published_since() {
    let (store, _dir) = sqlite_store().await;
    let mut demo = DemoRollup::new(3, 16, 1_000).unwrap();
    let node = RollupNode::open(store.clone(), demo.state.clone(), one_per_block())
        .await
        .unwrap();
    // Transfer 1 consumes transfer 0's note, named unauthenticated: both wait, then block 1
    // takes transfer 0 alone.
    let txs = demo.transfers(2).unwrap();
    for tx in &txs {
        node.submit(&serde_json::to_vec(tx).unwrap()).await.unwrap();
    }
    node.select_batches().await;
    node.build_and_publish(2_000).await.unwrap().unwrap();
    drop(node);

    let reopened = RollupNode::open(store.clone(), demo.state.clone(), one_per_block())
        .await
        .unwrap();
    assert_eq!(reopened.pending().await, 1, "transfer 1 is readmitted");
    assert_eq!(store.pending_rollup_transactions().await.unwrap().len(), 1);
    reopened.select_batches().await;
    let second = reopened.build_and_publish(3_000).await.unwrap().unwrap();
    assert_eq!(second.number, 2);
    // And once more: block 2 replays from the transaction as stored.
    drop(reopened);
    let again = RollupNode::open(store.clone(), demo.state.clone(), one_per_block())
        .await
        .unwrap();
    assert_eq!(again.state().await.tip(), &second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_readmits_a_child_stored_in_the_same_millisecond_before_its_parent() {
    let (store, _dir) = sqlite_store().await;
    let mut demo = DemoRollup::new(3, 16, 1_000).unwrap();
    // Each transfer depends on earlier ones (an account's previous state, a note it consumes).
    // Stored in the same millisecond, the store gives them back by id, in another order.
    let txs = demo.transfers(6).unwrap();
    for tx in &txs {
        let row = NewRollupTransaction {
            id: tx.id().0.to_bytes(),
            body: serde_json::to_vec(tx).unwrap(),
            local_proof: None,
            local_reward: None,
            received_ms: 1_000,
        };
        store.insert_rollup_transaction(&row).await.unwrap();
    }
    let stored: Vec<[u8; 32]> = store
        .pending_rollup_transactions()
        .await
        .unwrap()
        .iter()
        .map(|row| row.id)
        .collect();
    let arrival: Vec<[u8; 32]> = txs.iter().map(|tx| tx.id().0.to_bytes()).collect();
    assert_ne!(stored, arrival, "the store keeps another order");
    let node = RollupNode::open(store.clone(), demo.state.clone(), one_per_block())
        .await
        .unwrap();
    assert_eq!(node.pending().await, 6, "every transfer is readmitted");
    assert_eq!(store.pending_rollup_transactions().await.unwrap().len(), 6);
}
