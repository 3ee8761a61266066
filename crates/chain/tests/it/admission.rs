//! What it takes to get a transaction in: a strict signature (no weak keys), a funded sender,
//! room in the mempool within the per-sender and total bounds (an honest sender gets in while a
//! flood fills the pool), a fee paid even by a failed call, and no state left by calls on
//! unknown accounts. One test per refusal, each asserting the error and that nothing changed.

use ed25519_dalek::SigningKey;
use sheaf_chain::node::{Allocation, Chain, ChainConfig, ChainError, Genesis};
use sheaf_chain::tx::{Call, SignedTx};
use sheaf_chain::{Address, Amount, SequenceId};

use crate::node::{addr, alice, bob, config, sign, transfer, StubVerifier, BALANCE};

fn open(config: ChainConfig) -> Chain {
    Chain::open(config, Box::new(StubVerifier)).unwrap()
}

/// Junk senders, each funded at genesis with the minimum a sender must hold.
fn junk(n: u8) -> Vec<SigningKey> {
    (0..n)
        .map(|i| SigningKey::from_bytes(&[0x40 + i; 32]))
        .collect()
}

/// The test genesis with `keys` funded with one base unit each (the default minimum).
fn genesis_with(keys: &[SigningKey]) -> Genesis {
    let mut genesis = crate::node::genesis();
    genesis.allocations.extend(keys.iter().map(|k| Allocation {
        address: addr(k),
        balance: Amount(1),
    }));
    genesis
}

/// A transfer to a key no one holds: what a flood sends.
fn junk_transfer() -> Call {
    Call::Transfer {
        to: Address([0xEE; 32]),
        amount: Amount(1),
    }
}

// ---- signatures ----

/// The identity point is a small-order key: `R = identity, s = 0` satisfies the cofactorless
/// check for every message, so anyone could "sign" as it. Strict verification refuses it.
#[test]
fn submit_rejects_a_forged_signature_of_a_weak_key() {
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let from = Address(identity);
    let call = transfer(1);
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(&identity);
    let forged = SignedTx {
        from,
        nonce: 0,
        call,
        signature,
    };
    // Funded, so that the signature is what decides.
    let mut genesis = crate::node::genesis();
    genesis.allocations.push(Allocation {
        address: from,
        balance: Amount(1_000),
    });
    let chain = open(ChainConfig {
        genesis,
        ..config(None)
    });
    assert!(matches!(
        chain.submit(forged),
        Err(ChainError::BadSignature)
    ));
    assert_eq!(chain.head().pending, 0);
}

/// What the public state refuses anyway (here, a sender with nothing) is refused before the
/// signature is checked and the transaction hashed: a fresh key's megabyte reveal costs the
/// chain its decoding, not two passes of hashing.
#[test]
fn an_unfunded_senders_transaction_is_refused_before_its_signature_is_checked() {
    let stranger = SigningKey::from_bytes(&[0x77; 32]);
    let mut tx = sign(&stranger, 0, junk_transfer());
    tx.signature = [0; 64];
    let chain = open(config(None));
    assert!(matches!(
        chain.submit(tx),
        Err(ChainError::UnfundedSender { .. })
    ));
    assert_eq!(chain.head().pending, 0);
}

// ---- funded senders ----

#[test]
fn submit_rejects_a_sender_without_an_account() {
    let chain = open(config(None));
    let fresh = SigningKey::from_bytes(&[0x99; 32]);
    let refused = chain.submit(sign(&fresh, 0, junk_transfer()));
    assert!(
        matches!(
            refused,
            Err(ChainError::UnfundedSender {
                balance: Amount::ZERO,
                needed: Amount(1)
            })
        ),
        "{refused:?}"
    );
    assert_eq!(chain.head().pending, 0);
    chain.produce_block().unwrap();
    let account = chain.account(&addr(&fresh));
    assert_eq!((account.nonce, account.next_nonce), (0, 0));
}

#[test]
fn submit_rejects_a_sender_below_the_minimum_balance() {
    let chain = open(ChainConfig {
        genesis: Genesis {
            min_sender_balance: Amount(BALANCE + 1),
            ..crate::node::genesis()
        },
        ..config(None)
    });
    assert!(matches!(
        chain.submit(sign(&alice(), 0, transfer(1))),
        Err(ChainError::UnfundedSender { needed, .. }) if needed == Amount(BALANCE + 1)
    ));
    assert_eq!(chain.head().pending, 0);
}

#[test]
fn the_coordinator_sends_without_a_balance() {
    let chain = open(config(None));
    let register = crate::node::register_sequence_zero(crate::node::statement(0));
    chain
        .submit(sign(&crate::node::coordinator(), 0, register))
        .unwrap();
    assert!(chain.produce_block().unwrap().receipts[0].is_ok());
}

/// A call naming an account that does not exist (settling it, withdrawing its rewards) leaves
/// no trace of that account in the contract's state.
#[test]
fn calls_on_unknown_accounts_leave_no_state() {
    let chain = open(config(None));
    let stranger = Address([0x77; 32]);
    chain
        .submit(sign(&alice(), 0, Call::Settle { sender: stranger }))
        .unwrap();
    chain
        .submit(sign(&bob(), 0, Call::WithdrawRewards))
        .unwrap();
    let block = chain.produce_block().unwrap();
    assert!(block.receipts.iter().all(|r| r.is_ok()));
    let accounts = chain.settlement_state().accounts;
    assert!(accounts.is_empty(), "{accounts:?}");
    assert_eq!(chain.account(&stranger).nonce, 0);
}

// ---- fees ----

#[test]
fn a_failed_call_pays_the_fee_and_changes_nothing_else() {
    let chain = open(ChainConfig {
        genesis: Genesis {
            tx_fee: Amount(5),
            ..crate::node::genesis()
        },
        ..config(None)
    });
    chain.submit(sign(&alice(), 0, transfer(BALANCE))).unwrap();
    let receipt = chain.produce_block().unwrap().receipts.remove(0);
    assert!(receipt.error.is_some(), "the fee left too little to move");
    let alice_account = chain.account(&addr(&alice()));
    assert_eq!(
        (alice_account.nonce, alice_account.balance),
        (1, Amount(BALANCE - 5))
    );
    assert_eq!(chain.account(&addr(&bob())).balance, Amount(BALANCE));
    chain.submit(sign(&alice(), 1, transfer(10))).unwrap();
    assert!(chain.produce_block().unwrap().receipts[0].is_ok());
    assert_eq!(
        chain.account(&addr(&alice())).balance,
        Amount(BALANCE - 5 - 5 - 10)
    );
}

// ---- mempool bounds ----

#[test]
fn submit_rejects_a_sender_over_its_pending_count() {
    let chain = open(ChainConfig {
        max_pending_txs_per_sender: 2,
        ..config(None)
    });
    for nonce in 0..2 {
        chain.submit(sign(&alice(), nonce, transfer(1))).unwrap();
    }
    let refused = chain.submit(sign(&alice(), 2, transfer(1)));
    assert!(
        matches!(
            refused,
            Err(ChainError::SenderLimit {
                txs: 2,
                max_txs: 2,
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(chain.head().pending, 2);
    // Another sender is not held to Alice's count.
    chain.submit(sign(&bob(), 0, transfer(1))).unwrap();
}

#[test]
fn submit_rejects_a_sender_over_its_pending_bytes() {
    let chain = open(ChainConfig {
        max_pending_bytes_per_sender: 4096,
        ..config(None)
    });
    let big = Call::SubmitProof {
        sequence: SequenceId(0),
        proof: vec![7; 4096],
    };
    let refused = chain.submit(sign(&alice(), 0, big));
    assert!(
        matches!(
            refused,
            Err(ChainError::SenderLimit {
                txs: 0,
                max_bytes: 4096,
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(chain.head().pending, 0);
    chain.submit(sign(&alice(), 0, transfer(1))).unwrap();
}

/// Junk senders fill the whole pool, each within its per-sender cap; an honest transfer still
/// gets in (the newest transaction of the largest junk sender makes room) and is included.
#[test]
fn an_honest_transfer_gets_in_while_a_flood_fills_the_pool() {
    let flooders = junk(3);
    let chain = open(ChainConfig {
        genesis: genesis_with(&flooders),
        max_mempool_txs: 12,
        max_pending_txs_per_sender: 4,
        ..config(None)
    });
    for key in &flooders {
        for nonce in 0..4 {
            chain.submit(sign(key, nonce, junk_transfer())).unwrap();
        }
    }
    assert_eq!(chain.head().pending, 12);
    let honest = chain.submit(sign(&bob(), 0, transfer(1))).unwrap();
    assert_eq!(chain.head().pending, 12, "one junk transaction made room");
    // The flooders' next nonces stay contiguous: one of them lost its newest.
    let next: Vec<u64> = flooders
        .iter()
        .map(|k| chain.account(&addr(k)).next_nonce)
        .collect();
    assert_eq!(next.iter().sum::<u64>(), 11, "{next:?}");
    let block = chain.produce_block().unwrap();
    let receipt = block
        .receipts
        .iter()
        .find(|r| r.tx_hash == honest)
        .expect("the honest transfer is in the block");
    assert!(receipt.is_ok(), "{:?}", receipt.error);
}

/// The pool is bounded in bytes: when large reveals fill it, a sender holding less than the
/// largest holder gets in at its expense, and a sender that would hold the most is refused.
#[test]
fn the_pool_is_bounded_in_bytes_and_shared_by_senders() {
    let flooders = junk(2);
    let chain = open(ChainConfig {
        genesis: genesis_with(&flooders),
        max_mempool_bytes: 64 * 1024,
        max_pending_bytes_per_sender: 48 * 1024,
        ..config(None)
    });
    let reveal = |n: u8| Call::SubmitProof {
        sequence: SequenceId(0),
        proof: vec![n; 10 * 1024],
    };
    let next_nonces = |chain: &Chain| -> Vec<u64> {
        flooders
            .iter()
            .map(|k| chain.account(&addr(k)).next_nonce)
            .collect()
    };
    // About 13.9 KB each in JSON: three fit one sender's 48 KiB, four the pool's 64 KiB.
    for nonce in 0..3 {
        chain
            .submit(sign(&flooders[0], nonce, reveal(nonce as u8)))
            .unwrap();
    }
    chain.submit(sign(&flooders[1], 0, reveal(10))).unwrap();
    // The second flooder would hold two, the first holds three: the first makes room.
    chain.submit(sign(&flooders[1], 1, reveal(11))).unwrap();
    assert_eq!(next_nonces(&chain), vec![2, 2]);
    // A third would make the second flooder the largest holder: refused.
    let refused = chain.submit(sign(&flooders[1], 2, reveal(12)));
    assert!(
        matches!(refused, Err(ChainError::MempoolFull { txs: 4, .. })),
        "{refused:?}"
    );
    assert_eq!(next_nonces(&chain), vec![2, 2]);
    // Alice holds nothing: she gets in.
    chain.submit(sign(&alice(), 0, reveal(13))).unwrap();
    assert_eq!(chain.head().pending, 4);
    assert_eq!(next_nonces(&chain).iter().sum::<u64>(), 3);
}

/// A block takes at most `max_block_bytes`, the senders taking turns: two flooders' large
/// reveals queued first do not keep a later honest transfer out of the next block; what did
/// not fit stays pending in nonce order and goes into the blocks after.
#[test]
fn a_full_block_takes_every_sender_in_turn() {
    let flooders = junk(2);
    let chain = open(ChainConfig {
        genesis: genesis_with(&flooders),
        max_block_bytes: 40 * 1024,
        ..config(None)
    });
    let reveal = |n: u8| Call::SubmitProof {
        sequence: SequenceId(0),
        proof: vec![n; 10 * 1024],
    };
    // About 13.9 KB each in JSON: two fit a block beside the transfer, not three.
    for key in &flooders {
        for nonce in 0..3 {
            chain.submit(sign(key, nonce, reveal(nonce as u8))).unwrap();
        }
    }
    let honest = chain.submit(sign(&bob(), 0, transfer(1))).unwrap();
    let block = chain.produce_block().unwrap();
    let senders: Vec<(Address, u64)> = block.receipts.iter().map(|r| (r.from, r.nonce)).collect();
    assert!(
        block.receipts.iter().any(|r| r.tx_hash == honest),
        "the honest transfer is in the first block: {senders:?}"
    );
    assert_eq!(
        senders,
        vec![
            (addr(&flooders[0]), 0),
            (addr(&flooders[1]), 0),
            (addr(&bob()), 0)
        ],
        "one reveal of each flooder, then the transfer, in arrival order"
    );
    assert_eq!(chain.head().pending, 4);
    // The rest follows, each sender's nonces in order.
    let mut seen: Vec<(Address, u64)> = Vec::new();
    while chain.head().pending > 0 {
        let block = chain.produce_block().unwrap();
        assert!(!block.receipts.is_empty(), "a block makes progress");
        seen.extend(block.receipts.iter().map(|r| (r.from, r.nonce)));
    }
    for key in &flooders {
        let nonces: Vec<u64> = seen
            .iter()
            .filter(|(from, _)| *from == addr(key))
            .map(|(_, n)| *n)
            .collect();
        assert_eq!(nonces, vec![1, 2]);
    }
}

/// A transfer of nothing creates no account: even where the minimum sender balance is zero,
/// its recipient still cannot send (only accounts may).
#[test]
fn a_transfer_of_nothing_creates_no_account() {
    let chain = open(ChainConfig {
        genesis: Genesis {
            min_sender_balance: Amount::ZERO,
            ..crate::node::genesis()
        },
        ..config(None)
    });
    let carol = SigningKey::from_bytes(&[3; 32]);
    let nothing = Call::Transfer {
        to: addr(&carol),
        amount: Amount::ZERO,
    };
    chain.submit(sign(&alice(), 0, nothing)).unwrap();
    assert!(chain.produce_block().unwrap().receipts[0].is_ok());
    assert!(matches!(
        chain.submit(sign(&carol, 0, transfer(0))),
        Err(ChainError::UnfundedSender { .. })
    ));
}
