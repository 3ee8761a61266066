//! Proof of possession: a registration on the chain proves knowledge of the worker secret behind
//! its id commitment, for its sender on this chain. Real chains in memory, real signed
//! transactions and real proofs (the circuit is built once per test binary).

use ed25519_dalek::SigningKey;
use sheaf_chain::membership::check_possession;
use sheaf_chain::node::Chain;
use sheaf_chain::tx::Call;
use sheaf_circuits::limits::MAX_POSSESSION_PROOF_BYTES;

use super::*;
use crate::node::{
    addr, alice, bob, chain, member_id, possession, register_membership, sign, CHAIN_ID,
};

/// Alice's worker: the victim's secret, which only alice knows.
const VICTIM: u64 = 5;
/// Bob's own worker.
const SQUATTER: u64 = 6;

/// `sender`'s registration of `id_commitment` at rate 100 with `proof`.
fn register_with(id_commitment: Digest, proof: Vec<u8>) -> Call {
    Call::Register {
        id_commitment,
        rate_limit: 100,
        erase_list: vec![],
        possession: proof,
    }
}

/// What a refused registration must leave as it was.
#[derive(Debug, PartialEq)]
struct Untouched {
    membership: bool,
    root: Digest,
    balance: Amount,
    members: usize,
}

fn untouched(chain: &Chain, id: Digest, sender: &SigningKey) -> Untouched {
    Untouched {
        membership: chain.membership(&id).is_some(),
        root: chain.membership_root(),
        balance: chain.account(&addr(sender)).balance,
        members: chain.memberships().members.len(),
    }
}

/// Sends `call` as `sender`'s `nonce`-th transaction in a block of its own and asserts it is
/// refused for its proof of possession, changing nothing but the nonce.
fn assert_refused_for_possession(chain: &Chain, sender: &SigningKey, nonce: u64, call: Call) {
    let Call::Register { id_commitment, .. } = call else {
        unreachable!("a registration")
    };
    let before = untouched(chain, id_commitment, sender);
    chain.submit(sign(sender, nonce, call)).unwrap();
    let receipt = chain.produce_block().unwrap().receipts.remove(0);
    let error = receipt.error.expect("refused");
    assert!(
        error.contains("bad proof of possession"),
        "refused for its proof: {error}"
    );
    assert_eq!(untouched(chain, id_commitment, sender), before);
}

/// Registers `member_id(n)` as `holder`'s `nonce`-th transaction and asserts it is `holder`'s.
fn assert_registers(chain: &Chain, holder: &SigningKey, nonce: u64, n: u64) {
    let call = register_membership(holder, n, 100);
    chain.submit(sign(holder, nonce, call)).unwrap();
    let receipt = chain.produce_block().unwrap().receipts.remove(0);
    assert!(receipt.is_ok(), "{:?}", receipt.error);
    let view = chain.membership(&member_id(n)).expect("registered");
    assert_eq!(view.info.holder, addr(holder));
}

#[test]
fn register_refuses_a_squatter_without_the_secret_and_the_owner_then_registers() {
    let chain = chain();
    // Bob knows the victim's worker_pk (every proof alice makes carries it) but not its secret:
    // his best proof is one of his own secret.
    let squat = register_with(member_id(VICTIM), possession(SQUATTER, &bob(), CHAIN_ID));
    assert_refused_for_possession(&chain, &bob(), 0, squat);
    let no_proof = register_with(member_id(VICTIM), Vec::new());
    assert_refused_for_possession(&chain, &bob(), 1, no_proof);
    assert_registers(&chain, &alice(), 0, VICTIM);
}

#[test]
fn register_refuses_a_proof_replayed_by_another_holder() {
    let chain = chain();
    // Alice's registration is in the mempool, its proof public: bob copies it.
    let replay = register_with(member_id(VICTIM), possession(VICTIM, &alice(), CHAIN_ID));
    assert_refused_for_possession(&chain, &bob(), 0, replay);
    assert_registers(&chain, &alice(), 0, VICTIM);
}

#[test]
fn register_refuses_a_proof_made_for_another_chain() {
    let chain = chain();
    let elsewhere = register_with(
        member_id(VICTIM),
        possession(VICTIM, &alice(), CHAIN_ID + 1),
    );
    assert_refused_for_possession(&chain, &alice(), 0, elsewhere);
    assert_registers(&chain, &alice(), 1, VICTIM);
}

#[test]
fn register_refuses_a_proof_of_another_secret_by_its_own_holder() {
    let chain = chain();
    let mismatched = register_with(member_id(VICTIM), possession(SQUATTER, &alice(), CHAIN_ID));
    assert_refused_for_possession(&chain, &alice(), 0, mismatched);
}

#[test]
fn register_refuses_junk_possession_bytes() {
    let chain = chain();
    let valid = possession(VICTIM, &alice(), CHAIN_ID);
    let mut flipped = valid.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 1;
    let mut trailing = valid.clone();
    trailing.push(0);
    let junk: [(&str, Vec<u8>); 6] = [
        ("no bytes", Vec::new()),
        ("one byte", vec![0]),
        ("truncated", valid[..valid.len() - 1].to_vec()),
        ("trailing byte", trailing),
        ("a flipped bit", flipped),
        ("oversized", vec![0xff; MAX_POSSESSION_PROOF_BYTES + 1]),
    ];
    for (nonce, (case, bytes)) in junk.into_iter().enumerate() {
        assert!(
            matches!(
                check_possession(&bytes, member_id(VICTIM), &addr(&alice()), CHAIN_ID),
                Err(MembershipError::BadPossessionProof(_))
            ),
            "refuses {case}"
        );
        let call = register_with(member_id(VICTIM), bytes);
        assert_refused_for_possession(&chain, &alice(), nonce as u64, call);
    }
    assert_registers(&chain, &alice(), 6, VICTIM);
}

#[test]
fn check_possession_accepts_only_its_worker_holder_and_chain() {
    let id = member_id(VICTIM);
    let proof = possession(VICTIM, &alice(), CHAIN_ID);
    assert_eq!(
        check_possession(&proof, id, &addr(&alice()), CHAIN_ID),
        Ok(())
    );
    for (case, id, holder, chain_id) in [
        ("another worker", member_id(SQUATTER), alice(), CHAIN_ID),
        ("another holder", id, bob(), CHAIN_ID),
        ("another chain", id, alice(), CHAIN_ID + 1),
    ] {
        assert!(
            matches!(
                check_possession(&proof, id, &addr(&holder), chain_id),
                Err(MembershipError::BadPossessionProof(_))
            ),
            "refuses a proof checked against {case}"
        );
    }
}
