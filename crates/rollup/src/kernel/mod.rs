//! The rollup's kernels as circuits: the tx kernel (a leaf kind), and the merge and block
//! kernels (aggregation nodes of the universal shape that read their children's statements).
//!
//! ```text
//!  tx kernel (leaf "tx")      one transaction against the state it runs on: S_i ─▶ S_i+1
//!     │ tx leaf node (generic) statement H(T)
//!     ▼
//!  merge node (binary)        T_left ⨝ T_right: left.after = right.before, same block,
//!     │                        expiration = min, counts summed       (a batch is a subtree)
//!     ▼
//!  block node                 T over the whole block ⨝ header n−1 ─▶ header n
//!     │ statement H(BlockStatement ‖ prev commitment ‖ new commitment)
//!     ▼
//!  universal node ─▶ root, verified with the one final key
//! ```

pub mod gadgets;
pub mod transition;
pub mod tx;

pub use transition::{StateRootsTarget, TransitionTarget};
pub use tx::{TxJob, TxKernel, TX_KERNEL_KIND};
