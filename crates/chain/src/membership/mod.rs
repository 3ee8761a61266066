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
//! Possession: the chain admits a registration only with a proof that its sender knows the
//! secret behind the id commitment ([`check_possession`], checked before the registry is called;
//! the registry itself keeps the contract's rules alone).
//!
//! Deposits: a registration owes [`MembershipParams::deposit_for`] (linear in the rate limit);
//! the chain moves the funds, the registry records them and credits the holder on erase.

use plonky2::field::types::Field;
use serde::{Deserialize, Serialize};
use sheaf_circuits::{Digest, F};

mod merkle;
mod possession;
mod registry;

pub use merkle::{MerkleProof, MerkleTree};
pub use possession::check_possession;
pub use registry::MembershipRegistry;
/// A holder's address is its ed25519 public key.
pub use sheaf_types::Address;
pub use sheaf_types::Amount;

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
/// Default price per message per epoch of rate limit: 0.05 tokens (REFERENCE's 0.05 · 10^18
/// wei, in Sheaf's unit of [`sheaf_types::BASE_UNITS_PER_TOKEN`]); the deposit is `rate_limit`
/// times this, 30 tokens at the largest rate limit.
pub const DEFAULT_PRICE_PER_MESSAGE: Amount = Amount(sheaf_types::BASE_UNITS_PER_TOKEN / 20);

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
    /// Deposit per unit of rate limit.
    pub price_per_message: Amount,
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
    pub fn deposit_for(&self, rate_limit: u32) -> Amount {
        Amount(u128::from(rate_limit) * self.price_per_message.0)
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
    /// The registration's proof of possession of the id commitment's secret is missing,
    /// malformed, or made for another id commitment, holder or chain (Sheaf's addition: it
    /// stops anyone from registering a prover's public `worker_pk` first).
    #[error("bad proof of possession of the id commitment's secret: {0}")]
    BadPossessionProof(String),
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
    pub deposit_amount: Amount,
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

/// One line, the id commitment in hex.
impl std::fmt::Display for MembershipEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MembershipEvent::MembershipRegistered {
                id_commitment,
                rate_limit,
                index,
            } => write!(
                f,
                "membership {id_commitment} registered at index {index}, rate limit {rate_limit}"
            ),
            MembershipEvent::MembershipExtended {
                id_commitment,
                rate_limit,
                index,
                new_grace_period_start,
            } => write!(
                f,
                "membership {id_commitment} (index {index}, rate limit {rate_limit}) extended: \
                 grace period from {new_grace_period_start} s"
            ),
            MembershipEvent::MembershipExpired {
                id_commitment,
                rate_limit,
                index,
            } => write!(
                f,
                "membership {id_commitment} (index {index}, rate limit {rate_limit}) expired"
            ),
            MembershipEvent::MembershipErased {
                id_commitment,
                rate_limit,
                index,
            } => write!(
                f,
                "membership {id_commitment} (index {index}, rate limit {rate_limit}) erased"
            ),
        }
    }
}

/// The rate commitment, a leaf of the membership tree: `H(id_commitment ‖ rate_limit)`.
pub fn rate_commitment(id_commitment: Digest, rate_limit: u32) -> Digest {
    let f = id_commitment.to_fields();
    Digest::hash(&[f[0], f[1], f[2], f[3], F::from_canonical_u32(rate_limit)])
}
