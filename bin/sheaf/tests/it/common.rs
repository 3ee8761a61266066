//! Shared by the tests that run `sheaf` processes: the command with the small test circuits,
//! a free loopback port, and a child process killed when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// Work leaves of 2^5 rows: the cheapest real proofs.
pub const LEAF_ROWS_LOG2: &str = "5";

/// The `sheaf` binary with the test circuits (binary tree, smallest leaves), built once into
/// the target directory's cache and loaded by every process.
pub fn sheaf() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sheaf"));
    command
        .env("SHEAF_CACHE_DIR", circuit_cache())
        .env("SHEAF_LEAF_ROWS_LOG2", LEAF_ROWS_LOG2)
        .env("SHEAF_ARITY", "2")
        .env("SHEAF_PROFILE", "test")
        .env_remove("SHEAF_FINAL_ZK")
        .env_remove("SHEAF_FINAL_COMPACT")
        .stdin(Stdio::null());
    command
}

/// The circuit cache every `sheaf` process of the tests shares: its artifacts are named by
/// their settings, so the first process to need a configuration builds it and the others load
/// it (a cold cache is `bench aggregate`'s to show, not every test's to pay for).
pub fn circuit_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("sheaf-circuits")
}

/// The PostgreSQL admin URL of `SHEAF_TEST_POSTGRES_URL` and the server's URL without a
/// database (to name new databases on it). Only the tests compiled in with it call this.
pub fn postgres_server() -> (String, String) {
    let admin = std::env::var("SHEAF_TEST_POSTGRES_URL")
        .expect("the tests were built with SHEAF_TEST_POSTGRES_URL set, and it is unset now");
    let server = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base)
        .to_owned();
    (admin, server)
}

/// `sheaf coordinator` running a rollup node from `genesis` on the SQLite store `dir/sheaf.db`,
/// listening on `port`, with `args` added (a block interval, a provers file, …); logs to
/// `dir/coordinator.log`.
pub fn rollup_coordinator(dir: &Path, port: u16, genesis: &Path, args: &[&str]) -> Process {
    Process::spawn(
        "coordinator",
        sheaf()
            .args([
                "coordinator",
                "--db",
                &format!("sqlite://{}", dir.join("sheaf.db").display()),
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--rollup-genesis",
            ])
            .arg(genesis)
            .args(args),
        dir,
    )
}

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A child process killed (SIGKILL) when dropped, so a failing test leaves nothing behind; its
/// output goes to `<name>.log` in the given directory.
pub struct Process {
    /// Its name, and its log's.
    pub name: String,
    /// The process.
    pub child: Child,
}

impl Process {
    /// Start `command` as `name`, logging to `dir/<name>.log`.
    pub fn spawn(name: &str, command: &mut Command, dir: &Path) -> Process {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{name}.log")))
            .expect("log file");
        let child = command
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Process {
            name: name.to_owned(),
            child,
        }
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Why it exited, if it did.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("{} exited ({status})", self.name)),
            _ => None,
        }
    }

    /// Panics with its log if it exited.
    pub fn assert_running(&mut self, dir: &Path) {
        if let Some(exited) = self.exited() {
            let log =
                std::fs::read_to_string(dir.join(format!("{}.log", self.name))).unwrap_or_default();
            panic!("{exited}:\n{log}");
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Bytes a process wrote, as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A process's standard output and then its standard error, as text.
pub fn output_text(output: &Output) -> String {
    format!("{}{}", text(&output.stdout), text(&output.stderr))
}

/// The standard output of a process that must have succeeded (else its status and standard
/// error fail the test).
pub fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status,
        text(&output.stderr)
    );
    text(&output.stdout)
}
