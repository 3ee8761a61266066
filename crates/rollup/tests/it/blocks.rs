//! Blocks that must be accepted, and the witnesses they hand the circuits.

use sheaf_circuits::Digest;
use sheaf_rollup::limits::NOTE_TREE_DEPTH;
use sheaf_rollup::smt::{empty_root, verify_path, EMPTY_LEAF};
use sheaf_rollup::transition::JoinError;
use sheaf_rollup::{
    InputNoteWitness, NoteId, ProducedBlock, RollupState, StateRoots, Transaction, Transition,
    TreeUpdate,
};

use crate::support::{committed, unauthenticated, world, ALICE, BOB, CAROL, START_BALANCE};

/// The update's path proves `before` under `root_before` and gives `root_after` with `after`.
fn assert_update(update: &TreeUpdate, before: Digest, after: Digest) {
    assert_eq!(
        update.path.compute_root(update.key, before),
        update.root_before
    );
    assert_eq!(
        update.path.compute_root(update.key, after),
        update.root_after
    );
}

/// Every witness replays: each tree's roots chain from the previous state to the header, and
/// every input note is authenticated where the witness says.
fn assert_witnesses_replay(previous: &RollupState, txs: &[Transaction], block: &ProducedBlock) {
    let mut account_root = previous.account_root();
    let mut nullifier_root = previous.nullifier_root();
    let mut note_root = empty_root(NOTE_TREE_DEPTH);
    assert_eq!(block.witnesses.len(), txs.len());
    for (tx, witness) in txs.iter().zip(&block.witnesses) {
        assert_eq!(witness.tx, tx.id());
        assert_eq!(witness.account_root_before(), account_root);
        assert_update(
            &witness.account_update,
            witness.account_before.commitment(),
            witness.account_after.commitment(),
        );
        account_root = witness.account_root_after();
        for (nullifier, update) in &witness.nullifier_inserts {
            assert_eq!(update.root_before, nullifier_root);
            assert_update(update, EMPTY_LEAF, nullifier.0);
            nullifier_root = update.root_after;
        }
        assert_eq!(witness.note_root_before, note_root);
        let inputs: Vec<NoteId> = tx.body.input_notes.iter().map(|n| n.note.id()).collect();
        for (input, note) in witness.input_notes.iter().zip(inputs) {
            match input {
                InputNoteWitness::Committed(proof) => {
                    assert!(proof.verify(block.header.chain_root, note));
                    assert!(!proof.verify(block.header.chain_root, NoteId(Digest([9; 4]))));
                }
                InputNoteWitness::Unauthenticated { index, path } => {
                    assert!(verify_path::<NOTE_TREE_DEPTH>(
                        witness.note_root_before,
                        *index as u64,
                        note.0,
                        path
                    ));
                }
            }
        }
        for (note, update) in &witness.note_inserts {
            assert_eq!(update.root_before, note_root);
            assert_update(update, EMPTY_LEAF, note.0);
            note_root = update.root_after;
        }
        assert_eq!(witness.note_root_after, note_root);
    }
    assert_eq!(account_root, block.header.account_root);
    assert_eq!(nullifier_root, block.header.nullifier_root);
    assert_eq!(note_root, block.header.note_root);
    assert_transitions_join_into_the_header(previous, txs, block);
}

/// The transactions' transitions join, in order, from the previous block's state to exactly the
/// produced header (the block kernel's rule), and refuse to join out of order.
fn assert_transitions_join_into_the_header(
    previous: &RollupState,
    txs: &[Transaction],
    block: &ProducedBlock,
) {
    let transitions: Vec<Transition> = txs
        .iter()
        .zip(&block.witnesses)
        .map(|(tx, witness)| Transition::of_tx(witness, tx.body.expiration))
        .collect();
    let Some((first, rest)) = transitions.split_first() else {
        return;
    };
    assert_eq!(first.before, StateRoots::block_start(previous.tip()));
    let whole = rest
        .iter()
        .try_fold(*first, |acc, next| acc.join(next))
        .unwrap();
    assert_eq!(whole.tx_count as usize, txs.len());
    assert_eq!(
        whole.expiration,
        txs.iter().map(|tx| tx.body.expiration).min().unwrap()
    );
    assert_eq!(
        whole.header(previous.tip(), block.header.timestamp),
        block.header
    );
    if let [a, b, ..] = transitions.as_slice() {
        assert_eq!(b.join(a), Err(JoinError::StateDoesNotChain));
    }
}

#[test]
fn note_from_block_1_is_consumed_in_block_2_through_the_chain_commitment() {
    let mut world = world();
    let genesis = *world.state.tip();
    let note = world.note(BOB, 300);
    let send = world.tx(ALICE, &[], &[note]);
    let before = world.state.clone();
    let block1 = world.block(std::slice::from_ref(&send)).unwrap();
    assert_witnesses_replay(&before, &[send], &block1);
    assert_eq!(block1.header.number, 1);
    assert_eq!(block1.header.prev_block_commitment, genesis.commitment());
    assert_eq!(world.balance(ALICE), START_BALANCE - 300);
    assert_eq!(world.balance(BOB), START_BALANCE);

    let receive = world.tx(BOB, &[committed(&block1, note)], &[]);
    let before = world.state.clone();
    let block2 = world.block(std::slice::from_ref(&receive)).unwrap();
    assert_witnesses_replay(&before, &[receive], &block2);
    assert_eq!(
        block2.header.prev_block_commitment,
        block1.header.commitment()
    );
    assert_eq!(block2.header.chain_root, before.chain_root());
    assert!(matches!(
        block2.witnesses[0].input_notes[0],
        InputNoteWitness::Committed(_)
    ));
    assert_eq!(world.balance(BOB), START_BALANCE + 300);
    assert_eq!(world.state.account(BOB).unwrap().nonce, 1);
    assert!(world.state.is_spent(note.nullifier()));
    assert_eq!(world.state.tip(), &block2.header);
}

#[test]
fn note_created_and_consumed_in_the_same_block() {
    let mut world = world();
    let note = world.note(BOB, 250);
    let forward = world.note(CAROL, 50);
    let send = world.tx(ALICE, &[], &[note]);
    let spend = world.tx(BOB, &[unauthenticated(note)], &[forward]);
    let txs = [send, spend];
    let before = world.state.clone();
    let block = world.block(&txs).unwrap();
    assert_witnesses_replay(&before, &txs, &block);
    assert!(matches!(
        block.witnesses[1].input_notes[0],
        InputNoteWitness::Unauthenticated { index: 0, .. }
    ));
    assert_eq!(world.balance(ALICE), START_BALANCE - 250);
    assert_eq!(world.balance(BOB), START_BALANCE + 200);
    assert!(world.state.is_spent(note.nullifier()));
    assert!(!world.state.is_spent(forward.nullifier()));
}

#[test]
fn one_account_chains_several_transactions_in_a_batch() {
    let mut world = world();
    let first_note = world.note(BOB, 1);
    let second_note = world.note(CAROL, 2);
    let first = world.tx(ALICE, &[], &[first_note]);
    let mut second = world.body(ALICE, &[], &[second_note]);
    second.account = first.body.final_account();
    second.final_balance = sheaf_types::Amount(second.account.balance.0 - 2);
    let second = world.sign(second);
    let txs = [first, second];
    let before = world.state.clone();
    let block = world.block(&txs).unwrap();
    assert_witnesses_replay(&before, &txs, &block);
    assert_eq!(world.state.account(ALICE).unwrap().nonce, 2);
    assert_eq!(world.balance(ALICE), START_BALANCE - 3);
}

#[test]
fn transactions_are_cut_into_batches_with_the_minimum_expiration() {
    let mut world = world();
    let mut txs = Vec::new();
    let mut accounts = [ALICE, BOB, CAROL].map(|id| *world.state.account(id).unwrap());
    for i in 0..10 {
        let from = i % 3;
        let note = world.note(ALICE, 1);
        let mut body = world.body(accounts[from].id, &[], &[note]);
        body.account = accounts[from];
        body.final_balance = sheaf_types::Amount(accounts[from].balance.0 - 1);
        body.expiration = 20 + i as u32;
        let tx = world.sign(body);
        accounts[from] = tx.body.final_account();
        txs.push(tx);
    }
    let before = world.state.clone();
    let block = world.block(&txs).unwrap();
    assert_witnesses_replay(&before, &txs, &block);
    assert_eq!(block.batches.len(), 2);
    assert_eq!(block.batches[0].transactions.len(), 8);
    assert_eq!(block.batches[1].transactions.len(), 2);
    assert_eq!(block.batches[0].expiration, 20);
    assert_eq!(block.batches[1].expiration, 28);
    assert_eq!(block.batches[0].accounts, vec![ALICE, BOB, CAROL]);
    assert_eq!(block.batches[0].output_notes.len(), 8);
}

#[test]
fn empty_block_extends_the_chain() {
    let mut world = world();
    let genesis = *world.state.tip();
    let block = world.block(&[]).unwrap();
    assert_eq!(block.header.number, 1);
    assert_eq!(block.header.account_root, genesis.account_root);
    assert_eq!(block.header.note_root, empty_root(NOTE_TREE_DEPTH));
    let (_, proof) = world.state.note_inclusion(0, 0).unwrap();
    assert!(proof.verify(world.state.chain_root(), NoteId(EMPTY_LEAF)));
}

#[test]
fn demo_transfers_make_a_valid_block_with_notes_consumed_in_it() {
    let mut demo = sheaf_rollup::demo::DemoRollup::new(3, 8, 1_000).unwrap();
    let before = demo.state.clone();
    let txs = demo.transfers(9).unwrap();
    let block = demo.state.apply_block(&txs, 2_000, 4).unwrap();
    assert_eq!(block.witnesses.len(), 9);
    let same_block = block
        .witnesses
        .iter()
        .flat_map(|w| &w.input_notes)
        .filter(|n| matches!(n, InputNoteWitness::Unauthenticated { .. }))
        .count();
    assert_eq!(
        same_block, 4,
        "every odd transfer consumes the note before it"
    );
    assert_witnesses_replay(&before, &txs, &block);
}
