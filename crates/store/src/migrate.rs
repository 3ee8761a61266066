//! The schema: numbered migrations per engine through `sqlx::migrate!`, and the adoption of a
//! database migrated by the store's former runner.
//!
//! ```text
//!  lock (PostgreSQL: sqlx's advisory lock; SQLite: one `BEGIN IMMEDIATE` transaction)
//!    schema_migrations and no sqlx history? ─▶ record its versions in _sqlx_migrations,
//!                                              checksums of the same files, one transaction
//!    newer than this build? ─▶ StoreError::SchemaTooNew
//!    sqlx migrator: the missing migrations, each in its own transaction
//!  unlock
//! ```
//!
//! The former runner recorded `(version, name)` in `schema_migrations`; that table is left as
//! it was, so a build of before the switch still opens a database it migrated.

use sqlx::migrate::{Migrate, Migrator};
use sqlx::AnyConnection;

use crate::error::{Result, StoreError};
use crate::store::Engine;
use crate::Store;

static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// Schema version this build migrates to: the highest numbered migration.
pub const SCHEMA_VERSION: i64 = 15;

impl Store {
    /// Highest migration version applied to the database.
    pub async fn schema_version(&self) -> Result<i64> {
        let version: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = $1")
                .bind(true)
                .fetch_one(self.reader())
                .await?;
        Ok(version.unwrap_or(0))
    }

    /// Adopts a database of the former runner, refuses one newer than this build, and applies
    /// the migrations the database lacks.
    pub(crate) async fn migrate(&self) -> Result<()> {
        let engine = self.db.engine;
        let migrator = migrator(engine);
        let applied = match engine {
            // sqlx takes no lock on SQLite, and each store handle has a write connection of
            // its own: the whole migration runs in one write transaction, holding the
            // database's write lock, so stores opening together migrate one after the other.
            // sqlx's transaction per migration becomes a savepoint inside it.
            Engine::Sqlite => {
                let mut tx = self.begin_write().await?;
                let outcome = migrate_locked(tx.conn(), engine, migrator).await;
                tx.finish(outcome).await?
            }
            Engine::Postgres => {
                let mut conn = self.writer().acquire().await?;
                conn.lock().await?;
                let outcome = migrate_locked(&mut conn, engine, migrator).await;
                conn.unlock().await?;
                outcome?
            }
        };
        for version in applied {
            tracing::info!(target: "sheaf::store", version, "applied migration");
        }
        Ok(())
    }
}

/// The embedded migrations of `engine`.
pub(crate) fn migrator(engine: Engine) -> &'static Migrator {
    match engine {
        Engine::Sqlite => &SQLITE_MIGRATOR,
        Engine::Postgres => &POSTGRES_MIGRATOR,
    }
}

/// Under the migration lock: returns the versions applied.
async fn migrate_locked(
    conn: &mut AnyConnection,
    engine: Engine,
    migrator: &Migrator,
) -> Result<Vec<i64>> {
    conn.ensure_migrations_table().await?;
    adopt_former_runner(conn, engine, migrator).await?;
    let before: Vec<i64> = applied_versions(conn).await?;
    if let Some(&found) = before.iter().max() {
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
    }
    // The lock is held already; PostgreSQL's advisory locks nest, so the migrator's own
    // lock and unlock leave ours in place.
    migrator.run_direct(&mut *conn).await?;
    let after = applied_versions(conn).await?;
    Ok(after.into_iter().filter(|v| !before.contains(v)).collect())
}

async fn applied_versions(conn: &mut AnyConnection) -> Result<Vec<i64>> {
    Ok(
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut *conn)
            .await?,
    )
}

/// Records the versions the former runner applied (table `schema_migrations`) in sqlx's
/// history, in one transaction, with the checksums of this build's files for them: the files
/// are the same, so the migrator then sees those versions applied and carries on. A version
/// this build lacks is recorded too, with an empty checksum, so the database is refused as
/// newer. Does nothing on a database sqlx already tracks, or on a new one.
async fn adopt_former_runner(
    conn: &mut AnyConnection,
    engine: Engine,
    migrator: &Migrator,
) -> Result<()> {
    let exists = match engine {
        Engine::Sqlite => {
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        }
        Engine::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = 'schema_migrations'"
        }
    };
    let former: i64 = sqlx::query_scalar(exists).fetch_one(&mut *conn).await?;
    let tracked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&mut *conn)
        .await?;
    if former == 0 || tracked > 0 {
        return Ok(());
    }
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let versions: Vec<(i64, String)> =
        sqlx::query_as("SELECT version, name FROM schema_migrations ORDER BY version")
            .fetch_all(&mut *tx)
            .await?;
    for (version, name) in &versions {
        let known = migrator.iter().find(|m| m.version == *version);
        let (description, checksum) = match known {
            Some(m) => (m.description.to_string(), m.checksum.to_vec()),
            None => (name.clone(), Vec::new()),
        };
        sqlx::query(
            "INSERT INTO _sqlx_migrations \
             (version, description, success, checksum, execution_time) \
             VALUES ($1, $2, $3, $4, 0)",
        )
        .bind(*version)
        .bind(description)
        .bind(true)
        .bind(checksum)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    tracing::info!(
        target: "sheaf::store",
        versions = versions.len(),
        "adopted the migrations of the former runner"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_version_is_the_highest_migration_of_both_engines() {
        for engine in [Engine::Sqlite, Engine::Postgres] {
            let versions: Vec<i64> = migrator(engine).iter().map(|m| m.version).collect();
            assert_eq!(
                versions,
                (1..=SCHEMA_VERSION).collect::<Vec<_>>(),
                "{engine:?}"
            );
        }
    }
}
