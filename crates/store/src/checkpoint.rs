//! The SQLite store's background checkpointer.
//!
//! In WAL mode every commit appends pages to the write-ahead log, and a checkpoint copies them
//! into the database file, syncing both files (two fsyncs, several milliseconds with a few MB
//! pending). SQLite's automatic checkpoint runs inside the commit that crosses its threshold,
//! so the store's one writer would stall for it every few dozen proofs. Here a task on its own
//! connection checkpoints instead, beside the writer: a passive checkpoint every
//! [`SQLITE_CHECKPOINT_INTERVAL`] copies what is committed without blocking anyone. Under
//! sustained writes the log is never fully copied at the instant a new transaction starts, so
//! it would not be reused and would grow; past [`SQLITE_WAL_RESTART_PAGES`] the task restarts it
//! on the write connection itself, taken from its pool like any write, so writers wait for it
//! in the pool's queue rather than in SQLite's sleeping busy handler; it is short, since little
//! is left to copy.

use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, ConnectOptions, Connection, SqliteConnection};
use tokio::sync::watch;

use crate::error::Result;

/// How often the SQLite store copies committed WAL pages into the database file. Shorter keeps
/// the log smaller and the copy warmer in the page cache; each run costs two fsyncs when there
/// is something to copy.
pub const SQLITE_CHECKPOINT_INTERVAL: Duration = Duration::from_millis(100);

/// Size of the SQLite WAL (pages of 4 KiB) past which the checkpointer restarts it from the
/// beginning, briefly holding off the writer: 64 MiB, a few hundred proofs.
pub const SQLITE_WAL_RESTART_PAGES: i64 = 16_384;

/// SQLite's own automatic checkpoint threshold (pages), kept as a backstop should the
/// checkpointer fall behind: four times [`SQLITE_WAL_RESTART_PAGES`].
pub(crate) const SQLITE_AUTOCHECKPOINT_PAGES: i64 = 4 * SQLITE_WAL_RESTART_PAGES;

/// Stops the checkpointer when the store is closed or its last handle dropped.
pub(crate) struct Checkpointer {
    stop: watch::Sender<bool>,
}

impl Checkpointer {
    /// Opens the checkpointer's connection and starts its task on the current runtime; `write`
    /// is the store's write pool.
    pub(crate) async fn start(options: &SqliteConnectOptions, write: AnyPool) -> Result<Arc<Self>> {
        let conn = options.connect().await?;
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(run(conn, write, stopped));
        Ok(Arc::new(Checkpointer { stop }))
    }

    /// Asks the task to stop; it closes its connection.
    pub(crate) fn stop(&self) {
        self.stop.send_replace(true);
    }
}

async fn run(mut conn: SqliteConnection, write: AnyPool, mut stopped: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(SQLITE_CHECKPOINT_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            // A stop request, or every handle dropped.
            _ = stopped.wait_for(|stop| *stop) => break,
            _ = ticker.tick() => {}
        }
        if let Err(e) = checkpoint(&mut conn, &write).await {
            tracing::warn!(target: "sheaf::store", error = %e, "WAL checkpoint failed");
        }
    }
    let _ = conn.close().await;
}

/// One passive checkpoint, then a restart if the log has grown past its bound.
async fn checkpoint(conn: &mut SqliteConnection, write: &AnyPool) -> Result<()> {
    // (busy, pages in the log, pages copied)
    let (_, log, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(&mut *conn)
        .await?;
    if log > SQLITE_WAL_RESTART_PAGES {
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(RESTART)")
            .fetch_one(write)
            .await?;
        tracing::debug!(target: "sheaf::store", log, restarted = busy == 0, "WAL restart");
    }
    Ok(())
}
