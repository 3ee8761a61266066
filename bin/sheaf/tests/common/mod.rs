//! Shared by the tests that run `sheaf` processes: the command with the small test circuits,
//! and a free loopback port.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};

/// Work leaves of 2^5 rows: the cheapest real proofs.
pub const LEAF_ROWS_LOG2: &str = "5";

/// The `sheaf` binary with the test circuits (binary tree, smallest leaves), built once into
/// the target directory's cache and loaded by every process.
pub fn sheaf() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sheaf"));
    command
        .env(
            "SHEAF_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("sheaf-circuits"),
        )
        .env("SHEAF_LEAF_ROWS_LOG2", LEAF_ROWS_LOG2)
        .env("SHEAF_ARITY", "2")
        .env("SHEAF_PROFILE", "standard")
        .env_remove("SHEAF_FINAL_ZK")
        .stdin(Stdio::null());
    command
}

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}
