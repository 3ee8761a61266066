//! The prover registry: who may lease, under which key, within which limits.

use std::collections::{HashMap, HashSet};

use crate::error::{Result, StoreError};
use crate::model::Prover;
use crate::rows::{ProverRow, PROVER_COLUMNS};
use crate::store::{Engine, WriteTx};
use crate::Store;

/// Key of the PostgreSQL advisory lock held while syncing the registry, so two replicas
/// reloading the provers file at once apply one list after the other. ("sheafprv" in ASCII.)
const SYNC_PROVERS_LOCK_KEY: i64 = 0x7368_6561_6670_7276;

const UPSERT_PROVER: &str = "INSERT INTO provers (id, public_key, worker_pk, rate_limit, \
     max_concurrent) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET \
     public_key = excluded.public_key, worker_pk = excluded.worker_pk, \
     rate_limit = excluded.rate_limit, max_concurrent = excluded.max_concurrent";

impl Store {
    /// Registers a prover, or replaces the keys and limits of one with the same id.
    pub async fn upsert_prover(&self, prover: &Prover) -> Result<()> {
        upsert(self.writer(), prover).await?;
        self.changed();
        Ok(())
    }

    /// Makes the registry exactly `provers`, in one transaction: each listed prover is
    /// registered or updated in place, every other one is removed (with its rate count), so
    /// the operator's provers file is the registry and deleting a line revokes a prover. Its
    /// leases stay until they expire or are submitted; refusing its requests is the caller's
    /// job.
    ///
    /// Two entries with one id or one public key, or a negative limit, are
    /// [`StoreError::InvalidArgument`] and nothing changes.
    pub async fn sync_provers(&self, provers: &[Prover]) -> Result<()> {
        check_registry(provers)?;
        let mut tx = self.begin_write().await?;
        let removed = replace_registry(&mut tx, provers).await;
        let removed = tx.finish(removed).await?;
        for prover in removed {
            tracing::info!(target: "sheaf::store", %prover, "prover removed from the registry");
        }
        tracing::debug!(target: "sheaf::store", provers = provers.len(), "synced prover registry");
        Ok(())
    }

    /// The prover registered under `id`, or `None`.
    pub async fn get_prover(&self, id: &str) -> Result<Option<Prover>> {
        let row: Option<ProverRow> = sqlx::query_as(&format!(
            "SELECT {PROVER_COLUMNS} FROM provers WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await?;
        row.map(Prover::try_from).transpose()
    }

    /// The prover whose requests `public_key` verifies, or `None`.
    pub async fn prover_by_key(&self, public_key: &[u8; 32]) -> Result<Option<Prover>> {
        let row: Option<ProverRow> = sqlx::query_as(&format!(
            "SELECT {PROVER_COLUMNS} FROM provers WHERE public_key = $1"
        ))
        .bind(public_key.as_slice())
        .fetch_optional(self.reader())
        .await?;
        row.map(Prover::try_from).transpose()
    }
}

/// Registers `prover` or replaces its keys and limits.
async fn upsert<'c, E>(executor: E, prover: &Prover) -> Result<()>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    sqlx::query(UPSERT_PROVER)
        .bind(&prover.id)
        .bind(prover.public_key.as_slice())
        .bind(prover.worker_pk.as_slice())
        .bind(prover.rate_limit)
        .bind(prover.max_concurrent)
        .execute(executor)
        .await?;
    Ok(())
}

/// The body of [`Store::sync_provers`], inside its write transaction: the ids removed.
async fn replace_registry(tx: &mut WriteTx, provers: &[Prover]) -> Result<Vec<String>> {
    if tx.engine == Engine::Postgres {
        // pg_advisory_xact_lock returns void, which the Any driver cannot decode.
        sqlx::query("SELECT 1 FROM pg_advisory_xact_lock($1)")
            .bind(SYNC_PROVERS_LOCK_KEY)
            .execute(tx.conn())
            .await?;
    }
    let wanted: HashMap<&str, &Prover> = provers.iter().map(|p| (p.id.as_str(), p)).collect();
    let stored: Vec<(String, Vec<u8>)> = sqlx::query_as("SELECT id, public_key FROM provers")
        .fetch_all(tx.conn())
        .await?;
    let mut removed = Vec::new();
    for (id, public_key) in stored {
        match wanted.get(id.as_str()) {
            None => {
                sqlx::query("DELETE FROM provers WHERE id = $1")
                    .bind(&id)
                    .execute(tx.conn())
                    .await?;
                sqlx::query("DELETE FROM lease_counts WHERE prover = $1")
                    .bind(&id)
                    .execute(tx.conn())
                    .await?;
                sqlx::query("DELETE FROM prover_backoff WHERE prover = $1")
                    .bind(&id)
                    .execute(tx.conn())
                    .await?;
                removed.push(id);
            }
            Some(prover) if prover.public_key.as_slice() != public_key => {
                // Park the old key on a value no real key can take, so keys can move between
                // provers (a swap) without tripping the unique index midway.
                sqlx::query("UPDATE provers SET public_key = $2 WHERE id = $1")
                    .bind(&id)
                    .bind(parked_key(&id))
                    .execute(tx.conn())
                    .await?;
            }
            Some(_) => {}
        }
    }
    for prover in provers {
        upsert(tx.conn(), prover).await?;
    }
    Ok(removed)
}

/// Refuses a registry with a repeated id or key, or a negative limit.
fn check_registry(provers: &[Prover]) -> Result<()> {
    let invalid = |msg: String| Err(StoreError::InvalidArgument(msg));
    let mut ids = HashSet::new();
    let mut keys = HashSet::new();
    for prover in provers {
        if !ids.insert(prover.id.as_str()) {
            return invalid(format!("prover {:?} is listed twice", prover.id));
        }
        if !keys.insert(prover.public_key) {
            return invalid(format!(
                "prover {:?} reuses the public key of another prover",
                prover.id
            ));
        }
        if prover.rate_limit < 0 || prover.max_concurrent < 0 {
            return invalid(format!("prover {:?} has a negative limit", prover.id));
        }
    }
    Ok(())
}

/// A stand-in public key for prover `id` while keys move: longer than any real key (32 bytes),
/// and distinct per prover.
fn parked_key(id: &str) -> Vec<u8> {
    let mut key = vec![0xff; 33];
    key.extend_from_slice(id.as_bytes());
    key
}
