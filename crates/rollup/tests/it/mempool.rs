//! The block producer's mempool: one test per refusal (the exact error, and the mempool exactly
//! as before), and the flows from admission through `produce_block` to commit or rollback.

use sheaf_rollup::demo::DemoRollup;
use sheaf_rollup::limits::{MAX_BATCHES_PER_BLOCK, MAX_TXS_PER_BATCH};
use sheaf_rollup::mempool::{DEFAULT_EXPIRATION_SLACK, DEFAULT_MEMPOOL_CAPACITY};
use sheaf_rollup::{
    produce_block, Account, AccountId, CommitError, InputNote, InputNoteWitness, Mempool,
    MempoolConfig, MempoolConfigError, MempoolError, Note, NoteOrigin, ProducedBlock,
    ProposedBlock, RollupState, Transaction, TransactionBody, TxError, TxId,
};
use sheaf_types::Amount;

use crate::support::{
    committed, signing_key, unauthenticated, world, World, ALICE, BOB, CAROL, START_BALANCE,
};

/// A mempool over the world's state.
fn mempool(world: &World, config: MempoolConfig) -> Mempool {
    Mempool::new(config, &world.state).unwrap()
}

/// Blocks of `per_block` transactions, in one batch.
fn blocks_of(per_block: usize) -> MempoolConfig {
    MempoolConfig {
        max_txs_per_batch: per_block,
        max_batches_per_block: 1,
        ..MempoolConfig::default()
    }
}

/// Submit a transaction that must be refused: assert the mempool did not change and return why.
fn refused(pool: &mut Mempool, tx: Transaction, state: &RollupState) -> MempoolError {
    let before = pool.clone();
    let counts = (pool.pending(), pool.in_flight(), pool.pending_ids());
    let error = pool
        .add_transaction(tx, state)
        .expect_err("the transaction must be refused");
    assert_eq!(*pool, before, "a refusal changed the mempool");
    assert_eq!(
        (pool.pending(), pool.in_flight(), pool.pending_ids()),
        counts
    );
    error
}

/// A signed transaction of `account`'s id starting from `account` (its projected state):
/// consume `inputs`, create `outputs`, keep the rest.
fn tx_from(
    world: &mut World,
    account: Account,
    inputs: &[InputNote],
    outputs: &[Note],
) -> Transaction {
    let received: u128 = inputs.iter().map(|n| n.note.amount.0).sum();
    let sent: u128 = outputs.iter().map(|n| n.amount.0).sum();
    let body = TransactionBody {
        account,
        input_notes: inputs.to_vec(),
        output_notes: outputs.to_vec(),
        final_balance: Amount(account.balance.0 + received - sent),
        expiration: world.state.tip().number + 10,
    };
    world.sign(body)
}

/// The account's committed state.
fn account(world: &World, id: AccountId) -> Account {
    *world.state.account(id).unwrap()
}

/// A transaction signed with a fresh copy of the account's key, so that a test may sign a
/// second message with a one-time key the world's signer already used.
fn signed_afresh(body: TransactionBody) -> Transaction {
    let mut key = signing_key(body.account.id);
    body.sign(&mut key).unwrap()
}

/// Produce the proposed block on `state` (one second after its tip).
fn produce(state: &RollupState, proposed: &ProposedBlock) -> ProducedBlock {
    produce_block(
        state,
        &proposed.transactions,
        state.tip().timestamp + 1_000,
        proposed.batch_size,
    )
    .expect("a block selected from the mempool is valid")
}

/// Select, produce and commit the next block; the block and the reverted ids.
fn next_block(pool: &mut Mempool, state: &mut RollupState) -> (ProducedBlock, Vec<TxId>) {
    pool.select_batches();
    let proposed = pool.select_block().expect("no block in flight");
    assert_eq!(pool.in_flight(), proposed.transactions.len());
    let produced = produce(state, &proposed);
    *state = produced.state.clone();
    let reverted = pool.commit_block(&produced, state).unwrap();
    assert_eq!(pool.in_flight(), 0);
    (produced, reverted)
}

fn ids(txs: &[Transaction]) -> Vec<TxId> {
    txs.iter().map(Transaction::id).collect()
}

/// A world where block 1 sent Bob a note of 100 from Alice; returns it as Bob's input.
fn bob_holds_a_note(world: &mut World) -> InputNote {
    let note = world.note(BOB, 100);
    let tx = world.tx(ALICE, &[], &[note]);
    let block = world.block(&[tx]).unwrap();
    committed(&block, note)
}

// Configuration.

#[test]
fn defaults_are_miden_nodes() {
    let config = MempoolConfig::default();
    assert_eq!(config.capacity, 1_280);
    assert_eq!(DEFAULT_MEMPOOL_CAPACITY, 8 * 8 * (60 / 3));
    assert_eq!(config.expiration_slack, DEFAULT_EXPIRATION_SLACK);
    assert_eq!(config.expiration_slack, 2);
    assert_eq!(config.max_txs_per_batch, 8);
    assert_eq!(config.max_batches_per_block, 8);
    assert_eq!(config.max_txs_per_block(), 64);
    assert_eq!(MempoolConfig::new(1_280, 2, 8, 8), Ok(config));
    assert_eq!(
        MempoolConfig::new(1, 0, MAX_TXS_PER_BATCH, MAX_BATCHES_PER_BLOCK)
            .unwrap()
            .max_txs_per_block(),
        64 * 64
    );
}

#[test]
fn out_of_range_configuration_is_refused() {
    assert_eq!(
        MempoolConfig::new(0, 2, 8, 8),
        Err(MempoolConfigError::ZeroCapacity)
    );
    assert_eq!(
        MempoolConfig::new(10, 2, 0, 8),
        Err(MempoolConfigError::TxsPerBatch(0))
    );
    assert_eq!(
        MempoolConfig::new(10, 2, MAX_TXS_PER_BATCH + 1, 8),
        Err(MempoolConfigError::TxsPerBatch(MAX_TXS_PER_BATCH + 1))
    );
    assert_eq!(
        MempoolConfig::new(10, 2, 8, 0),
        Err(MempoolConfigError::BatchesPerBlock(0))
    );
    assert_eq!(
        MempoolConfig::new(10, 2, 8, MAX_BATCHES_PER_BLOCK + 1),
        Err(MempoolConfigError::BatchesPerBlock(
            MAX_BATCHES_PER_BLOCK + 1
        ))
    );
    // A configuration built field by field is checked by the mempool too.
    let world = world();
    let config = MempoolConfig {
        max_txs_per_batch: usize::MAX,
        ..MempoolConfig::default()
    };
    assert_eq!(
        Mempool::new(config, &world.state),
        Err(MempoolConfigError::TxsPerBatch(usize::MAX))
    );
}

// Refusals: the exact error, the mempool unchanged.

#[test]
fn full_mempool_refuses_until_a_block_commits() {
    let mut world = world();
    let config = MempoolConfig {
        capacity: 2,
        ..MempoolConfig::default()
    };
    let mut pool = mempool(&world, config);
    let (to_bob, to_carol) = (world.note(BOB, 1), world.note(CAROL, 1));
    let first = world.tx(ALICE, &[], &[to_bob]);
    let second = world.tx(BOB, &[], &[to_carol]);
    pool.add_transaction(first, &world.state).unwrap();
    pool.add_transaction(second, &world.state).unwrap();
    let carol = world.tx(CAROL, &[], &[]);
    assert_eq!(
        refused(&mut pool, carol.clone(), &world.state),
        MempoolError::CapacityExceeded { capacity: 2 }
    );
    // In-flight transactions still hold capacity.
    pool.select_batches();
    let proposed = pool.select_block().unwrap();
    assert_eq!((pool.pending(), pool.in_flight()), (0, 2));
    assert_eq!(
        refused(&mut pool, carol.clone(), &world.state),
        MempoolError::CapacityExceeded { capacity: 2 }
    );
    let produced = produce(&world.state, &proposed);
    world.state = produced.state.clone();
    pool.commit_block(&produced, &world.state).unwrap();
    assert_eq!(pool.len(), 0);
    pool.add_transaction(carol, &world.state).unwrap();
}

#[test]
fn transaction_breaking_its_own_rules_is_refused() {
    let mut world = world();
    let mut pool = mempool(&world, MempoolConfig::default());
    let note = world.note(BOB, 10);
    let mut tx = world.tx(ALICE, &[], &[note]);
    tx.signature.chains[3].0[0] ^= 1;
    assert_eq!(
        refused(&mut pool, tx, &world.state),
        MempoolError::InvalidTransaction(TxError::BadSignature)
    );
    let mut body = world.body(CAROL, &[], &[]);
    body.final_balance = Amount(START_BALANCE + 1);
    let minting = world.sign(body);
    assert_eq!(
        refused(&mut pool, minting, &world.state),
        MempoolError::InvalidTransaction(TxError::ValueNotConserved {
            inputs: START_BALANCE,
            outputs: START_BALANCE + 1
        })
    );
}

#[test]
fn transaction_expiring_within_the_slack_is_refused() {
    let mut world = world();
    world.block(&[]).unwrap();
    world.block(&[]).unwrap();
    let mut pool = mempool(&world, MempoolConfig::default());
    let tip = world.state.tip().number;
    let mut body = world.body(ALICE, &[], &[]);
    body.expiration = tip + 2;
    let tx = world.sign(body.clone());
    assert_eq!(
        refused(&mut pool, tx, &world.state),
        MempoolError::ExpiresTooSoon {
            expiration: tip + 2,
            limit: tip + 2
        }
    );
    body.expiration = tip + 3;
    pool.add_transaction(signed_afresh(body), &world.state)
        .unwrap();
}

#[test]
fn transaction_from_a_committed_state_behind_a_pending_one_is_stale() {
    let mut world = world();
    let mut pool = mempool(&world, MempoolConfig::default());
    let note = world.note(BOB, 10);
    let first = world.tx(ALICE, &[], &[note]);
    let projected = first.body.final_account();
    pool.add_transaction(first, &world.state).unwrap();
    assert_eq!(pool.projected_account(ALICE), Some(&projected));
    // Another transaction from the committed state (nonce 0): the pending one got there first.
    let other = world.note(CAROL, 10);
    let again = signed_afresh(world.body(ALICE, &[], &[other]));
    assert_eq!(
        refused(&mut pool, again, &world.state),
        MempoolError::StaleAccount {
            account: ALICE,
            claimed: account(&world, ALICE).commitment(),
            expected: projected.commitment(),
        }
    );
}

#[test]
fn transaction_claiming_another_committed_state_is_stale() {
    let mut world = world();
    let mut pool = mempool(&world, MempoolConfig::default());
    let mut body = world.body(ALICE, &[], &[]);
    body.account.balance = Amount(5_000);
    body.final_balance = Amount(5_000);
    let claimed = body.account.commitment();
    let tx = world.sign(body);
    assert_eq!(
        refused(&mut pool, tx, &world.state),
        MempoolError::StaleAccount {
            account: ALICE,
            claimed,
            expected: account(&world, ALICE).commitment(),
        }
    );
}

#[test]
fn account_that_does_not_exist_is_refused() {
    let mut world = world();
    let mut pool = mempool(&world, MempoolConfig::default());
    let mut body = world.body(ALICE, &[], &[]);
    body.account.id = AccountId(99);
    let tx = body.sign(world.keys.get_mut(&ALICE).unwrap()).unwrap();
    assert_eq!(
        refused(&mut pool, tx, &world.state),
        MempoolError::AccountNotFound(AccountId(99))
    );
}

#[test]
fn nullifier_spent_in_the_committed_state_is_refused() {
    let mut world = world();
    let input = bob_holds_a_note(&mut world);
    let spend = world.tx(BOB, &[input], &[]);
    world.block(&[spend]).unwrap();
    let mut pool = mempool(&world, MempoolConfig::default());
    let again = world.tx(BOB, &[input], &[]);
    assert_eq!(
        refused(&mut pool, again, &world.state),
        MempoolError::NullifierSpent(input.note.nullifier())
    );
}

#[test]
fn nullifier_spent_by_a_pending_transaction_is_refused() {
    let mut world = world();
    let input = bob_holds_a_note(&mut world);
    let mut pool = mempool(&world, MempoolConfig::default());
    let first = world.tx(BOB, &[input], &[]);
    let after_first = first.body.final_account();
    pool.add_transaction(first, &world.state).unwrap();
    let again = tx_from(&mut world, after_first, &[input], &[]);
    assert_eq!(
        refused(&mut pool, again, &world.state),
        MempoolError::NullifierInFlight(input.note.nullifier())
    );
}

#[test]
fn output_note_a_pending_transaction_creates_is_refused() {
    let mut world = world();
    let mut pool = mempool(&world, MempoolConfig::default());
    let note = world.note(BOB, 10);
    let alice = world.tx(ALICE, &[], &[note]);
    pool.add_transaction(alice, &world.state).unwrap();
    assert_eq!(pool.projected_note(note.id()), Some(&note));
    let carol = world.tx(CAROL, &[], &[note]);
    assert_eq!(
        refused(&mut pool, carol, &world.state),
        MempoolError::DuplicateOutputNote(note.id())
    );
}

#[test]
fn output_note_created_twice_by_one_transaction_is_refused() {
    let mut world = world();
    let mut pool = mempool(&world, MempoolConfig::default());
    let note = world.note(BOB, 10);
    let tx = world.tx(ALICE, &[], &[note, note]);
    assert_eq!(
        refused(&mut pool, tx, &world.state),
        MempoolError::DuplicateOutputNote(note.id())
    );
}

#[test]
fn unauthenticated_note_no_pending_transaction_creates_is_refused() {
    let mut world = world();
    let mut pool = mempool(&world, MempoolConfig::default());
    let nowhere = world.note(BOB, 100);
    let tx = world.tx(BOB, &[unauthenticated(nowhere)], &[]);
    assert_eq!(
        refused(&mut pool, tx, &world.state),
        MempoolError::UnknownUnauthenticatedNote(nowhere.id())
    );
    // A committed note must name its block and index: unauthenticated means "in the mempool".
    let input = bob_holds_a_note(&mut world);
    let mut pool = mempool(&world, MempoolConfig::default());
    let body = world.body(BOB, &[unauthenticated(input.note)], &[]);
    assert_eq!(
        refused(&mut pool, signed_afresh(body), &world.state),
        MempoolError::UnknownUnauthenticatedNote(input.note.id())
    );
}

#[test]
fn committed_note_not_where_it_claims_is_refused() {
    let mut world = world();
    let mut input = bob_holds_a_note(&mut world);
    let mut pool = mempool(&world, MempoolConfig::default());
    for (block, index) in [(1, 1), (0, 0), (7, 0), (1, u32::MAX), (u32::MAX, 0)] {
        input.origin = NoteOrigin::Committed { block, index };
        let tx = signed_afresh(world.body(BOB, &[input], &[]));
        assert_eq!(
            refused(&mut pool, tx, &world.state),
            MempoolError::NoteNotFound {
                note: input.note.id(),
                block,
                index
            }
        );
    }
}

#[test]
fn transaction_already_in_the_mempool_is_refused() {
    let mut world = world();
    let mut pool = mempool(&world, MempoolConfig::default());
    let note = world.note(BOB, 10);
    let tx = world.tx(ALICE, &[], &[note]);
    let id = pool.add_transaction(tx.clone(), &world.state).unwrap();
    assert_eq!(id, tx.id());
    assert!(pool.contains(id));
    assert_eq!(
        refused(&mut pool, tx.clone(), &world.state),
        MempoolError::DuplicateTransaction(id)
    );
    // Still a duplicate while its block is in flight.
    pool.select_batches();
    pool.select_block().unwrap();
    assert_eq!(
        refused(&mut pool, tx, &world.state),
        MempoolError::DuplicateTransaction(id)
    );
}

#[test]
fn state_at_another_tip_is_refused() {
    let mut world = world();
    let mut pool = mempool(&world, MempoolConfig::default());
    world.block(&[]).unwrap();
    let tx = world.tx(ALICE, &[], &[]);
    assert_eq!(
        refused(&mut pool, tx, &world.state),
        MempoolError::StateMismatch {
            tip: 0,
            state_tip: 1
        }
    );
}

#[test]
fn hostile_transactions_are_refused_without_panicking() {
    let mut world = world();
    let mut pool = mempool(&world, MempoolConfig::default());
    let mut tx = world.tx(ALICE, &[], &[]);
    tx.body.account.nonce = u64::MAX;
    assert_eq!(
        refused(&mut pool, tx, &world.state),
        MempoolError::InvalidTransaction(TxError::BadSignature)
    );
    let note = world.note(ALICE, 1);
    let mut many = world.body(ALICE, &[], &[]);
    many.input_notes = vec![unauthenticated(note); 1_000];
    many.expiration = u32::MAX;
    let tx = signed_afresh(many);
    assert_eq!(
        refused(&mut pool, tx, &world.state),
        MempoolError::InvalidTransaction(TxError::TooManyInputNotes(1_000))
    );
}

// Flows.

#[test]
fn one_accounts_chain_is_accepted_and_selected_in_order() {
    let mut world = world();
    let mut pool = mempool(&world, MempoolConfig::default());
    let mut alice = account(&world, ALICE);
    let mut txs = Vec::new();
    for i in 0..3 {
        let note = world.note(CAROL, 10);
        let tx = tx_from(&mut world, alice, &[], &[note]);
        alice = tx.body.final_account();
        pool.add_transaction(tx.clone(), &world.state).unwrap();
        txs.push(tx);
        if i == 0 {
            // Another account's transaction between the first two.
            let bob = world.tx(BOB, &[], &[]);
            pool.add_transaction(bob.clone(), &world.state).unwrap();
            txs.push(bob);
        }
    }
    assert_eq!(pool.pending_ids(), ids(&txs));
    assert_eq!(pool.projected_account(ALICE), Some(&alice));
    let (produced, reverted) = next_block(&mut pool, &mut world.state);
    assert!(reverted.is_empty());
    let in_block: Vec<TxId> = produced.witnesses.iter().map(|w| w.tx).collect();
    assert_eq!(in_block, ids(&txs));
    assert_eq!(account(&world, ALICE), alice);
    assert_eq!(account(&world, ALICE).nonce, 3);
    assert!(pool.is_empty());
    assert_eq!(pool.projected_account(ALICE), None);
    assert_eq!(pool.tip(), 1);
}

#[test]
fn note_created_and_consumed_while_pending_go_in_one_block() {
    let mut world = world();
    let mut pool = mempool(&world, MempoolConfig::default());
    let note = world.note(BOB, 250);
    let forward = world.note(CAROL, 50);
    let send = world.tx(ALICE, &[], &[note]);
    let spend = world.tx(BOB, &[unauthenticated(note)], &[forward]);
    pool.add_transaction(send.clone(), &world.state).unwrap();
    pool.add_transaction(spend.clone(), &world.state).unwrap();
    pool.select_batches();
    let proposed = pool.select_block().unwrap();
    assert_eq!(proposed.transactions, vec![send, spend]);
    let produced = produce(&world.state, &proposed);
    assert!(matches!(
        produced.witnesses[1].input_notes[0],
        InputNoteWitness::Unauthenticated { index: 0, .. }
    ));
    world.state = produced.state.clone();
    assert_eq!(pool.commit_block(&produced, &world.state), Ok(vec![]));
    assert!(pool.is_empty());
    assert_eq!(world.balance(BOB), START_BALANCE + 200);
    assert!(world.state.is_spent(note.nullifier()));
}

#[test]
fn blocks_take_the_queue_in_batches_and_the_next_select_gets_the_rest() {
    let mut demo = DemoRollup::new(3, 8, 1_000).unwrap();
    let txs = demo.transfers(9).unwrap();
    let mut state = demo.state.clone();
    let config = MempoolConfig {
        max_txs_per_batch: 2,
        max_batches_per_block: 2,
        ..MempoolConfig::default()
    };
    let mut pool = Mempool::new(config, &state).unwrap();
    for tx in &txs {
        pool.add_transaction(tx.clone(), &state).unwrap();
    }
    assert_eq!((pool.pending(), pool.in_flight()), (9, 0));

    pool.select_batches();
    let proposed = pool.select_block().unwrap();
    assert_eq!(proposed.transactions, txs[..4]);
    assert_eq!(proposed.batch_size, 2);
    assert_eq!((pool.pending(), pool.in_flight()), (5, 4));
    assert_eq!(pool.in_flight_ids(), ids(&txs[..4]));
    assert_eq!(pool.pending_ids(), ids(&txs[4..]));
    assert_eq!(pool.select_block(), None, "one block in flight at a time");
    let produced = produce(&state, &proposed);
    assert_eq!(produced.batches.len(), 2);
    state = produced.state.clone();
    assert_eq!(pool.commit_block(&produced, &state), Ok(vec![]));
    assert_eq!((pool.pending(), pool.in_flight()), (5, 0));

    let (produced, reverted) = next_block(&mut pool, &mut state);
    assert!(reverted.is_empty());
    assert_eq!(
        produced.witnesses.iter().map(|w| w.tx).collect::<Vec<_>>(),
        ids(&txs[4..8])
    );
    let (produced, _) = next_block(&mut pool, &mut state);
    assert_eq!(produced.witnesses.len(), 1);
    assert_eq!(produced.witnesses[0].tx, txs[8].id());
    assert!(pool.is_empty());
    // An empty mempool proposes an empty block, which still moves the tip.
    let (produced, _) = next_block(&mut pool, &mut state);
    assert!(produced.witnesses.is_empty());
    assert_eq!(pool.tip(), 4);
}

#[test]
fn a_note_whose_creator_commits_first_is_then_consumed_through_the_chain() {
    let mut world = world();
    let mut pool = mempool(&world, blocks_of(1));
    let note = world.note(BOB, 250);
    let send = world.tx(ALICE, &[], &[note]);
    let spend = world.tx(BOB, &[unauthenticated(note)], &[]);
    pool.add_transaction(send, &world.state).unwrap();
    let spend_id = pool.add_transaction(spend, &world.state).unwrap();

    // Block 1 holds only the creator; the consumer now names the note by block 1, index 0.
    next_block(&mut pool, &mut world.state);
    assert_eq!(pool.pending_ids(), vec![spend_id]);
    pool.select_batches();
    let proposed = pool.select_block().unwrap();
    assert_eq!(proposed.transactions[0].id(), spend_id);
    assert_eq!(
        proposed.transactions[0].body.input_notes[0].origin,
        NoteOrigin::Committed { block: 1, index: 0 }
    );
    let produced = produce(&world.state, &proposed);
    assert!(matches!(
        produced.witnesses[0].input_notes[0],
        InputNoteWitness::Committed(_)
    ));
    world.state = produced.state.clone();
    assert_eq!(pool.commit_block(&produced, &world.state), Ok(vec![]));
    assert_eq!(world.balance(BOB), START_BALANCE + 250);
}

#[test]
fn expired_transaction_and_its_dependants_are_reverted_at_commit() {
    let mut world = world();
    let mut pool = mempool(&world, blocks_of(1));
    // Three of Carol's transactions fill blocks 1 to 3.
    let mut carol = account(&world, CAROL);
    let mut carols = Vec::new();
    for _ in 0..3 {
        let tx = tx_from(&mut world, carol, &[], &[]);
        carol = tx.body.final_account();
        pool.add_transaction(tx.clone(), &world.state).unwrap();
        carols.push(tx);
    }
    // Alice's first expires at block 3; her second and Bob's depend on it.
    let note = world.note(BOB, 100);
    let mut body = world.body(ALICE, &[], &[note]);
    body.expiration = 3;
    let expiring = world.sign(body);
    let after = expiring.body.final_account();
    let alice_next = tx_from(&mut world, after, &[], &[]);
    let bob = world.tx(BOB, &[unauthenticated(note)], &[]);
    // Carol's fourth does not depend on any of them.
    let carol_last = tx_from(&mut world, carol, &[], &[]);
    for tx in [&expiring, &alice_next, &bob, &carol_last] {
        pool.add_transaction(tx.clone(), &world.state).unwrap();
    }

    for block in 1..=2 {
        let (produced, reverted) = next_block(&mut pool, &mut world.state);
        assert_eq!(produced.header.number, block);
        assert!(reverted.is_empty());
    }
    let (_, reverted) = next_block(&mut pool, &mut world.state);
    assert_eq!(reverted, ids(&[expiring, alice_next, bob]));
    assert_eq!(pool.pending_ids(), vec![carol_last.id()]);
    assert_eq!(pool.projected_account(ALICE), None);
    assert_eq!(pool.projected_note(note.id()), None);

    // Alice starts again from her committed state.
    let fresh = signed_afresh(world.body(ALICE, &[], &[]));
    pool.add_transaction(fresh.clone(), &world.state).unwrap();
    let (produced, _) = next_block(&mut pool, &mut world.state);
    assert_eq!(produced.witnesses[0].tx, carol_last.id());
    let (produced, _) = next_block(&mut pool, &mut world.state);
    assert_eq!(produced.witnesses[0].tx, fresh.id());
}

#[test]
fn rollback_drops_the_block_and_its_descendants() {
    let mut world = world();
    let mut pool = mempool(&world, blocks_of(1));
    assert_eq!(pool.rollback_block(), vec![], "nothing in flight");
    let note = world.note(BOB, 100);
    let send = world.tx(ALICE, &[], &[note]);
    let after = send.body.final_account();
    let spend = world.tx(BOB, &[unauthenticated(note)], &[]);
    let carol = world.tx(CAROL, &[], &[]);
    for tx in [&send, &spend, &carol] {
        pool.add_transaction(tx.clone(), &world.state).unwrap();
    }
    pool.select_batches();
    let proposed = pool.select_block().unwrap();
    assert_eq!(proposed.transactions, vec![send.clone()]);
    // Arrivals while the block is in flight chain onto it.
    let alice_next = tx_from(&mut world, after, &[], &[]);
    pool.add_transaction(alice_next.clone(), &world.state)
        .unwrap();
    assert_eq!((pool.pending(), pool.in_flight()), (3, 1));

    assert_eq!(pool.rollback_block(), ids(&[send, spend, alice_next]));
    assert_eq!((pool.pending(), pool.in_flight()), (1, 0));
    assert_eq!(pool.pending_ids(), vec![carol.id()]);
    assert_eq!(pool.projected_account(ALICE), None);
    assert_eq!(pool.projected_note(note.id()), None);

    // Not requeued; Alice may start again from her committed state.
    let fresh = signed_afresh(world.body(ALICE, &[], &[]));
    pool.add_transaction(fresh.clone(), &world.state).unwrap();
    let (produced, _) = next_block(&mut pool, &mut world.state);
    assert_eq!(produced.witnesses[0].tx, carol.id());
    let (produced, _) = next_block(&mut pool, &mut world.state);
    assert_eq!(produced.witnesses[0].tx, fresh.id());
}

#[test]
fn a_dropped_transactions_nullifiers_and_notes_are_free_again() {
    let mut world = world();
    let input = bob_holds_a_note(&mut world);
    let mut pool = mempool(&world, MempoolConfig::default());
    let forward = world.note(CAROL, 100);
    let spend = world.tx(BOB, &[input], &[forward]);
    pool.add_transaction(spend.clone(), &world.state).unwrap();
    pool.select_batches();
    pool.select_block().unwrap();
    assert_eq!(pool.rollback_block(), vec![spend.id()]);
    assert!(pool.is_empty());
    // Not requeued, but its nullifier, its output note and its id are free again: the client
    // may submit it anew.
    assert!(!pool.contains(spend.id()));
    pool.add_transaction(spend, &world.state).unwrap();
    next_block(&mut pool, &mut world.state);
    assert!(world.state.is_spent(input.note.nullifier()));
}

#[test]
fn commit_of_anything_but_the_proposed_block_is_refused() {
    let mut world = world();
    let mut pool = mempool(&world, MempoolConfig::default());
    let empty = produce(
        &world.state,
        &ProposedBlock {
            transactions: vec![],
            batch_size: 8,
        },
    );
    assert_eq!(
        pool.commit_block(&empty, &empty.state),
        Err(CommitError::NoProposedBlock)
    );
    let tx = world.tx(ALICE, &[], &[]);
    pool.add_transaction(tx, &world.state).unwrap();
    pool.select_batches();
    let proposed = pool.select_block().unwrap();
    let before = pool.clone();
    // Another block (with none of its transactions).
    assert_eq!(
        pool.commit_block(&empty, &empty.state),
        Err(CommitError::NotTheProposedBlock(1))
    );
    // The proposed block, with the state it was produced on rather than the one it leaves.
    let produced = produce(&world.state, &proposed);
    assert_eq!(
        pool.commit_block(&produced, &world.state),
        Err(CommitError::StateNotAtBlock(1))
    );
    assert_eq!(pool, before);
    assert_eq!(pool.commit_block(&produced, &produced.state), Ok(vec![]));
    // A second commit of the same block: nothing is in flight any more.
    assert_eq!(
        pool.commit_block(&produced, &produced.state),
        Err(CommitError::NoProposedBlock)
    );
}

/// Two batches of two per block, over a three-account demo with `count` transfers.
fn batched_pool(count: usize) -> (Mempool, RollupState, Vec<Transaction>) {
    let mut demo = DemoRollup::new(3, 8, 1_000).unwrap();
    let txs = demo.transfers(count).unwrap();
    let config = MempoolConfig {
        max_txs_per_batch: 2,
        max_batches_per_block: 2,
        ..MempoolConfig::default()
    };
    let pool = Mempool::new(config, &demo.state).unwrap();
    (pool, demo.state, txs)
}

#[test]
fn batches_hold_at_most_max_txs_and_stop_once_a_block_of_them_waits() {
    let (mut pool, state, txs) = batched_pool(7);
    assert_eq!(pool.select_batches(), 0, "nothing queued, no batch");
    for tx in &txs[..3] {
        pool.add_transaction(tx.clone(), &state).unwrap();
    }
    // Three queued: a full batch and a partial one, cut at the batch interval.
    assert_eq!(pool.select_batches(), 2);
    assert_eq!((pool.selected_batches(), pool.batched()), (2, 3));
    for tx in &txs[3..] {
        pool.add_transaction(tx.clone(), &state).unwrap();
    }
    // A block's worth of batches waits: later arrivals stay queued, unbatched.
    assert_eq!(pool.select_batches(), 0);
    assert_eq!((pool.pending(), pool.batched()), (7, 3));
}

#[test]
fn a_block_takes_only_the_selected_batches_and_later_arrivals_wait_for_the_next_interval() {
    let (mut pool, mut state, txs) = batched_pool(5);
    for tx in &txs[..3] {
        pool.add_transaction(tx.clone(), &state).unwrap();
    }
    pool.select_batches();
    for tx in &txs[3..] {
        pool.add_transaction(tx.clone(), &state).unwrap();
    }
    let proposed = pool.select_block().unwrap();
    assert_eq!(proposed.transactions, txs[..3], "the two selected batches");
    let produced = produce(&state, &proposed);
    state = produced.state.clone();
    assert_eq!(pool.commit_block(&produced, &state), Ok(vec![]));
    assert_eq!((pool.pending(), pool.batched()), (2, 0));
    assert_eq!(pool.selected_batches(), 0);
    // No batch selected since: the next block is empty (the producer then builds none).
    assert!(pool.select_block().unwrap().transactions.is_empty());
    pool.rollback_block();
    assert_eq!(pool.select_batches(), 1);
    let proposed = pool.select_block().unwrap();
    // The same transactions; the note the block made is now named by its place there.
    assert_eq!(ids(&proposed.transactions), ids(&txs[3..]));
}

#[test]
fn a_rolled_back_block_drops_its_batched_descendants_and_the_rest_is_batched_again() {
    let mut world = world();
    let mut pool = mempool(&world, blocks_of(1));
    let first = world.tx(ALICE, &[], &[]);
    // Starts from the state `first` leaves: its child.
    let second = tx_from(&mut world, first.body.final_account(), &[], &[]);
    let other = world.tx(BOB, &[], &[]);
    for tx in [&first, &second, &other] {
        pool.add_transaction(tx.clone(), &world.state).unwrap();
    }
    assert_eq!(
        pool.select_batches(),
        1,
        "one block's worth of batches waits at most"
    );
    pool.select_block().unwrap();
    assert_eq!(
        pool.select_batches(),
        1,
        "the next batch, while the block is in flight"
    );
    assert_eq!(pool.batched(), 1);
    assert_eq!(pool.rollback_block(), vec![first.id(), second.id()]);
    assert_eq!((pool.selected_batches(), pool.pending()), (0, 1));
    assert_eq!(pool.select_batches(), 1);
    assert_eq!(pool.select_block().unwrap().transactions, vec![other]);
}
