//! The RLNv2 membership registry: who may prove, at which rate, as a native state machine.
//!
//! A port of the Waku RLNv2 contract (`waku-org/waku-rlnv2-contract`, REFERENCE §3). Each
//! membership binds an `id_commitment` to a rate limit and a holder; its rate commitment
//! `H(id_commitment, rate_limit)` is a leaf of a depth-20 Poseidon Merkle tree, whose root and
//! paths the chain serves so that members prove inclusion. Time is passed in explicitly (block
//! timestamps, seconds); the registry does no I/O.
//!
//! ```text
//!                  register                  now ≥ gps              now ≥ gps + G
//!   NonExistent ─────────────▶ Active ─────────────────▶ GracePeriod ─────────────▶ Expired
//!                                ▲                        │      │                    │
//!                                └── extend (holder) ─────┘      │ erase (holder)     │ erase (anyone),
//!                                    gps' = gps + G + A          │                    │ or named in a
//!                                                                ▼                    ▼ register's erase list
//!                                                   Erased: deleted, deposit owed to the holder
//!                                                                │
//!                                                                ▼ withdraw (holder)
//!                                                           funds paid
//! ```
//!
//! `gps` is the membership's grace-period start, `A` its active duration, `G` its grace period
//! (both fixed at registration). Intervals are half-open, the start included: Active is
//! `now < gps`, GracePeriod is `gps ≤ now < gps + G`, Expired is `now ≥ gps + G`; with `G = 0`
//! a membership goes straight from Active to Expired. States are never stored: they are computed
//! from `now` on every call.
//!
//! Failure semantics: every mutating call either succeeds completely or returns the contract's
//! revert reason ([`MembershipError`]) and leaves the registry unchanged. Successful calls return
//! the events the contract emits ([`MembershipEvent`]).
//!
//! Index reuse: erased indices go on a stack and are reused last-in first-out. Erasing is lazy,
//! as in the contract: the leaf stays in the tree until its index is reused, unless the eraser
//! asks for clean-up, which zeroes it. The set is full when `next_free_index` reaches
//! `2^depth`, even if erased indices could be reused (the contract's check).
//!
//! Deposits: a registration owes [`MembershipParams::deposit_for`] (linear in the rate limit);
//! the chain moves the funds, the registry records them and credits the holder on erase.

use std::collections::{BTreeMap, BTreeSet};

use plonky2::field::types::Field;
use serde::{Deserialize, Serialize};
use sheaf_circuits::{Digest, F};

mod merkle;

pub use merkle::{MerkleProof, MerkleTree};
/// A holder's address is its ed25519 public key.
pub use sheaf_types::Address;

/// The registry's result type.
pub type Result<T, E = MembershipError> = std::result::Result<T, E>;

/// Depth of the membership Merkle tree (the contract's `MERKLE_TREE_DEPTH`).
pub const MERKLE_TREE_DEPTH: u32 = 20;
/// Most memberships the tree holds (`2^MERKLE_TREE_DEPTH`, the contract's
/// `MAX_MEMBERSHIP_SET_SIZE`).
pub const MAX_MEMBERSHIP_SET_SIZE: u32 = 1 << MERKLE_TREE_DEPTH;
/// Default cap on the sum of all rate limits, in messages per epoch. Deployed value; it bounds
/// the load the whole network can put on the coordinator.
pub const DEFAULT_MAX_TOTAL_RATE_LIMIT: u32 = 160_000;
/// Default smallest rate limit of one membership. Deployed value; a floor keeps tiny
/// memberships from fragmenting the set.
pub const DEFAULT_MIN_MEMBERSHIP_RATE_LIMIT: u32 = 20;
/// Default largest rate limit of one membership. Deployed value; a ceiling keeps one holder from
/// taking the whole total.
pub const DEFAULT_MAX_MEMBERSHIP_RATE_LIMIT: u32 = 600;
/// Default active duration of a new membership, in seconds (180 days). Longer means fewer
/// extensions but slower recycling of abandoned rate.
pub const DEFAULT_ACTIVE_DURATION_SECS: u64 = 180 * 24 * 3600;
/// Default grace period of a new membership, in seconds (30 days; may be 0). The window in which
/// only the holder may extend or erase.
pub const DEFAULT_GRACE_PERIOD_SECS: u64 = 30 * 24 * 3600;
/// Default price per message per epoch of rate limit, in base token units (0.05 · 10^18): the
/// deposit is `rate_limit` times this.
pub const DEFAULT_PRICE_PER_MESSAGE: u128 = 50_000_000_000_000_000;

/// The registry's parameters. Changes apply to new memberships only: each membership keeps the
/// active duration and grace period it was registered with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipParams {
    /// Cap on the sum of the rate limits of all memberships (`maxTotalRateLimit`).
    pub max_total_rate_limit: u32,
    /// Smallest rate limit of one membership (`minMembershipRateLimit`).
    pub min_membership_rate_limit: u32,
    /// Largest rate limit of one membership (`maxMembershipRateLimit`).
    pub max_membership_rate_limit: u32,
    /// Active duration of new memberships, seconds (`activeDurationForNewMemberships`).
    pub active_duration: u64,
    /// Grace period of new memberships, seconds, possibly 0
    /// (`gracePeriodDurationForNewMemberships`).
    pub grace_period: u64,
    /// Deposit per unit of rate limit, base token units.
    pub price_per_message: u128,
    /// Depth of the Merkle tree; the set holds `2^tree_depth` memberships. Fixed at creation.
    pub tree_depth: u32,
}

impl Default for MembershipParams {
    fn default() -> Self {
        MembershipParams {
            max_total_rate_limit: DEFAULT_MAX_TOTAL_RATE_LIMIT,
            min_membership_rate_limit: DEFAULT_MIN_MEMBERSHIP_RATE_LIMIT,
            max_membership_rate_limit: DEFAULT_MAX_MEMBERSHIP_RATE_LIMIT,
            active_duration: DEFAULT_ACTIVE_DURATION_SECS,
            grace_period: DEFAULT_GRACE_PERIOD_SECS,
            price_per_message: DEFAULT_PRICE_PER_MESSAGE,
            tree_depth: MERKLE_TREE_DEPTH,
        }
    }
}

impl MembershipParams {
    /// The contract's initializer invariants: `0 < min ≤ max ≤ max_total`, `active_duration > 0`,
    /// and a tree depth of 1 to 32.
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason| Err(MembershipError::InvalidParameters { reason });
        if self.min_membership_rate_limit == 0 {
            return invalid("min membership rate limit must be positive");
        }
        if self.min_membership_rate_limit > self.max_membership_rate_limit {
            return invalid("min membership rate limit exceeds the max");
        }
        if self.max_membership_rate_limit > self.max_total_rate_limit {
            return invalid("max membership rate limit exceeds the max total");
        }
        if self.active_duration == 0 {
            return invalid("active duration must be positive");
        }
        if self.tree_depth == 0 || self.tree_depth > 32 {
            return invalid("tree depth must be 1 to 32");
        }
        Ok(())
    }

    /// Most memberships the set holds: `2^tree_depth`.
    pub fn max_membership_set_size(&self) -> u64 {
        1u64 << self.tree_depth
    }

    /// Whether `min ≤ rate_limit ≤ max` (`isValidMembershipRateLimit`).
    pub fn is_valid_membership_rate_limit(&self, rate_limit: u32) -> bool {
        (self.min_membership_rate_limit..=self.max_membership_rate_limit).contains(&rate_limit)
    }

    /// The deposit a registration at `rate_limit` owes (`LinearPriceCalculator`).
    pub fn deposit_for(&self, rate_limit: u32) -> u128 {
        u128::from(rate_limit) * self.price_per_message
    }
}

/// Why a call was refused: the contract's revert reasons, one each.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    /// The id commitment is not a valid field element, or is zero (`InvalidIdCommitment`).
    #[error("invalid id commitment {0}")]
    InvalidIdCommitment(Digest),
    /// A membership already exists for this id commitment (`noDuplicateMembership`).
    #[error("duplicate idCommitment: membership already exists: {0}")]
    DuplicateIdCommitment(Digest),
    /// Every index has been handed out once (`membershipSetNotFull`); checked on
    /// `next_free_index`, so it holds even when erased indices could be reused.
    #[error("membership set is full")]
    MembershipSetIsFull,
    /// No membership exists for this id commitment (`MembershipDoesNotExist`).
    #[error("membership does not exist: {0}")]
    MembershipDoesNotExist(Digest),
    /// The membership is still Active, so nobody may erase it (`CannotEraseActiveMembership`).
    #[error("cannot erase active membership {0}")]
    CannotEraseActiveMembership(Digest),
    /// The membership is in its grace period and only its holder may erase it
    /// (`NonHolderCannotEraseGracePeriodMembership`).
    #[error("non-holder cannot erase grace period membership {0}")]
    NonHolderCannotEraseGracePeriodMembership(Digest),
    /// The rate limit is outside `[min, max]` (`InvalidMembershipRateLimit`).
    #[error("invalid membership rate limit {0}")]
    InvalidMembershipRateLimit(u32),
    /// The registration would take the total rate limit above its cap
    /// (`CannotExceedMaxTotalRateLimit`).
    #[error("cannot exceed max total rate limit: {requested} requested, {available} available")]
    CannotExceedMaxTotalRateLimit {
        /// The rate limit asked for.
        requested: u32,
        /// What the cap leaves, after the erase list is taken into account.
        available: u64,
    },
    /// Only a membership in its grace period can be extended
    /// (`CannotExtendNonGracePeriodMembership`); this includes one that does not exist.
    #[error("cannot extend non grace period membership {0}")]
    CannotExtendNonGracePeriodMembership(Digest),
    /// Only the holder may extend a membership (`NonHolderCannotExtend`).
    #[error("non-holder cannot extend membership {0}")]
    NonHolderCannotExtend(Digest),
    /// The holder has no deposit to withdraw ("Insufficient deposit balance").
    #[error("insufficient deposit balance")]
    InsufficientDepositBalance,
    /// A range query is not `start ≤ end < next_free_index` (`InvalidPaginationQuery`).
    #[error("invalid pagination query: start {start}, end {end}")]
    InvalidPaginationQuery {
        /// First index asked for.
        start: u32,
        /// Last index asked for, inclusive.
        end: u32,
    },
    /// A Merkle proof was asked for an index outside the tree.
    #[error("leaf index {0} is outside the tree")]
    LeafIndexOutOfRange(u64),
    /// Parameters break the contract's invariants (the initializer's and setters' `require`s).
    #[error("invalid parameters: {reason}")]
    InvalidParameters {
        /// Which invariant.
        reason: &'static str,
    },
}

/// Where a membership is in its life, computed from the time (REFERENCE §3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipState {
    /// `now < grace_period_start`: the membership may prove.
    Active,
    /// `grace_period_start ≤ now < grace_period_start + grace_period`: still in the set; the
    /// holder may extend or erase it.
    GracePeriod,
    /// `now ≥ grace_period_start + grace_period`: still in the set until someone erases it.
    Expired,
}

/// What the registry records about one membership (the contract's `MembershipInfo`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipInfo {
    /// Deposit paid at registration, credited back to the holder on erase.
    pub deposit_amount: u128,
    /// Active duration the membership was registered with, seconds.
    pub active_duration: u64,
    /// When the grace period starts (the end of the active period), seconds.
    pub grace_period_start: u64,
    /// Grace period the membership was registered with, seconds.
    pub grace_period: u64,
    /// Messages per epoch.
    pub rate_limit: u32,
    /// Leaf index in the Merkle tree.
    pub index: u32,
    /// Who registered it, and alone may extend it or erase it in grace.
    pub holder: Address,
}

impl MembershipInfo {
    /// The membership's state at `now`.
    pub fn state(&self, now: u64) -> MembershipState {
        if now < self.grace_period_start {
            MembershipState::Active
        } else if now < self.expiration_timestamp() {
            MembershipState::GracePeriod
        } else {
            MembershipState::Expired
        }
    }

    /// When the membership expires: the end of its grace period.
    pub fn expiration_timestamp(&self) -> u64 {
        self.grace_period_start + self.grace_period
    }
}

/// What a successful call emits, in the contract's order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipEvent {
    /// A membership was registered at `index` (`MembershipRegistered`).
    MembershipRegistered {
        /// Its id commitment.
        id_commitment: Digest,
        /// Its rate limit.
        rate_limit: u32,
        /// Its leaf index.
        index: u32,
    },
    /// A membership in grace was extended (`MembershipExtended`).
    MembershipExtended {
        /// Its id commitment.
        id_commitment: Digest,
        /// Its rate limit.
        rate_limit: u32,
        /// Its leaf index.
        index: u32,
        /// Its new grace-period start.
        new_grace_period_start: u64,
    },
    /// An expired membership is being erased; always followed by [`Self::MembershipErased`]
    /// (`MembershipExpired`).
    MembershipExpired {
        /// Its id commitment.
        id_commitment: Digest,
        /// Its rate limit.
        rate_limit: u32,
        /// Its leaf index.
        index: u32,
    },
    /// A membership was erased and its deposit credited to its holder (`MembershipErased`).
    MembershipErased {
        /// Its id commitment.
        id_commitment: Digest,
        /// Its rate limit.
        rate_limit: u32,
        /// Its leaf index, now on the reuse stack.
        index: u32,
    },
}

/// The rate commitment, a leaf of the membership tree: `H(id_commitment ‖ rate_limit)`.
pub fn rate_commitment(id_commitment: Digest, rate_limit: u32) -> Digest {
    let f = id_commitment.to_fields();
    Digest::hash(&[f[0], f[1], f[2], f[3], F::from_canonical_u32(rate_limit)])
}

/// The membership registry: memberships, rate accounting, index reuse, the tree and the deposits
/// owed (the contract's storage).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipRegistry {
    params: MembershipParams,
    memberships: BTreeMap<Digest, MembershipInfo>,
    /// Owed deposits, as pairs so that the state serializes to JSON.
    #[serde(with = "pairs")]
    deposits_to_withdraw: BTreeMap<Address, u128>,
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
    /// [`MembershipParams::deposit_for`]`(rate_limit)`.
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
    pub fn withdraw(&mut self, holder: Address) -> Result<u128> {
        match self.deposits_to_withdraw.remove(&holder) {
            Some(amount) if amount > 0 => Ok(amount),
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
    pub fn deposit_to_withdraw(&self, holder: &Address) -> u128 {
        self.deposits_to_withdraw.get(holder).copied().unwrap_or(0)
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

/// Serializes a map with non-string keys as a sequence of pairs.
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, K, V, D>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}
