//! Sheaf's store: everything the coordinator knows — sequences, their job trees, leases, proofs,
//! rewards and provers — on SQLite (embedded, the default) or PostgreSQL (several coordinator
//! replicas on one database), behind one [`Store`].
//!
//! A coordinator killed at any moment restarts on the same store and carries on: every state
//! change is one database transaction, and all times are parameters taken from the coordinator,
//! never from a prover: on PostgreSQL from the database's clock, which every replica shares
//! ([`Store::shared_clock_ms`]), on SQLite from the one process's clock.
//!
//! # Flow of a job
//!
//! ```text
//!  insert_sequence
//!    │ leaves                          other jobs
//!    ▼                                     ▼
//!  ready ◀──── last child proved ────── waiting
//!    │  ▲      (same transaction)
//!    │  └──── lease expired (holder noted) ─────┐
//!    │ lease_next_job                            │ requeue_expired
//!    │ (attempts += 1, new fencing token)        │
//!    ▼                                           │
//!  leased ───────────────────────────────────────┤
//!    │                                           │
//!    │ submit_proof                              └──▶ dead (max_attempts distinct
//!    │ (current lease only)                            provers abandoned it)
//!    ▼
//!  proved: blob, reward entry, parent released — one transaction
//!
//!  operator: requeue_job  dead | leased | cancelled ──▶ ready (waiting if a child is unproved),
//!                         with a fresh retry budget
//!            requeue_sequence  the same for every dead (or every cancelled) job of a
//!                         sequence, in one transaction
//!            cancel_job   any state but proved ──▶ cancelled
//! ```
//!
//! SYSTEM.md's `failed` state is folded into `ready`: a job whose lease expired is `ready` again
//! with `attempts > 0` (see [`JobStatus`]).
//!
//! # Rollup blocks
//!
//! The rollup's block producer keeps its transactions and published blocks here (`rollup.rs`):
//! [`Store::publish_rollup_block`] stores a block, includes its transactions and plans the
//! sequence proving it in one transaction, so a block is never published without its job tree,
//! nor a tree stored without its block. Headers and transactions are opaque bytes to the store.
//!
//! # Failure semantics
//!
//! - **Fencing.** Each lease has a token, the count of leases ever granted on the job (never
//!   reset). [`Store::heartbeat`] and [`Store::submit_proof`] refuse anything but the current
//!   lease — job `leased` under that token, `now < expiry`, and for a submission the same
//!   prover — with [`StoreError::StaleLease`], so a prover that was presumed dead cannot
//!   overwrite its successor. Authenticating the prover is the caller's job.
//! - **Exactly-once effect.** Execution is at least once (an expired job is leased again), but
//!   a job is proved once: storing the blob (content-addressed by SHA-256), marking the job
//!   proved, writing its one reward entry and releasing its parent happen in one transaction,
//!   and a second proof gets [`StoreError::AlreadyProved`] and changes nothing.
//! - **Admission.** [`Store::lease_admitted`] checks a registered prover's limits (live
//!   leases against `max_concurrent`, leases granted this epoch against `rate_limit`) and
//!   leases in the same transaction, so no interleaving of requests passes a limit; on
//!   PostgreSQL the prover's row is locked, serializing its requests across replicas. A
//!   request that finds no work costs no rate. [`Store::remember_nonce`] records signed
//!   requests' nonces, so a replay is told apart with one insert.
//! - **Concurrency.** SQLite write transactions start with `BEGIN IMMEDIATE` on the store's
//!   one write connection, so writers queue in the pool rather than in SQLite's sleeping busy
//!   handler, and another process's writer is waited for up to [`SQLITE_BUSY_TIMEOUT`]. Leases
//!   and submissions, the writes on every prover's path, are committed in groups there: one
//!   transaction, a savepoint per request, one fsync of the WAL for the group, after the write
//!   lock is let go and before its submissions are answered (`group_commit.rs`).
//!   PostgreSQL claims jobs with `FOR UPDATE SKIP LOCKED`, and sibling submissions serialize on
//!   their parent's row, so exactly the last of them releases the parent; a lease and a
//!   submission are one call each there, to the functions of migration 0014.
//! - **Durability.** On PostgreSQL a stored proof, an operator action or a registry change is
//!   durable when its call returns; a lease (and a request's nonce) commits without waiting for the WAL
//!   flush, so a database crash may forget the last leases granted, as if they had expired
//!   (and the nonces of the last requests, see [`Store::remember_nonce`]). SQLite runs
//!   in WAL mode with `synchronous = FULL`, checkpointing in the background: every commit
//!   that returned survives a crash of the process and of the OS (one fsync per write
//!   transaction; leases and nonces as on PostgreSQL), so the ledger (proofs, rewards, outbox, roles) is never rolled back.
//! - **Schema.** Numbered migrations per engine (`migrations/<engine>/NNNN_*.sql`), embedded
//!   with `sqlx::migrate!` and applied at connect, each in its own transaction, under sqlx's
//!   advisory lock on PostgreSQL; a database migrated by the store's former runner is adopted
//!   (see `migrate.rs`), and a database newer than the build is refused.
//! - **Writes.** Every query is written once, for sqlx's `Any` driver; the few clauses the
//!   engines disagree on (`FOR UPDATE SKIP LOCKED`, `SET LOCAL`, advisory locks) come from the
//!   engine at hand. A write transaction's work is a function that returns its outcome,
//!   refusals included; the caller commits an `Ok` and rolls back an `Err`, so no exit of the
//!   work drops it while reporting success. The two hot writes are the exception: their
//!   statements are constants run by rusqlite in SQLite's group commit and by PL/pgSQL on
//!   PostgreSQL, each transaction one call instead of a round trip per statement.

pub mod bench;
mod blobs;
mod checkpoint;
mod claims;
mod console;
mod error;
mod flush;
mod group_commit;
mod lease;
mod migrate;
mod model;
mod nonces;
mod operator;
mod outbox;
mod plan;
mod proofs;
mod provers;
mod roles;
mod rollup;
mod rows;
mod store;
mod submit;

pub use blobs::{ProofBlobs, StoredBlob, SEGMENT_BYTES};
pub use checkpoint::{SQLITE_CHECKPOINT_INTERVAL, SQLITE_WAL_RESTART_PAGES};
pub use console::{ConsoleJob, ConsoleSequence, LevelCount, OutboxStep, SequenceTips};
pub use error::{Result, StoreError};
pub use migrate::SCHEMA_VERSION;
pub use model::{
    AbandonBackoff, ExpiredLeases, Job, JobFilter, JobStatus, Lease, LeaseOutcome, NewJob,
    NewRollupTransaction, NewSequence, ProvedLeaf, Prover, ProverActivity, PublishedBlock, Reward,
    RewardEntry, RollupBlock, RollupTransaction, RollupTxStatus, Sequence, SequenceStatusCount,
    StatusCount, StoredProofs, SubmitOutcome,
};
pub use outbox::{NewOutboxTx, OutboxKind, OutboxStatus, OutboxTx};
pub use proofs::CollectedProofs;
pub use roles::{Role, RoleFence};
pub use sheaf_types::{InvalidJobId, JobCircuit, JobId, JobInputs, SequenceId};
pub use store::{
    Store, POOL_ACQUIRE_TIMEOUT, POSTGRES_CONNECT_TIMEOUT, POSTGRES_MAX_CONNECTIONS,
    SQLITE_BUSY_TIMEOUT, SQLITE_FILE_NAME, SQLITE_MAX_CONNECTIONS,
};
pub use submit::proof_hash;
