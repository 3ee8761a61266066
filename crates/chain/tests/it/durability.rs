//! A block is all or nothing: a call that panics (here, a verifier's bug) fails alone with its
//! effects rolled back, and a block whose state file cannot be written is not seen at all (no
//! receipt, no head, no balance) and is produced again once the disk is back.

use std::time::Instant;

use sheaf_chain::node::{Chain, ChainConfig, ChainError, STATE_FILE};
use sheaf_chain::settlement::RootVerifier;
use sheaf_chain::tx::Call;
use sheaf_chain::{Amount, SequenceId};
use sheaf_circuits::Header;

use crate::node::{
    addr, alice, bob, commit_zero, config, reveal_zero, root_proof, sign,
    submit_sequence_zero_and_stake, transfer, StubVerifier, BALANCE, MIN_STAKE, T1,
};

/// The stub verifier, except that it panics on a proof ending in `panic`: a bug in the
/// verifier, as plonky2's reader has asserts.
#[derive(Debug)]
struct PanickingVerifier;

impl RootVerifier for PanickingVerifier {
    fn verify(&self, proof: &[u8]) -> Result<Header, String> {
        if proof.ends_with(b"panic") {
            panic!("verifier bug");
        }
        StubVerifier.verify(proof)
    }
}

fn to_alice(amount: u128) -> Call {
    Call::Transfer {
        to: addr(&alice()),
        amount: Amount(amount),
    }
}

#[test]
fn a_call_that_panics_fails_alone_and_leaves_no_state() {
    let chain = Chain::open(config(None), Box::new(PanickingVerifier)).unwrap();
    let mut poison = root_proof(0);
    poison.extend_from_slice(b"panic");
    submit_sequence_zero_and_stake(&chain);
    chain
        .submit(sign(&alice(), 1, commit_zero(&poison, &alice())))
        .unwrap();
    let f = chain.produce_block().unwrap().number;
    while chain.height() < f + T1 - 1 {
        chain.produce_block().unwrap();
    }
    let before = chain.settlement_state();
    // A transfer before and after the panicking reveal, in the same block.
    chain.submit(sign(&bob(), 0, to_alice(1))).unwrap();
    chain
        .submit(sign(&alice(), 2, reveal_zero(poison)))
        .unwrap();
    chain.submit(sign(&bob(), 1, to_alice(2))).unwrap();
    let block = chain.produce_block().unwrap();
    assert_eq!(block.number, f + T1);
    let errors: Vec<Option<&str>> = block.receipts.iter().map(|r| r.error.as_deref()).collect();
    assert_eq!(
        errors,
        vec![None, Some("the call failed internally: verifier bug"), None]
    );
    // The reveal used its nonce and changed nothing else: not finalized, no penalty.
    assert_eq!(chain.settlement_state(), before);
    let alice_account = chain.account(&addr(&alice()));
    assert_eq!(
        (
            alice_account.nonce,
            alice_account.balance,
            alice_account.stake,
            alice_account.pending_reveals
        ),
        (3, Amount(BALANCE - MIN_STAKE + 3), Amount(MIN_STAKE), 1)
    );
    assert_eq!(chain.account(&addr(&bob())).balance, Amount(BALANCE - 3));
    // The chain carries on.
    chain
        .submit(sign(&alice(), 3, Call::WithdrawRewards))
        .unwrap();
    assert!(chain.produce_block().unwrap().receipts[0].is_ok());
    assert!(chain.finalized(SequenceId(0)).is_none());
}

/// A crash between applying a block and writing it must not lose a block whose receipt was
/// seen: nothing of the block is visible until its state is on disk. Here the write fails (the
/// temp file's path is taken by a directory); afterwards the block is produced again.
#[test]
fn a_block_is_not_seen_until_its_state_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let chain = Chain::open(config(Some(dir.path())), Box::new(StubVerifier)).unwrap();
    let hash = chain.submit(sign(&alice(), 0, transfer(7))).unwrap();
    let blocker = dir.path().join(STATE_FILE).with_extension("json.tmp");
    std::fs::create_dir(&blocker).unwrap();
    let failed = chain.produce_block();
    assert!(
        matches!(failed, Err(ChainError::StateIo { .. })),
        "{failed:?}"
    );
    assert_eq!(chain.receipt(&hash), None);
    assert_eq!((chain.height(), chain.head().pending), (0, 1));
    assert_eq!(chain.account(&addr(&alice())).balance, Amount(BALANCE));
    assert_eq!(chain.account(&addr(&alice())).next_nonce, 1);

    std::fs::remove_dir(&blocker).unwrap();
    let block = chain.produce_block().unwrap();
    assert_eq!((block.number, block.receipts.len()), (1, 1));
    assert!(chain.receipt(&hash).unwrap().is_ok());
    drop(chain);
    let reopened = Chain::open(config(Some(dir.path())), Box::new(StubVerifier)).unwrap();
    assert_eq!(reopened.height(), 1);
    assert!(reopened.receipt(&hash).is_some());
    assert_eq!(
        reopened.account(&addr(&alice())).balance,
        Amount(BALANCE - 7)
    );
}

/// What a block costs with its state written (and fsynced) under the lock, against the same
/// blocks in memory: `cargo test -p sheaf-chain --test it block_write_cost -- --ignored
/// --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn block_write_cost() {
    const BLOCKS: u64 = 200;
    let measure = |config: ChainConfig| {
        let chain = Chain::open(config, Box::new(StubVerifier)).unwrap();
        let started = Instant::now();
        for n in 0..BLOCKS {
            chain.submit(sign(&alice(), n, transfer(1))).unwrap();
            chain.produce_block().unwrap();
        }
        started.elapsed() / BLOCKS as u32
    };
    let dir = tempfile::tempdir().unwrap();
    let in_memory = measure(config(None));
    let on_disk = measure(config(Some(dir.path())));
    let state = std::fs::metadata(dir.path().join(STATE_FILE))
        .unwrap()
        .len();
    println!(
        "per block (1 transfer): in memory {in_memory:?}, written and fsynced {on_disk:?} \
         (state file {state} bytes, {BLOCKS} receipts)"
    );
}
