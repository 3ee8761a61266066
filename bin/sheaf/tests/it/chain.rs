//! `sheaf chain`, `sheaf member` and `sheaf stake` as a user runs them: a chain process on a
//! loopback port, and the prover's transactions signed with its key file.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sheaf_prover::ProverKey;

use crate::common::{free_port, output_text as text, sheaf};

/// The chain process, killed when dropped.
struct ChainProcess(Child);

impl Drop for ChainProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(command: &mut Command) -> Output {
    command.output().expect("sheaf runs")
}

#[test]
fn prover_registers_stakes_and_is_refused_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("alice.key");
    let key = ProverKey::generate();
    key.write(&key_path, false).unwrap();
    let final_key = dir.path().join("final.key");
    assert!(run(sheaf().arg("export-key").arg("--out").arg(&final_key))
        .status
        .success());
    let genesis = dir.path().join("genesis.json");
    std::fs::write(
        &genesis,
        format!(
            r#"{{"coordinator": "{}", "allocations": [{{"address": "{}", "balance": 5000000000000000000}}]}}"#,
            "11".repeat(32),
            key.public_key_hex()
        ),
    )
    .unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let _chain = ChainProcess(
        sheaf()
            .arg("chain")
            .arg("--key")
            .arg(&final_key)
            .arg("--data")
            .arg(dir.path().join("chain"))
            .arg("--genesis")
            .arg(&genesis)
            .args([
                "--block-ms",
                "100",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "chain did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let as_alice = |args: &[&str]| {
        run(sheaf()
            .args(args)
            .args(["--chain", &url, "--wait-s", "30"])
            .arg("--key")
            .arg(&key_path))
    };

    let registered = as_alice(&["member", "register", "--rate-limit", "20"]);
    assert!(registered.status.success(), "{}", text(&registered));
    // Events in words: addresses and ids in hex, amounts in tokens with the base units.
    let alice = key.public_key_hex();
    for line in [
        format!("  debited 1 tokens (1000000000 units) from {alice}\n"),
        format!(
            "  membership {} registered at index 0, rate limit 20\n",
            key.worker_pk()
        ),
    ] {
        assert!(
            text(&registered).contains(&line),
            "{line:?} in {}",
            text(&registered)
        );
    }
    let shown = as_alice(&["member", "show"]);
    assert!(shown.status.success(), "{}", text(&shown));
    assert!(
        text(&shown).contains(&format!("membership {}: Active", key.worker_pk())),
        "{}",
        text(&shown)
    );

    // The same worker_pk cannot register twice; the chain's reason reaches the user.
    let again = as_alice(&["member", "register"]);
    assert!(!again.status.success());
    assert!(text(&again).contains("refused"), "{}", text(&again));

    // Amounts on the command line are tokens.
    let staked = as_alice(&["stake", "deposit", "1000"]);
    assert!(staked.status.success(), "{}", text(&staked));
    assert!(
        text(&staked).contains(&format!(
            "  {alice} staked 1000 tokens (1000000000000 units); stake 1000 tokens (1000000000000 units)\n"
        )),
        "{}",
        text(&staked)
    );
    let shown = as_alice(&["member", "show"]);
    assert!(
        text(&shown)
            .contains("stake 1000 tokens (1000000000000 units), rewards 0 tokens (0 units)"),
        "{}",
        text(&shown)
    );
    let overdrawn = as_alice(&["stake", "withdraw", "1000.5"]);
    assert!(!overdrawn.status.success(), "{}", text(&overdrawn));
    assert!(
        text(&overdrawn).contains(
            ": cannot withdraw 1000.5 tokens (1000500000000 units) from a stake of 1000 tokens \
             (1000000000000 units)\n"
        ),
        "{}",
        text(&overdrawn)
    );

    // Without a key, a clear error before anything is sent.
    let keyless = run(sheaf()
        .args(["member", "show", "--chain", &url])
        .env_remove("SHEAF_KEY"));
    assert!(!keyless.status.success());
    assert!(text(&keyless).contains("--key"), "{}", text(&keyless));
}
