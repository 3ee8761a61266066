//! One test per rejection path: the exact error, and the state exactly as before.

use plonky2::field::types::Field64;
use sheaf_circuits::{Digest, F};
use sheaf_rollup::limits::MAX_AMOUNT;
use sheaf_rollup::{BatchError, BlockError, InputNote, NoteOrigin, Transaction, TxError};
use sheaf_types::Amount;

use crate::support::{committed, unauthenticated, world, World, ALICE, BOB, CAROL};

/// The error of the one transaction at `index`, or a panic naming what was returned instead.
fn tx_error(error: BlockError, index: usize) -> TxError {
    match error {
        BlockError::Transaction { index: at, source } if at == index => source,
        other => panic!("expected a transaction error at {index}, got {other:?}"),
    }
}

/// A world where block 1 sent Bob a note of 100 from Alice; returns it as Bob's input.
fn bob_holds_a_note(world: &mut World) -> InputNote {
    let note = world.note(BOB, 100);
    let tx = world.tx(ALICE, &[], &[note]);
    let block = world.block(&[tx]).unwrap();
    committed(&block, note)
}

#[test]
fn tampered_signature_is_refused() {
    let mut world = world();
    let note = world.note(BOB, 10);
    let mut tx = world.tx(ALICE, &[], &[note]);
    tx.signature.chains[5].0[0] ^= 1;
    let error = world.refused_block(&[tx], 8);
    assert_eq!(tx_error(error, 0), TxError::BadSignature);
}

#[test]
fn signature_of_another_transaction_is_refused() {
    let mut world = world();
    let note = world.note(BOB, 10);
    let signed = world.tx(ALICE, &[], &[note]);
    let other = world.note(CAROL, 10);
    let mut forged = signed.clone();
    forged.body = world.body(ALICE, &[], &[other]);
    let error = world.refused_block(&[forged], 8);
    assert_eq!(tx_error(error, 0), TxError::BadSignature);
}

#[test]
fn signature_by_another_account_is_refused() {
    let mut world = world();
    let note = world.note(BOB, 10);
    let body = world.body(ALICE, &[], &[note]);
    let mut carols_key = crate::support::signing_key(CAROL);
    let tx = body.sign(&mut carols_key).unwrap();
    let error = world.refused_block(&[tx], 8);
    assert_eq!(tx_error(error, 0), TxError::BadSignature);
}

#[test]
fn nullifier_spent_in_an_earlier_block_is_refused() {
    let mut world = world();
    let input = bob_holds_a_note(&mut world);
    let spend = world.tx(BOB, &[input], &[]);
    world.block(&[spend]).unwrap();
    let again = world.tx(BOB, &[input], &[]);
    let error = world.refused_block(&[again], 8);
    assert_eq!(
        tx_error(error, 0),
        TxError::NullifierAlreadySpent(input.note.nullifier())
    );
}

/// A second spend of `input` by bob, starting from the state his first spend of it leaves, so
/// only the nullifier repeats.
fn spend_again_after(world: &mut World, input: InputNote) -> Transaction {
    let mut after_first = world.body(BOB, &[input], &[]);
    after_first.account = after_first
        .account
        .next(Amount(after_first.account.balance.0 + 100));
    after_first.final_balance = Amount(after_first.account.balance.0 + 100);
    world.sign(after_first)
}

#[test]
fn nullifier_spent_twice_in_one_batch_is_refused() {
    let mut world = world();
    let input = bob_holds_a_note(&mut world);
    let first = world.tx(BOB, &[input], &[]);
    let second = spend_again_after(&mut world, input);
    let error = world.refused_block(&[first, second], 8);
    assert_eq!(
        error,
        BlockError::Batch {
            batch: 0,
            source: BatchError::DuplicateNullifier(input.note.nullifier()),
        }
    );
}

#[test]
fn nullifier_spent_in_an_earlier_batch_of_the_same_block_is_refused() {
    let mut world = world();
    let input = bob_holds_a_note(&mut world);
    let first = world.tx(BOB, &[input], &[]);
    let second = spend_again_after(&mut world, input);
    // Batches of one: the nullifier tree itself catches the second spend.
    let error = world.refused_block(&[first, second], 1);
    assert_eq!(
        tx_error(error, 1),
        TxError::NullifierAlreadySpent(input.note.nullifier())
    );
}

#[test]
fn note_consumed_twice_in_one_transaction_is_refused() {
    let mut world = world();
    let input = bob_holds_a_note(&mut world);
    let tx = world.tx(BOB, &[input, input], &[]);
    let error = world.refused_block(&[tx], 8);
    assert_eq!(
        tx_error(error, 0),
        TxError::DuplicateInputNote(input.note.nullifier())
    );
}

#[test]
fn committed_note_that_does_not_exist_is_refused() {
    let mut world = world();
    let mut input = bob_holds_a_note(&mut world);
    input.origin = NoteOrigin::Committed { block: 1, index: 1 };
    let tx = world.tx(BOB, &[input], &[]);
    let error = world.refused_block(&[tx], 8);
    assert_eq!(
        tx_error(error, 0),
        TxError::NoteNotFound {
            note: input.note.id(),
            block: 1,
            index: 1
        }
    );
}

#[test]
fn note_claimed_from_a_future_block_is_refused() {
    let mut world = world();
    let note = world.note(BOB, 100);
    let input = InputNote {
        note,
        origin: NoteOrigin::Committed { block: 5, index: 0 },
    };
    let tx = world.tx(BOB, &[input], &[]);
    let error = world.refused_block(&[tx], 8);
    assert!(matches!(
        tx_error(error, 0),
        TxError::NoteNotFound { block: 5, .. }
    ));
}

#[test]
fn unauthenticated_note_not_created_earlier_in_the_block_is_refused() {
    let mut world = world();
    let note = world.note(BOB, 100);
    let spend = world.tx(BOB, &[unauthenticated(note)], &[]);
    // Created after the spend, in the same block: too late.
    let create = world.tx(ALICE, &[], &[note]);
    let error = world.refused_block(&[spend, create], 8);
    assert_eq!(
        tx_error(error, 0),
        TxError::UnauthenticatedNoteNotFound(note.id())
    );
}

#[test]
fn note_of_another_account_is_refused() {
    let mut world = world();
    let input = bob_holds_a_note(&mut world);
    let tx = world.tx(CAROL, &[input], &[]);
    let error = world.refused_block(&[tx], 8);
    assert_eq!(
        tx_error(error, 0),
        TxError::NoteNotOwned {
            note: input.note.id(),
            recipient: BOB
        }
    );
}

#[test]
fn value_from_nothing_is_refused() {
    let mut world = world();
    let note = world.note(BOB, 10);
    let mut body = world.body(ALICE, &[], &[note]);
    body.final_balance = Amount(body.account.balance.0);
    let tx = world.sign(body);
    let error = world.refused_block(&[tx], 8);
    assert_eq!(
        tx_error(error, 0),
        TxError::ValueNotConserved {
            inputs: 1_000,
            outputs: 1_010
        }
    );
}

#[test]
fn amount_that_wraps_the_field_is_refused() {
    let mut world = world();
    // `p − 50` is `−50` in the field: without a range check it would mint 50.
    let negative = world.note(CAROL, (F::ORDER - 50) as u128);
    let mut body = world.body(ALICE, &[], &[]);
    body.output_notes = vec![negative];
    body.final_balance = Amount(body.account.balance.0 + 50);
    let tx = world.sign(body);
    let error = world.refused_block(&[tx], 8);
    assert_eq!(
        tx_error(error, 0),
        TxError::AmountOutOfRange(Amount((F::ORDER - 50) as u128))
    );
}

#[test]
fn amount_just_above_the_bound_is_refused() {
    let mut world = world();
    let huge = world.note(CAROL, MAX_AMOUNT + 1);
    let mut body = world.body(ALICE, &[], &[]);
    body.output_notes = vec![huge];
    let tx = world.sign(body);
    let error = world.refused_block(&[tx], 8);
    assert_eq!(
        tx_error(error, 0),
        TxError::AmountOutOfRange(Amount(MAX_AMOUNT + 1))
    );
}

#[test]
fn expired_transaction_is_refused() {
    let mut world = world();
    let note = world.note(BOB, 10);
    let mut body = world.body(ALICE, &[], &[note]);
    body.expiration = 0;
    let tx = world.sign(body);
    let error = world.refused_block(&[tx], 8);
    assert_eq!(
        tx_error(error, 0),
        TxError::Expired {
            expiration: 0,
            block: 1
        }
    );
}

#[test]
fn replayed_transaction_has_a_stale_account_commitment() {
    let mut world = world();
    let note = world.note(BOB, 10);
    let tx = world.tx(ALICE, &[], &[note]);
    let claimed = tx.body.account.commitment();
    world.block(std::slice::from_ref(&tx)).unwrap();
    let current = world.state.account(ALICE).unwrap().commitment();
    let error = world.refused_block(&[tx], 8);
    assert_eq!(
        tx_error(error, 0),
        TxError::StaleAccountCommitment {
            account: ALICE,
            claimed,
            current
        }
    );
}

#[test]
fn transaction_claiming_another_balance_has_a_stale_account_commitment() {
    let mut world = world();
    let mut body = world.body(ALICE, &[], &[]);
    body.account.balance = Amount(5_000);
    body.final_balance = Amount(5_000);
    let claimed = body.account.commitment();
    let tx = world.sign(body);
    let current = world.state.account(ALICE).unwrap().commitment();
    let error = world.refused_block(&[tx], 8);
    assert_eq!(
        tx_error(error, 0),
        TxError::StaleAccountCommitment {
            account: ALICE,
            claimed,
            current
        }
    );
}

#[test]
fn transactions_out_of_order_do_not_chain() {
    let mut world = world();
    let first = world.tx(ALICE, &[], &[]);
    let mut second_body = world.body(ALICE, &[], &[]);
    second_body.account = second_body.account.next(second_body.account.balance);
    let second = world.sign(second_body);
    let error = world.refused_block(&[second, first], 8);
    assert!(matches!(
        tx_error(error, 0),
        TxError::StaleAccountCommitment { account: ALICE, .. }
    ));
}

#[test]
fn duplicate_transaction_in_a_batch_is_refused() {
    let mut world = world();
    let note = world.note(BOB, 10);
    let tx = world.tx(ALICE, &[], &[note]);
    let error = world.refused_block(&[tx.clone(), tx.clone()], 8);
    assert_eq!(
        error,
        BlockError::Batch {
            batch: 0,
            source: BatchError::DuplicateTransaction(tx.id()),
        }
    );
}

#[test]
fn duplicate_transaction_across_batches_is_refused() {
    let mut world = world();
    let note = world.note(BOB, 10);
    let tx = world.tx(ALICE, &[], &[note]);
    let error = world.refused_block(&[tx.clone(), tx.clone()], 1);
    assert_eq!(error, BlockError::DuplicateTransaction(tx.id()));
}

#[test]
fn unknown_account_is_refused() {
    let mut world = world();
    let mut body = world.body(ALICE, &[], &[]);
    body.account.id = sheaf_rollup::AccountId(99);
    let tx = body.sign(world.keys.get_mut(&ALICE).unwrap()).unwrap();
    let error = world.refused_block(&[tx], 8);
    assert_eq!(
        tx_error(error, 0),
        TxError::AccountNotFound(sheaf_rollup::AccountId(99))
    );
}

#[test]
fn block_that_does_not_advance_time_is_refused() {
    let mut world = world();
    let before = world.state.clone();
    let previous = world.state.tip().timestamp;
    let error = world.state.apply_block(&[], previous, 8).unwrap_err();
    assert_eq!(
        error,
        BlockError::TimestampNotIncreasing {
            previous,
            proposed: previous
        }
    );
    assert_eq!(world.state, before);
}

#[test]
fn batch_size_above_the_maximum_is_refused() {
    let mut world = world();
    let error = world.refused_block(&[], 1_000);
    assert_eq!(error, BlockError::BatchSize(1_000));
}

#[test]
fn a_refused_transaction_late_in_the_block_undoes_the_earlier_ones() {
    let mut world = world();
    let note = world.note(BOB, 10);
    let good = world.tx(ALICE, &[], &[note]);
    let mut bad = world.body(CAROL, &[], &[]);
    bad.final_balance = Amount(bad.account.balance.0 + 1);
    let bad = world.sign(bad);
    let error = world.refused_block(&[good, bad], 8);
    assert!(matches!(
        tx_error(error, 1),
        TxError::ValueNotConserved { .. }
    ));
}

#[test]
fn notes_differing_only_in_recipient_have_distinct_nullifiers() {
    let a = sheaf_rollup::Note {
        recipient: BOB,
        amount: Amount(1),
        serial: Digest::ZERO,
    };
    let b = sheaf_rollup::Note {
        recipient: CAROL,
        ..a
    };
    assert_ne!(a.nullifier(), b.nullifier());
}

#[test]
fn note_index_beyond_the_note_tree_is_refused() {
    let mut world = world();
    let mut input = bob_holds_a_note(&mut world);
    input.origin = NoteOrigin::Committed {
        block: 1,
        index: u32::MAX,
    };
    let tx = world.tx(BOB, &[input], &[]);
    let error = world.refused_block(&[tx], 8);
    assert!(matches!(
        tx_error(error, 0),
        TxError::NoteNotFound {
            index: u32::MAX,
            ..
        }
    ));
}

#[test]
fn nonce_congruent_to_the_accounts_nonce_is_refused() {
    let mut world = world();
    let honest = world.tx(ALICE, &[], &[]);
    let mut forged = honest.clone();
    forged.body.account.nonce = F::ORDER;
    assert_eq!(forged.id(), honest.id(), "p + 0 hashes like nonce 0");
    let error = world.refused_block(&[forged], 8);
    assert_eq!(tx_error(error, 0), TxError::BadSignature);
}

#[test]
fn largest_nonce_is_refused_without_panicking() {
    let mut world = world();
    let mut tx = world.tx(ALICE, &[], &[]);
    tx.body.account.nonce = u64::MAX;
    let error = world.refused_block(&[tx], 8);
    assert_eq!(tx_error(error, 0), TxError::BadSignature);
}
