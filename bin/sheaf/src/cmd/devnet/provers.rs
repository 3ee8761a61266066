//! The devnet's prover processes: started as `sheaf prover` children, stopped with SIGTERM.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::circuit_args::CircuitArgs;

use super::PROVER_EXIT_GRACE;

/// One prover process; killed if still running when dropped.
pub struct ProverProcess {
    /// Its name (`prover-1`, …).
    pub name: String,
    /// Its id in the coordinator's store (its membership's).
    pub id: String,
    /// The process.
    pub child: Child,
    /// Its log (stderr).
    pub log: PathBuf,
    /// Killed from outside (SIGKILL) and already reported: the network carries on without it.
    pub killed: bool,
}

impl ProverProcess {
    /// The last line of its log, to say why it exited (the log may be in a temporary directory
    /// removed at the end).
    pub fn last_log_line(&self) -> String {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .unwrap_or("(empty log)")
            .trim()
            .to_owned()
    }
}

impl Drop for ProverProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `sheaf prover` as a child process against the coordinator at `url`.
pub fn spawn_prover(
    name: &str,
    id: String,
    key: &Path,
    url: &str,
    threads: usize,
    circuits: &CircuitArgs,
    data_dir: &Path,
) -> anyhow::Result<ProverProcess> {
    let log_path = data_dir.join(format!("{name}.log"));
    let log = std::fs::File::create(&log_path)?;
    let mut command = Command::new(std::env::current_exe()?);
    command
        .arg("prover")
        .arg("--coordinator")
        .arg(url)
        .arg("--key")
        .arg(key)
        .arg("--threads")
        .arg(threads.to_string())
        .arg("--cache-dir")
        .arg(&circuits.cache_dir)
        .arg("--json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    if circuits.no_cache {
        command.arg("--no-cache");
    }
    let child = command
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    Ok(ProverProcess {
        name: name.to_owned(),
        id,
        child,
        log: log_path,
        killed: false,
    })
}

/// Fails if a prover process exited on its own (a crash, an error); one killed from outside
/// with SIGKILL (an operator, a test of the network's recovery) is reported once and the run
/// carries on while another prover runs: its leases expire and the others take its jobs.
pub fn check_provers(provers: &mut [ProverProcess]) -> anyhow::Result<()> {
    for prover in provers.iter_mut() {
        let Some(status) = prover.child.try_wait()? else {
            continue;
        };
        #[cfg(unix)]
        let killed = std::os::unix::process::ExitStatusExt::signal(&status) == Some(9);
        #[cfg(not(unix))]
        let killed = false;
        if !killed {
            anyhow::bail!(
                "{} exited ({status}) before the devnet finished; its log ends: {}",
                prover.name,
                prover.last_log_line()
            );
        }
        if !prover.killed {
            prover.killed = true;
            eprintln!(
                "devnet: {} was killed (SIGKILL); its leases expire and the other provers take its jobs",
                prover.name
            );
        }
    }
    if provers.iter().all(|p| p.killed) {
        anyhow::bail!("every prover was killed before the devnet finished");
    }
    Ok(())
}

/// SIGTERM every prover (they finish gracefully and print their report), then wait.
pub fn stop_provers(provers: &mut [ProverProcess]) {
    for prover in provers.iter() {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(prover.child.id().to_string())
            .status();
    }
    for prover in provers.iter_mut() {
        let deadline = Instant::now() + PROVER_EXIT_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = prover.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut report = String::new();
        if let Some(stdout) = prover.child.stdout.as_mut() {
            let _ = stdout.read_to_string(&mut report);
        }
        tracing::debug!(target: "sheaf::devnet", prover = %prover.name, report = %report.trim(), "prover stopped");
    }
}
