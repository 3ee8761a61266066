//! The README's "Running a network" cannot rot: `scripts/walkthrough.sh` holds its commands
//! (checked line by line here) and runs them on loopback, with a fresh PostgreSQL database,
//! two coordinator replicas and two provers registered as members, until every sequence is
//! finalized on chain.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::common::{free_port, postgres_server, sheaf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn script() -> PathBuf {
    workspace().join("scripts/walkthrough.sh")
}

/// The commands of the README's "Running a network" block: its `sheaf` and `curl` lines,
/// without their trailing comments.
fn readme_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(workspace().join("README.md")).expect("README.md");
    let section = readme
        .split("## Running a network\n")
        .nth(1)
        .expect("the README has a \"Running a network\" section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("the section opens with a sh block");
    block
        .lines()
        .map(|line| line.split(" # ").next().unwrap_or(line).trim_end())
        .filter(|line| line.starts_with("sheaf ") || line.starts_with("curl "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_command_of_the_readme_network_section_is_in_the_walkthrough_script() {
    let script = std::fs::read_to_string(script()).expect("scripts/walkthrough.sh");
    let commands = readme_commands();
    assert!(commands.len() >= 15, "{commands:#?}");
    let missing: Vec<&String> = commands
        .iter()
        .filter(|command| {
            !script
                .lines()
                .any(|line| line.starts_with(command.as_str()))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "README commands missing from the script: {missing:#?}"
    );
}

#[cfg_attr(
    not(sheaf_postgres),
    ignore = "needs SHEAF_TEST_POSTGRES_URL (PostgreSQL)"
)]
#[test]
fn the_walkthrough_script_settles_a_network_as_the_readme_runs_it() {
    let (_, server) = postgres_server();
    // The test circuits and cache of `common::sheaf`, tiny sequences, quick blocks.
    let template = sheaf();
    let mut command = std::process::Command::new("bash");
    command.arg(script());
    for (name, value) in template.get_envs() {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    let output = command
        .env("SHEAF_BIN", env!("CARGO_BIN_EXE_sheaf"))
        .env("SHEAF_POSTGRES", &server)
        .env("SEQUENCES", "1")
        .env("LEAVES", "2")
        .env("SHEAF_BLOCK_MS", "200")
        .env("SHEAF_CHAIN_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("COORDINATOR_1", format!("127.0.0.1:{}", free_port()))
        .env("COORDINATOR_2", format!("127.0.0.1:{}", free_port()))
        .env("WALKTHROUGH_TIMEOUT_S", "400")
        .stdin(Stdio::null())
        .output()
        .expect("bash runs the script");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains(
            "walkthrough: OK: 1 sequences of 2 leaves proved (provers alice and bob, members of \
             the chain) through two coordinator replicas and finalized on chain; one replica sent"
        ),
        "{text}"
    );
    assert!(
        text.contains("membership deposit 0.05 tokens (50000000 units) per message"),
        "{text}"
    );
}
