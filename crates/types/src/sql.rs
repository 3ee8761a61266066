//! sqlx impls for types stored as a native type of the database: each encodes and decodes
//! through that type, for any engine that supports it (SQLite, PostgreSQL, `Any`).

/// Implements sqlx `Type`, `Encode` and `Decode` for `$ty` stored as `$repr`, converted by
/// `$to` (`&$ty -> Result<$repr, _>`) and `$from` (`$repr -> Result<$ty, _>`). A value that does
/// not convert is a decode error, never a panic.
macro_rules! stored_as {
    ($ty:ty, $repr:ty, $to:expr, $from:expr) => {
        impl<DB: sqlx::Database> sqlx::Type<DB> for $ty
        where
            $repr: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <$repr as sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <$repr as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $ty
        where
            $repr: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                let repr: $repr = ($to)(self)?;
                <$repr as sqlx::Encode<'q, DB>>::encode(repr, buf)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $ty
        where
            $repr: sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let repr = <$repr as sqlx::Decode<'r, DB>>::decode(value)?;
                Ok(($from)(repr)?)
            }
        }
    };
}

pub(crate) use stored_as;
