//! The deployment files in `deploy/systemd` cannot rot: `systemd-analyze verify` accepts each
//! unit as written (with its `ExecStart` pointed at the binary under test), and every `SHEAF_*`
//! variable a unit or its environment file sets is one its command reads.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The units and the `sheaf` subcommand each runs.
const UNITS: [(&str, &str); 3] = [
    ("sheaf-chain.service", "chain"),
    ("sheaf-coordinator.service", "coordinator"),
    ("sheaf-prover.service", "prover"),
];

/// Where the units expect the binary.
const INSTALLED_BINARY: &str = "/usr/local/bin/sheaf";

/// Read by every command's log set-up rather than by a flag.
const LOG_FILTER: &str = "SHEAF_LOG";

fn systemd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/systemd")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `SHEAF_*` names a unit (`Environment=` lines) or an environment file sets.
fn variables_set(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let assignment = line.strip_prefix("Environment=").unwrap_or(line);
            let (name, _) = assignment.split_once('=')?;
            name.starts_with("SHEAF_").then(|| name.to_owned())
        })
        .collect()
}

/// The environment variables `sheaf <command>` reads, from its `--help`.
fn variables_read(command: &str) -> BTreeSet<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_sheaf"))
        .args([command, "--help"])
        .output()
        .expect("sheaf --help");
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).expect("utf-8 help");
    help.split("[env: ")
        .skip(1)
        .filter_map(|rest| rest.split_once('=').map(|(name, _)| name.to_owned()))
        .chain([LOG_FILTER.to_owned()])
        .collect()
}

#[test]
fn systemd_accepts_every_unit() {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (unit, _) in UNITS {
        let text = read(&systemd_dir().join(unit));
        assert!(
            text.contains(&format!("ExecStart={INSTALLED_BINARY} ")),
            "{unit}"
        );
        let path = dir.path().join(unit);
        let under_test = text.replace(INSTALLED_BINARY, env!("CARGO_BIN_EXE_sheaf"));
        std::fs::write(&path, under_test).unwrap();
        paths.push(path);
    }
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .args(&paths)
        .output()
        .expect("systemd-analyze (Debian package systemd) runs: .ci/run installs it");
    // It warns about a setting it does not understand and still exits 0: any output fails.
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && printed.trim().is_empty(),
        "{printed}"
    );
}

#[test]
fn every_variable_a_unit_sets_is_one_its_command_reads() {
    for (unit, command) in UNITS {
        let read_by_command = variables_read(command);
        let env_file = systemd_dir().join(format!("{command}.env"));
        for source in [systemd_dir().join(unit), env_file] {
            let set = variables_set(&read(&source));
            assert!(
                !set.is_empty(),
                "{} sets no SHEAF_ variable",
                source.display()
            );
            let unknown: Vec<_> = set.difference(&read_by_command).collect();
            assert!(
                unknown.is_empty(),
                "{} sets {unknown:?}, which `sheaf {command}` does not read",
                source.display()
            );
        }
    }
}

#[test]
fn a_misspelt_variable_would_be_caught() {
    // The check above compares names, so a typo in a unit is a failure, not a silent default.
    let set = variables_set("Environment=SHEAF_CHAIN_DATTA=/var/lib/sheaf-chain\n");
    assert!(!set.is_subset(&variables_read("chain")));
    assert!(variables_read("chain").contains("SHEAF_CHAIN_DATA"));
}
