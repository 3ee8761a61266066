//! Roles that one coordinator replica plays at a time, such as the proof sender of a chain key:
//! a lease on a name, renewed by its holder, taken over by another replica once it expired.
//!
//! Each change of holder increases the role's token. Writes made in the role present it
//! ([`RoleFence`]) and are refused with [`StoreError::RoleLost`] once another replica took the
//! role over, so a replica that stalled past its lease cannot write after its successor began.

use crate::error::{Result, StoreError};
use crate::store::WriteTx;
use crate::Store;

/// A role as stored: who holds it, under which token, until when.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Role {
    /// The role's name, e.g. `sender:<address>`.
    pub name: String,
    /// The replica holding it (an id the replica chose at start).
    pub holder: String,
    /// Grows at every change of holder.
    pub token: i64,
    /// The holder must renew before this time (ms since the epoch) or lose the role.
    pub expires_ms: i64,
}

/// Proof of holding a role, presented with writes made in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleFence {
    /// The role's name.
    pub name: String,
    /// The replica holding it.
    pub holder: String,
    /// The token it holds the role under.
    pub token: i64,
}

impl Store {
    /// Take role `name` for `holder` until `now_ms + ttl_ms`, or renew it if `holder` has it.
    /// Returns the fence to write under, or `None`, changing nothing, while another holder's
    /// lease runs (expiry > now). Taking the role from another holder increases its token.
    pub async fn role_acquire(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Option<RoleFence>> {
        let token: Option<i64> = sqlx::query_scalar(
            "INSERT INTO roles (name, holder, token, expires_ms) VALUES ($1, $2, 1, $3) \
                 ON CONFLICT (name) DO UPDATE SET \
                   token = CASE WHEN roles.holder = excluded.holder THEN roles.token \
                                ELSE roles.token + 1 END, \
                   holder = excluded.holder, \
                   expires_ms = excluded.expires_ms \
                 WHERE roles.holder = excluded.holder OR roles.expires_ms <= $4 \
                 RETURNING token",
        )
        .bind(name)
        .bind(holder)
        .bind(now_ms.saturating_add(ttl_ms))
        .bind(now_ms)
        .fetch_optional(self.writer())
        .await?;
        Ok(token.map(|token| RoleFence {
            name: name.to_owned(),
            holder: holder.to_owned(),
            token,
        }))
    }

    /// Give role `name` up at once if `holder` has it, so another replica may take it without
    /// waiting for the lease to run out. Returns whether it was held.
    pub async fn role_release(&self, name: &str, holder: &str) -> Result<bool> {
        let released =
            sqlx::query("UPDATE roles SET expires_ms = 0 WHERE name = $1 AND holder = $2")
                .bind(name)
                .bind(holder)
                .execute(self.writer())
                .await?
                .rows_affected();
        Ok(released == 1)
    }

    /// Role `name` as stored, if anyone ever took it.
    pub async fn role(&self, name: &str) -> Result<Option<Role>> {
        let row: Option<(String, String, i64, i64)> =
            sqlx::query_as("SELECT name, holder, token, expires_ms FROM roles WHERE name = $1")
                .bind(name)
                .fetch_optional(self.reader())
                .await?;
        Ok(row.map(|(name, holder, token, expires_ms)| Role {
            name,
            holder,
            token,
            expires_ms,
        }))
    }
}

/// Inside a write transaction: refuses with [`StoreError::RoleLost`] unless `fence` is still the
/// role's holder and token. On PostgreSQL the role's row is share-locked until the transaction
/// ends, so a takeover waits for the write made under the old token to commit.
pub(crate) async fn check_fence(tx: &mut WriteTx, fence: &RoleFence) -> Result<()> {
    let select = format!(
        "SELECT token FROM roles WHERE name = $1 AND holder = $2{}",
        tx.engine.for_share()
    );
    let held: Option<i64> = sqlx::query_scalar(&select)
        .bind(&fence.name)
        .bind(&fence.holder)
        .fetch_optional(tx.conn())
        .await?;
    if held != Some(fence.token) {
        return Err(StoreError::RoleLost {
            role: fence.name.clone(),
            token: fence.token,
        });
    }
    Ok(())
}
