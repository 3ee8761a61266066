//! `GET /healthz`, `/readyz` and `/metrics` on the node's JSON-RPC port.

use std::sync::Arc;
use std::time::Duration;

use sheaf_chain::node::{Chain, ChainConfig, Genesis};
use sheaf_chain::ChainClient;
use tokio::sync::oneshot;

use crate::node::{config, StubVerifier, ADMIN_TOKEN};

/// Serves `chain` on a loopback port; the node stops when the sender is dropped.
async fn serve(chain: Chain) -> (String, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(sheaf_chain::serve(Arc::new(chain), listener, async move {
        let _ = stopped.await;
    }));
    (url, stop)
}

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn health_readiness_and_metrics_answer_beside_json_rpc() {
    let chain = Chain::open(config(None), Box::new(StubVerifier)).unwrap();
    let (url, _stop) = serve(chain).await;

    let (status, body) = get(&format!("{url}/healthz")).await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (status, body) = get(&format!("{url}/readyz")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""status":"ready""#), "{body}");

    let client = ChainClient::new(url.clone()).unwrap();
    client.produce_block(ADMIN_TOKEN).await.unwrap();
    let (status, metrics) = get(&format!("{url}/metrics")).await;
    assert_eq!(status, 200);
    for name in [
        "sheaf_chain_height",
        "sheaf_chain_mempool_transactions",
        "sheaf_chain_last_block_age_seconds",
        "sheaf_chain_ready",
    ] {
        assert!(
            metrics.contains(&format!("# HELP {name} ")),
            "{name}: {metrics}"
        );
    }
    assert!(metrics.contains("\nsheaf_chain_height 1\n"), "{metrics}");
    assert!(metrics.contains("\nsheaf_chain_ready 1\n"), "{metrics}");
    // JSON-RPC still goes through the layer.
    assert_eq!(client.height().await.unwrap(), 1);
}

#[tokio::test]
async fn readyz_is_503_once_blocks_cannot_be_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("chain");
    let chain = Chain::open(
        ChainConfig {
            manual_blocks: false,
            genesis: Genesis {
                block_ms: 20,
                ..crate::node::genesis()
            },
            ..config(Some(&data))
        },
        Box::new(StubVerifier),
    )
    .unwrap();
    let (url, _stop) = serve(chain).await;
    // Ready once its producer persists blocks (three 20 ms intervals is a tight limit on a
    // loaded machine, so the first answer may still be 503).
    until_readyz(&url, 200).await;

    // The data directory becomes a file: every block's write fails from now on.
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::write(&data, b"not a directory").unwrap();
    let body = until_readyz(&url, 503).await;
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("block producer"), "{message}");
}

/// Polls `/readyz` until it answers `status` (within 20 s); its body.
async fn until_readyz(url: &str, status: u16) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (answered, body) = get(&format!("{url}/readyz")).await;
        if answered == status {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz never answered {status}: {answered} {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
