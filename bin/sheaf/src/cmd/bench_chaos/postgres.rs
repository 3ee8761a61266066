//! A PostgreSQL server of the harness's own, never a shared one: initialized in a temporary
//! directory owned by the `postgres` user, listening on a free loopback port, restarted with
//! `pg_ctl restart -m immediate` (a crash: no checkpoint, recovery from the WAL at start) and
//! stopped at the end.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

/// Where Debian and Ubuntu install PostgreSQL's server programs, one directory per version.
const POSTGRES_LIB: &str = "/usr/lib/postgresql";
/// The system user PostgreSQL runs as (it refuses to run as root).
const POSTGRES_USER: &str = "postgres";

/// A running private server.
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// The directory holding `dir`, owned by `postgres`; removed after the server stops.
    _owned: tempfile::TempDir,
}

impl PrivatePostgres {
    /// Initialize and start a server in a new temporary directory owned by `postgres`, on
    /// `port`.
    pub fn start(port: u16) -> anyhow::Result<PrivatePostgres> {
        let bin = server_bin()?;
        let owned = tempfile::Builder::new()
            .prefix("sheaf-chaos-postgres-")
            .tempdir()?;
        let dir = owned.path().join("postgres");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        run(Command::new("chown")
            .arg("-R")
            .arg(format!("{POSTGRES_USER}:"))
            .arg(owned.path()))?;
        let server = PrivatePostgres {
            bin,
            dir,
            port,
            _owned: owned,
        };
        server.pg(&[
            "initdb",
            "-D",
            &server.data(),
            "-U",
            POSTGRES_USER,
            "-A",
            "trust",
            "--no-sync",
        ])?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            server.dir.display()
        );
        let log = server.log();
        server.pg(&[
            "pg_ctl",
            "-D",
            &server.data(),
            "-o",
            &options,
            "-l",
            &log,
            "-w",
            "start",
        ])?;
        Ok(server)
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!(
            "postgres://{POSTGRES_USER}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    /// Stop at once, as a crash would, and start again on the same data.
    pub fn restart_immediate(&self) -> anyhow::Result<()> {
        self.pg(&[
            "pg_ctl",
            "-D",
            &self.data(),
            "-l",
            &self.log(),
            "-m",
            "immediate",
            "-w",
            "restart",
        ])
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// The server's log: named again at each restart, or the server writes to pg_ctl's output.
    fn log(&self) -> String {
        self.dir.join("server.log").display().to_string()
    }

    /// Run one of the server's programs as the `postgres` user, its output appended to
    /// `pg_ctl.log`: not a pipe, which a server it starts would inherit and hold open.
    fn pg(&self, args: &[&str]) -> anyhow::Result<()> {
        let (program, rest) = args.split_first().expect("a program");
        let log_path = self.dir.join("pg_ctl.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let status = Command::new("runuser")
            .current_dir(&self.dir)
            .args(["-u", POSTGRES_USER, "--"])
            .arg(self.bin.join(program))
            .args(rest)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
            .with_context(|| format!("running {program}"))?;
        if !status.success() {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!("{program} {} failed ({status}): {text}", rest.join(" "));
        }
        Ok(())
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.pg(&[
            "pg_ctl",
            "-D",
            &self.data(),
            "-m",
            "immediate",
            "-w",
            "stop",
        ]);
    }
}

/// The newest installed version's `bin` directory.
fn server_bin() -> anyhow::Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(POSTGRES_LIB)
        .with_context(|| format!("no PostgreSQL server under {POSTGRES_LIB}"))?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("pg_ctl").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => Ok(bin),
        None => bail!("no pg_ctl under {POSTGRES_LIB}/*/bin"),
    }
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
