//! The store's one error type.

use sheaf_types::{JobId, SequenceId};

use crate::model::JobStatus;
use crate::rows::hex;

/// Result of every store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything that can go wrong in the store. Rejections a caller is expected to handle (a stale
/// lease, a duplicate submission, an unknown id) each have their own variant.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The connection URL names neither `sqlite:` nor `postgres:`/`postgresql:`.
    #[error("unsupported store URL scheme {0:?}: expected sqlite:// or postgres://")]
    UnsupportedUrl(String),
    /// The database holds a schema version newer than this build knows: an older binary must
    /// not write to a newer database.
    #[error("database schema version {found} is newer than the supported version {supported}")]
    SchemaTooNew {
        /// Highest migration version recorded in the database.
        found: i64,
        /// Highest migration version this build carries.
        supported: i64,
    },
    /// A sequence with this id is already stored; nothing was changed.
    #[error("sequence {0} already exists")]
    SequenceExists(SequenceId),
    /// No sequence with this id is stored.
    #[error("unknown sequence {0}")]
    UnknownSequence(SequenceId),
    /// The job tree handed to `insert_sequence` is not a single tree of this sequence.
    #[error("invalid job plan: {0}")]
    InvalidPlan(String),
    /// No prover with this id is registered.
    #[error("unknown prover {0:?}")]
    UnknownProver(String),
    /// No job with this id is stored.
    #[error("unknown job {0}")]
    UnknownJob(JobId),
    /// The lease is no longer current: the job is not leased, or leased under another token, to
    /// another prover, or the lease expired. The work must not take effect.
    #[error("stale lease on job {job} (token {token})")]
    StaleLease {
        /// The job the lease was for.
        job: JobId,
        /// The fencing token presented.
        token: i64,
    },
    /// The job is already proved; a second proof changes nothing.
    #[error("job {0} is already proved")]
    AlreadyProved(JobId),
    /// An operator action does not apply to a job in this state.
    #[error("cannot {action} job {job} in state {from}")]
    InvalidTransition {
        /// The job acted on.
        job: JobId,
        /// Its state at the time.
        from: JobStatus,
        /// The refused action (`requeue`, `cancel`).
        action: &'static str,
    },
    /// A child of the job has no proof yet, so the children's proofs cannot be handed out.
    #[error("child {0} is not proved")]
    NotProved(JobId),
    /// A string is not a canonical job id `s{sequence}-l{level}-i{index}`.
    #[error("invalid job id {0:?}: expected s<sequence>-l<level>-i<index>")]
    InvalidJobId(String),
    /// A string is not one of the job states.
    #[error("invalid job status {0:?}")]
    InvalidStatus(String),
    /// The outbox already holds another transaction for this step (sequence, kind, window
    /// attempt): a sender must not sign two; nothing was changed.
    #[error("the outbox already holds another {kind} transaction for sequence {sequence}, attempt {attempt}")]
    OutboxStepTaken {
        /// The sequence.
        sequence: SequenceId,
        /// `proof_hash` or `proof`.
        kind: &'static str,
        /// The window attempt.
        attempt: i64,
    },
    /// A write made in a role ([`crate::RoleFence`]) after another replica took the role over:
    /// the writer must stop acting in it; nothing was changed.
    #[error("role {role:?} was taken over (this replica held token {token})")]
    RoleLost {
        /// The role.
        role: String,
        /// The token presented.
        token: i64,
    },
    /// No outbox transaction has this id.
    #[error("unknown outbox transaction {0}")]
    UnknownOutboxTx(i64),
    /// The outbox transaction's state does not allow this change (an included transaction
    /// cannot fail, a failed one cannot be sent).
    #[error("outbox transaction {id} is {from}, it cannot become {to}")]
    OutboxTransition {
        /// The transaction.
        id: i64,
        /// Its state.
        from: &'static str,
        /// The refused state.
        to: &'static str,
    },
    /// A rollup transaction with this id is already stored; nothing was changed.
    #[error("rollup transaction {} already exists", hex(.0))]
    RollupTransactionExists([u8; 32]),
    /// A block lists a transaction that is not stored, or not pending (included already,
    /// reverted, or listed twice); nothing was changed.
    #[error("rollup transaction {} is unknown or not pending", hex(.0))]
    RollupTransactionNotPending([u8; 32]),
    /// A block's number does not follow the published tip; nothing was changed.
    #[error("rollup block {got} is out of order: expected block {expected}")]
    RollupBlockOutOfOrder {
        /// The tip's number plus one (1 when no block is published and `got` is below 1).
        expected: i64,
        /// The number given.
        got: i64,
    },
    /// No rollup block with this number is published.
    #[error("unknown rollup block {0}")]
    UnknownRollupBlock(i64),
    /// A parameter is out of range (a non-positive lease TTL, a time that overflows).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A stored value cannot be decoded (a malformed id, status or key): the database was
    /// changed outside the store.
    #[error("corrupt store data: {0}")]
    Corrupt(String),
    /// The migrations could not be applied (a failed migration left the database dirty, or
    /// an applied migration's file changed).
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database server did not complete a connection in time (an address that drops
    /// packets, a server that does not answer).
    #[error("no connection to the database within {} s", .0.as_secs())]
    ConnectTimeout(std::time::Duration),
    /// Creating the data directory failed.
    #[error("store I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The database engine failed (connection, constraint, I/O).
    #[error("database: {0}")]
    Database(sqlx::Error),
    /// SQLite failed on the connection that commits leases and submissions in groups.
    #[error("database: {0}")]
    Sqlite(rusqlite::Error),
    /// The group of leases and submissions this write was committed with failed as a whole
    /// (its commit, or the wait for the write lock) and took no effect; or the flush of the
    /// WAL after its commit failed, so it may be lost, and the store takes no more.
    #[error("group commit: {0}")]
    GroupCommit(String),
    /// The object store holding proof blobs failed (unreachable, refused, gone mid-write);
    /// nothing that names the blob was written.
    #[error("proof store: {0}")]
    Blobs(String),
    /// The job's proof was collected: its sequence settled longer ago than the claims window.
    #[error("the proof of job {0} was collected after its sequence's claims window")]
    ProofCollected(JobId),
}

impl StoreError {
    /// Whether the store (or its proof store) is out of reach or overloaded, so the same
    /// request may succeed later, rather than refused or broken.
    pub fn is_unavailable(&self) -> bool {
        use sqlx::Error as E;
        match self {
            StoreError::Database(E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::Tls(_))
            | StoreError::Blobs(_)
            | StoreError::GroupCommit(_) => true,
            StoreError::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(
                    rusqlite::ErrorCode::DatabaseBusy
                        | rusqlite::ErrorCode::DatabaseLocked
                        | rusqlite::ErrorCode::SystemIoFailure
                        | rusqlite::ErrorCode::DiskFull
                )
            ),
            _ => false,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    /// A stored value that does not decode into its type (an id, a status, a circuit) is
    /// [`StoreError::Corrupt`]; anything else is the engine's failure.
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::ColumnDecode { .. } => StoreError::Corrupt(e.to_string()),
            e => StoreError::Database(e),
        }
    }
}

impl From<sheaf_types::InvalidJobId> for StoreError {
    fn from(e: sheaf_types::InvalidJobId) -> Self {
        StoreError::InvalidJobId(e.0)
    }
}
