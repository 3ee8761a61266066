//! `sheaf claim` refusing what it cannot act on, before any circuit is built or anything sent:
//! one test per refusal. Claims paid end to end are in the devnet tests (every prover and the
//! local client) and the walkthrough (a rerun, a SIGINT).

use std::process::{Command, Output};

fn claim(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sheaf"))
        .arg("claim")
        .args(args)
        .env("SHEAF_CACHE_DIR", dir.join("cache"))
        .env_remove("SHEAF_CHAIN")
        .env_remove("SHEAF_COORDINATOR")
        .env_remove("SHEAF_KEY")
        .output()
        .expect("sheaf runs")
}

fn keygen(dir: &std::path::Path) -> String {
    let path = dir.join("alice.key");
    let out = Command::new(env!("CARGO_BIN_EXE_sheaf"))
        .args(["keygen", "--out"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    path.to_str().unwrap().to_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_exit_account_that_is_neither_hex_nor_a_key_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path());
    let out = claim(
        dir.path(),
        &[
            "--coordinator",
            "http://127.0.0.1:9",
            "--key",
            &key,
            "--to",
            "nowhere",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        stderr(&out).contains("neither 64 hex characters nor a readable key file"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("cache").exists(), "circuits were built");
}

#[test]
fn a_missing_key_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.key");
    let out = claim(
        dir.path(),
        &[
            "--coordinator",
            "http://127.0.0.1:9",
            "--key",
            missing.to_str().unwrap(),
            "--to",
            &"ab".repeat(32),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr(&out).contains("missing.key"), "{}", stderr(&out));
}

#[test]
fn a_batch_out_of_range_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path());
    for batch in ["0", "65"] {
        let out = claim(
            dir.path(),
            &[
                "--coordinator",
                "http://127.0.0.1:9",
                "--key",
                &key,
                "--to",
                &key,
                "--batch",
                batch,
            ],
        );
        assert_eq!(out.status.code(), Some(2), "--batch {batch}: {out:?}");
        assert!(stderr(&out).contains("--batch"), "{}", stderr(&out));
    }
}

#[test]
fn an_unreachable_coordinator_is_named_and_nothing_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path());
    // Port 9 (discard) on loopback: nothing listens.
    let out = claim(
        dir.path(),
        &[
            "--coordinator",
            "http://127.0.0.1:9",
            "--key",
            &key,
            "--to",
            &key,
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr(&out).contains("http://127.0.0.1:9"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("cache").exists(), "circuits were built");
}
