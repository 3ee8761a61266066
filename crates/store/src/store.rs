//! Connecting to either engine, the migrations, and the macros that run one piece of code on
//! both.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, Executor};

use crate::checkpoint::{Checkpointer, SQLITE_AUTOCHECKPOINT_PAGES};
use crate::error::{Result, StoreError};

/// File name of the SQLite database inside a data directory.
pub const SQLITE_FILE_NAME: &str = "sheaf.db";

/// How long a SQLite write waits for another writer before failing with `database is locked`.
/// Write transactions are a few statements long, so waiting is almost always brief; a long
/// value only matters under a stalled disk, where failing fast would just turn into retries.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Read connections in a SQLite store, beside its one write connection. SQLite runs one writer
/// at a time anyway; with a pool of its own holding a single connection, writers queue in the
/// pool, in order, instead of retrying in SQLite's busy handler, which sleeps 1, 2, 5, 10… ms
/// between attempts. The store bench measured the same throughput within 10% with 1 to 8 write
/// connections at 8 clients, and a p99 cycle time of about 50 ms with one against 90-130 ms
/// with 4-8. Reads run beside the writer (WAL); each connection holds a file handle and a page
/// cache.
pub const SQLITE_MAX_CONNECTIONS: u32 = 4;

/// Connections in a PostgreSQL pool, per coordinator replica. Job claims skip locked rows, so
/// writers proceed in parallel; the server's `max_connections` (100 by default) bounds
/// replicas × this value.
pub const POSTGRES_MAX_CONNECTIONS: u32 = 10;

/// How long an operation waits for a free pooled connection before failing. Longer than
/// [`SQLITE_BUSY_TIMEOUT`] so a queue of writers fails on the lock, not on the pool.
pub const POOL_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// Key of the PostgreSQL advisory lock held while migrating, so replicas that start together
/// migrate one after the other. ("sheafmig" in ASCII.)
const MIGRATION_LOCK_KEY: i64 = 0x7368_6561_666d_6967;

/// One numbered migration, embedded in the binary.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

const SQLITE_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "admission",
        sql: include_str!("../migrations/sqlite/0002_admission.sql"),
    },
    Migration {
        version: 3,
        name: "partial_indexes",
        sql: include_str!("../migrations/sqlite/0003_partial_indexes.sql"),
    },
    Migration {
        version: 4,
        name: "chain_outbox",
        sql: include_str!("../migrations/sqlite/0004_chain_outbox.sql"),
    },
    Migration {
        version: 5,
        name: "outbox_register",
        sql: include_str!("../migrations/sqlite/0005_outbox_register.sql"),
    },
    Migration {
        version: 6,
        name: "roles",
        sql: include_str!("../migrations/sqlite/0006_roles.sql"),
    },
];

const POSTGRES_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "admission",
        sql: include_str!("../migrations/postgres/0002_admission.sql"),
    },
    Migration {
        version: 3,
        name: "partial_indexes",
        sql: include_str!("../migrations/postgres/0003_partial_indexes.sql"),
    },
    Migration {
        version: 4,
        name: "chain_outbox",
        sql: include_str!("../migrations/postgres/0004_chain_outbox.sql"),
    },
    Migration {
        version: 5,
        name: "outbox_register",
        sql: include_str!("../migrations/postgres/0005_outbox_register.sql"),
    },
    Migration {
        version: 6,
        name: "roles",
        sql: include_str!("../migrations/postgres/0006_roles.sql"),
    },
];

/// Schema version this build migrates to.
pub const SCHEMA_VERSION: i64 = 6;

const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (\
     version BIGINT PRIMARY KEY, name TEXT NOT NULL)";

/// Handle on the store. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct Store {
    pub(crate) db: Db,
}

/// Names the engine only: the pool's options hold the database password.
impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let engine = match self.db {
            Db::Sqlite { .. } => "sqlite",
            Db::Postgres(_) => "postgres",
        };
        f.debug_struct("Store").field("engine", &engine).finish()
    }
}

#[derive(Clone)]
pub(crate) enum Db {
    /// Writes go through `write`, a pool of one connection (see [`SQLITE_MAX_CONNECTIONS`]);
    /// reads through `read`; WAL checkpoints run beside them.
    Sqlite {
        write: SqlitePool,
        read: SqlitePool,
        checkpointer: Arc<Checkpointer>,
    },
    Postgres(PgPool),
}

/// The engine a piece of SQL runs on, for the few clauses that differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    /// Row lock for a read-then-write. SQLite needs none: `BEGIN IMMEDIATE` holds the one write
    /// lock of the database for the whole transaction.
    pub(crate) fn for_update(self) -> &'static str {
        match self {
            Engine::Sqlite => "",
            Engine::Postgres => " FOR UPDATE",
        }
    }

    /// Row lock for claiming one row out of many: concurrent claimers pass over rows another
    /// transaction holds instead of queueing behind it.
    pub(crate) fn claim(self) -> &'static str {
        match self {
            Engine::Sqlite => "",
            Engine::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }
}

/// Runs `$body` inside one write transaction, once written for both engines: `$tx` is the
/// transaction and `$engine` the [`Engine`]. SQLite opens it with `BEGIN IMMEDIATE`, taking the
/// write lock up front so two writers never deadlock upgrading read locks. The body's value is
/// returned after commit; an early `return` or `?` drops the transaction, which rolls it back.
macro_rules! write_tx {
    ($store:expr, |$tx:ident, $engine:ident| $body:block) => {
        match &$store.db {
            $crate::store::Db::Sqlite { write, .. } => {
                let mut $tx = write.begin_with("BEGIN IMMEDIATE").await?;
                let $engine = $crate::store::Engine::Sqlite;
                let out = $body;
                $tx.commit().await?;
                out
            }
            $crate::store::Db::Postgres(pool) => {
                let mut $tx = pool.begin().await?;
                let $engine = $crate::store::Engine::Postgres;
                let out = $body;
                $tx.commit().await?;
                out
            }
        }
    };
}

/// Runs `$body` with `$pool` bound to the engine's pool for reads.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:block) => {
        match &$store.db {
            $crate::store::Db::Sqlite { read: $pool, .. } => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` with `$pool` bound to the engine's pool for writes, for a write that is one
/// statement (its own transaction).
macro_rules! on_write_pool {
    ($store:expr, |$pool:ident| $body:block) => {
        match &$store.db {
            $crate::store::Db::Sqlite { write: $pool, .. } => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}

impl Store {
    /// Connects to `sqlite://PATH` (the file is created if missing, its directory must exist)
    /// or `postgres://…`, and applies any pending migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
        match scheme {
            "sqlite" => Self::connect_sqlite(SqliteConnectOptions::from_str(url)?).await,
            "postgres" | "postgresql" => {
                let pool = PgPoolOptions::new()
                    .max_connections(POSTGRES_MAX_CONNECTIONS)
                    .acquire_timeout(POOL_ACQUIRE_TIMEOUT)
                    .connect(url)
                    .await?;
                let store = Store {
                    db: Db::Postgres(pool),
                };
                store.migrate().await?;
                Ok(store)
            }
            _ => Err(StoreError::UnsupportedUrl(scheme.to_owned())),
        }
    }

    /// Opens the SQLite store in data directory `dir` (file [`SQLITE_FILE_NAME`]), creating the
    /// directory and the database if missing, and applies any pending migrations.
    pub async fn open_data_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)?;
        let options = SqliteConnectOptions::new().filename(dir.join(SQLITE_FILE_NAME));
        Self::connect_sqlite(options).await
    }

    async fn connect_sqlite(options: SqliteConnectOptions) -> Result<Self> {
        // NORMAL sync in WAL mode: a commit is durable against a crash of the process (the WAL
        // is written before the commit returns) and the database is never corrupted, but the
        // last commits before an OS crash or power loss may be lost, since the WAL is fsynced
        // at checkpoints rather than at every commit. FULL costs an fsync per write
        // transaction in the writer's path, two per lease→submit cycle: the store bench ran
        // 171 cycles/s against 566 with NORMAL, on a disk with 1.7 ms fsyncs. A lost commit
        // is a lease or a proof the coordinator forgets: the job is leased and proved again
        // (at-least-once execution), and a prover may have been told its proof was accepted
        // while another is rewarded for the job. Deployments that cannot accept that window
        // run PostgreSQL.
        let options = options
            .create_if_missing(true)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true)
            .pragma(
                "wal_autocheckpoint",
                SQLITE_AUTOCHECKPOINT_PAGES.to_string(),
            );
        enable_wal(&options).await?;
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(POOL_ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await?;
        let checkpointer = Checkpointer::start(&options, write.clone()).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(SQLITE_MAX_CONNECTIONS)
            .acquire_timeout(POOL_ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        let store = Store {
            db: Db::Sqlite {
                write,
                read,
                checkpointer,
            },
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        match &self.db {
            Db::Sqlite {
                write,
                read,
                checkpointer,
            } => {
                checkpointer.stop();
                read.close().await;
                write.close().await;
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }

    /// Highest migration version applied to the database.
    pub async fn schema_version(&self) -> Result<i64> {
        on_pool!(self, |pool| {
            let version: Option<i64> =
                sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
                    .fetch_one(pool)
                    .await?;
            Ok(version.unwrap_or(0))
        })
    }

    /// Applies the migrations the database lacks, all in one transaction.
    async fn migrate(&self) -> Result<()> {
        let applied = write_tx!(self, |tx, engine| {
            let migrations = match engine {
                Engine::Sqlite => SQLITE_MIGRATIONS,
                Engine::Postgres => {
                    sqlx::query("SELECT pg_advisory_xact_lock($1)")
                        .bind(MIGRATION_LOCK_KEY)
                        .execute(&mut *tx)
                        .await?;
                    POSTGRES_MIGRATIONS
                }
            };
            sqlx::query(CREATE_MIGRATIONS_TABLE)
                .execute(&mut *tx)
                .await?;
            let current: Option<i64> =
                sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
                    .fetch_one(&mut *tx)
                    .await?;
            let current = current.unwrap_or(0);
            if current > SCHEMA_VERSION {
                return Err(StoreError::SchemaTooNew {
                    found: current,
                    supported: SCHEMA_VERSION,
                });
            }
            let mut applied = Vec::new();
            for migration in migrations.iter().filter(|m| m.version > current) {
                // Through `Executor`, whose boxed future is `Send` where `RawSql::execute`'s
                // is not provably so.
                (&mut *tx).execute(sqlx::raw_sql(migration.sql)).await?;
                sqlx::query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)")
                    .bind(migration.version)
                    .bind(migration.name)
                    .execute(&mut *tx)
                    .await?;
                applied.push(migration.version);
            }
            applied
        });
        for version in applied {
            tracing::info!(target: "sheaf::store", version, "applied migration");
        }
        Ok(())
    }
}

/// Puts the SQLite file in WAL mode (readers run beside the writer), which persists in the
/// file. The switch needs an exclusive lock that SQLite's busy timeout does not wait for, so two
/// processes opening a new file at once could fail; it is retried here, up to
/// [`SQLITE_BUSY_TIMEOUT`], on one connection before the pool opens.
async fn enable_wal(options: &SqliteConnectOptions) -> Result<()> {
    const RETRY_DELAY: Duration = Duration::from_millis(20);
    let mut conn = options.connect().await?;
    let deadline = Instant::now() + SQLITE_BUSY_TIMEOUT;
    let mode = loop {
        match sqlx::query_scalar::<_, String>("PRAGMA journal_mode = WAL")
            .fetch_one(&mut conn)
            .await
        {
            Err(e) if is_busy(&e) && Instant::now() < deadline => {
                tokio::time::sleep(RETRY_DELAY).await
            }
            result => break result?,
        }
    };
    conn.close().await?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::InvalidArgument(format!(
            "the SQLite store needs WAL journal mode, the database stays in {mode:?} mode"
        )));
    }
    Ok(())
}

/// Whether SQLite refused for a lock held elsewhere (`SQLITE_BUSY` or an extended variant).
fn is_busy(error: &sqlx::Error) -> bool {
    const SQLITE_BUSY: i32 = 5;
    error
        .as_database_error()
        .and_then(|e| e.code())
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| code & 0xff == SQLITE_BUSY)
}
