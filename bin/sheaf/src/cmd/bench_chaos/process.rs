//! The network's processes as the harness runs them: started from this very binary, logging to
//! a file each, killed with SIGKILL, and started again on the same arguments (and state) when
//! they exit — armed, when asked, to abort at one failpoint.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::failpoints::CRASH_AT_ENV;

/// Least time between two starts of one process: a process that cannot start (its peer down)
/// does not spin.
const RESTART_BACKOFF: Duration = Duration::from_millis(500);
/// SIGABRT: how a process armed at a failpoint ends when it gets there.
const SIGABRT: i32 = 6;

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// It aborted at the failpoint it was armed with.
    AtFailpoint(&'static str),
    /// On its own, for another reason (a peer down at start, an error); an armed process
    /// stays armed for its next start.
    Exited,
}

/// One of the network's processes.
pub struct Process {
    /// Its name, and its log's (`<name>.log` in the work directory).
    pub name: String,
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    armed: Option<&'static str>,
    started: Option<Instant>,
    /// Times it was started.
    pub starts: u64,
}

impl Process {
    /// A process of `program args` with `env` added, not started yet.
    pub fn new(
        name: &str,
        program: &Path,
        args: Vec<OsString>,
        env: Vec<(String, String)>,
        dir: &Path,
    ) -> Process {
        Process {
            name: name.to_owned(),
            program: program.to_path_buf(),
            args,
            env,
            log: dir.join(format!("{name}.log")),
            child: None,
            armed: None,
            started: None,
            starts: 0,
        }
    }

    /// Start it, armed to abort at `failpoint` when given; a running one is killed first.
    pub fn start(&mut self, failpoint: Option<&'static str>) -> anyhow::Result<()> {
        self.kill();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env_remove(CRASH_AT_ENV)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(name) = failpoint {
            command.env(CRASH_AT_ENV, name);
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", self.name))?;
        self.child = Some(child);
        self.armed = failpoint;
        self.started = Some(Instant::now());
        self.starts += 1;
        Ok(())
    }

    /// SIGKILL, and reap it; `false` if it was not running.
    pub fn kill(&mut self) -> bool {
        match self.child.take() {
            Some(mut child) => {
                let running = matches!(child.try_wait(), Ok(None));
                let _ = child.kill();
                let _ = child.wait();
                self.armed = None;
                running
            }
            None => false,
        }
    }

    /// How it ended, if it ended since the last look; it is then not running.
    pub fn ended(&mut self) -> Option<(Ended, ExitStatus)> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        let ended = match (self.armed, status.signal()) {
            (Some(name), Some(SIGABRT)) => {
                self.armed = None;
                Ended::AtFailpoint(name)
            }
            _ => Ended::Exited,
        };
        Some((ended, status))
    }

    /// Whether it runs (as last seen).
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// The failpoint it is armed with, kept across starts until it crashes there.
    pub fn armed(&self) -> Option<&'static str> {
        self.armed
    }

    /// Whether it may be started again now (see [`RESTART_BACKOFF`]).
    pub fn may_restart(&self) -> bool {
        self.started.is_none_or(|s| s.elapsed() >= RESTART_BACKOFF)
    }

    /// Its log's last `lines` lines.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
