//! The contract's calls: registration, stake, the two-step commit and reveal, penalties and
//! rewards. Which phase a window is in comes from [`phase`] alone.

use sheaf_circuits::Digest;

use super::claims::{checked_plan, owed_at_finalization};
use super::phase::{phase, WindowPhase};
use super::{
    proof_hash, Account, Address, Amount, Commitment, FinalizedSequence, PenaltyReason,
    PendingReveal, PlannedJob, Result, RootVerifier, Sequence, SequenceId, SettlementError,
    SettlementEvent, SettlementParams, SettlementState, Window,
};

/// The contract: its state and the verifier of root proofs.
#[derive(Debug)]
pub struct SettlementContract<V> {
    pub(super) state: SettlementState,
    pub(super) verifier: V,
}

impl<V: RootVerifier> SettlementContract<V> {
    /// A new contract whose sequences are registered by `coordinator`.
    pub fn new(params: SettlementParams, coordinator: Address, verifier: V) -> Result<Self> {
        if params.hash_window_blocks == 0 {
            return Err(SettlementError::InvalidParameters("T1 must be at least 1"));
        }
        if params.proof_window_blocks == 0 {
            return Err(SettlementError::InvalidParameters("T2 must be at least 1"));
        }
        let state = SettlementState {
            params,
            coordinator,
            first_sequence: SequenceId(0),
            sequences: Vec::new(),
            next_to_finalize: SequenceId(0),
            accounts: Default::default(),
            slashed: Amount::ZERO,
            last_block: 0,
            spent_nullifiers: Default::default(),
        };
        Ok(SettlementContract { state, verifier })
    }

    /// The contract with a persisted state.
    pub fn from_state(state: SettlementState, verifier: V) -> Self {
        SettlementContract { state, verifier }
    }

    /// Its state, to persist or inspect.
    pub fn state(&self) -> &SettlementState {
        &self.state
    }

    /// Put back a state taken with [`SettlementContract::state`] (a rolled-back block).
    pub(crate) fn restore(&mut self, state: SettlementState) {
        self.state = state;
    }

    /// Its parameters.
    pub fn params(&self) -> &SettlementParams {
        &self.state.params
    }

    /// The record of a finalized sequence.
    pub fn finalized(&self, sequence: SequenceId) -> Option<&FinalizedSequence> {
        self.state
            .sequence(sequence)
            .and_then(|s| s.finalized.as_ref())
    }

    /// A sender's account (empty if unknown).
    pub fn account(&self, sender: &Address) -> Account {
        self.state.account(sender)
    }

    /// A sender's account as a call in `block` finds it: the penalties due by then for hashes
    /// never revealed taken, as the call's first step takes them. The stake a sender may commit
    /// with: one whose due penalties take it below the minimum has its next hash refused.
    pub fn account_at(&self, sender: &Address, block: u64) -> Account {
        let mut account = self.state.account(sender);
        self.liquidate(sender, &mut account, block, &mut Vec::new());
        account
    }

    /// Register the next sequence with the statement hash its root proof must carry and its
    /// tree plan, what it will owe whoever proves each job (empty: no prover rewards).
    pub fn register_sequence(
        &mut self,
        caller: &Address,
        sequence: SequenceId,
        statement: Digest,
        jobs: Vec<PlannedJob>,
    ) -> Result<Vec<SettlementEvent>> {
        if *caller != self.state.coordinator {
            return Err(SettlementError::NotCoordinator);
        }
        // The first registration fixes the numbering.
        let expected = if self.state.sequences.is_empty() {
            sequence
        } else {
            self.state.next_sequence()
        };
        if sequence != expected {
            return Err(SettlementError::SequenceOutOfOrder {
                expected,
                got: sequence,
            });
        }
        let jobs = checked_plan(jobs)?;
        if self.state.sequences.is_empty() {
            self.state.first_sequence = sequence;
            self.state.next_to_finalize = sequence;
        }
        self.state.sequences.push(Sequence {
            statement,
            window: None,
            finalized: None,
            jobs,
            prover_rewards: None,
        });
        Ok(emit(vec![SettlementEvent::SequenceRegistered {
            sequence,
            statement,
        }]))
    }

    /// Add `amount` to `sender`'s stake.
    pub fn deposit_stake(&mut self, sender: &Address, amount: Amount) -> Vec<SettlementEvent> {
        let mut account = self.state.account(sender);
        account.stake = account.stake.saturating_add(amount);
        let stake = account.stake;
        self.state.set_account(*sender, account);
        emit(vec![SettlementEvent::StakeDeposited {
            sender: *sender,
            amount,
            stake,
        }])
    }

    /// Withdraw `amount` of stake, after settling the penalties due; refused while a hash of the
    /// sender can still be revealed or penalized.
    pub fn withdraw_stake(
        &mut self,
        sender: &Address,
        amount: Amount,
        block: u64,
    ) -> Result<Vec<SettlementEvent>> {
        self.check_block(block)?;
        let mut account = self.state.account(sender);
        let mut events = Vec::new();
        let slashed = self.liquidate(sender, &mut account, block, &mut events);
        if !account.pending.is_empty() {
            return Err(SettlementError::StakeLocked {
                pending: account.pending.len(),
            });
        }
        if amount > account.stake {
            return Err(SettlementError::WithdrawalExceedsStake {
                amount,
                stake: account.stake,
            });
        }
        account.stake -= amount;
        events.push(SettlementEvent::StakeWithdrawn {
            sender: *sender,
            amount,
            stake: account.stake,
        });
        self.commit_account(*sender, account, slashed, block);
        Ok(emit(events))
    }

    /// Pay out `sender`'s settlement rewards; returns the amount.
    pub fn withdraw_rewards(&mut self, sender: &Address) -> (Amount, Vec<SettlementEvent>) {
        let mut account = self.state.account(sender);
        let amount = std::mem::take(&mut account.rewards);
        self.state.set_account(*sender, account);
        let events = emit(vec![SettlementEvent::RewardsWithdrawn {
            sender: *sender,
            amount,
        }]);
        (amount, events)
    }

    /// Apply the penalties due to `sender` for hashes never revealed. Anyone may call it.
    pub fn settle(&mut self, sender: &Address, block: u64) -> Result<Vec<SettlementEvent>> {
        self.check_block(block)?;
        let mut account = self.state.account(sender);
        let mut events = Vec::new();
        let slashed = self.liquidate(sender, &mut account, block, &mut events);
        self.commit_account(*sender, account, slashed, block);
        Ok(emit(events))
    }

    /// Commit `hash` (see [`proof_hash`]) for `sequence` in `block`. The first hash opens the
    /// window; hashes are accepted in `[f, f+T1)`, one per sender per window; a window closed
    /// with no valid proof reopens with the next hash.
    pub fn submit_proof_hash(
        &mut self,
        sender: &Address,
        sequence: SequenceId,
        hash: [u8; 32],
        block: u64,
    ) -> Result<Vec<SettlementEvent>> {
        self.check_block(block)?;
        let params = self.state.params;
        let seq = self
            .state
            .sequence(sequence)
            .ok_or(SettlementError::UnknownSequence(sequence))?;
        if seq.finalized.is_some() {
            return Err(SettlementError::SequenceAlreadyFinalized(sequence));
        }
        // The window still running, if any: one that has closed is reopened by this hash.
        let running = seq
            .window
            .as_ref()
            .filter(|w| phase(w.opened_at, block, &params) != WindowPhase::Closed);
        if let Some(window) = running {
            if window.commitment(sender).is_some() {
                return Err(SettlementError::DuplicateProofHash(sequence));
            }
            if phase(window.opened_at, block, &params) == WindowPhase::Proof {
                return Err(SettlementError::HashWindowClosed {
                    sequence,
                    closed_at: params.proof_phase_start(window.opened_at),
                });
            }
        }
        let mut account = self.state.account(sender);
        let mut events = Vec::new();
        let slashed = self.liquidate(sender, &mut account, block, &mut events);
        if account.stake < params.min_stake {
            return Err(SettlementError::InsufficientStake {
                stake: account.stake,
                min_stake: params.min_stake,
            });
        }

        let reopened = seq.window.is_some();
        let opens = running.is_none();
        let index = self.state.index(sequence).expect("checked above");
        let seq = &mut self.state.sequences[index];
        if opens {
            seq.window = Some(Window {
                opened_at: block,
                total_stake: Amount::ZERO,
                commitments: Vec::new(),
            });
            events.push(SettlementEvent::WindowOpened {
                sequence,
                block,
                reopened,
            });
        }
        let window = seq.window.as_mut().expect("a window is open");
        window.total_stake = window.total_stake.saturating_add(account.stake);
        window.commitments.push((
            *sender,
            Commitment {
                hash,
                stake: account.stake,
                block,
                revealed: false,
            },
        ));
        account.pending.push(PendingReveal {
            sequence,
            hash_block: block,
        });
        events.push(SettlementEvent::ProofHashSubmitted {
            sequence,
            sender: *sender,
            hash,
            stake: account.stake,
        });
        self.commit_account(*sender, account, slashed, block);
        Ok(emit(events))
    }

    /// Reveal the proof committed to for `sequence`, in `[f+T1, f+T1+T2)`. A proof that does not
    /// match the hash, does not verify or proves another statement is penalized (the call
    /// succeeds, as in REFERENCE §1.5); a valid one is paid, and the first finalizes the sequence.
    pub fn submit_proof(
        &mut self,
        sender: &Address,
        sequence: SequenceId,
        proof: &[u8],
        block: u64,
    ) -> Result<Vec<SettlementEvent>> {
        self.check_block(block)?;
        let params = self.state.params;
        let next = self.state.next_to_finalize;
        let seq = self
            .state
            .sequence(sequence)
            .ok_or(SettlementError::UnknownSequence(sequence))?;
        if sequence > next {
            return Err(SettlementError::PreviousSequenceNotFinalized { sequence, next });
        }
        let window = seq
            .window
            .as_ref()
            .ok_or(SettlementError::WindowNotOpen(sequence))?;
        match phase(window.opened_at, block, &params) {
            WindowPhase::Hash => {
                return Err(SettlementError::ProofTooEarly {
                    sequence,
                    opens_at: params.proof_phase_start(window.opened_at),
                })
            }
            WindowPhase::Closed => {
                return Err(SettlementError::ProofTooLate {
                    sequence,
                    closed_at: params.window_end(window.opened_at),
                })
            }
            WindowPhase::Proof => {}
        }
        let commitment = *window
            .commitment(sender)
            .ok_or(SettlementError::NoProofHash(sequence))?;
        if commitment.revealed {
            return Err(SettlementError::AlreadyRevealed(sequence));
        }
        let total_stake = window.total_stake;
        let statement = seq.statement;

        let verdict = if proof_hash(proof, sender) != commitment.hash {
            Err(PenaltyReason::WrongHash)
        } else {
            match self.verifier.verify(proof) {
                Err(e) => Err(PenaltyReason::InvalidProof(e)),
                Ok(header) if header.statement != statement => Err(PenaltyReason::WrongStatement {
                    expected: statement,
                    got: header.statement,
                }),
                Ok(header) => Ok(header),
            }
        };

        let mut account = self.state.account(sender);
        account
            .pending
            .retain(|p| (p.sequence, p.hash_block) != (sequence, commitment.block));
        let mut events = Vec::new();
        let mut slashed = Amount::ZERO;
        let index = self.state.index(sequence).expect("checked above");
        let seq = &mut self.state.sequences[index];
        let window = seq.window.as_mut().expect("checked above");
        if let Some((_, c)) = window.commitments.iter_mut().find(|(a, _)| a == sender) {
            c.revealed = true;
        }
        match verdict {
            Err(reason) => {
                slashed += penalize(
                    sender,
                    &mut account,
                    sequence,
                    reason,
                    params.wrong_hash_penalty,
                    &mut events,
                );
            }
            Ok(header) => {
                if seq.finalized.is_none() {
                    seq.finalized = Some(FinalizedSequence {
                        statement,
                        commitment: header.commitment,
                        stats: header.stats,
                        sender: *sender,
                        block,
                    });
                    self.state.next_to_finalize = self.state.next_to_finalize.next();
                    events.push(SettlementEvent::SequenceFinalized {
                        sequence,
                        commitment: header.commitment,
                        stats: header.stats,
                        sender: *sender,
                    });
                    let (owed, event) = owed_at_finalization(
                        sequence,
                        &seq.jobs,
                        &header.stats,
                        params.prover_reward_per_unit,
                    );
                    seq.prover_rewards = Some(owed);
                    events.extend(event);
                }
                let amount = pro_rata(params.reward_per_sequence, commitment.stake, total_stake);
                account.rewards = account.rewards.saturating_add(amount);
                events.push(SettlementEvent::SenderPaid {
                    sequence,
                    sender: *sender,
                    amount,
                });
            }
        }
        slashed += self.liquidate(sender, &mut account, block, &mut events);
        self.commit_account(*sender, account, slashed, block);
        Ok(emit(events))
    }

    fn check_block(&self, block: u64) -> Result<()> {
        if block < self.state.last_block {
            return Err(SettlementError::BlockWentBackwards {
                block,
                last: self.state.last_block,
            });
        }
        Ok(())
    }

    /// Penalize the hashes of `account` never revealed whose deadline
    /// (`block − hash_block > T1 + T2`, REFERENCE §1.5) has passed; returns the stake taken.
    fn liquidate(
        &self,
        sender: &Address,
        account: &mut Account,
        block: u64,
        events: &mut Vec<SettlementEvent>,
    ) -> Amount {
        let params = self.state.params;
        let (due, pending): (Vec<_>, Vec<_>) = account
            .pending
            .iter()
            .partition(|p| block - p.hash_block > params.window_blocks());
        account.pending = pending;
        due.iter()
            .map(|p| {
                penalize(
                    sender,
                    account,
                    p.sequence,
                    PenaltyReason::NeverRevealed,
                    params.no_reveal_penalty,
                    events,
                )
            })
            .sum()
    }

    fn commit_account(&mut self, sender: Address, account: Account, slashed: Amount, block: u64) {
        self.state.set_account(sender, account);
        self.state.slashed = self.state.slashed.saturating_add(slashed);
        self.state.last_block = block;
    }
}

/// Take `penalty` (or all that is left) from `account`'s stake; returns the amount taken.
fn penalize(
    sender: &Address,
    account: &mut Account,
    sequence: SequenceId,
    reason: PenaltyReason,
    penalty: Amount,
    events: &mut Vec<SettlementEvent>,
) -> Amount {
    let amount = penalty.min(account.stake);
    account.stake -= amount;
    events.push(SettlementEvent::SenderPenalized {
        sequence,
        sender: *sender,
        reason,
        amount,
    });
    amount
}

/// `reward · stake / total`, rounded down. Both are scaled down together in the (unrealistic)
/// case where the product overflows.
fn pro_rata(reward: Amount, stake: Amount, total: Amount) -> Amount {
    let (reward, mut stake, mut total) = (reward.0, stake.0, total.0);
    if total == 0 {
        return Amount::ZERO;
    }
    loop {
        if let Some(product) = reward.checked_mul(stake) {
            return Amount(product / total);
        }
        stake >>= 1;
        total >>= 1;
    }
}

pub(super) fn emit(events: Vec<SettlementEvent>) -> Vec<SettlementEvent> {
    for event in &events {
        tracing::debug!(target: "sheaf_chain::settlement", ?event, "settlement event");
    }
    events
}
