//! Sheaf's domain types: the values that cross crate boundaries, each defined once.
//!
//! ```text
//!  sheaf-types (floor 0: serde, sqlx traits, no proving)
//!     ▲      ▲        ▲          ▲          ▲
//!   api    store   circuits    chain    coordinator, prover, sheaf
//! ```
//!
//! Every type here goes to the wire (serde) and to the database (sqlx `Type`, `Encode`,
//! `Decode`, for any engine whose native type it maps onto) as itself, so a value is parsed once,
//! at the edge, and never re-checked or cast inside:
//!
//! - [`JobId`]: a job's place in its sequence's tree, `s{sequence}-l{level}-i{index}`;
//! - [`SequenceId`]: one sequence number, the same in the store, the API and on chain;
//! - [`JobCircuit`]: which circuit proves a job (`leaf:<kind>`, `node:<kind>`, `universal`,
//!   `wrap`);
//! - [`JobInputs`]: what a job proves from besides its children's proofs, tagged by leaf kind;
//! - [`Address`] and [`Amount`]: chain accounts and token amounts;
//! - [`clock`]: the one wall clock, in Unix milliseconds.

mod address;
pub mod base64_bytes;
mod circuit;
pub mod clock;
mod inputs;
mod job;
mod sequence;
mod sql;
mod text;

pub use address::{Address, InvalidAddress};
pub use amount::{Amount, BASE_UNITS_PER_TOKEN};
pub use circuit::{JobCircuit, UnknownCircuit};
pub use inputs::{JobInputs, LeafInputs};
pub use job::{InvalidJobId, JobId};
pub use sequence::SequenceId;

mod amount;
