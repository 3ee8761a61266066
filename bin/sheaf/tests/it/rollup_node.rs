//! `sheaf coordinator --rollup-genesis` as an operator runs it: a coordinator process with a
//! rollup node takes signed transactions over HTTP and publishes blocks of them before they are
//! proven; a killed and restarted process carries on from its store.

use std::time::{Duration, Instant};

use crate::common::{free_port, rollup_coordinator, sheaf, Process};
use sheaf_rollup::demo::DemoRollup;

/// `GET /v1/rollup/status` until `ready` holds of it (the process loads its circuits first).
async fn status_until(
    http: &reqwest::Client,
    url: &str,
    process: &mut Process,
    dir: &std::path::Path,
    ready: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        process.assert_running(dir);
        if let Ok(response) = http.get(format!("{url}/v1/rollup/status")).send().await {
            if let Ok(status) = response.json::<serde_json::Value>().await {
                if ready(&status) {
                    return status;
                }
            }
        }
        assert!(Instant::now() < deadline, "no such rollup status in time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn coordinator(dir: &std::path::Path, port: u16, genesis: &std::path::Path) -> Process {
    rollup_coordinator(
        dir,
        port,
        genesis,
        &["--block-interval-ms", "200", "--batch-interval-ms", "100"],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_with_a_rollup_genesis_publishes_blocks_and_a_restart_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = DemoRollup::new(3, 16, 1_000).unwrap();
    let genesis = dir.path().join("genesis.json");
    std::fs::write(&genesis, serde_json::to_vec(demo.genesis()).unwrap()).unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut process = coordinator(dir.path(), port, &genesis);
    status_until(&http, &url, &mut process, dir.path(), |s| s["pending"] == 0).await;

    let txs = demo.transfers(5).unwrap();
    for tx in &txs[..3] {
        let answer = http
            .post(format!("{url}/v1/rollup/transactions"))
            .body(serde_json::to_vec(tx).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    }
    let refused = http
        .post(format!("{url}/v1/rollup/transactions"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    // The block interval publishes them, unproven (no prover runs).
    let status = status_until(&http, &url, &mut process, dir.path(), |s| {
        s["pending"] == 0 && !s["published_tip"].is_null()
    })
    .await;
    assert_eq!(status["proven_tip"], serde_json::Value::Null);
    let published = status["published_tip"].as_i64().unwrap();

    // Killed, restarted on the same store: the published blocks are replayed, and a later
    // transaction, which starts from their state, is taken and published after them. (Not the
    // fourth: it consumes the third's note as unauthenticated, and that note is now in a
    // published block, where a client names it by block and index.)
    process.kill();
    let mut process = coordinator(dir.path(), port, &genesis);
    status_until(&http, &url, &mut process, dir.path(), |s| {
        s["published_tip"].as_i64() == Some(published)
    })
    .await;
    let answer = http
        .post(format!("{url}/v1/rollup/transactions"))
        .body(serde_json::to_vec(&txs[4]).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    status_until(&http, &url, &mut process, dir.path(), |s| {
        s["published_tip"].as_i64() == Some(published + 1)
    })
    .await;
}

/// Block `n` is proved by sequence `n`: a rollup coordinator that would also plan work
/// sequences is refused before it opens anything.
#[test]
fn a_rollup_genesis_with_planned_work_sequences_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = sheaf()
        .args([
            "coordinator",
            "--db",
            &format!("sqlite://{}", dir.path().join("sheaf.db").display()),
            "--rollup-genesis",
            dir.path().join("genesis.json").to_str().unwrap(),
            "--sequences",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    assert!(!dir.path().join("sheaf.db").exists());
}
