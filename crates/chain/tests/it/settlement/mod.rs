//! Settlement contract tests: the two-step window block by block, reopening, rewards,
//! front-running and penalties. Most use a stand-in verifier; one runs a real root proof through
//! the real final key. This module holds what they share.

mod claims;
mod penalties;
mod phases;
mod real_claims;
mod registration;
mod rewards;
mod verification;

pub(crate) use verification::{final_key, golden, GoldenMeta};

use sheaf_chain::settlement::{
    self, proof_hash, Address, Amount, PenaltyReason, RootVerifier, SequenceId, SettlementContract,
    SettlementError, SettlementEvent, SettlementParams, SettlementState,
    DEFAULT_HASH_WINDOW_BLOCKS, DEFAULT_PROOF_WINDOW_BLOCKS,
};
use sheaf_circuits::{Digest, Header, JobStats};

// The amounts in base units, as the assertions count them.
const DEFAULT_MIN_STAKE: u128 = settlement::DEFAULT_MIN_STAKE.0;
const DEFAULT_NO_REVEAL_PENALTY: u128 = settlement::DEFAULT_NO_REVEAL_PENALTY.0;
const DEFAULT_REWARD_PER_SEQUENCE: u128 = settlement::DEFAULT_REWARD_PER_SEQUENCE.0;
const DEFAULT_WRONG_HASH_PENALTY: u128 = settlement::DEFAULT_WRONG_HASH_PENALTY.0;
const UNIT: u128 = settlement::UNIT.0;
const T1: u64 = DEFAULT_HASH_WINDOW_BLOCKS;
const T2: u64 = DEFAULT_PROOF_WINDOW_BLOCKS;
/// The block of the first hash in most tests.
const F: u64 = 100;
const COORDINATOR: Address = Address([0xC0; 32]);
const ALICE: Address = Address([1; 32]);
const BOB: Address = Address([2; 32]);
const CAROL: Address = Address([3; 32]);

const COMMITMENT: Digest = Digest([7, 7, 7, 7]);
const STATS: JobStats = JobStats {
    leaf_jobs: 3,
    aggregation_jobs: 3,
    work_units: 99,
};

/// Accepts `b"root" ‖ statement` (plus any suffix) as a root proof of that statement.
#[derive(Debug)]
struct StubVerifier;

impl RootVerifier for StubVerifier {
    fn verify(&self, proof: &[u8]) -> Result<Header, String> {
        let statement = proof
            .strip_prefix(b"root")
            .and_then(|rest| rest.get(..32))
            .and_then(|bytes| Digest::from_bytes(bytes.try_into().unwrap()))
            .ok_or("not a root proof")?;
        Ok(Header {
            commitment: COMMITMENT,
            worker_pk: Digest([1, 2, 3, 4]),
            stats: STATS,
            statement,
        })
    }
}

fn statement(sequence: u64) -> Digest {
    Digest([sequence + 1, 42, 0, 0])
}

/// A valid stub proof of `sequence`; `nonce` tells apart proofs of the same sequence.
fn proof(sequence: u64, nonce: u8) -> Vec<u8> {
    let mut bytes = b"root".to_vec();
    bytes.extend_from_slice(&statement(sequence).to_bytes());
    bytes.push(nonce);
    bytes
}

/// A contract with `sequences` registered and Alice, Bob and Carol staked with the minimum.
fn contract(sequences: u64) -> SettlementContract<StubVerifier> {
    let mut c =
        SettlementContract::new(SettlementParams::default(), COORDINATOR, StubVerifier).unwrap();
    for s in 0..sequences {
        c.register_sequence(&COORDINATOR, SequenceId(s), statement(s), Vec::new())
            .unwrap();
    }
    for sender in [ALICE, BOB, CAROL] {
        c.deposit_stake(&sender, Amount(DEFAULT_MIN_STAKE));
    }
    c
}

type Events = Result<Vec<SettlementEvent>, SettlementError>;

/// A sender's two steps, naming the sequence by its number.
trait Steps {
    /// Sends the hash of `proof` for `sequence` at `block`.
    fn commit(&mut self, sender: &Address, sequence: u64, proof: &[u8], block: u64) -> Events;
    /// Sends `proof` of `sequence` at `block`.
    fn reveal(&mut self, sender: &Address, sequence: u64, proof: &[u8], block: u64) -> Events;
}

impl<V: RootVerifier> Steps for SettlementContract<V> {
    fn commit(&mut self, sender: &Address, sequence: u64, proof: &[u8], block: u64) -> Events {
        let hash = proof_hash(proof, sender);
        self.submit_proof_hash(sender, SequenceId(sequence), hash, block)
    }

    fn reveal(&mut self, sender: &Address, sequence: u64, proof: &[u8], block: u64) -> Events {
        self.submit_proof(sender, SequenceId(sequence), proof, block)
    }
}

fn paid(events: &[SettlementEvent]) -> Vec<(Address, u128)> {
    events
        .iter()
        .filter_map(|e| match e {
            SettlementEvent::SenderPaid { sender, amount, .. } => Some((*sender, amount.0)),
            _ => None,
        })
        .collect()
}

fn penalties(events: &[SettlementEvent]) -> Vec<(Address, PenaltyReason, u128)> {
    events
        .iter()
        .filter_map(|e| match e {
            SettlementEvent::SenderPenalized {
                sender,
                reason,
                amount,
                ..
            } => Some((*sender, reason.clone(), amount.0)),
            _ => None,
        })
        .collect()
}

/// A contract with one sequence and Alice's hash of `proof(0, 1)` at block `F`.
fn committed() -> SettlementContract<StubVerifier> {
    let mut c = contract(1);
    c.commit(&ALICE, 0, &proof(0, 1), F).unwrap();
    c
}

/// A contract with `sequences` registered, where Alice (at `F`) and Bob (at `F + 1`) sent hashes
/// for sequence 0 and Alice's proof (at `F + T1`) finalized it.
fn alice_finalized_bob_pending(sequences: u64) -> SettlementContract<StubVerifier> {
    let mut c = contract(sequences);
    c.commit(&ALICE, 0, &proof(0, 1), F).unwrap();
    c.commit(&BOB, 0, &proof(0, 2), F + 1).unwrap();
    c.reveal(&ALICE, 0, &proof(0, 1), F + T1).unwrap();
    c
}

/// Whether the first of `events` finalizes `sequence`.
fn finalizes_first(events: &[SettlementEvent], sequence: u64) -> bool {
    matches!(
        events.first(),
        Some(SettlementEvent::SequenceFinalized { sequence: s, .. }) if *s == SequenceId(sequence)
    )
}

/// The penalty of `sender` for a hash it never revealed.
fn never_revealed(sender: Address) -> Vec<(Address, PenaltyReason, u128)> {
    vec![(
        sender,
        PenaltyReason::NeverRevealed,
        DEFAULT_NO_REVEAL_PENALTY,
    )]
}
