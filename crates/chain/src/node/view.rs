//! What the node shows of itself: the views the RPC serves and the queries that build them,
//! each taken at the head under one lock.

use serde::{Deserialize, Serialize};
use sheaf_circuits::Digest;

use super::{Chain, Result};
use crate::membership::{
    rate_commitment, MembershipError, MembershipEvent, MembershipInfo, MembershipState, MerkleProof,
};
use crate::settlement::{
    phase, Address, Amount, FinalizedSequence, PlanCheck, ProverRewards, SequenceId,
    SettlementEvent, SettlementParams, SettlementState, Window, WindowPhase,
};
use crate::tx::TxHash;

/// What a transaction caused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A transfer between balances.
    Transferred {
        /// The sender.
        from: Address,
        /// The recipient.
        to: Address,
        /// Amount moved.
        amount: Amount,
    },
    /// An amount left a balance for a contract (stake, membership deposit).
    Debited {
        /// The account.
        account: Address,
        /// Amount.
        amount: Amount,
    },
    /// An amount came back to a balance from a contract (stake, rewards, deposits).
    Credited {
        /// The account.
        account: Address,
        /// Amount.
        amount: Amount,
    },
    /// An event of the settlement contract.
    Settlement(SettlementEvent),
    /// An event of the membership registry.
    Membership(MembershipEvent),
}

/// One line: addresses in hex, amounts in tokens with the base units beside.
impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Transferred { from, to, amount } => {
                write!(f, "transferred {amount} from {from} to {to}")
            }
            Event::Debited { account, amount } => write!(f, "debited {amount} from {account}"),
            Event::Credited { account, amount } => write!(f, "credited {amount} to {account}"),
            Event::Settlement(event) => event.fmt(f),
            Event::Membership(event) => event.fmt(f),
        }
    }
}

/// What became of one transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The transaction.
    pub tx_hash: TxHash,
    /// Its sender.
    pub from: Address,
    /// Its nonce.
    pub nonce: u64,
    /// The block that included it.
    pub block: u64,
    /// Its position in the block.
    pub index: u32,
    /// What it caused (empty when it failed).
    pub events: Vec<Event>,
    /// Why the call failed; `None` when it succeeded.
    pub error: Option<String>,
}

impl Receipt {
    /// Whether the call succeeded.
    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }
}

/// A produced block: its transactions' receipts, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// Its height (the first block is 1).
    pub number: u64,
    /// `genesis_time_ms + number · block_ms`.
    pub timestamp_ms: u64,
    /// One per transaction, in order.
    pub receipts: Vec<Receipt>,
}

/// An account as the RPC shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    /// The address.
    pub address: Address,
    /// Spendable balance.
    pub balance: Amount,
    /// Transactions included so far.
    pub nonce: u64,
    /// The nonce to sign the next transaction with (pending ones counted).
    pub next_nonce: u64,
    /// Settlement stake, less the penalties due by the next block for hashes never revealed
    /// (the contract takes them at the sender's next settlement call).
    pub stake: Amount,
    /// Settlement rewards not yet claimed.
    pub rewards: Amount,
    /// Hashes committed, not yet revealed, whose deadline has not passed.
    pub pending_reveals: usize,
    /// Deposits of erased memberships, to withdraw.
    pub membership_deposits: Amount,
}

/// A membership as the RPC shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipView {
    /// What the registry records.
    pub info: MembershipInfo,
    /// Its state at the head block's timestamp.
    pub state: MembershipState,
    /// Its leaf, `H(id_commitment, rate_limit)`.
    pub rate_commitment: Digest,
}

/// A membership and its id commitment, as [`Chain::memberships`] lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The membership's id commitment (a Sheaf prover's `worker_pk`).
    pub id_commitment: Digest,
    /// The membership, its state taken at the list's timestamp.
    pub membership: MembershipView,
}

/// Every membership in the set at one block, so a follower knows when it was taken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipList {
    /// The head block's height.
    pub height: u64,
    /// The head block's timestamp, ms: the time each membership's state is taken at.
    pub timestamp_ms: u64,
    /// Every membership that exists (not erased), by leaf index.
    pub members: Vec<Member>,
}

/// The head of the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Blocks produced.
    pub height: u64,
    /// The head block's timestamp (genesis time at height 0).
    pub timestamp_ms: u64,
    /// Transactions waiting for a block.
    pub pending: usize,
}

/// Where settlement stands: what a proof sender polls.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementStatus {
    /// Blocks produced: the next transaction lands in block `height + 1`.
    pub height: u64,
    /// The contract's parameters (T1, T2, rewards, stake, penalties).
    pub params: SettlementParams,
    /// The key that registers sequences.
    pub coordinator: Address,
    /// The first registered sequence (0 before any registration).
    pub first_sequence: SequenceId,
    /// The number the next registration must take.
    pub next_sequence: SequenceId,
    /// The next sequence to finalize: all registered ones before it are finalized.
    pub next_to_finalize: SequenceId,
}

/// A registered sequence as the RPC shows it: the contract's record and the phase of its window
/// at the block a transaction sent now lands in (the head's next).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceView {
    /// The statement hash its root proof must carry.
    pub statement: Digest,
    /// Its current window, once a hash opened one.
    pub window: Option<Window>,
    /// Set by the first valid proof.
    pub finalized: Option<FinalizedSequence>,
    /// [`phase`] of the window at `height + 1`; `None` before a hash opened one.
    pub phase: Option<WindowPhase>,
    /// Jobs of its registered tree plan.
    #[serde(default)]
    pub planned_jobs: u64,
    /// What it owes its provers and has paid, once finalized.
    #[serde(default)]
    pub prover_rewards: Option<ProverRewards>,
    /// Blocks produced when the view was taken.
    pub height: u64,
}

/// What a registered sequence owes its provers, as the RPC shows it: what a claimant asks
/// before it proves a claim batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProverRewardsView {
    /// The sequence.
    pub sequence: SequenceId,
    /// Whether its root proof finalized it (nothing is owed before).
    pub finalized: bool,
    /// How its plan compared with the root's stats; `None` before finalization, and for a
    /// sequence finalized before prover rewards existed.
    pub plan: Option<PlanCheck>,
    /// Whether claims on it can be paid: finalized with a consistent plan.
    pub plan_consistent: bool,
    /// Jobs of its plan.
    pub jobs: u64,
    /// What it owes in all (zero until finalized with a consistent plan).
    pub owed: Amount,
    /// Paid to claims so far.
    pub paid: Amount,
    /// `owed − paid`: still to be claimed.
    pub remaining: Amount,
    /// Blocks produced when the view was taken.
    pub height: u64,
}

impl Chain {
    /// Height, head timestamp and pending transactions.
    pub fn head(&self) -> Head {
        let s = self.lock();
        Head {
            height: s.height,
            timestamp_ms: s.timestamp_ms(s.height),
            pending: s.mempool.len(),
        }
    }

    /// The receipt of an included transaction, if still kept.
    pub fn receipt(&self, hash: &TxHash) -> Option<Receipt> {
        self.lock()
            .receipts
            .iter()
            .rev()
            .find(|r| r.tx_hash == *hash)
            .cloned()
    }

    /// An account's balance, nonce, stake, rewards and owed deposits.
    pub fn account(&self, address: &Address) -> AccountView {
        let s = self.lock();
        let acc = s.accounts.get(address).cloned().unwrap_or_default();
        // As the next block's calls find it: penalties due are taken first.
        let settlement = s.settlement.account_at(address, s.height + 1);
        AccountView {
            address: *address,
            balance: acc.balance,
            nonce: acc.nonce,
            next_nonce: s.next_nonce(address),
            stake: settlement.stake,
            rewards: settlement.rewards,
            pending_reveals: settlement.pending.len(),
            membership_deposits: s.membership.deposit_to_withdraw(address),
        }
    }

    /// A registered sequence, with its window's phase at the head's next block.
    pub fn sequence(&self, sequence: SequenceId) -> Option<SequenceView> {
        let s = self.lock();
        let settlement = s.settlement.state();
        let seq = settlement.sequence(sequence)?.clone();
        let next_block = s.height + 1;
        Some(SequenceView {
            phase: seq
                .window
                .as_ref()
                .map(|w| phase(w.opened_at, next_block, &settlement.params)),
            statement: seq.statement,
            window: seq.window,
            finalized: seq.finalized,
            planned_jobs: seq.jobs.len() as u64,
            prover_rewards: seq.prover_rewards,
            height: s.height,
        })
    }

    /// What a registered sequence owes its provers, has paid and still owes.
    pub fn prover_rewards(&self, sequence: SequenceId) -> Option<ProverRewardsView> {
        let s = self.lock();
        let seq = s.settlement.state().sequence(sequence)?;
        let rewards = seq.prover_rewards.unwrap_or(ProverRewards {
            plan: PlanCheck::Empty,
            owed: Amount::ZERO,
            paid: Amount::ZERO,
        });
        let plan = seq.prover_rewards.map(|r| r.plan);
        Some(ProverRewardsView {
            sequence,
            finalized: seq.finalized.is_some(),
            plan,
            plan_consistent: plan == Some(PlanCheck::Consistent),
            jobs: seq.jobs.len() as u64,
            owed: rewards.owed,
            paid: rewards.paid,
            remaining: rewards.remaining(),
            height: s.height,
        })
    }

    /// Whether each of `nullifiers` has been spent by a paid claim, at the head.
    pub fn nullifiers_spent(&self, nullifiers: &[Digest]) -> Vec<bool> {
        self.lock().settlement.nullifiers_spent(nullifiers)
    }

    /// Where settlement stands at the head.
    pub fn settlement_status(&self) -> SettlementStatus {
        let s = self.lock();
        let state = s.settlement.state();
        SettlementStatus {
            height: s.height,
            params: state.params,
            coordinator: state.coordinator,
            first_sequence: state.first_sequence,
            next_sequence: state.next_sequence(),
            next_to_finalize: state.next_to_finalize,
        }
    }

    /// The record of a finalized sequence.
    pub fn finalized(&self, sequence: SequenceId) -> Option<FinalizedSequence> {
        self.lock().settlement.finalized(sequence).copied()
    }

    /// The settlement contract's whole state.
    pub fn settlement_state(&self) -> SettlementState {
        self.lock().settlement.state().clone()
    }

    /// A membership and its state at the head block's timestamp.
    pub fn membership(&self, id_commitment: &Digest) -> Option<MembershipView> {
        let s = self.lock();
        let now = s.timestamp_ms(s.height) / 1000;
        s.membership
            .membership(id_commitment)
            .map(|info| MembershipView {
                info: info.clone(),
                state: info.state(now),
                rate_commitment: rate_commitment(*id_commitment, info.rate_limit),
            })
    }

    /// Every membership in the set, by leaf index, with its state at the head block's
    /// timestamp. The set is at most `max_total_rate_limit / min_membership_rate_limit`
    /// memberships (8,000 with the default parameters), so one answer carries it whole.
    pub fn memberships(&self) -> MembershipList {
        let s = self.lock();
        let timestamp_ms = s.timestamp_ms(s.height);
        let now = timestamp_ms / 1000;
        let mut members: Vec<Member> = s
            .membership
            .memberships()
            .map(|(id_commitment, info)| Member {
                id_commitment: *id_commitment,
                membership: MembershipView {
                    info: info.clone(),
                    state: info.state(now),
                    rate_commitment: rate_commitment(*id_commitment, info.rate_limit),
                },
            })
            .collect();
        members.sort_by_key(|m| m.membership.info.index);
        MembershipList {
            height: s.height,
            timestamp_ms,
            members,
        }
    }

    /// The root of the membership tree.
    pub fn membership_root(&self) -> Digest {
        self.lock().membership.root()
    }

    /// The authentication path of the membership leaf at `index`.
    pub fn membership_proof(&self, index: u64) -> Result<MerkleProof, MembershipError> {
        self.lock().membership.merkle_proof(index)
    }
}
