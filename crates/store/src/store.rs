//! Connecting to either engine through sqlx's `Any` driver, and the write transaction every
//! state change runs in.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::any::AnyPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteSynchronous};
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Connection, Executor, Transaction};

use crate::blobs::ProofBlobs;
use crate::checkpoint::{Checkpointer, SQLITE_AUTOCHECKPOINT_PAGES};
use crate::error::{Result, StoreError};
use crate::group_commit::GroupCommit;

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

/// How long the first connection to PostgreSQL may take. The pool retries a failing connection
/// until [`POOL_ACQUIRE_TIMEOUT`] and then reports only that it timed out; one direct attempt
/// first reports the cause (refused, unknown host, missing database, bad password) at once.
pub const POSTGRES_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Handle on the store. Cheap to clone: clones share the connection pools.
#[derive(Clone)]
pub struct Store {
    pub(crate) db: Db,
    /// Where new proof blobs go: an object store, or the `proofs` rows when `None`.
    pub(crate) blobs: Option<ProofBlobs>,
}

/// Names the engine only: the pool's options hold the database password.
impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("engine", &self.db.engine)
            .field("blobs", &self.blobs)
            .finish()
    }
}

/// The pools of one store. On PostgreSQL `write` and `read` are one pool; on SQLite writes go
/// through `write`, a pool of one connection (see [`SQLITE_MAX_CONNECTIONS`]), reads through
/// `read`, and WAL checkpoints run beside them.
#[derive(Clone)]
pub(crate) struct Db {
    pub(crate) engine: Engine,
    pub(crate) write: AnyPool,
    pub(crate) read: AnyPool,
    checkpointer: Option<Arc<Checkpointer>>,
    /// SQLite's committer of leases and submissions ([`GroupCommit`]); `None` on PostgreSQL.
    pub(crate) group: Option<GroupCommit>,
    /// Counts this process's writes ([`Store::write_generation`]).
    writes: Arc<std::sync::atomic::AtomicU64>,
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

    /// Shared row lock: the row cannot change until the transaction ends.
    pub(crate) fn for_share(self) -> &'static str {
        match self {
            Engine::Sqlite => "",
            Engine::Postgres => " FOR SHARE",
        }
    }
}

/// Whether a write transaction's commit waits until it is on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Durability {
    /// It survives an OS crash once committed: the ledger.
    Durable,
    /// It may be lost in an OS crash until the next durable commit: a lease.
    Lazy,
}

/// One write transaction. SQLite opens it with `BEGIN IMMEDIATE`, taking the write lock up
/// front so two writers never deadlock upgrading read locks.
///
/// Its only way out with an effect is [`WriteTx::finish`], which commits an `Ok` outcome and
/// rolls an `Err` back: the work of a write runs in a function of its own that returns the
/// outcome, refusals included, and every exit of that function reaches `finish`. An early
/// `return` thus either commits or reports an error; it cannot drop the work while the caller
/// reports success. (A transaction dropped unfinished, on a panic or a cancelled future, rolls
/// back.)
pub(crate) struct WriteTx {
    pub(crate) engine: Engine,
    tx: Transaction<'static, sqlx::Any>,
    writes: Arc<std::sync::atomic::AtomicU64>,
    /// Whether its commit counts as a change ([`Store::write_generation`]).
    changes: bool,
}

impl WriteTx {
    /// The connection to run statements on.
    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// Its commit changes nothing a watcher shows (a sweep that found no expired lease, a lease
    /// request that found no job): [`Store::write_generation`] does not count it.
    pub(crate) fn unchanged(&mut self) {
        self.changes = false;
    }

    /// Commits when `outcome` is `Ok` and returns it; rolls back and returns the error
    /// otherwise.
    pub(crate) async fn finish<T>(self, outcome: Result<T>) -> Result<T> {
        match outcome {
            Ok(value) => {
                self.tx.commit().await?;
                if self.changes {
                    self.writes
                        .fetch_add(1, std::sync::atomic::Ordering::Release);
                }
                Ok(value)
            }
            Err(e) => {
                if let Err(rollback) = self.tx.rollback().await {
                    tracing::warn!(target: "sheaf::store", error = %rollback, "rollback failed");
                }
                Err(e)
            }
        }
    }
}

impl Store {
    /// Connects to `sqlite://PATH` (the file is created if missing, its directory must exist)
    /// or `postgres://…`, and applies any pending migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
        match scheme {
            "sqlite" => Self::connect_sqlite(&with_create_mode(url)).await,
            "postgres" | "postgresql" => {
                sqlx::any::install_default_drivers();
                match tokio::time::timeout(POSTGRES_CONNECT_TIMEOUT, AnyConnection::connect(url))
                    .await
                {
                    Ok(connection) => connection?.close().await?,
                    Err(_) => return Err(StoreError::ConnectTimeout(POSTGRES_CONNECT_TIMEOUT)),
                }
                let pool = AnyPoolOptions::new()
                    .max_connections(POSTGRES_MAX_CONNECTIONS)
                    .acquire_timeout(POOL_ACQUIRE_TIMEOUT)
                    .connect(url)
                    .await?;
                let store = Store {
                    db: Db {
                        engine: Engine::Postgres,
                        write: pool.clone(),
                        read: pool,
                        checkpointer: None,
                        group: None,
                        writes: Arc::default(),
                    },
                    blobs: None,
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
        let url = format!("sqlite://{}?mode=rwc", dir.join(SQLITE_FILE_NAME).display());
        Self::connect_sqlite(&url).await
    }

    async fn connect_sqlite(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let options = sqlite_options(url)?;
        enable_wal(&options).await?;
        let write = sqlite_write_pool().connect(url).await?;
        let checkpointer = Checkpointer::start(&options, write.clone()).await?;
        let read = sqlite_pool(SQLITE_MAX_CONNECTIONS).connect(url).await?;
        let mut store = Store {
            db: Db {
                engine: Engine::Sqlite,
                write,
                read,
                checkpointer: Some(checkpointer),
                group: None,
                writes: Arc::default(),
            },
            blobs: None,
        };
        store.migrate().await?;
        // Opened on the migrated schema.
        store.db.group = Some(GroupCommit::start(
            options.get_filename(),
            &sqlite_pragmas(),
            store.db.write.clone(),
        )?);
        Ok(store)
    }

    /// Closes the pools, waiting for connections in use to be returned.
    pub async fn close(&self) {
        if let Some(checkpointer) = &self.db.checkpointer {
            checkpointer.stop();
        }
        self.db.read.close().await;
        self.db.write.close().await;
    }

    /// This store with new proof blobs kept in `blobs` and referenced by hash from the rows
    /// (see [`ProofBlobs`]); blobs already in rows stay readable there. Without it, blobs are
    /// stored in the `proofs` rows.
    pub fn with_proof_blobs(mut self, blobs: ProofBlobs) -> Self {
        self.blobs = Some(blobs);
        self
    }

    /// The object store new proof blobs go to, if any.
    pub fn proof_blobs(&self) -> Option<&ProofBlobs> {
        self.blobs.as_ref()
    }

    /// Starts a write transaction; see [`WriteTx`].
    ///
    /// The `BEGIN` runs in a task of its own, so a caller cancelled while it waits (a request
    /// timed out, a sender's stage stopped at a change of term) cannot leave a transaction open
    /// on a pooled connection. sqlx creates the `Transaction` that rolls back on drop only once
    /// the driver acknowledged the `BEGIN`; a future dropped between the two returned the
    /// connection to its pool inside a transaction nobody owned. On SQLite that connection is
    /// the only writer: every later write ran in that transaction and was never committed, the
    /// readers never saw it, while the writer read its own uncommitted rows (seen as a standby
    /// holding a role the store said was free, and as a sender that never settled). Here the
    /// task always finishes the `BEGIN`; a transaction whose caller is gone is dropped with the
    /// task's output and rolls back. [`sqlite_write_pool`] also checks every released write
    /// connection.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx> {
        self.begin_write_with(Durability::Durable).await
    }

    /// Starts a write transaction, as [`Store::begin_write`], whose commit does not wait for
    /// the disk: for a lease, which is no part of the ledger. Forgetting one in a crash is the
    /// same as its expiring at once; the next durable commit (a submission, whose flush covers
    /// every earlier write) makes it durable anyway. This saves one of the two flushes of a
    /// lease→submit cycle. SQLite commits it with `synchronous = NORMAL` (set before its
    /// `BEGIN`, since SQLite refuses the change inside a transaction, and reset to FULL when the
    /// connection returns to the pool, see [`sqlite_write_pool`]); PostgreSQL with
    /// `synchronous_commit = off`.
    pub(crate) async fn begin_lazy_write(&self) -> Result<WriteTx> {
        let mut tx = self.begin_write_with(Durability::Lazy).await?;
        if tx.engine == Engine::Postgres {
            sqlx::query("SET LOCAL synchronous_commit = off")
                .execute(tx.conn())
                .await?;
        }
        Ok(tx)
    }

    async fn begin_write_with(&self, durability: Durability) -> Result<WriteTx> {
        let engine = self.db.engine;
        let pool = self.db.write.clone();
        let begin = tokio::spawn(async move {
            match (engine, durability) {
                (Engine::Sqlite, Durability::Durable) => pool.begin_with("BEGIN IMMEDIATE").await,
                (Engine::Sqlite, Durability::Lazy) => {
                    pool.begin_with("PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE")
                        .await
                }
                (Engine::Postgres, _) => pool.begin().await,
            }
        });
        let tx = begin.await.map_err(|e| {
            StoreError::Io(std::io::Error::other(format!(
                "starting a write transaction: {e}"
            )))
        })??;
        Ok(WriteTx {
            engine,
            tx,
            writes: self.db.writes.clone(),
            changes: true,
        })
    }

    /// The clock every replica of this store shares, in milliseconds since the Unix epoch: the
    /// PostgreSQL server's (`clock_timestamp()`), or `None` on SQLite, whose one process has
    /// only its own clock.
    ///
    /// Lease expiry, nonce windows and role leases compare times written by one replica with
    /// times read by another; taken from here, a replica whose own clock runs ahead cannot
    /// expire another's live lease early.
    pub async fn shared_clock_ms(&self) -> Result<Option<i64>> {
        match self.db.engine {
            Engine::Sqlite => Ok(None),
            Engine::Postgres => Ok(Some(
                sqlx::query_scalar(
                    "SELECT CAST(FLOOR(EXTRACT(EPOCH FROM clock_timestamp()) * 1000) AS BIGINT)",
                )
                .fetch_one(self.reader())
                .await?,
            )),
        }
    }

    /// The pool for reads.
    pub(crate) fn reader(&self) -> &AnyPool {
        &self.db.read
    }

    /// The pool for a write that is one statement (its own transaction). Not counted by
    /// [`Store::write_generation`]: a write a watcher should see calls [`Store::changed`].
    pub(crate) fn writer(&self) -> &AnyPool {
        &self.db.write
    }

    /// Counts a one-statement write that changed what a watcher shows.
    pub(crate) fn changed(&self) {
        self.db
            .writes
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// A number that grows with every change this process made to what the console shows,
    /// shared by the store's clones: every committed write transaction but the ones that changed
    /// nothing (a sweep without an expired lease, a lease request without a job), and the
    /// one-statement writes of the outbox, the settled marks, rejections and provers. Not
    /// nonces, heartbeats or roles. A watcher that saw it unchanged knows this process changed
    /// none of those since (another process's writes, on a shared PostgreSQL database, are not
    /// counted).
    pub fn write_generation(&self) -> u64 {
        self.db.writes.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// `url` with `mode=rwc` (create the file if missing) unless it names a mode.
fn with_create_mode(url: &str) -> String {
    match url.split_once('?') {
        Some((_, query)) if query.split('&').any(|kv| kv.starts_with("mode=")) => url.to_owned(),
        Some(_) => format!("{url}&mode=rwc"),
        None => format!("{url}?mode=rwc"),
    }
}

/// The connection settings of every SQLite connection, as pragmas run at connect.
///
/// FULL sync in WAL mode: the WAL is fsynced at every commit, so a commit that returned survives
/// an OS crash or a power loss, not only a crash of the process. The store is the ledger: a
/// root proof and the outbox rows of a step whose hash went on chain, the sender's role and the
/// rewards. With NORMAL (fsync at checkpoints only) an OS crash could forget them after the
/// chain recorded the hash, and the sender would sign the step again. The cost is one fsync
/// per write transaction in the writer's path; `sheaf bench store` measures it (README).
/// Readers run the same pragmas, where `synchronous` has no effect.
///
/// Temporary files in memory: the group committer's savepoints give each transaction a
/// statement journal, which SQLite otherwise creates as a file (`/var/tmp/etilqs_*`) and
/// deletes again, hundreds a second under load; it holds a few pages of one transaction.
fn sqlite_pragmas() -> String {
    format!(
        "PRAGMA synchronous = FULL; PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; \
         PRAGMA wal_autocheckpoint = {SQLITE_AUTOCHECKPOINT_PAGES}; PRAGMA temp_store = MEMORY;",
        SQLITE_BUSY_TIMEOUT.as_millis()
    )
}

/// A pool of `max` SQLite connections with [`sqlite_pragmas`].
fn sqlite_pool(max: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(POOL_ACQUIRE_TIMEOUT)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(sqlx::raw_sql(&sqlite_pragmas())).await?;
                Ok(())
            })
        })
}

/// The one-connection write pool: [`sqlite_pool`], and a connection returned to it inside a
/// transaction is closed (which rolls the transaction back) rather than reused. Its next user
/// would otherwise write into that transaction, and nothing it wrote would ever commit; see
/// [`Store::begin_write`] for how one was left open. The check is a `BEGIN`, which SQLite
/// refuses inside a transaction, and its `ROLLBACK`: two statements that take no lock. Before
/// them `synchronous` goes back to FULL after a lazy write ([`Store::begin_lazy_write`]),
/// whichever way that write ended.
fn sqlite_write_pool() -> AnyPoolOptions {
    sqlite_pool(1).after_release(|conn, _| {
        Box::pin(async move {
            let reset = "PRAGMA synchronous = FULL; BEGIN; ROLLBACK";
            match conn.execute(sqlx::raw_sql(reset)).await {
                Ok(_) => Ok(true),
                Err(error) => {
                    tracing::warn!(target: "sheaf::store", %error,
                        "a write connection came back inside a transaction: closing it, which rolls the transaction back");
                    Ok(false)
                }
            }
        })
    })
}

/// The same settings for the connections that are SQLite's own (WAL switch, checkpointer).
fn sqlite_options(url: &str) -> Result<SqliteConnectOptions> {
    Ok(SqliteConnectOptions::from_str(url)?
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .foreign_keys(true)
        .pragma(
            "wal_autocheckpoint",
            SQLITE_AUTOCHECKPOINT_PAGES.to_string(),
        ))
}

/// Puts the SQLite file in WAL mode (readers run beside the writer), which persists in the
/// file. The switch needs an exclusive lock that SQLite's busy timeout does not wait for, so two
/// processes opening a new file at once could fail; it is retried here, up to
/// [`SQLITE_BUSY_TIMEOUT`], on one connection before the pools open.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every commit to a SQLite store is durable against an OS crash: the write connection, the
    /// one that commits the ledger, runs with `synchronous = FULL` (2), not NORMAL (1).
    #[tokio::test]
    async fn the_sqlite_writer_syncs_every_commit() {
        const FULL: i64 = 2;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_data_dir(dir.path()).await.unwrap();
        let mut tx = store.begin_write().await.unwrap();
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(tx.conn())
            .await
            .unwrap();
        tx.finish(Ok(())).await.unwrap();
        assert_eq!(
            synchronous, FULL,
            "the ledger's writer is not synchronous = FULL"
        );
        let mut single = store.writer().acquire().await.unwrap();
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *single)
            .await
            .unwrap();
        assert_eq!(
            synchronous, FULL,
            "single-statement writes are not synchronous = FULL"
        );
        drop(single);
        // A lease commits lazily, and the writer is back to FULL after it.
        let mut lazy = store.begin_lazy_write().await.unwrap();
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(lazy.conn())
            .await
            .unwrap();
        lazy.finish(Ok(())).await.unwrap();
        assert_eq!(synchronous, 1, "a lease's transaction is NORMAL");
        let mut tx = store.begin_write().await.unwrap();
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(tx.conn())
            .await
            .unwrap();
        tx.finish(Ok(())).await.unwrap();
        assert_eq!(
            synchronous, FULL,
            "a write after a lease is not synchronous = FULL"
        );
        store.close().await;
    }

    /// Every connection keeps SQLite's temporary files in memory (`temp_store` 2): the
    /// group committer's savepoints would otherwise create and delete a statement-journal file
    /// per transaction.
    #[tokio::test]
    async fn sqlite_connections_keep_temporary_files_in_memory() {
        const MEMORY: i64 = 2;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_data_dir(dir.path()).await.unwrap();
        for pool in [store.writer(), store.reader()] {
            let temp_store: i64 = sqlx::query_scalar("PRAGMA temp_store")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(temp_store, MEMORY);
        }
        store.close().await;
    }

    /// A write connection handed back to the pool inside a transaction (as a cancelled `BEGIN`
    /// once left it) is closed, not reused: the next write commits and readers see it.
    #[tokio::test]
    async fn a_write_connection_returned_inside_a_transaction_is_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_data_dir(dir.path()).await.unwrap();
        let mut conn = store.writer().acquire().await.unwrap();
        conn.execute(sqlx::raw_sql("BEGIN IMMEDIATE"))
            .await
            .unwrap();
        drop(conn);

        let fence = store.role_acquire("sender:a", "replica-1", 0, 1_000).await;
        assert_eq!(fence.unwrap().map(|f| f.token), Some(1));
        let role = store.role("sender:a").await.unwrap();
        assert_eq!(
            role.map(|r| (r.holder, r.token)),
            Some(("replica-1".to_owned(), 1)),
            "the write committed and a reader sees it"
        );
        // And a write transaction starts on the fresh connection.
        store
            .begin_write()
            .await
            .unwrap()
            .finish(Ok(()))
            .await
            .unwrap();
        store.close().await;
    }

    /// Write transactions whose callers are cancelled at every point of their `BEGIN` leave no
    /// transaction open: every write after each of them commits. (Before the fix a cancelled
    /// `BEGIN` left one open within about a hundred rounds.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn write_transactions_cancelled_while_they_begin_leave_none_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_data_dir(dir.path()).await.unwrap();
        for round in 0..1_000u64 {
            let cancelled = store.clone();
            let task = tokio::spawn(async move { drop(cancelled.begin_write().await) });
            for _ in 0..round % 7 {
                tokio::task::yield_now().await;
            }
            task.abort();
            let _ = task.await;
            let name = format!("role-{round}");
            store
                .role_acquire(&name, "replica", 0, 1_000)
                .await
                .unwrap();
            assert!(
                store.role(&name).await.unwrap().is_some(),
                "round {round}: the write after a cancelled BEGIN never committed"
            );
        }
        store.close().await;
    }
}
