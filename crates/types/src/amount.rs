//! Token amounts.

use std::fmt;
use std::iter::Sum;
use std::num::ParseIntError;
use std::ops::{Add, AddAssign, Sub, SubAssign};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::sql::stored_as;

/// Base units in one token.
pub const BASE_UNITS_PER_TOKEN: u128 = 1_000_000_000;

/// An amount of the chain's token, in base units ([`BASE_UNITS_PER_TOKEN`] to a token).
///
/// `+` and `-` panic on overflow like the integers they wrap (in every build profile); code
/// that handles amounts from outside uses [`Amount::checked_add`] and [`Amount::checked_sub`].
/// Stored as decimal text (`u128` has no SQL type).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Amount(pub u128);

impl Amount {
    /// Nothing.
    pub const ZERO: Amount = Amount(0);

    /// `tokens` whole tokens.
    pub const fn tokens(tokens: u128) -> Amount {
        Amount(tokens * BASE_UNITS_PER_TOKEN)
    }

    /// The amount in base units.
    pub const fn base_units(self) -> u128 {
        self.0
    }

    /// `self + other`, `None` on overflow.
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    /// `self - other`, `None` below zero.
    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }

    /// `self + other`, at most the largest amount.
    pub fn saturating_add(self, other: Amount) -> Amount {
        Amount(self.0.saturating_add(other.0))
    }

    /// `self - other`, at least zero.
    pub fn saturating_sub(self, other: Amount) -> Amount {
        Amount(self.0.saturating_sub(other.0))
    }

    /// Whether the amount is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl Add for Amount {
    type Output = Amount;

    fn add(self, other: Amount) -> Amount {
        Amount(self.0.checked_add(other.0).expect("amount overflow"))
    }
}

impl Sub for Amount {
    type Output = Amount;

    fn sub(self, other: Amount) -> Amount {
        Amount(self.0.checked_sub(other.0).expect("amount underflow"))
    }
}

impl AddAssign for Amount {
    fn add_assign(&mut self, other: Amount) {
        *self = *self + other;
    }
}

impl SubAssign for Amount {
    fn sub_assign(&mut self, other: Amount) {
        *self = *self - other;
    }
}

impl Sum for Amount {
    fn sum<I: Iterator<Item = Amount>>(iter: I) -> Amount {
        iter.fold(Amount::ZERO, Add::add)
    }
}

impl From<u128> for Amount {
    fn from(units: u128) -> Self {
        Amount(units)
    }
}

/// Tokens with up to nine decimals, then the base units: `1.5 tokens (1500000000 units)`.
impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / BASE_UNITS_PER_TOKEN;
        let frac = self.0 % BASE_UNITS_PER_TOKEN;
        if frac == 0 {
            write!(f, "{whole} tokens ({} units)", self.0)
        } else {
            let frac = format!("{frac:09}");
            write!(
                f,
                "{whole}.{} tokens ({} units)",
                frac.trim_end_matches('0'),
                self.0
            )
        }
    }
}

/// Base units, as decimal digits.
impl FromStr for Amount {
    type Err = ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Amount)
    }
}

stored_as!(
    Amount,
    String,
    |a: &Amount| Ok::<_, std::convert::Infallible>(a.0.to_string()),
    |s: String| s.parse::<Amount>()
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_shows_tokens_and_units() {
        assert_eq!(Amount::tokens(3).to_string(), "3 tokens (3000000000 units)");
        assert_eq!(
            Amount(1_500_000_000).to_string(),
            "1.5 tokens (1500000000 units)"
        );
        assert_eq!(Amount(7).to_string(), "0.000000007 tokens (7 units)");
    }

    #[test]
    fn checked_arithmetic_refuses_overflow() {
        assert_eq!(Amount(u128::MAX).checked_add(Amount(1)), None);
        assert_eq!(Amount(1).checked_sub(Amount(2)), None);
        assert_eq!(Amount(5).saturating_sub(Amount(9)), Amount::ZERO);
        assert_eq!(
            [Amount(1), Amount(2)].into_iter().sum::<Amount>(),
            Amount(3)
        );
    }
}
