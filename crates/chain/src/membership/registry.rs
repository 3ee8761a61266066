//! The registry's storage and calls: register, extend, erase, withdraw, with the rate
//! accounting, the reuse of erased indices and the tree of rate commitments.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sheaf_circuits::Digest;

use super::{
    rate_commitment, Address, Amount, MembershipError, MembershipEvent, MembershipInfo,
    MembershipParams, MembershipState, MerkleProof, MerkleTree, Result,
};

/// The membership registry: memberships, rate accounting, index reuse, the tree and the deposits
/// owed (the contract's storage).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipRegistry {
    params: MembershipParams,
    memberships: BTreeMap<Digest, MembershipInfo>,
    /// Owed deposits, as pairs so that the state serializes to JSON.
    #[serde(with = "crate::pairs")]
    deposits_to_withdraw: BTreeMap<Address, Amount>,
    current_total_rate_limit: u64,
    next_free_index: u32,
    /// The LIFO reuse stack of erased indices.
    indices_of_lazily_erased_memberships: Vec<u32>,
    tree: MerkleTree,
}

impl MembershipRegistry {
    /// An empty registry, once `params` pass [`MembershipParams::validate`].
    pub fn new(params: MembershipParams) -> Result<Self> {
        params.validate()?;
        let tree = MerkleTree::new(params.tree_depth);
        Ok(MembershipRegistry {
            params,
            memberships: BTreeMap::new(),
            deposits_to_withdraw: BTreeMap::new(),
            current_total_rate_limit: 0,
            next_free_index: 0,
            indices_of_lazily_erased_memberships: Vec::new(),
            tree,
        })
    }

    /// The parameters new memberships get.
    pub fn params(&self) -> &MembershipParams {
        &self.params
    }

    /// Register `id_commitment` at `rate_limit` for `holder`, after lazily erasing the
    /// memberships of `erase_list` (whose rate this registration may reuse). Returns the erase
    /// events, then `MembershipRegistered`. The holder owes
    /// [`MembershipParams::deposit_for`]`(rate_limit)`. The contract's rules alone: the chain
    /// admits a registration only after [`super::check_possession`].
    pub fn register(
        &mut self,
        holder: Address,
        id_commitment: Digest,
        rate_limit: u32,
        erase_list: &[Digest],
        now: u64,
    ) -> Result<Vec<MembershipEvent>> {
        // The contract's modifiers, in order.
        if id_commitment == Digest::ZERO || Digest::from_bytes(&id_commitment.to_bytes()).is_none()
        {
            return Err(MembershipError::InvalidIdCommitment(id_commitment));
        }
        if self.memberships.contains_key(&id_commitment) {
            return Err(MembershipError::DuplicateIdCommitment(id_commitment));
        }
        if u64::from(self.next_free_index) >= self.params.max_membership_set_size() {
            return Err(MembershipError::MembershipSetIsFull);
        }
        let freed = self.check_erasable(holder, erase_list, now)?;
        if !self.params.is_valid_membership_rate_limit(rate_limit) {
            return Err(MembershipError::InvalidMembershipRateLimit(rate_limit));
        }
        // Saturating: a lowered cap may sit below the current total.
        let available = u64::from(self.params.max_total_rate_limit)
            .saturating_sub(self.current_total_rate_limit - freed);
        if u64::from(rate_limit) > available {
            return Err(MembershipError::CannotExceedMaxTotalRateLimit {
                requested: rate_limit,
                available,
            });
        }

        let mut events = self.apply_erase(erase_list, false, now);
        self.current_total_rate_limit += u64::from(rate_limit);
        let index = match self.indices_of_lazily_erased_memberships.pop() {
            Some(reused) => reused,
            None => {
                self.next_free_index += 1;
                self.next_free_index - 1
            }
        };
        self.memberships.insert(
            id_commitment,
            MembershipInfo {
                deposit_amount: self.params.deposit_for(rate_limit),
                active_duration: self.params.active_duration,
                grace_period_start: now + self.params.active_duration,
                grace_period: self.params.grace_period,
                rate_limit,
                index,
                holder,
            },
        );
        self.tree
            .set(u64::from(index), rate_commitment(id_commitment, rate_limit));
        tracing::debug!(
            target: "sheaf_chain::membership",
            %id_commitment, rate_limit, index, "membership registered"
        );
        events.push(MembershipEvent::MembershipRegistered {
            id_commitment,
            rate_limit,
            index,
        });
        Ok(events)
    }

    /// Extend memberships in their grace period, as their holder: each becomes Active until
    /// `grace_period_start + grace_period + active_duration` (the rest of the grace is kept).
    pub fn extend(
        &mut self,
        sender: Address,
        ids: &[Digest],
        now: u64,
    ) -> Result<Vec<MembershipEvent>> {
        // An extended membership is Active, so naming it twice fails like in the contract.
        let mut seen = BTreeSet::new();
        for id in ids {
            let in_grace = self
                .memberships
                .get(id)
                .filter(|m| m.state(now) == MembershipState::GracePeriod);
            let Some(m) = in_grace.filter(|_| seen.insert(*id)) else {
                return Err(MembershipError::CannotExtendNonGracePeriodMembership(*id));
            };
            if m.holder != sender {
                return Err(MembershipError::NonHolderCannotExtend(*id));
            }
        }
        let events = ids
            .iter()
            .map(|id| {
                let m = self.memberships.get_mut(id).expect("checked above");
                m.grace_period_start += m.grace_period + m.active_duration;
                MembershipEvent::MembershipExtended {
                    id_commitment: *id,
                    rate_limit: m.rate_limit,
                    index: m.index,
                    new_grace_period_start: m.grace_period_start,
                }
            })
            .collect();
        Ok(events)
    }

    /// Erase memberships: Expired ones by anyone, ones in grace by their holder. Their rate is
    /// freed, their deposits credited to their holders and their indices pushed on the reuse
    /// stack; with `cleanup` their leaves are zeroed too, otherwise they stay until reuse.
    pub fn erase(
        &mut self,
        sender: Address,
        ids: &[Digest],
        cleanup: bool,
        now: u64,
    ) -> Result<Vec<MembershipEvent>> {
        self.check_erasable(sender, ids, now)?;
        Ok(self.apply_erase(ids, cleanup, now))
    }

    /// Pay out what `holder` is owed from erased memberships; returns the amount.
    pub fn withdraw(&mut self, holder: Address) -> Result<Amount> {
        match self.deposits_to_withdraw.remove(&holder) {
            Some(amount) if !amount.is_zero() => Ok(amount),
            _ => Err(MembershipError::InsufficientDepositBalance),
        }
    }

    /// Set the cap on the total rate limit; it may not fall below the per-membership max.
    pub fn set_max_total_rate_limit(&mut self, value: u32) -> Result<()> {
        self.set_params(MembershipParams {
            max_total_rate_limit: value,
            ..self.params.clone()
        })
    }

    /// Set the per-membership max rate limit; it may not fall below the min.
    pub fn set_max_membership_rate_limit(&mut self, value: u32) -> Result<()> {
        self.set_params(MembershipParams {
            max_membership_rate_limit: value,
            ..self.params.clone()
        })
    }

    /// Set the per-membership min rate limit; positive and at most the max.
    pub fn set_min_membership_rate_limit(&mut self, value: u32) -> Result<()> {
        self.set_params(MembershipParams {
            min_membership_rate_limit: value,
            ..self.params.clone()
        })
    }

    /// Set the active duration of new memberships; positive.
    pub fn set_active_duration(&mut self, value: u64) -> Result<()> {
        self.set_params(MembershipParams {
            active_duration: value,
            ..self.params.clone()
        })
    }

    /// Set the grace period of new memberships; may be 0.
    pub fn set_grace_period(&mut self, value: u64) -> Result<()> {
        self.set_params(MembershipParams {
            grace_period: value,
            ..self.params.clone()
        })
    }

    fn set_params(&mut self, params: MembershipParams) -> Result<()> {
        params.validate()?;
        self.params = params;
        Ok(())
    }

    /// The membership of `id_commitment`, if it exists (not erased).
    pub fn membership(&self, id_commitment: &Digest) -> Option<&MembershipInfo> {
        self.memberships.get(id_commitment)
    }

    /// Every membership that exists (not erased), by id commitment.
    pub fn memberships(&self) -> impl Iterator<Item = (&Digest, &MembershipInfo)> {
        self.memberships.iter()
    }

    /// Whether a membership exists for `id_commitment` (`isInMembershipSet`).
    pub fn is_in_membership_set(&self, id_commitment: &Digest) -> bool {
        self.memberships.contains_key(id_commitment)
    }

    /// The state of `id_commitment`'s membership at `now`; `None` if none exists.
    pub fn state(&self, id_commitment: &Digest, now: u64) -> Option<MembershipState> {
        self.memberships.get(id_commitment).map(|m| m.state(now))
    }

    /// Whether `id_commitment` is Active or in grace at `now`: may it take work.
    pub fn is_active_or_grace(&self, id_commitment: &Digest, now: u64) -> bool {
        matches!(
            self.state(id_commitment, now),
            Some(MembershipState::Active | MembershipState::GracePeriod)
        )
    }

    /// Whether the membership is in its grace period at `now` (`isInGracePeriod`).
    pub fn is_in_grace_period(&self, id_commitment: &Digest, now: u64) -> bool {
        self.state(id_commitment, now) == Some(MembershipState::GracePeriod)
    }

    /// Whether the membership has expired at `now` (`isExpired`).
    pub fn is_expired(&self, id_commitment: &Digest, now: u64) -> bool {
        self.state(id_commitment, now) == Some(MembershipState::Expired)
    }

    /// When the membership expires (`membershipExpirationTimestamp`).
    pub fn membership_expiration_timestamp(&self, id_commitment: &Digest) -> Option<u64> {
        self.memberships
            .get(id_commitment)
            .map(MembershipInfo::expiration_timestamp)
    }

    /// Sum of the rate limits of all memberships (`currentTotalRateLimit`).
    pub fn current_total_rate_limit(&self) -> u64 {
        self.current_total_rate_limit
    }

    /// Next never-used index (`nextFreeIndex`).
    pub fn next_free_index(&self) -> u32 {
        self.next_free_index
    }

    /// Erased indices awaiting reuse, the next to reuse last.
    pub fn erased_indices(&self) -> &[u32] {
        &self.indices_of_lazily_erased_memberships
    }

    /// What `holder` may withdraw.
    pub fn deposit_to_withdraw(&self, holder: &Address) -> Amount {
        self.deposits_to_withdraw
            .get(holder)
            .copied()
            .unwrap_or_default()
    }

    /// Leaves `start..=end`, which must satisfy `start ≤ end < next_free_index`
    /// (`getRateCommitmentsInRangeBoundsInclusive`).
    pub fn rate_commitments_in_range(&self, start: u32, end: u32) -> Result<Vec<Digest>> {
        if start > end || end >= self.next_free_index {
            return Err(MembershipError::InvalidPaginationQuery { start, end });
        }
        Ok((start..=end)
            .map(|i| self.tree.leaf(u64::from(i)))
            .collect())
    }

    /// The Merkle tree of rate commitments.
    pub fn tree(&self) -> &MerkleTree {
        &self.tree
    }

    /// The root of the tree (`root`).
    pub fn root(&self) -> Digest {
        self.tree.root()
    }

    /// The authentication path of the leaf at `index` (`getMerkleProof`).
    pub fn merkle_proof(&self, index: u64) -> Result<MerkleProof> {
        self.tree.proof(index)
    }

    /// Check that every id of `ids` may be erased by `sender` at `now`, in order; returns the
    /// rate they free. Naming an id twice fails like in the contract: it no longer exists.
    fn check_erasable(&self, sender: Address, ids: &[Digest], now: u64) -> Result<u64> {
        let mut seen = BTreeSet::new();
        let mut freed = 0;
        for id in ids {
            let Some(m) = self.memberships.get(id).filter(|_| seen.insert(*id)) else {
                return Err(MembershipError::MembershipDoesNotExist(*id));
            };
            match m.state(now) {
                MembershipState::Active => {
                    return Err(MembershipError::CannotEraseActiveMembership(*id))
                }
                MembershipState::GracePeriod if m.holder != sender => {
                    return Err(MembershipError::NonHolderCannotEraseGracePeriodMembership(
                        *id,
                    ))
                }
                MembershipState::GracePeriod | MembershipState::Expired => {}
            }
            freed += u64::from(m.rate_limit);
        }
        Ok(freed)
    }

    /// Erase ids already checked by [`Self::check_erasable`].
    fn apply_erase(&mut self, ids: &[Digest], cleanup: bool, now: u64) -> Vec<MembershipEvent> {
        let mut events = Vec::with_capacity(2 * ids.len());
        for id in ids {
            let m = self.memberships.remove(id).expect("checked erasable");
            *self.deposits_to_withdraw.entry(m.holder).or_default() += m.deposit_amount;
            self.current_total_rate_limit -= u64::from(m.rate_limit);
            self.indices_of_lazily_erased_memberships.push(m.index);
            if cleanup {
                self.tree.set(u64::from(m.index), Digest::ZERO);
            }
            if m.state(now) == MembershipState::Expired {
                events.push(MembershipEvent::MembershipExpired {
                    id_commitment: *id,
                    rate_limit: m.rate_limit,
                    index: m.index,
                });
            }
            tracing::debug!(
                target: "sheaf_chain::membership",
                id_commitment = %id, index = m.index, cleanup, "membership erased"
            );
            events.push(MembershipEvent::MembershipErased {
                id_commitment: *id,
                rate_limit: m.rate_limit,
                index: m.index,
            });
        }
        events
    }
}
