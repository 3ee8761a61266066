//! `sheaf wallet` and `sheaf rollup status` as a user runs them, against a real coordinator
//! process with a rollup node: two wallets funded at genesis, a transfer, the recipient
//! consuming its note, each balance as both wallets read it from the published blocks, and the
//! refusals a user meets. No prover runs: balances count from publication, before proofs.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::common::{free_port, rollup_coordinator, sheaf, Process};

/// A token in base units.
const TOKEN: u128 = 1_000_000_000;

/// Run `sheaf ARGS` to its end.
fn run(args: &[&str]) -> Output {
    sheaf().args(args).output().unwrap()
}

/// Run `sheaf ARGS`, which must succeed; its stdout.
fn ok(args: &[&str]) -> String {
    let output = run(args);
    assert!(
        output.status.success(),
        "sheaf {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Run `sheaf ARGS`, which must fail; its stderr.
fn refused(args: &[&str]) -> String {
    let output = run(args);
    assert!(
        !output.status.success(),
        "sheaf {args:?} succeeded:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stderr).unwrap()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// `wallet balance --json` of `wallet` at `url`.
fn balance(wallet: &Path, url: &str) -> serde_json::Value {
    let wallet = wallet.to_str().unwrap();
    json(&ok(&[
        "wallet",
        "balance",
        "--wallet",
        wallet,
        "--coordinator",
        url,
        "--json",
    ]))
}

/// Amounts in `--json` answers are base units.
fn units(value: &serde_json::Value) -> u128 {
    value
        .as_u64()
        .map(u128::from)
        .unwrap_or_else(|| panic!("not an amount: {value}"))
}

/// Wait until `rollup status` answers (the coordinator loads its circuits first).
fn await_node(url: &str, process: &mut Process, dir: &Path) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        process.assert_running(dir);
        let output = run(&["rollup", "status", "--coordinator", url, "--json"]);
        if output.status.success() {
            return json(&String::from_utf8(output.stdout).unwrap());
        }
        assert!(Instant::now() < deadline, "the node did not answer in time");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A coordinator process running a rollup node from `genesis`, once it answers: its URL, the
/// process and its first status.
fn rollup_node(
    dir: &Path,
    genesis: &Path,
    interval_ms: u64,
) -> (String, Process, serde_json::Value) {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut node = rollup_coordinator(
        dir,
        port,
        genesis,
        &[
            "--block-interval-ms",
            &interval_ms.to_string(),
            // Batches are cut twice per block.
            "--batch-interval-ms",
            &(interval_ms / 2).max(1).to_string(),
        ],
    );
    let status = await_node(&url, &mut node, dir);
    (url, node, status)
}

#[test]
fn two_wallets_funded_at_genesis_transfer_and_consume_over_the_nodes_api() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let (a, b, c) = (path("a.json"), path("b.json"), path("c.json"));
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    for wallet in [&a, &b, &c] {
        let out = ok(&["wallet", "new", "--wallet", &s(wallet), "--keys", "8"]);
        assert!(out.starts_with("auth commitment "), "{out}");
    }
    // A wallet is never overwritten: it holds its account's only key.
    let again = refused(&["wallet", "new", "--wallet", &s(&a), "--keys", "8"]);
    assert!(again.contains("never overwritten"), "{again}");

    let genesis = path("genesis.json");
    let out = ok(&[
        "rollup",
        "genesis",
        "--fund",
        &format!("{}=100", s(&a)),
        "--fund",
        &format!("{}=50", s(&b)),
        "--timestamp",
        "1000",
        "--out",
        &s(&genesis),
    ]);
    assert!(out.contains("account 1: 100 tokens"), "{out}");
    assert!(out.contains("account 2: 50 tokens"), "{out}");

    let (url, _node, status) = rollup_node(dir.path(), &genesis, 200);
    assert_eq!(status["published_tip"], serde_json::Value::Null);
    assert_eq!(status["settled_tip"], serde_json::Value::Null);
    let text = ok(&["rollup", "status", "--coordinator", &url]);
    assert!(text.contains("published tip  none yet"), "{text}");
    assert!(text.contains("settled tip    none yet"), "{text}");

    // Each wallet finds its account in the node's genesis.
    let address = |w: &Path| {
        ok(&[
            "wallet",
            "address",
            "--wallet",
            &s(w),
            "--coordinator",
            &url,
        ])
    };
    assert_eq!(address(&a).trim(), "1");
    assert_eq!(address(&b).trim(), "2");
    let unfunded = refused(&[
        "wallet",
        "balance",
        "--wallet",
        &s(&c),
        "--coordinator",
        &url,
    ]);
    assert!(
        unfunded.contains("genesis has no account with this wallet's auth commitment"),
        "{unfunded}"
    );
    assert_eq!(units(&balance(&a, &url)["total"]), 100 * TOKEN);

    // Refused by the wallet before anything is sent: more than it holds, an unknown account.
    let send = |to: &str, amount: &str| {
        vec![
            "wallet".to_owned(),
            "send".to_owned(),
            "--wallet".to_owned(),
            s(&a),
            "--coordinator".to_owned(),
            url.clone(),
            "--to".to_owned(),
            to.to_owned(),
            "--amount".to_owned(),
            amount.to_owned(),
            "--json".to_owned(),
        ]
    };
    let args = send("2", "100.5");
    let too_much = refused(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        too_much.contains("cannot send 100.5 tokens")
            && too_much.contains("the wallet holds 100 tokens"),
        "{too_much}"
    );
    let args = send("9", "1");
    let nobody = refused(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        nobody.contains("account 9 does not exist in this rollup"),
        "{nobody}"
    );
    let status = json(&ok(&["rollup", "status", "--coordinator", &url, "--json"]));
    assert_eq!(status["pending"], 0);
    assert_eq!(status["published_tip"], serde_json::Value::Null);

    // A copy of A's wallet, made before A spends: one wallet file per account.
    let copy = path("a-copy.json");
    std::fs::copy(&a, &copy).unwrap();

    // A sends 30 to B: published in block 1; A's balance is 70, B holds a note of 30.
    let args = send("2", "30");
    let sent = json(&ok(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    assert_eq!(sent["block"], 1);
    assert_eq!(units(&sent["amount"]), 30 * TOKEN);
    assert_eq!(units(&sent["balance"]), 70 * TOKEN);
    let a_after = balance(&a, &url);
    assert_eq!(units(&a_after["balance"]), 70 * TOKEN);
    assert_eq!(units(&a_after["total"]), 70 * TOKEN);
    let b_before = balance(&b, &url);
    assert_eq!(units(&b_before["balance"]), 50 * TOKEN);
    assert_eq!(units(&b_before["notes"]), 30 * TOKEN);
    assert_eq!(units(&b_before["total"]), 80 * TOKEN);
    let notes = json(&ok(&[
        "wallet",
        "notes",
        "--wallet",
        &s(&b),
        "--coordinator",
        &url,
        "--json",
    ]));
    assert_eq!(notes.as_array().unwrap().len(), 1, "{notes}");
    assert_eq!(units(&notes[0]["amount"]), 30 * TOKEN);
    assert_eq!(notes[0]["block"], 1);

    // The copy signs from the account's old state: the node refuses it, and says why.
    let stale = refused(&[
        "wallet",
        "send",
        "--wallet",
        &s(&copy),
        "--coordinator",
        &url,
        "--to",
        "2",
        "--amount",
        "1",
    ]);
    assert!(
        stale.contains("the coordinator refused") && stale.contains("the account will be at"),
        "{stale}"
    );

    // B consumes it into its balance: block 2.
    let consumed = json(&ok(&[
        "wallet",
        "consume",
        "--wallet",
        &s(&b),
        "--coordinator",
        &url,
        "--json",
    ]));
    assert_eq!(consumed["consumed"], 1);
    assert_eq!(consumed["block"], 2);
    let b_after = balance(&b, &url);
    assert_eq!(units(&b_after["balance"]), 80 * TOKEN);
    assert_eq!(units(&b_after["notes"]), 0);
    assert_eq!(b_after["note_count"], 0);
    assert_eq!(units(&balance(&a, &url)["total"]), 70 * TOKEN);
    // Nothing left to consume.
    let nothing = run(&[
        "wallet",
        "consume",
        "--wallet",
        &s(&b),
        "--coordinator",
        &url,
    ]);
    assert!(nothing.status.success());
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("no notes to consume"));

    // B sends 5 to A as a local transaction: B's wallet proves its signed half (with the
    // circuit cache the node uses) and the node checks that proof on receipt: block 3.
    let local = json(&ok(&[
        "wallet",
        "send",
        "--local",
        "--wallet",
        &s(&b),
        "--coordinator",
        &url,
        "--to",
        "1",
        "--amount",
        "5",
        "--json",
    ]));
    assert_eq!(local["block"], 3, "{local}");
    assert_eq!(units(&balance(&b, &url)["total"]), 75 * TOKEN);
    assert_eq!(units(&balance(&a, &url)["notes"]), 5 * TOKEN);

    let status = json(&ok(&["rollup", "status", "--coordinator", &url, "--json"]));
    assert_eq!(status["published_tip"], 3);
    assert_eq!(status["pending"], 0);
}

#[test]
fn wallet_and_status_name_an_unreachable_coordinator() {
    let dir = tempfile::tempdir().unwrap();
    let wallet = dir.path().join("w.json");
    let wallet = wallet.to_str().unwrap();
    ok(&["wallet", "new", "--wallet", wallet, "--keys", "1"]);
    let url = format!("http://127.0.0.1:{}", free_port());
    for args in [
        vec![
            "wallet",
            "balance",
            "--wallet",
            wallet,
            "--coordinator",
            &url,
        ],
        vec!["rollup", "status", "--coordinator", &url],
    ] {
        let error = refused(&args);
        assert!(
            error.contains(&format!("cannot reach the coordinator at {url}")),
            "{args:?}: {error}"
        );
    }
    let error = refused(&["rollup", "status", "--coordinator", "127.0.0.1:7878"]);
    assert!(error.contains("is not a coordinator URL"), "{error}");
}

#[test]
fn rollup_status_says_when_the_coordinator_runs_no_rollup() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut coordinator = Process::spawn(
        "coordinator",
        sheaf().args([
            "coordinator",
            "--db",
            &format!("sqlite://{}", dir.path().join("sheaf.db").display()),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ]),
        dir.path(),
    );
    let deadline = Instant::now() + Duration::from_secs(600);
    let error = loop {
        coordinator.assert_running(dir.path());
        let output = run(&["rollup", "status", "--coordinator", &url]);
        assert!(!output.status.success());
        let error = String::from_utf8(output.stderr).unwrap();
        if !error.contains("cannot reach") {
            break error;
        }
        assert!(Instant::now() < deadline, "the coordinator did not answer");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(
        error.contains(&format!("the coordinator at {url} runs no rollup")),
        "{error}"
    );
}

#[test]
fn a_wallet_signs_nothing_while_its_last_transaction_may_still_be_included() {
    let dir = tempfile::tempdir().unwrap();
    let wallet = dir.path().join("w.json");
    let wallet = wallet.to_str().unwrap();
    ok(&["wallet", "new", "--wallet", wallet, "--keys", "4"]);
    let genesis = dir.path().join("genesis.json");
    let genesis_arg = genesis.to_str().unwrap();
    let fund = format!("{wallet}=10");
    // Funding one wallet twice is refused: it would find only the first account.
    let twice = refused(&[
        "rollup",
        "genesis",
        "--fund",
        &fund,
        "--fund",
        &fund,
        "--out",
        genesis_arg,
    ]);
    assert!(twice.contains("funded twice"), "{twice}");
    ok(&["rollup", "genesis", "--fund", &fund, "--out", genesis_arg]);
    // No block for a minute: the transaction waits in the node's mempool.
    let (url, _node, _) = rollup_node(dir.path(), &genesis, 60_000);
    // To itself: a note to its own account is a transfer like any other.
    let send = |amount: &str, timeout: &str| {
        run(&[
            "wallet",
            "send",
            "--wallet",
            wallet,
            "--coordinator",
            &url,
            "--to",
            "1",
            "--amount",
            amount,
            "--timeout-s",
            timeout,
        ])
    };
    let first = send("1", "0");
    assert!(!first.status.success());
    let error = String::from_utf8_lossy(&first.stderr);
    assert!(
        error.contains("was not published within 0 s; it stays pending in the wallet"),
        "{error}"
    );
    let second = send("2", "0");
    assert!(!second.status.success());
    let error = String::from_utf8_lossy(&second.stderr);
    assert!(
        error.contains("is still waiting for a block") && error.contains("signs no other"),
        "{error}"
    );
    let status = json(&ok(&["rollup", "status", "--coordinator", &url, "--json"]));
    assert_eq!(status["pending"], 1, "only the first reached the node");
    let balance = json(&ok(&[
        "wallet",
        "balance",
        "--wallet",
        wallet,
        "--coordinator",
        &url,
        "--json",
    ]));
    assert!(!balance["pending"].is_null(), "{balance}");
    assert_eq!(units(&balance["balance"]), 10 * TOKEN);
}
