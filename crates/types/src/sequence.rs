//! Sequence numbers.

use std::fmt;
use std::num::ParseIntError;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::sql::stored_as;

/// A sequence's number: sequences are planned, proved and settled in this order, and the number
/// is the same in the store, the API, the logs and on chain.
///
/// Stored as a `BIGINT`, so numbers above `i64::MAX` cannot be stored (encoding them fails).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct SequenceId(pub u64);

impl SequenceId {
    /// The number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The sequence after this one.
    pub const fn next(self) -> SequenceId {
        SequenceId(self.0 + 1)
    }

    /// The sequence before this one, `None` for 0.
    pub const fn prev(self) -> Option<SequenceId> {
        match self.0.checked_sub(1) {
            Some(n) => Some(SequenceId(n)),
            None => None,
        }
    }
}

impl From<u64> for SequenceId {
    fn from(n: u64) -> Self {
        SequenceId(n)
    }
}

impl fmt::Display for SequenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for SequenceId {
    type Err = ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(SequenceId)
    }
}

impl TryFrom<i64> for SequenceId {
    type Error = std::num::TryFromIntError;

    fn try_from(n: i64) -> Result<Self, Self::Error> {
        u64::try_from(n).map(SequenceId)
    }
}

stored_as!(
    SequenceId,
    i64,
    |s: &SequenceId| i64::try_from(s.0),
    SequenceId::try_from
);
