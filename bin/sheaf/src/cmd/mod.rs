//! The `sheaf` subcommands.

pub mod bench;
pub mod keys;
pub mod prove_tree;
