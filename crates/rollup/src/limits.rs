//! Every bound of the rollup, in one place, with the reason for its value.

/// Depth of the account tree: account ids are `u32` slots, `2^32` accounts.
pub const ACCOUNT_TREE_DEPTH: usize = 32;

/// Depth of the nullifier tree: a nullifier's slot is its first limb (a 64-bit field element).
///
/// Two distinct nullifiers share a slot with probability about `n² / 2^65` among `n` spent
/// notes; the second one then cannot be inserted ([`crate::TxError::NullifierSlotTaken`]), which
/// blocks that note but can never let a note be spent twice. A circuit splits the limb into its
/// 64 bits and checks they form a canonical element.
pub const NULLIFIER_TREE_DEPTH: usize = 64;

/// Depth of a block's note tree, as Miden's `BLOCK_NOTE_TREE_DEPTH`: `2^16` notes per block.
pub const NOTE_TREE_DEPTH: usize = 16;

/// Depth of the chain tree of block commitments: `2^32` blocks.
pub const CHAIN_TREE_DEPTH: usize = 32;

/// Largest amount of any note or balance: `2^56 − 1` base units (about 72 million tokens of
/// `10^9` base units).
///
/// Why 56 bits: the circuit adds amounts as Goldilocks elements (`p = 2^64 − 2^32 + 1`). A sum
/// of at most [`MAX_SUMMANDS`] range-checked amounts is below `255 · 2^56 < p`, so the value
/// equation `balance + Σ inputs = Σ outputs + new balance` holds over the integers exactly when
/// it holds in the field; without range checks an output of `p − x` would act as `−x`.
pub const MAX_AMOUNT: u128 = (1 << 56) - 1;

/// The most amounts on one side of a value equation for which no field sum can wrap.
pub const MAX_SUMMANDS: usize = 255;

/// Input notes one transaction may consume (the tx kernel's fixed number of input slots).
///
/// Sized by the tx kernel's row budget of `2^13`: with 16 input and 16 output slots it places
/// 5,351 gates (4,607 Poseidon rows: 183 per input slot, 33 per output slot, 1,055 for the
/// signature), so it fits with room; an input slot costs about 194 rows, an output slot 37
/// (8 and 8 would be 3,507 gates, `2^12`).
pub const MAX_INPUT_NOTES_PER_TX: usize = 16;

/// Output notes one transaction may create (the tx kernel's fixed number of output slots); see
/// [`MAX_INPUT_NOTES_PER_TX`] for the kernel's size.
pub const MAX_OUTPUT_NOTES_PER_TX: usize = 16;

// Each side of the value equation adds one balance to its notes.
const _: () = assert!(MAX_INPUT_NOTES_PER_TX < MAX_SUMMANDS);
const _: () = assert!(MAX_OUTPUT_NOTES_PER_TX < MAX_SUMMANDS);

/// Bits of a block timestamp (Unix milliseconds): below `2^48`, about 8,900 years, so the block
/// kernel compares two timestamps with one 48-bit range check.
pub const MAX_TIMESTAMP_BITS: usize = 48;

/// Default transactions per batch: miden-node's `DEFAULT_MAX_TXS_PER_BATCH`.
pub const DEFAULT_MAX_TXS_PER_BATCH: usize = 8;

/// Default batches per block: miden-node's `DEFAULT_MAX_BATCHES_PER_BLOCK`.
pub const DEFAULT_MAX_BATCHES_PER_BLOCK: usize = 8;

/// Most transactions per batch the batch rules accept (the batch kernel's fan-in bound).
pub const MAX_TXS_PER_BATCH: usize = 64;

/// Input notes per batch: Miden's `MAX_INPUT_NOTES_PER_BATCH` (batch note tree depth 10).
pub const MAX_INPUT_NOTES_PER_BATCH: usize = 1024;

/// Output notes per batch: Miden's `MAX_OUTPUT_NOTES_PER_BATCH`.
pub const MAX_OUTPUT_NOTES_PER_BATCH: usize = 1024;

/// Distinct accounts per batch: Miden's `MAX_ACCOUNTS_PER_BATCH`.
pub const MAX_ACCOUNTS_PER_BATCH: usize = 1024;

/// Batches per block: Miden's `MAX_BATCHES_PER_BLOCK` (`2^(16 − 10)`).
pub const MAX_BATCHES_PER_BLOCK: usize = 64;

/// Output notes per block: every one needs a slot of the block's note tree.
pub const MAX_OUTPUT_NOTES_PER_BLOCK: usize = 1 << NOTE_TREE_DEPTH;
