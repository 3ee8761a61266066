//! What `--help` tells an operator, and what the logs look like to a log collector: one meaning
//! per flag name, the defaults a user will type, the log filter named, no colour codes in a
//! log file, and `--log-format json` one JSON object per line.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::common::sheaf;

fn help(args: &[&str]) -> String {
    let output = sheaf().args(args).arg("--help").output().unwrap();
    assert!(output.status.success(), "{args:?} --help failed");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn every_service_names_the_log_filter_and_format() {
    for command in ["coordinator", "prover", "chain", "devnet"] {
        let text = help(&[command]);
        assert!(text.contains("SHEAF_LOG="), "{command}: {text}");
        assert!(text.contains("SHEAF_LOG_FORMAT"), "{command}: {text}");
    }
}

#[test]
fn the_prover_example_uses_the_coordinators_default_port() {
    let text = help(&["prover"]);
    assert!(text.contains("http://127.0.0.1:7878"), "{text}");
    assert!(!text.contains("7700"), "{text}");
}

#[test]
fn key_and_provers_mean_one_thing_each() {
    // `chain` takes the final key as `--final-key` (its `--key` is an alias kept for old scripts).
    assert!(help(&["chain"]).contains("--final-key"));
    // `devnet --provers` is a count; the coordinator's file is `--provers-file`.
    assert!(help(&["devnet"]).contains("a count"));
    assert!(help(&["coordinator"]).contains("--provers-file"));
}

#[test]
fn member_show_says_it_sends_no_transaction() {
    let text = help(&["member", "show"]);
    assert!(text.contains("no transaction"), "{text}");
    assert!(text.contains("`show` only reads"), "{text}");
}

/// The first line a coordinator writes to a pipe (the store's migration, before circuits).
fn first_log_line(format: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut command = sheaf();
    command
        .args(["coordinator", "--listen", "127.0.0.1:0"])
        .arg("--db")
        .arg(format!("sqlite://{}", dir.path().join("s.db").display()))
        .env_remove("SHEAF_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(format) = format {
        command.args(["--log-format", format]);
    }
    let mut child = command.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(!line.is_empty(), "the coordinator wrote nothing");
    line
}

#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    let line = first_log_line(None);
    assert!(!line.contains('\u{1b}'), "{line:?}");
    assert!(line.contains("INFO"), "{line:?}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let line = first_log_line(Some("json"));
    let object: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    assert_eq!(object["level"], "INFO", "{line}");
    assert!(object["timestamp"].is_string(), "{line}");
}

#[test]
fn console_knobs_are_in_help_with_their_env_and_in_the_readme() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let coordinator = help(&["coordinator"]);
    let devnet = help(&["devnet"]);
    for (flag, env) in [
        ("--console-interval-ms", "SHEAF_CONSOLE_INTERVAL_MS"),
        ("--console-sequences", "SHEAF_CONSOLE_SEQUENCES"),
        ("--console-collapse-jobs", "SHEAF_CONSOLE_COLLAPSE_JOBS"),
        ("--console-max-viewers", "SHEAF_CONSOLE_MAX_VIEWERS"),
    ] {
        for text in [&coordinator, &devnet] {
            assert!(text.contains(flag) && text.contains(env), "{flag} {env}");
        }
        assert!(
            readme.contains(&format!("| `{flag}` | `{env}` |")),
            "{flag} has no row in the README's configuration table"
        );
    }
}
