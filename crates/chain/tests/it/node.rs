//! Node tests: submission checks (one per rejection), block production in order, deterministic
//! timestamps, and restart from the data directory.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use ed25519_dalek::SigningKey;
use sheaf_chain::membership::{rate_commitment, MembershipParams, MembershipState};
use sheaf_chain::node::{
    Allocation, Chain, ChainConfig, ChainError, Event, Genesis, Verifier, STATE_FILE,
};
use sheaf_chain::settlement::{proof_hash, RootVerifier, SettlementParams};
use sheaf_chain::tx::{Call, SignedTx};
use sheaf_chain::{Address, Amount, SequenceId};
use sheaf_circuits::{Digest, Header, JobStats, PossessionCircuit, WorkerSecret};

/// Chain id of the test chains.
pub const CHAIN_ID: u64 = 7;
/// Genesis time of the test chains, ms.
pub const GENESIS_MS: u64 = 1_000_000;
/// Block interval of the test chains, ms.
pub const BLOCK_MS: u64 = 2_000;
/// Every test account's genesis balance: above `u64::MAX`, so amounts cross the JSON boundary
/// at full width.
pub const BALANCE: u128 = 1 << 100;
/// T1 and T2 of the test chains: short windows so tests advance a few blocks.
pub const T1: u64 = 2;
/// T2.
pub const T2: u64 = 3;
/// The admin token of the test chains (`chain_produceBlock` needs it).
pub const ADMIN_TOKEN: &str = "test-admin-token";
/// Minimum stake of the test chains.
pub const MIN_STAKE: u128 = 1_000;

/// The coordinator's key.
pub fn coordinator() -> SigningKey {
    SigningKey::from_bytes(&[0xC0; 32])
}

/// Alice's key.
pub fn alice() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}

/// Bob's key.
pub fn bob() -> SigningKey {
    SigningKey::from_bytes(&[2; 32])
}

/// An address of a key.
pub fn addr(key: &SigningKey) -> Address {
    Address(key.verifying_key().to_bytes())
}

/// Accepts `b"root" ‖ statement` as a root proof of that statement.
#[derive(Debug)]
pub struct StubVerifier;

impl RootVerifier for StubVerifier {
    fn verify(&self, proof: &[u8]) -> Result<Header, String> {
        let statement = proof
            .strip_prefix(b"root")
            .and_then(|rest| <&[u8; 32]>::try_from(rest).ok())
            .and_then(Digest::from_bytes)
            .ok_or("not a root proof")?;
        Ok(Header {
            commitment: Digest([9, 9, 9, 9]),
            worker_pk: Digest([1, 2, 3, 4]),
            stats: JobStats {
                leaf_jobs: 2,
                aggregation_jobs: 1,
                work_units: 10,
            },
            statement,
        })
    }
}

/// The statement of sequence `s`.
pub fn statement(s: u64) -> Digest {
    Digest([s + 1, 42, 0, 0])
}

/// A stub root proof of sequence `s`.
pub fn root_proof(s: u64) -> Vec<u8> {
    let mut bytes = b"root".to_vec();
    bytes.extend_from_slice(&statement(s).to_bytes());
    bytes
}

/// The test genesis: Alice and Bob funded, short windows, small membership deposits.
pub fn genesis() -> Genesis {
    Genesis {
        chain_id: CHAIN_ID,
        genesis_time_ms: GENESIS_MS,
        block_ms: BLOCK_MS,
        coordinator: addr(&coordinator()),
        allocations: [alice(), bob()]
            .iter()
            .map(|k| Allocation {
                address: addr(k),
                balance: Amount(BALANCE),
            })
            .collect(),
        settlement: SettlementParams {
            hash_window_blocks: T1,
            proof_window_blocks: T2,
            reward_per_sequence: Amount(600),
            min_stake: Amount(MIN_STAKE),
            wrong_hash_penalty: Amount(100),
            no_reveal_penalty: Amount(10),
            prover_reward_per_unit: Amount(7),
        },
        membership: MembershipParams {
            price_per_message: Amount(3),
            ..MembershipParams::default()
        },
        ..Genesis::default()
    }
}

/// A chain with manual blocks over `data_dir` (in memory when `None`).
pub fn config(data_dir: Option<&std::path::Path>) -> ChainConfig {
    ChainConfig {
        genesis: genesis(),
        data_dir: data_dir.map(|d| d.to_owned()),
        manual_blocks: true,
        admin_token: Some(ADMIN_TOKEN.into()),
        ..ChainConfig::default()
    }
}

/// The stub root-proof verifier, boxed.
pub fn stub() -> Verifier {
    Box::new(StubVerifier)
}

/// A test chain in memory with manual blocks.
pub fn chain() -> Chain {
    Chain::open(config(None), stub()).unwrap()
}

/// `call` as `key`'s `nonce`-th transaction on the test chains.
pub fn sign(key: &SigningKey, nonce: u64, call: Call) -> SignedTx {
    SignedTx::sign(key, CHAIN_ID, nonce, call)
}

/// Submits the coordinator's registration of sequence 0 and ALICE's minimum stake, each its
/// sender's first transaction.
pub fn submit_sequence_zero_and_stake(chain: &Chain) {
    let register = register_sequence_zero(statement(0));
    chain.submit(sign(&coordinator(), 0, register)).unwrap();
    chain.submit(sign(&alice(), 0, stake_minimum())).unwrap();
}

/// The worker secret of test member `n`.
pub fn worker(n: u64) -> WorkerSecret {
    WorkerSecret::from_digest(Digest([n, 0x5eaf, 0, 0]))
}

/// The id commitment of test member `n`: its worker_pk.
pub fn member_id(n: u64) -> Digest {
    worker(n).worker_pk()
}

/// The proof that `holder` knows member `n`'s secret, for `holder`'s account on chain
/// `chain_id`; each one is proved once per test binary.
pub fn possession(n: u64, holder: &SigningKey, chain_id: u64) -> Vec<u8> {
    /// Proofs by (member, holder, chain id).
    type Proofs = HashMap<(u64, Address, u64), Vec<u8>>;
    static PROOFS: OnceLock<Mutex<Proofs>> = OnceLock::new();
    let key = (n, addr(holder), chain_id);
    let mut proofs = PROOFS.get_or_init(Default::default).lock().unwrap();
    proofs
        .entry(key)
        .or_insert_with(|| {
            PossessionCircuit::shared()
                .prove(&worker(n), &key.1, chain_id)
                .unwrap()
        })
        .clone()
}

/// `holder`'s registration of member `n` at `rate_limit` on the test chains, erasing nothing.
pub fn register_membership(holder: &SigningKey, n: u64, rate_limit: u32) -> Call {
    Call::Register {
        id_commitment: member_id(n),
        rate_limit,
        erase_list: vec![],
        possession: possession(n, holder, CHAIN_ID),
    }
}

/// The coordinator's registration of sequence 0 with `statement`.
pub fn register_sequence_zero(statement: Digest) -> Call {
    Call::RegisterSequence {
        sequence: SequenceId(0),
        statement,
        jobs: Vec::new(),
    }
}

/// A deposit of the settlement's minimum stake.
pub fn stake_minimum() -> Call {
    Call::DepositStake {
        amount: Amount(MIN_STAKE),
    }
}

/// The hash of `proof` from `sender`'s key for sequence 0.
pub fn commit_zero(proof: &[u8], sender: &SigningKey) -> Call {
    Call::SubmitProofHash {
        sequence: SequenceId(0),
        hash: proof_hash(proof, &addr(sender)),
    }
}

/// The reveal of `proof` for sequence 0.
pub fn reveal_zero(proof: Vec<u8>) -> Call {
    Call::SubmitProof {
        sequence: SequenceId(0),
        proof,
    }
}

/// A transfer of `amount` to Bob.
pub fn transfer(amount: u128) -> Call {
    Call::Transfer {
        to: addr(&bob()),
        amount: Amount(amount),
    }
}

// ---- submission ----

#[test]
fn submit_rejects_a_bad_signature() {
    let chain = chain();
    let mut tx = sign(&alice(), 0, transfer(5));
    tx.call = transfer(6);
    assert!(matches!(chain.submit(tx), Err(ChainError::BadSignature)));
    assert_eq!(chain.head().pending, 0);
}

#[test]
fn submit_rejects_a_transaction_signed_for_another_chain() {
    let chain = chain();
    let tx = SignedTx::sign(&alice(), CHAIN_ID + 1, 0, transfer(5));
    assert!(matches!(chain.submit(tx), Err(ChainError::BadSignature)));
}

#[test]
fn submit_rejects_a_replayed_nonce() {
    let chain = chain();
    let tx = sign(&alice(), 0, transfer(5));
    chain.submit(tx.clone()).unwrap();
    // Pending, then included: a replay is refused either way.
    assert!(matches!(
        chain.submit(tx.clone()),
        Err(ChainError::NonceTooLow {
            expected: 1,
            got: 0
        })
    ));
    chain.produce_block().unwrap();
    assert!(matches!(
        chain.submit(tx),
        Err(ChainError::NonceTooLow {
            expected: 1,
            got: 0
        })
    ));
    assert_eq!(chain.account(&addr(&bob())).balance, Amount(BALANCE + 5));
}

#[test]
fn submit_rejects_a_nonce_gap() {
    let chain = chain();
    assert!(matches!(
        chain.submit(sign(&alice(), 1, transfer(5))),
        Err(ChainError::NonceTooHigh {
            expected: 0,
            got: 1
        })
    ));
}

#[test]
fn submit_rejects_when_the_mempool_is_full() {
    let chain = Chain::open(
        ChainConfig {
            max_mempool_txs: 1,
            ..config(None)
        },
        stub(),
    )
    .unwrap();
    chain.submit(sign(&alice(), 0, transfer(1))).unwrap();
    assert!(matches!(
        chain.submit(sign(&bob(), 0, transfer(1))),
        Err(ChainError::MempoolFull { txs: 1, .. })
    ));
}

// ---- blocks ----

#[test]
fn blocks_apply_transactions_in_submission_order() {
    let chain = chain();
    let hashes: Vec<_> = (0..3)
        .map(|nonce| {
            chain
                .submit(sign(&alice(), nonce, transfer(10 + u128::from(nonce))))
                .unwrap()
        })
        .collect();
    let block = chain.produce_block().unwrap();
    assert_eq!(block.number, 1);
    assert_eq!(chain.height(), 1);
    let order: Vec<_> = block
        .receipts
        .iter()
        .map(|r| (r.tx_hash, r.index))
        .collect();
    assert_eq!(order, vec![(hashes[0], 0), (hashes[1], 1), (hashes[2], 2)]);
    assert!(block.receipts.iter().all(|r| r.is_ok() && r.block == 1));
    assert_eq!(chain.account(&addr(&alice())).balance, Amount(BALANCE - 33));
    assert_eq!(chain.account(&addr(&alice())).nonce, 3);
    assert_eq!(chain.receipt(&hashes[1]).unwrap(), block.receipts[1]);
    // An empty block still advances the chain.
    assert_eq!(chain.produce_block().unwrap().receipts, vec![]);
    assert_eq!(chain.height(), 2);
}

#[test]
fn block_timestamps_follow_the_genesis_alone() {
    let chain = chain();
    for n in 1..=3 {
        let block = chain.produce_block().unwrap();
        assert_eq!(block.timestamp_ms, GENESIS_MS + n * BLOCK_MS);
    }
    assert_eq!(chain.head().timestamp_ms, GENESIS_MS + 3 * BLOCK_MS);
}

#[test]
fn a_failed_call_uses_its_nonce_and_changes_nothing_else() {
    let carol = SigningKey::from_bytes(&[3; 32]);
    let mut genesis = genesis();
    genesis.allocations.push(Allocation {
        address: addr(&carol),
        balance: Amount(1),
    });
    let chain = Chain::open(
        ChainConfig {
            genesis,
            ..config(None)
        },
        stub(),
    )
    .unwrap();
    chain
        .submit(sign(&carol, 0, Call::DepositStake { amount: Amount(2) }))
        .unwrap();
    let receipt = chain.produce_block().unwrap().receipts.remove(0);
    assert_eq!(
        receipt.error.as_deref(),
        Some("balance 0.000000001 tokens (1 units) does not cover 0.000000002 tokens (2 units)")
    );
    assert!(receipt.events.is_empty());
    let account = chain.account(&addr(&carol));
    assert_eq!(
        (account.nonce, account.balance, account.stake),
        (1, Amount(1), Amount::ZERO)
    );
}

#[test]
fn stake_moves_between_balance_and_settlement() {
    let chain = chain();
    chain
        .submit(sign(
            &alice(),
            0,
            Call::DepositStake {
                amount: Amount(500),
            },
        ))
        .unwrap();
    chain
        .submit(sign(
            &alice(),
            1,
            Call::WithdrawStake {
                amount: Amount(200),
            },
        ))
        .unwrap();
    let block = chain.produce_block().unwrap();
    assert!(block.receipts.iter().all(|r| r.is_ok()));
    let account = chain.account(&addr(&alice()));
    assert_eq!(
        (account.balance, account.stake),
        (Amount(BALANCE - 300), Amount(300))
    );
}

#[test]
fn a_sequence_settles_through_transactions() {
    let chain = chain();
    let proof = root_proof(0);
    submit_sequence_zero_and_stake(&chain);
    chain
        .submit(sign(&alice(), 1, commit_zero(&proof, &alice())))
        .unwrap();
    let f = chain.produce_block().unwrap().number;
    // The proof phase opens at f + T1.
    while chain.height() < f + T1 - 1 {
        chain.produce_block().unwrap();
    }
    chain
        .submit(sign(&alice(), 2, reveal_zero(proof.clone())))
        .unwrap();
    let block = chain.produce_block().unwrap();
    assert_eq!(block.number, f + T1);
    assert!(block.receipts[0].is_ok(), "{:?}", block.receipts[0].error);
    let finalized = chain.finalized(SequenceId(0)).unwrap();
    assert_eq!(
        (finalized.sender, finalized.block),
        (addr(&alice()), f + T1)
    );
    chain
        .submit(sign(&alice(), 3, Call::WithdrawRewards))
        .unwrap();
    chain.produce_block().unwrap();
    assert_eq!(
        chain.account(&addr(&alice())).balance,
        Amount(BALANCE - MIN_STAKE + 600)
    );
}

#[test]
fn membership_registration_pays_its_deposit_and_extends_the_tree() {
    let chain = chain();
    let id = member_id(5);
    chain
        .submit(sign(&alice(), 0, register_membership(&alice(), 5, 100)))
        .unwrap();
    let receipt = chain.produce_block().unwrap().receipts.remove(0);
    assert!(receipt.events.contains(&Event::Debited {
        account: addr(&alice()),
        amount: Amount(300)
    }));
    assert_eq!(
        chain.account(&addr(&alice())).balance,
        Amount(BALANCE - 300)
    );
    let view = chain.membership(&id).unwrap();
    assert_eq!(view.state, MembershipState::Active);
    assert_eq!(view.rate_commitment, rate_commitment(id, 100));
    let proof = chain.membership_proof(0).unwrap();
    assert!(proof.verify(chain.membership_root(), view.rate_commitment, 0));
    assert!(chain.membership_proof(1 << 20).is_err());
}

/// A chain in memory whose memberships cost 3 per message and last 4 s active plus 4 s grace.
fn short_membership_chain() -> Chain {
    Chain::open(
        ChainConfig {
            genesis: Genesis {
                membership: MembershipParams {
                    price_per_message: Amount(3),
                    active_duration: 4,
                    grace_period: 4,
                    ..MembershipParams::default()
                },
                ..genesis()
            },
            ..config(None)
        },
        stub(),
    )
    .unwrap()
}

#[test]
fn memberships_are_listed_by_index_with_their_state_at_the_head() {
    let chain = short_membership_chain();
    let empty = chain.memberships();
    assert_eq!((empty.height, empty.timestamp_ms), (0, GENESIS_MS));
    assert!(empty.members.is_empty());

    let (a, b) = (member_id(5), member_id(6));
    // Blocks are 2 s apart and memberships active for 4 s, then in grace for 4 s: alice's
    // (block 1) is in grace from block 3 and expired from block 5; bob's (block 2) a block later.
    let register = register_membership(&alice(), 5, 100);
    chain.submit(sign(&alice(), 0, register)).unwrap();
    chain.produce_block().unwrap();
    let register = register_membership(&bob(), 6, 100);
    chain.submit(sign(&bob(), 0, register)).unwrap();
    chain.produce_block().unwrap();
    let states = |list: &sheaf_chain::node::MembershipList| {
        list.members
            .iter()
            .map(|m| (m.id_commitment, m.membership.info.index, m.membership.state))
            .collect::<Vec<_>>()
    };
    let list = chain.memberships();
    assert_eq!(
        (list.height, list.timestamp_ms),
        (2, GENESIS_MS + 2 * BLOCK_MS)
    );
    assert_eq!(
        states(&list),
        [
            (a, 0, MembershipState::Active),
            (b, 1, MembershipState::Active)
        ]
    );
    for member in &list.members {
        assert_eq!(
            Some(&member.membership),
            chain.membership(&member.id_commitment).as_ref()
        );
    }
    assert_eq!(list.members[1].membership.info.holder, addr(&bob()));

    chain.produce_block().unwrap();
    assert_eq!(
        states(&chain.memberships()),
        [
            (a, 0, MembershipState::GracePeriod),
            (b, 1, MembershipState::Active)
        ]
    );
    chain.produce_block().unwrap();
    // Bob erases his in grace, in the block where alice's expires: only alice's is listed.
    let erase = Call::Erase {
        ids: vec![b],
        cleanup: false,
    };
    chain.submit(sign(&bob(), 1, erase)).unwrap();
    assert!(chain.produce_block().unwrap().receipts[0].is_ok());
    let list = chain.memberships();
    assert_eq!(list.height, 5);
    assert_eq!(states(&list), [(a, 0, MembershipState::Expired)]);
}

// ---- persistence ----

#[test]
fn restart_resumes_at_the_same_height_with_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let (height, alice_view, settlement, root, receipt) = {
        let chain = Chain::open(config(Some(dir.path())), stub()).unwrap();
        submit_sequence_zero_and_stake(&chain);
        chain
            .submit(sign(&alice(), 1, register_membership(&alice(), 5, 100)))
            .unwrap();
        let hash = chain.submit(sign(&bob(), 0, transfer(1))).unwrap();
        chain.produce_block().unwrap();
        chain.produce_block().unwrap();
        (
            chain.height(),
            chain.account(&addr(&alice())),
            chain.settlement_state(),
            chain.membership_root(),
            chain.receipt(&hash).unwrap(),
        )
    };
    assert!(dir.path().join(STATE_FILE).exists());

    // Another genesis is ignored: the persisted chain wins.
    let reopened = Chain::open(
        ChainConfig {
            genesis: Genesis::default(),
            ..config(Some(dir.path()))
        },
        stub(),
    )
    .unwrap();
    assert_eq!(reopened.height(), height);
    assert_eq!(reopened.chain_id(), CHAIN_ID);
    assert_eq!(reopened.account(&addr(&alice())), alice_view);
    assert_eq!(reopened.settlement_state(), settlement);
    assert_eq!(reopened.membership_root(), root);
    assert_eq!(reopened.receipt(&receipt.tx_hash), Some(receipt));
    // It carries on: nonces continue and the next block follows.
    reopened.submit(sign(&alice(), 2, transfer(1))).unwrap();
    let block = reopened.produce_block().unwrap();
    assert_eq!(block.number, height + 1);
    assert_eq!(block.timestamp_ms, GENESIS_MS + (height + 1) * BLOCK_MS);
}

#[test]
fn a_state_file_written_before_prover_rewards_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let withdrawal = {
        let chain = Chain::open(config(Some(dir.path())), stub()).unwrap();
        let hash = chain
            .submit(sign(&alice(), 0, Call::WithdrawRewards))
            .unwrap();
        chain.produce_block().unwrap();
        chain.receipt(&hash).unwrap()
    };
    // The file as an older node wrote it: no prover reward rate, no spent nullifiers, and the
    // withdrawal's event under its former name.
    // (Edited as text: a JSON value cannot hold the balances above u64::MAX.)
    let path = dir.path().join(STATE_FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    let old = text
        .replace("RewardsWithdrawn", "RewardsClaimed")
        .replace(",\"prover_reward_per_unit\":7", "")
        .replace(",\"spent_nullifiers\":[]", "");
    assert!(
        old.contains("RewardsClaimed")
            && !old.contains("prover_reward_per_unit")
            && !old.contains("spent_nullifiers"),
        "the file is as an older node wrote it"
    );
    std::fs::write(&path, old).unwrap();

    let reopened = Chain::open(config(Some(dir.path())), stub()).unwrap();
    assert_eq!(
        reopened.receipt(&withdrawal.tx_hash),
        Some(withdrawal),
        "the old event name reads as RewardsWithdrawn"
    );
    let state = reopened.settlement_state();
    assert_eq!(
        state.params.prover_reward_per_unit,
        sheaf_chain::settlement::DEFAULT_PROVER_REWARD_PER_UNIT
    );
    assert!(state.spent_nullifiers.is_empty());
}

#[test]
fn restart_with_another_genesis_is_refused_and_with_the_same_one_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let first = Chain::open(config(Some(dir.path())), stub()).unwrap();
    first.produce_block().unwrap();
    drop(first);
    let checked = |genesis: Genesis| {
        Chain::open(
            ChainConfig {
                genesis,
                check_genesis: true,
                ..config(Some(dir.path()))
            },
            stub(),
        )
    };

    let mut richer = genesis();
    richer.allocations[0].balance = Amount(BALANCE + 1);
    richer.chain_id = CHAIN_ID + 1;
    let refused = checked(richer).expect_err("another genesis");
    assert!(
        matches!(&refused, ChainError::GenesisMismatch { fields, .. } if fields == "chain_id, allocations"),
        "{refused:?}"
    );
    assert_eq!(
        refused.to_string(),
        format!(
            "the chain in {} started from another genesis (chain_id, allocations differ); start \
             it without --genesis, or with the genesis it was created from, or use a new data \
             directory for a new chain",
            dir.path().join(STATE_FILE).display()
        )
    );

    // The same genesis, with its time left to the node: it carries on where it stopped.
    let same = checked(Genesis {
        genesis_time_ms: 0,
        ..genesis()
    })
    .expect("the same genesis");
    assert_eq!(same.height(), 1);
}

#[test]
fn open_refuses_a_corrupt_state_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(STATE_FILE), b"{not json").unwrap();
    assert!(matches!(
        Chain::open(config(Some(dir.path())), stub()),
        Err(ChainError::CorruptState { .. })
    ));
}

#[test]
fn an_erased_membership_returns_its_deposit_on_withdraw() {
    let chain = short_membership_chain();
    let id = member_id(5);
    let register = register_membership(&alice(), 5, 100);
    chain.submit(sign(&alice(), 0, register)).unwrap();
    chain.produce_block().unwrap();
    // Active for 4 s from block 1: blocks are 2 s apart, so block 3 is in grace.
    let erase = Call::Erase {
        ids: vec![id],
        cleanup: true,
    };
    chain.submit(sign(&alice(), 1, erase.clone())).unwrap();
    let receipt = chain.produce_block().unwrap().receipts.remove(0);
    assert!(receipt.error.unwrap().contains("cannot erase active"));
    chain.submit(sign(&alice(), 2, erase)).unwrap();
    assert!(chain.produce_block().unwrap().receipts[0].is_ok());
    assert_eq!(
        chain.account(&addr(&alice())).membership_deposits,
        Amount(300)
    );
    assert_eq!(chain.membership_root(), genesis_root());

    chain.submit(sign(&alice(), 3, Call::Withdraw)).unwrap();
    let receipt = chain.produce_block().unwrap().receipts.remove(0);
    assert!(receipt.events.contains(&Event::Credited {
        account: addr(&alice()),
        amount: Amount(300)
    }));
    let account = chain.account(&addr(&alice()));
    assert_eq!(
        (account.balance, account.membership_deposits),
        (Amount(BALANCE), Amount::ZERO)
    );
}

fn genesis_root() -> Digest {
    chain().membership_root()
}
