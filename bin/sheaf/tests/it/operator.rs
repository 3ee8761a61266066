//! What an operator sees when a command fails: one line naming what failed and its cause once,
//! no password, and cheap checks done before expensive work.

use std::process::Output;
use std::time::{Duration, Instant};

use crate::common::{free_port, sheaf};

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn failed(output: &Output) -> String {
    assert!(!output.status.success(), "succeeded: {}", stderr(output));
    stderr(output)
}

#[test]
fn an_error_is_one_line_with_its_cause_once() {
    // The standard profile: the test profile of `sheaf()` adds its warning line.
    let output = sheaf()
        .args(["export-key", "--out", "/no-such-directory/final.key"])
        .env("SHEAF_PROFILE", "standard")
        .output()
        .unwrap();
    let error = failed(&output);
    assert_eq!(error.trim().lines().count(), 1, "{error}");
    assert!(error.contains("/no-such-directory/final.key"), "{error}");
    assert_eq!(
        error.matches("No such file or directory").count(),
        1,
        "{error}"
    );
}

#[test]
fn coordinator_hides_the_database_password_and_names_a_refused_connection_at_once() {
    let url = format!("postgres://sheaf:secret@127.0.0.1:{}/sheaf", free_port());
    let started = Instant::now();
    let output = sheaf()
        .args(["coordinator", "--listen", "127.0.0.1:0", "--db", &url])
        .output()
        .unwrap();
    let error = failed(&output);
    assert!(started.elapsed() < Duration::from_secs(10), "{error}");
    assert!(!error.contains("secret"), "{error}");
    assert!(error.contains("sheaf:***@127.0.0.1"), "{error}");
    assert!(error.contains("Connection refused"), "{error}");
}

#[test]
fn coordinator_refuses_a_taken_port_before_opening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let db = dir.path().join("store/sheaf.db");
    let output = sheaf()
        .args(["coordinator", "--listen", &address])
        .arg("--db")
        .arg(format!("sqlite://{}", db.display()))
        .output()
        .unwrap();
    let error = failed(&output);
    assert!(error.contains(&address), "{error}");
    assert!(!db.exists(), "the store was created: {error}");
}

#[test]
fn coordinator_names_an_unreachable_chain_once_before_opening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store/sheaf.db");
    let chain = format!("http://127.0.0.1:{}", free_port());
    let output = sheaf()
        .args(["coordinator", "--listen", "127.0.0.1:0", "--chain", &chain])
        .arg("--db")
        .arg(format!("sqlite://{}", db.display()))
        .output()
        .unwrap();
    let error = failed(&output);
    assert_eq!(error.trim().lines().count(), 1, "{error}");
    assert_eq!(error.matches(&chain).count(), 1, "{error}");
    assert!(error.contains("Connection refused"), "{error}");
    assert!(!db.exists(), "the store was created: {error}");
}

#[test]
fn coordinator_refuses_a_taken_metrics_port_before_opening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let db = dir.path().join("store/sheaf.db");
    let output = sheaf()
        .args(["coordinator", "--listen", "127.0.0.1:0"])
        .args(["--metrics-listen", &address])
        .arg("--db")
        .arg(format!("sqlite://{}", db.display()))
        .output()
        .unwrap();
    let error = failed(&output);
    assert!(
        error.contains(&format!("listening for metrics on {address}")),
        "{error}"
    );
    assert!(!db.exists(), "the store was created: {error}");
}

#[test]
fn coordinator_refuses_a_missing_provers_file_before_opening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store/sheaf.db");
    let provers = dir.path().join("provers.toml");
    let output = sheaf()
        .args(["coordinator", "--listen", "127.0.0.1:0", "--provers"])
        .arg(&provers)
        .arg("--db")
        .arg(format!("sqlite://{}", db.display()))
        .output()
        .unwrap();
    let error = failed(&output);
    assert!(error.contains("provers.toml"), "{error}");
    assert!(!db.exists(), "the store was created: {error}");
}
