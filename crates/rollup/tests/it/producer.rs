//! The block producer: blocks built from the mempool, each with its proving tree, replay from
//! genesis to the same state; a tampered published block does not; a block the rules refuse is
//! dropped and changes nothing.

use sheaf_rollup::demo::DemoRollup;
use sheaf_rollup::producer::{BlockProducer, BuildError, ReplayError};
use sheaf_rollup::{BlockError, BlockHeader, MempoolConfig, Transaction};

/// Blocks of two batches of two transactions.
fn config() -> MempoolConfig {
    MempoolConfig {
        max_txs_per_batch: 2,
        max_batches_per_block: 2,
        ..MempoolConfig::default()
    }
}

/// A producer over a demo rollup of three accounts with `count` transfers queued.
fn queued(count: usize) -> (DemoRollup, BlockProducer) {
    let mut demo = DemoRollup::new(3, 16, 1_000).unwrap();
    let mut producer = BlockProducer::new(demo.state.clone(), config(), 2).unwrap();
    for tx in demo.transfers(count).unwrap() {
        producer.submit(tx).unwrap();
    }
    (demo, producer)
}

#[test]
fn blocks_built_from_the_mempool_replay_to_the_same_state() {
    let (demo, mut producer) = queued(10);
    let genesis = demo.state.clone();
    let mut published: Vec<(BlockHeader, Vec<Transaction>)> = Vec::new();
    let mut time = 2_000;
    while let Some(block) = {
        producer.select_batches();
        producer.build_block(time).unwrap()
    } {
        time += 1_000;
        assert_eq!(block.header.number as usize, published.len() + 1);
        let previous = published
            .last()
            .map_or(*genesis.tip(), |(header, _)| *header);
        assert_eq!(block.previous, previous);
        assert!(block.reverted.is_empty());
        // The tree proves exactly this block: its root is over the block node.
        assert_eq!(block.tree.header, block.header);
        assert_eq!(
            block.tree.jobs.iter().filter(|j| j.level == 0).count(),
            block.transactions.len()
        );
        published.push((block.header, block.transactions));
    }
    // 10 transfers in blocks of at most 4: three blocks; the notes made in one block and
    // consumed in the next were re-pointed at the chain by the mempool.
    let sizes: Vec<usize> = published.iter().map(|(_, txs)| txs.len()).collect();
    assert_eq!(sizes, [4, 4, 2]);
    assert_eq!(producer.mempool().pending(), 0);
    assert!(producer.build_block(time).unwrap().is_none());

    let replayed = BlockProducer::replay(genesis.clone(), published.clone(), 2).unwrap();
    assert_eq!(&replayed, producer.state());

    // A published header that is not what its transactions make.
    let mut tampered = published.clone();
    tampered[1].0.note_root = tampered[0].0.note_root;
    assert!(matches!(
        BlockProducer::replay(genesis.clone(), tampered, 2),
        Err(ReplayError::HeaderMismatch { number: 2 })
    ));
    // A block missing a transaction its successor depends on.
    let mut missing = published;
    missing[0].1.pop();
    assert!(matches!(
        BlockProducer::replay(genesis, missing, 2),
        Err(ReplayError::HeaderMismatch { number: 1 } | ReplayError::Refused { number: 2, .. })
    ));
}

#[test]
fn a_block_the_rules_refuse_is_dropped_and_changes_nothing() {
    let (demo, mut producer) = queued(3);
    // Time does not move forward: the producer's rules refuse the block.
    let genesis_time = demo.state.tip().timestamp;
    let before = producer.state().clone();
    producer.select_batches();
    let error = producer.build_block(genesis_time).unwrap_err();
    let BuildError::Refused { error, dropped } = error else {
        panic!("{error}")
    };
    assert!(matches!(error, BlockError::TimestampNotIncreasing { .. }));
    assert_eq!(dropped.len(), 3, "the block's transactions are dropped");
    assert_eq!(producer.state(), &before);
    assert_eq!(
        producer.mempool().pending() + producer.mempool().in_flight(),
        0
    );
}

#[test]
fn blocks_replay_from_their_transactions_as_submitted_when_a_note_was_published_before_its_spend() {
    // One transaction per block: transfer 1 consumes transfer 0's note, submitted as
    // unauthenticated while transfer 0 waited, and is built into the block after it.
    let mut demo = DemoRollup::new(3, 16, 1_000).unwrap();
    let genesis = demo.state.clone();
    let config = MempoolConfig {
        max_txs_per_batch: 1,
        max_batches_per_block: 1,
        ..MempoolConfig::default()
    };
    let mut producer = BlockProducer::new(genesis.clone(), config, 2).unwrap();
    let txs = demo.transfers(2).unwrap();
    for tx in &txs {
        producer.submit(tx.clone()).unwrap();
    }
    let mut published = Vec::new();
    for (time, tx) in [(2_000, &txs[0]), (3_000, &txs[1])] {
        producer.select_batches();
        let block = producer.build_block(time).unwrap().unwrap();
        assert_eq!(block.transactions[0].id(), tx.id());
        // The store keeps the transaction as it was submitted.
        published.push((block.header, vec![tx.clone()]));
    }
    let replayed = BlockProducer::replay(genesis, published, 1).unwrap();
    assert_eq!(&replayed, producer.state());
}
