//! The Lumoz two-step verification contract (REFERENCE §1.5, with issue 4's window bounds): one
//! root proof settles each sequence, and every sender that committed to a valid proof in time is
//! paid.
//!
//! ```text
//!  register_sequence(s, statement, jobs)      by the coordinator's key, s = 0, 1, 2, …
//!
//!  block:   f                 f+T1−1 │ f+T1              f+T1+T2−1 │ f+T1+T2
//!           ├── hash phase ──────────┤├── proof phase ─────────────┤├── closed ──▶
//!  hashes:  ✓ first one opens   ✓ … ✓ │ ✗ HashWindowClosed  … ✗     │ ✓ reopens (no valid proof)
//!  proofs:  ✗ ProofTooEarly     … ✗   │ ✓ first valid one   … ✓     │ ✗ ProofTooLate
//!                                      │   finalizes s, every valid  │
//!                                      │   reveal is paid pro rata   │
//! ```
//!
//! A sender commits to `proof_hash = H(H(proof) ‖ sender)` ([`proof_hash`]) in the hash phase
//! and reveals the proof in the proof phase. The phases never overlap (REFERENCE §1.5 accepts
//! both at `f+T1`), so a proof seen in a reveal cannot be committed to in the same block, and a
//! copied proof never matches the copier's hash because the sender is hashed in.
//!
//! - **Finalization:** the first valid proof of sequence `s` finalizes it and records its
//!   commitment root, stats and statement ([`FinalizedSequence`]) for reward claims. Sequences
//!   finalize in order: a proof for `s` is refused while `s − 1` is not finalized.
//! - **Rewards:** every sender that committed in the window and revealed a valid proof (before
//!   or after the one that finalized) is paid `reward_per_sequence · stake / total`, where
//!   `stake` is its stake when it committed and `total` sums the stakes of all the window's
//!   committers (REFERENCE §1.5, `SlotAdapter.distributeRewards`).
//! - **Prover rewards** (`claims.rs`): a registration carries the sequence's tree plan (every
//!   job's [`Position`] and work units). At finalization the sequence owes
//!   `Σ units · prover_reward_per_unit` if the plan agrees with the root's stats (total units,
//!   number of jobs), nothing otherwise; provers are paid by claim batches, one proof of a claim
//!   tree each, whose nullifiers are spent once (REFERENCE §5).
//! - **Penalties**, taken from stake: a revealed proof that does not match its hash, or that
//!   fails verification or names another statement, costs [`SettlementParams::wrong_hash_penalty`]
//!   at the reveal; a hash never revealed costs [`SettlementParams::no_reveal_penalty`], applied
//!   lazily once `block − hash_block > T1 + T2`, when the sender next commits or withdraws, or
//!   when anyone calls [`SettlementContract::settle`].
//!
//! Every refused call leaves the state unchanged; the contract never does I/O and takes the
//! block height from its caller. Its state ([`SettlementState`]) is serde-serializable so the
//! chain node can persist it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
pub use sheaf_circuits::claim::Position;
use sheaf_circuits::{Digest, FinalKey, Header, JobStats};
use thiserror::Error;

mod claims;
mod contract;
mod phase;

pub use claims::{
    Credit, PlanCheck, PlanMismatch, ProverRewards, MAX_CLAIMS_PER_BATCH, MAX_CLAIM_ARITY,
    MAX_PLANNED_JOBS, MIN_CLAIM_ARITY,
};
pub use contract::SettlementContract;
pub use phase::{phase, WindowPhase};
/// A sender's address is its ed25519 public key; a sequence's number is fixed by the first
/// registration (the coordinator's first sequence), the following ones come in order, without
/// gaps; amounts are in base units of the staking token.
pub use sheaf_types::{Address, Amount, SequenceId};

/// Base units per token.
pub const UNIT: Amount = Amount(sheaf_types::BASE_UNITS_PER_TOKEN);

/// T1, blocks of the hash phase (REFERENCE §1.1 `proofHashCommitEpoch`). Long enough for every
/// honest sender to land its hash; each block more delays settlement by one block.
pub const DEFAULT_HASH_WINDOW_BLOCKS: u64 = 20;

/// T2, blocks of the proof phase (REFERENCE §1.1 `proofCommitEpoch`). Long enough to land a
/// reveal under congestion; each block more delays the reopening of a failed window.
pub const DEFAULT_PROOF_WINDOW_BLOCKS: u64 = 32;

/// Reward of one sequence, split among its valid revealers (REFERENCE §1.5 docs example: 128 per
/// block over 64 slots).
pub const DEFAULT_REWARD_PER_SEQUENCE: Amount = Amount::tokens(2);

/// Stake needed to submit a hash (REFERENCE §1.1 `minDeposit`); it must cover the penalties.
pub const DEFAULT_MIN_STAKE: Amount = Amount::tokens(50_000);

/// Penalty for revealing a proof that does not match the hash or does not verify (REFERENCE
/// §1.1 `incorrectProofHashPunishAmount`).
pub const DEFAULT_WRONG_HASH_PENALTY: Amount = Amount::tokens(10_000);

/// Penalty for a hash never revealed (REFERENCE §1.1 `noProofPunishAmount`).
pub const DEFAULT_NO_REVEAL_PENALTY: Amount = Amount::tokens(1_000);

/// What a prover is paid per work unit of a job it proved: 1/1000 token. A work unit is 256
/// rows, so a 2^8-row leaf earns 0.001 token and a 2^13-row binary node 0.032; a devnet's tree
/// of 8 such leaves pays its provers 0.232 tokens, about a tenth of its sender's reward
/// ([`DEFAULT_REWARD_PER_SEQUENCE`]), and the pay grows with the work proved.
pub const DEFAULT_PROVER_REWARD_PER_UNIT: Amount = Amount(sheaf_types::BASE_UNITS_PER_TOKEN / 1000);

/// The contract's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementParams {
    /// T1: hashes are accepted in blocks `[f, f+T1)`.
    pub hash_window_blocks: u64,
    /// T2: proofs are accepted in blocks `[f+T1, f+T1+T2)`.
    pub proof_window_blocks: u64,
    /// Reward of one sequence, split pro rata to stake.
    pub reward_per_sequence: Amount,
    /// Stake needed to submit a hash.
    pub min_stake: Amount,
    /// Penalty for a revealed proof that does not match its hash or is invalid.
    pub wrong_hash_penalty: Amount,
    /// Penalty for a hash never revealed.
    pub no_reveal_penalty: Amount,
    /// Paid per work unit of a planned job to whoever proved it, by claim.
    #[serde(default = "default_prover_reward_per_unit")]
    pub prover_reward_per_unit: Amount,
}

/// Genesis and state files written before prover rewards existed take the default.
fn default_prover_reward_per_unit() -> Amount {
    DEFAULT_PROVER_REWARD_PER_UNIT
}

impl Default for SettlementParams {
    fn default() -> Self {
        SettlementParams {
            hash_window_blocks: DEFAULT_HASH_WINDOW_BLOCKS,
            proof_window_blocks: DEFAULT_PROOF_WINDOW_BLOCKS,
            reward_per_sequence: DEFAULT_REWARD_PER_SEQUENCE,
            min_stake: DEFAULT_MIN_STAKE,
            wrong_hash_penalty: DEFAULT_WRONG_HASH_PENALTY,
            no_reveal_penalty: DEFAULT_NO_REVEAL_PENALTY,
            prover_reward_per_unit: DEFAULT_PROVER_REWARD_PER_UNIT,
        }
    }
}

impl SettlementParams {
    /// T1 + T2: the length of a window.
    pub fn window_blocks(&self) -> u64 {
        self.hash_window_blocks + self.proof_window_blocks
    }
}

/// `H(H(proof) ‖ sender)` with SHA-256: what a sender commits to (REFERENCE §1.2, with SHA-256
/// for keccak and the 32-byte ed25519 key for the 20-byte address).
pub fn proof_hash(proof: &[u8], sender: &Address) -> [u8; 32] {
    let inner = Sha256::digest(proof);
    let mut outer = Sha256::new();
    outer.update(inner);
    outer.update(sender.as_bytes());
    outer.finalize().into()
}

/// One job of a registered sequence's tree: where it is and what proving it is worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedJob {
    /// Its position in the tree, read from the root.
    pub position: Position,
    /// Its circuit's work units.
    pub units: u64,
}

/// One claim of a [`crate::tx::Call::ClaimRewards`] batch: what its claim proof states, less
/// the root commitment, which the chain takes from its record of the sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimEntry {
    /// The finalized sequence.
    pub sequence: SequenceId,
    /// The claimed job's position.
    pub position: Position,
    /// The claim's nullifier, spent when paid.
    pub nullifier: Digest,
    /// The account paid.
    pub exit: Address,
}

/// Verifies a root proof and returns its header.
pub trait RootVerifier {
    /// The header of `proof`, or why it is not a valid root proof.
    fn verify(&self, proof: &[u8]) -> Result<Header, String>;
}

impl<V: RootVerifier + ?Sized> RootVerifier for Box<V> {
    fn verify(&self, proof: &[u8]) -> Result<Header, String> {
        (**self).verify(proof)
    }
}

impl RootVerifier for FinalKey {
    fn verify(&self, proof: &[u8]) -> Result<Header, String> {
        self.verify_bytes(proof)
            .map(|verified| verified.header)
            .map_err(|e| e.to_string())
    }
}

/// Why a call was refused. A refused call changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SettlementError {
    /// T1 or T2 is zero.
    #[error("invalid parameters: {0}")]
    InvalidParameters(&'static str),
    /// Only the coordinator's key registers sequences.
    #[error("only the coordinator registers sequences")]
    NotCoordinator,
    /// Sequences are registered in order, without gaps.
    #[error("sequence {got} registered out of order: expected {expected}")]
    SequenceOutOfOrder {
        /// The next sequence number.
        expected: SequenceId,
        /// The number given.
        got: SequenceId,
    },
    /// The sequence has not been registered.
    #[error("unknown sequence {0}")]
    UnknownSequence(SequenceId),
    /// The block height is lower than one the contract has already seen.
    #[error("block {block} is before block {last}, already seen")]
    BlockWentBackwards {
        /// The block given.
        block: u64,
        /// The highest block seen.
        last: u64,
    },
    /// The sequence is finalized: no more hashes.
    #[error("sequence {0} is already finalized")]
    SequenceAlreadyFinalized(SequenceId),
    /// The sender already committed a hash in this window.
    #[error("the sender already submitted a hash for sequence {0} in this window")]
    DuplicateProofHash(SequenceId),
    /// The hash phase `[f, f+T1)` is over and the window still runs.
    #[error("the hash phase of sequence {sequence} closed at block {closed_at}")]
    HashWindowClosed {
        /// The sequence.
        sequence: SequenceId,
        /// `f + T1`.
        closed_at: u64,
    },
    /// The sender's stake (after penalties due) is below the minimum.
    #[error("stake {stake} is below the minimum {min_stake}")]
    InsufficientStake {
        /// The sender's stake.
        stake: Amount,
        /// The minimum.
        min_stake: Amount,
    },
    /// A proof for a sequence whose predecessor is not finalized.
    #[error("sequence {sequence} must wait for sequence {next} to be finalized")]
    PreviousSequenceNotFinalized {
        /// The sequence of the proof.
        sequence: SequenceId,
        /// The next sequence to finalize.
        next: SequenceId,
    },
    /// No hash has opened a window for the sequence.
    #[error("no window is open for sequence {0}")]
    WindowNotOpen(SequenceId),
    /// The proof phase `[f+T1, f+T1+T2)` has not started.
    #[error("the proof phase of sequence {sequence} opens at block {opens_at}")]
    ProofTooEarly {
        /// The sequence.
        sequence: SequenceId,
        /// `f + T1`.
        opens_at: u64,
    },
    /// The proof phase `[f+T1, f+T1+T2)` is over.
    #[error("the proof phase of sequence {sequence} closed at block {closed_at}")]
    ProofTooLate {
        /// The sequence.
        sequence: SequenceId,
        /// `f + T1 + T2`.
        closed_at: u64,
    },
    /// The sender submitted no hash in the current window.
    #[error("the sender has no hash in the window of sequence {0}")]
    NoProofHash(SequenceId),
    /// The sender already revealed its proof in this window.
    #[error("the sender already revealed a proof for sequence {0}")]
    AlreadyRevealed(SequenceId),
    /// Stake cannot be withdrawn while hashes are unrevealed and not yet settled.
    #[error("stake locked by {pending} unsettled hashes")]
    StakeLocked {
        /// Hashes still awaiting reveal or penalty.
        pending: usize,
    },
    /// The withdrawal exceeds the stake.
    #[error("cannot withdraw {amount} from a stake of {stake}")]
    WithdrawalExceedsStake {
        /// Amount asked for.
        amount: Amount,
        /// The stake.
        stake: Amount,
    },
    /// A plan of more jobs than any tree has.
    #[error("a plan of {jobs} jobs; at most {max}")]
    PlanTooLarge {
        /// Jobs planned.
        jobs: usize,
        /// [`MAX_PLANNED_JOBS`].
        max: usize,
    },
    /// Two jobs of a plan at one position.
    #[error("the plan lists position {0} twice")]
    DuplicatePlannedPosition(Position),
    /// A planned job worth no work units.
    #[error("the planned job at position {0} has no work units")]
    ZeroUnitJob(Position),
    /// A planned job deeper than a claim can reach.
    #[error("the planned job at position {position} is deeper than {max} levels")]
    PlannedPositionTooDeep {
        /// The position.
        position: Position,
        /// [`sheaf_circuits::claim::MAX_CLAIM_DEPTH`].
        max: usize,
    },
    /// A claim batch with no claims.
    #[error("a claim batch needs at least one claim")]
    EmptyClaimBatch,
    /// A claim batch with more claims than one transaction may pay.
    #[error("a claim batch of {claims} claims; at most {max}")]
    TooManyClaims {
        /// Claims in the batch.
        claims: usize,
        /// [`MAX_CLAIMS_PER_BATCH`].
        max: usize,
    },
    /// A claim tree's arity outside [`MIN_CLAIM_ARITY`]`..=`[`MAX_CLAIM_ARITY`].
    #[error("claim tree arity {0}; it must be {MIN_CLAIM_ARITY} to {MAX_CLAIM_ARITY}")]
    InvalidClaimArity(u32),
    /// A claim on a sequence not finalized yet.
    #[error("sequence {0} is not finalized")]
    SequenceNotFinalized(SequenceId),
    /// A claim on a sequence whose plan is empty, or did not match its root proof, or that
    /// was finalized before prover rewards: it owes nothing.
    #[error("sequence {0} owes no prover rewards: its plan is empty or does not match its root")]
    PlanNotConsistent(SequenceId),
    /// A claim on a position its sequence's plan does not list.
    #[error("sequence {sequence} planned no job at position {position}")]
    UnplannedPosition {
        /// The sequence.
        sequence: SequenceId,
        /// The position claimed.
        position: Position,
    },
    /// A nullifier already spent by an earlier claim.
    #[error("nullifier {0} is already spent")]
    NullifierSpent(Digest),
    /// One nullifier twice in a batch.
    #[error("nullifier {0} appears twice in the batch")]
    DuplicateNullifier(Digest),
    /// Paying the batch would pay a sequence's provers more than it owes.
    #[error("sequence {sequence} owes {owed} and has paid {paid}: {amount} more exceeds it")]
    ClaimExceedsOwed {
        /// The sequence.
        sequence: SequenceId,
        /// What it owes in all.
        owed: Amount,
        /// What it has paid so far.
        paid: Amount,
        /// What the batch would pay it.
        amount: Amount,
    },
    /// The batch's proof does not verify with the final key.
    #[error("the claim proof does not verify: {0}")]
    InvalidClaimProof(String),
    /// The batch's proof proves another statement than the listed claims'.
    #[error("the claim proof proves statement {got}, the claims' is {expected}")]
    ClaimStatementMismatch {
        /// The statement recomputed from the claims and the chain's roots.
        expected: Digest,
        /// The proof's.
        got: Digest,
    },
}

/// Result of the contract's calls.
pub type Result<T, E = SettlementError> = std::result::Result<T, E>;

/// Why a sender was penalized.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PenaltyReason {
    /// The revealed proof does not match the committed hash.
    WrongHash,
    /// The revealed proof matches the hash but does not verify.
    InvalidProof(String),
    /// The revealed proof verifies but proves another statement.
    WrongStatement {
        /// The sequence's statement.
        expected: Digest,
        /// The proof's.
        got: Digest,
    },
    /// The hash was never revealed.
    NeverRevealed,
}

/// What the contract reports; each call returns the events it caused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SettlementEvent {
    /// A sequence was registered.
    SequenceRegistered {
        /// The sequence.
        sequence: SequenceId,
        /// Its statement hash.
        statement: Digest,
    },
    /// Stake was deposited.
    StakeDeposited {
        /// The sender.
        sender: Address,
        /// Amount deposited.
        amount: Amount,
        /// Stake after the deposit.
        stake: Amount,
    },
    /// Stake was withdrawn.
    StakeWithdrawn {
        /// The sender.
        sender: Address,
        /// Amount withdrawn.
        amount: Amount,
        /// Stake after the withdrawal.
        stake: Amount,
    },
    /// A hash opened (or, after a window with no valid proof, reopened) a sequence's window.
    WindowOpened {
        /// The sequence.
        sequence: SequenceId,
        /// f, the block of the first hash.
        block: u64,
        /// Whether an earlier window closed with no valid proof.
        reopened: bool,
    },
    /// A hash was committed.
    ProofHashSubmitted {
        /// The sequence.
        sequence: SequenceId,
        /// The sender.
        sender: Address,
        /// The hash.
        hash: [u8; 32],
        /// The sender's stake, snapshotted for the reward split.
        stake: Amount,
    },
    /// The first valid proof finalized a sequence.
    SequenceFinalized {
        /// The sequence.
        sequence: SequenceId,
        /// The root commitment of who proved what.
        commitment: Digest,
        /// The root's job counters.
        stats: JobStats,
        /// The sender of the proof.
        sender: Address,
    },
    /// A sender that revealed a valid proof was paid.
    SenderPaid {
        /// The sequence.
        sequence: SequenceId,
        /// The sender.
        sender: Address,
        /// The reward credited.
        amount: Amount,
    },
    /// A sender lost stake.
    SenderPenalized {
        /// The sequence.
        sequence: SequenceId,
        /// The sender.
        sender: Address,
        /// Why.
        reason: PenaltyReason,
        /// Stake taken (the penalty, or the whole stake if smaller).
        amount: Amount,
    },
    /// A finalized sequence's plan agrees with its root: it owes its provers `amount`.
    ProverRewardsOwed {
        /// The sequence.
        sequence: SequenceId,
        /// Jobs planned.
        jobs: u64,
        /// Their work units.
        work_units: u64,
        /// `work_units · prover_reward_per_unit`.
        amount: Amount,
    },
    /// A finalized sequence's plan disagrees with its root: it owes its provers nothing.
    ProverPlanInconsistent {
        /// The sequence.
        sequence: SequenceId,
        /// How the plan disagrees.
        mismatch: PlanMismatch,
    },
    /// A prover's claim was paid.
    ClaimPaid {
        /// The sequence.
        sequence: SequenceId,
        /// The job's position.
        position: Position,
        /// The account credited.
        exit: Address,
        /// `units · prover_reward_per_unit`.
        amount: Amount,
        /// The nullifier spent.
        nullifier: Digest,
    },
    /// A sender withdrew its rewards.
    #[serde(alias = "RewardsClaimed")]
    RewardsWithdrawn {
        /// The sender.
        sender: Address,
        /// Amount paid out.
        amount: Amount,
    },
}

/// One line: what happened, addresses and hashes in hex, amounts in tokens with the base units.
impl std::fmt::Display for SettlementEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SettlementEvent::SequenceRegistered {
                sequence,
                statement,
            } => write!(f, "sequence {sequence} registered, statement {statement}"),
            SettlementEvent::StakeDeposited {
                sender,
                amount,
                stake,
            } => write!(f, "{sender} staked {amount}; stake {stake}"),
            SettlementEvent::StakeWithdrawn {
                sender,
                amount,
                stake,
            } => write!(f, "{sender} withdrew {amount} of stake; stake {stake}"),
            SettlementEvent::WindowOpened {
                sequence,
                block,
                reopened,
            } => write!(
                f,
                "sequence {sequence}: window {} at block {block}",
                if *reopened { "reopened" } else { "opened" }
            ),
            SettlementEvent::ProofHashSubmitted {
                sequence,
                sender,
                hash,
                stake,
            } => write!(
                f,
                "sequence {sequence}: proof hash {} from {sender} (stake {stake})",
                hex::encode(hash)
            ),
            SettlementEvent::SequenceFinalized {
                sequence,
                commitment,
                stats,
                sender,
            } => write!(
                f,
                "sequence {sequence} finalized by {sender}: commitment {commitment}, {} leaf jobs, \
                 {} aggregation jobs, {} work units",
                stats.leaf_jobs, stats.aggregation_jobs, stats.work_units
            ),
            SettlementEvent::SenderPaid {
                sequence,
                sender,
                amount,
            } => write!(f, "sequence {sequence}: {sender} paid {amount}"),
            SettlementEvent::SenderPenalized {
                sequence,
                sender,
                reason,
                amount,
            } => write!(
                f,
                "sequence {sequence}: {sender} penalized {amount} ({reason})"
            ),
            SettlementEvent::ProverRewardsOwed {
                sequence,
                jobs,
                work_units,
                amount,
            } => write!(
                f,
                "sequence {sequence} owes its provers {amount} ({jobs} jobs, {work_units} work units)"
            ),
            SettlementEvent::ProverPlanInconsistent { sequence, mismatch } => write!(
                f,
                "sequence {sequence} owes its provers nothing: {mismatch}"
            ),
            SettlementEvent::ClaimPaid {
                sequence,
                position,
                exit,
                amount,
                nullifier,
            } => write!(
                f,
                "sequence {sequence}: claim of {position} paid {amount} to {exit} (nullifier \
                 {nullifier})"
            ),
            SettlementEvent::RewardsWithdrawn { sender, amount } => {
                write!(f, "{sender} withdrew {amount} of rewards")
            }
        }
    }
}

impl std::fmt::Display for PenaltyReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PenaltyReason::WrongHash => f.write_str("the proof does not match its hash"),
            PenaltyReason::InvalidProof(why) => write!(f, "the proof does not verify: {why}"),
            PenaltyReason::WrongStatement { expected, got } => {
                write!(f, "the proof proves statement {got}, not {expected}")
            }
            PenaltyReason::NeverRevealed => f.write_str("the hash was never revealed"),
        }
    }
}

/// What the contract records of a finalized sequence, for reward claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalizedSequence {
    /// The sequence's statement hash.
    pub statement: Digest,
    /// The root commitment of who proved what.
    pub commitment: Digest,
    /// The root's job counters.
    pub stats: JobStats,
    /// The sender of the first valid proof.
    pub sender: Address,
    /// The block it was finalized in.
    pub block: u64,
}

/// A hash committed in a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commitment {
    /// `H(H(proof) ‖ sender)`.
    pub hash: [u8; 32],
    /// The sender's stake when it committed.
    pub stake: Amount,
    /// The block of the hash.
    pub block: u64,
    /// Whether the sender has revealed its proof.
    pub revealed: bool,
}

/// The current window of a sequence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// f, the block of the first hash.
    pub opened_at: u64,
    /// Sum of the committers' stakes.
    pub total_stake: Amount,
    /// Hashes by sender (as pairs, so the state serializes to JSON).
    pub commitments: Vec<(Address, Commitment)>,
}

impl Window {
    /// The commitment `sender` made in this window, if any.
    pub fn commitment(&self, sender: &Address) -> Option<&Commitment> {
        self.commitments
            .iter()
            .find(|(a, _)| a == sender)
            .map(|(_, c)| c)
    }
}

/// A registered sequence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequence {
    /// The statement hash its root proof must carry.
    pub statement: Digest,
    /// Its current window, once a hash opened one.
    pub window: Option<Window>,
    /// Set by the first valid proof.
    pub finalized: Option<FinalizedSequence>,
    /// Its tree plan, sorted by position (empty: it pays no prover rewards).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<PlannedJob>,
    /// What it owes its provers and has paid, set at finalization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prover_rewards: Option<ProverRewards>,
}

impl Sequence {
    /// The planned job at `position`.
    pub fn planned(&self, position: Position) -> Option<&PlannedJob> {
        self.jobs
            .binary_search_by_key(&position, |job| job.position)
            .ok()
            .map(|i| &self.jobs[i])
    }
}

/// A hash not yet revealed, awaiting lazy settlement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingReveal {
    /// The sequence.
    pub sequence: SequenceId,
    /// The block of the hash.
    pub hash_block: u64,
}

/// A sender's account.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Stake deposited, less penalties.
    pub stake: Amount,
    /// Rewards earned and not yet withdrawn.
    pub rewards: Amount,
    /// Hashes not yet revealed nor penalized.
    pub pending: Vec<PendingReveal>,
}

/// The contract's whole state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementState {
    /// The parameters.
    pub params: SettlementParams,
    /// The only key that registers sequences.
    pub coordinator: Address,
    /// The number of the first registered sequence (`sequences[0]`).
    #[serde(default)]
    pub first_sequence: SequenceId,
    /// Sequences in order of number, from `first_sequence`.
    pub sequences: Vec<Sequence>,
    /// The next sequence to finalize (all before it are finalized).
    pub next_to_finalize: SequenceId,
    /// Accounts by sender (as pairs, so the state serializes to JSON); an empty account is not
    /// kept, so calls on unknown senders leave no trace.
    #[serde(with = "crate::pairs")]
    pub accounts: BTreeMap<Address, Account>,
    /// Stake taken by penalties, in total.
    pub slashed: Amount,
    /// The highest block seen.
    pub last_block: u64,
    /// Nullifiers of paid claims, chain-wide.
    #[serde(default)]
    pub spent_nullifiers: BTreeSet<Digest>,
}

impl SettlementState {
    /// Where `sequence` sits in `sequences`, if registered.
    pub(crate) fn index(&self, sequence: SequenceId) -> Option<usize> {
        let index = usize::try_from(sequence.get().checked_sub(self.first_sequence.get())?).ok()?;
        (index < self.sequences.len()).then_some(index)
    }

    /// A registered sequence.
    pub fn sequence(&self, sequence: SequenceId) -> Option<&Sequence> {
        self.index(sequence).map(|i| &self.sequences[i])
    }

    /// The number the next registration must take.
    pub fn next_sequence(&self) -> SequenceId {
        SequenceId(self.first_sequence.get() + self.sequences.len() as u64)
    }

    pub(crate) fn account(&self, sender: &Address) -> Account {
        self.accounts.get(sender).cloned().unwrap_or_default()
    }

    pub(crate) fn set_account(&mut self, sender: Address, account: Account) {
        if account == Account::default() {
            self.accounts.remove(&sender);
        } else {
            self.accounts.insert(sender, account);
        }
    }
}
