//! Request nonces: each signed request carries one, and a nonce seen before is a replay.

use crate::error::Result;
use crate::Store;

impl Store {
    /// Records that `nonce` was used by signing key `key` (both as the caller encodes them),
    /// remembered until `expires_ms`. Returns `true` the first time and `false`, changing
    /// nothing, when the pair is already recorded: a replay. Of concurrent identical calls,
    /// exactly one gets `true`.
    ///
    /// A recorded pair counts until [`Store::prune_nonces`] removes it, even past its expiry;
    /// the caller refuses requests older than the expiry window by their timestamp.
    ///
    /// The write is a lazy one (its commit does not wait for the disk): every signed request
    /// records a nonce, and a flush of its own for each would put a disk flush in front of
    /// every request. A process crash loses nothing; an OS crash may lose the nonces of the requests
    /// of its last moment, which could then be replayed within their timestamp window. Such a
    /// replay changes nothing a prover did not ask for: a hello, a lease for that prover, a
    /// heartbeat, the same proof again (already proved). The next durable commit flushes them.
    pub async fn remember_nonce(&self, key: &str, nonce: &str, expires_ms: i64) -> Result<bool> {
        let mut tx = self.begin_lazy_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO nonces (key, nonce, expires_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
        )
        .bind(key)
        .bind(nonce)
        .bind(expires_ms)
        .execute(tx.conn())
        .await
        .map(|done| done.rows_affected() == 1)
        .map_err(Into::into);
        tx.finish(inserted).await
    }

    /// Forgets the nonces that expired at `now_ms` (expiry ≤ now); returns how many.
    pub async fn prune_nonces(&self, now_ms: i64) -> Result<u64> {
        let pruned = sqlx::query("DELETE FROM nonces WHERE expires_ms <= $1")
            .bind(now_ms)
            .execute(self.writer())
            .await?
            .rows_affected();
        if pruned > 0 {
            tracing::debug!(target: "sheaf::store", pruned, now_ms, "pruned expired nonces");
        }
        Ok(pruned)
    }
}
