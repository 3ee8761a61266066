//! Types whose every outer form is their text: JSON carries it as a string and the database as
//! `TEXT`, both through `Display` and `FromStr`, so the three forms cannot drift apart.

use std::fmt::Display;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serializer};

/// Writes `value` as the string its `Display` gives.
pub(crate) fn serialize<T: Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

/// Reads a string and parses it with `FromStr`; a parse error is a serde error.
pub(crate) fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
where
    T: FromStr,
    T::Err: Display,
    D: Deserializer<'de>,
{
    let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    text.parse().map_err(serde::de::Error::custom)
}

/// Implements serde's `Serialize` and `Deserialize` with [`serialize`] and [`deserialize`], and
/// the sqlx traits with [`stored_as`](crate::sql::stored_as) over `String`, for `$ty`, whose
/// `FromStr` fails with `$err`. (A macro because the impls are of foreign traits.)
macro_rules! text_form {
    ($ty:ty, $err:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                $crate::text::serialize(self, s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::text::deserialize(d)
            }
        }

        $crate::sql::stored_as!(
            $ty,
            String,
            |value: &$ty| Ok::<_, $err>(value.to_string()),
            |text: String| text.parse::<$ty>()
        );
    };
}

pub(crate) use text_form;
