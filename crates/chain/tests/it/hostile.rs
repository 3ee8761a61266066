//! Hostile clients of the JSON-RPC port over real loopback sockets: stalled headers, trickled
//! bodies, floods of connections and of bodies, malformed requests. Each refusal is a JSON-RPC
//! error object with its HTTP status, and an honest call still gets through.

use std::sync::Arc;
use std::time::Duration;

use sheaf_chain::node::{Chain, ChainConfig};
use sheaf_chain::rpc::codes;
use sheaf_chain::ChainClient;
use sheaf_net::ServeLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::node::{config, StubVerifier};

/// A guard against a hang (what the defects looked like), never a measure of speed.
const GUARD: Duration = Duration::from_secs(20);

const CHAIN_ID_CALL: &str = r#"{"jsonrpc":"2.0","id":1,"method":"chain_chainId","params":[]}"#;

struct Node {
    address: String,
    client: ChainClient,
    _stop: oneshot::Sender<()>,
}

async fn node(config: ChainConfig) -> Node {
    let chain = Arc::new(Chain::open(config, Box::new(StubVerifier)).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(sheaf_chain::serve(chain, listener, async move {
        let _ = stopped.await;
    }));
    Node {
        client: ChainClient::new(format!("http://{address}")).unwrap(),
        address,
        _stop: stop,
    }
}

fn limited(max_connections: usize, header_ms: u64, body_ms: u64) -> ChainConfig {
    ChainConfig {
        serve: ServeLimits {
            max_connections,
            header_timeout: Duration::from_millis(header_ms),
            body_timeout: Duration::from_millis(body_ms),
            ..ServeLimits::default()
        },
        ..config(None)
    }
}

/// Send `bytes` on a fresh connection and read the answer: status and body, `None` when the
/// node closed the connection without one.
async fn exchange(n: &Node, bytes: &[u8]) -> Option<(u16, serde_json::Value)> {
    let mut stream = TcpStream::connect(&n.address).await.unwrap();
    let _ = stream.write_all(bytes).await;
    read_answer(&mut stream).await
}

async fn read_answer(stream: &mut TcpStream) -> Option<(u16, serde_json::Value)> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(GUARD, stream.read(&mut chunk))
            .await
            .expect("the node answers or closes")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..n]);
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if bytes.len() >= end + 4 + length {
                break;
            }
        }
    }
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let status = String::from_utf8_lossy(&bytes[9..12]).parse().ok()?;
    let body = serde_json::from_slice(&bytes[end + 4..]).unwrap_or_else(|e| {
        panic!(
            "{status} with a body that is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes[end + 4..])
        )
    });
    Some((status, body))
}

/// The code of a JSON-RPC error object (id null).
fn rpc_code(body: &serde_json::Value) -> i64 {
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert!(body["id"].is_null(), "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    body["error"]["code"].as_i64().expect("an error code")
}

fn post(body_len: usize, content_type: &str) -> Vec<u8> {
    format!("POST / HTTP/1.1\r\nhost: test\r\ncontent-type: {content_type}\r\ncontent-length: {body_len}\r\n\r\n").into_bytes()
}

async fn closed_by_node(stream: &mut TcpStream) -> bool {
    let mut sink = [0u8; 1024];
    loop {
        match tokio::time::timeout(GUARD, stream.read(&mut sink)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn stalled_header_is_closed_after_the_header_timeout() {
    let n = node(limited(16, 200, 10_000)).await;
    let mut stalled = TcpStream::connect(&n.address).await.unwrap();
    stalled
        .write_all(b"POST / HTTP/1.1\r\nhost: te")
        .await
        .unwrap();
    assert!(closed_by_node(&mut stalled).await);
}

#[tokio::test]
async fn stalled_clients_over_the_cap_do_not_starve_an_honest_call() {
    let n = node(limited(4, 300, 10_000)).await;
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(&n.address).await.unwrap();
        let _ = stream.write_all(b"POST / HTTP/1.1\r\n").await;
        stalled.push(stream);
    }
    // Each newcomer takes the slot of the connection idle longest: the honest call is
    // answered at once.
    n.client
        .chain_id()
        .await
        .expect("the honest call is answered");
    assert!(closed_by_node(&mut stalled[0]).await);
}

#[tokio::test]
async fn connection_over_the_cap_is_refused_with_overloaded() {
    let n = node(limited(1, 10_000, 10_000)).await;
    // In a request: its head is read, its body has not come.
    let mut held = TcpStream::connect(&n.address).await.unwrap();
    held.write_all(&post(CHAIN_ID_CALL.len(), "application/json"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, body) = exchange(&n, b"").await.expect("a 503");
    assert_eq!(status, 503);
    assert_eq!(rpc_code(&body), codes::OVERLOADED as i64);
    drop(held);
    let mut tries = 0;
    while n.client.chain_id().await.is_err() {
        tries += 1;
        assert!(tries < 200, "a freed slot was never reused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn slow_body_is_cut_at_the_body_timeout() {
    let n = node(limited(16, 10_000, 300)).await;
    let mut request = post(CHAIN_ID_CALL.len(), "application/json");
    request.extend_from_slice(&CHAIN_ID_CALL.as_bytes()[..10]);
    let (status, body) = exchange(&n, &request).await.expect("an answer");
    assert_eq!(status, 408);
    assert_eq!(rpc_code(&body), codes::REQUEST_TIMEOUT as i64);
}

#[tokio::test]
async fn full_body_budget_refuses_with_overloaded() {
    let n = node(ChainConfig {
        max_body_bytes: 64 * 1024,
        body_budget_bytes: 64 * 1024,
        ..limited(16, 10_000, 10_000)
    })
    .await;
    let mut holder = TcpStream::connect(&n.address).await.unwrap();
    holder
        .write_all(&post(60 * 1024, "application/json"))
        .await
        .unwrap();
    holder.write_all(&[b' '; 1024]).await.unwrap();
    let mut request = post(8 * 1024, "application/json");
    request.extend_from_slice(&[b' '; 8 * 1024]);
    let mut answer = exchange(&n, &request).await.expect("an answer");
    for _ in 0..100 {
        if answer.0 == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        answer = exchange(&n, &request).await.expect("an answer");
    }
    assert_eq!(answer.0, 503);
    assert_eq!(rpc_code(&answer.1), codes::OVERLOADED as i64);
    drop(holder);
    let mut tries = 0;
    while n.client.chain_id().await.is_err() {
        tries += 1;
        assert!(tries < 100, "the budget was never freed");
    }
}

// ---- every refusal a JSON-RPC error object ----

#[tokio::test]
async fn wrong_method_answers_405_with_a_json_rpc_error() {
    let n = node(config(None)).await;
    let (status, body) = exchange(&n, b"GET / HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .expect("an answer");
    assert_eq!(status, 405);
    assert_eq!(rpc_code(&body), codes::INVALID_REQUEST as i64);
}

#[tokio::test]
async fn oversized_body_answers_413_with_a_json_rpc_error() {
    let n = node(ChainConfig {
        max_body_bytes: 1024,
        ..config(None)
    })
    .await;
    let (status, body) = exchange(&n, &post(4096, "application/json"))
        .await
        .expect("an answer");
    assert_eq!(status, 413);
    assert_eq!(rpc_code(&body), codes::REQUEST_TOO_LARGE as i64);
}

#[tokio::test]
async fn body_that_is_not_json_answers_415_with_a_json_rpc_error() {
    let n = node(config(None)).await;
    let mut request = post(CHAIN_ID_CALL.len(), "text/plain");
    request.extend_from_slice(CHAIN_ID_CALL.as_bytes());
    let (status, body) = exchange(&n, &request).await.expect("an answer");
    assert_eq!(status, 415);
    assert_eq!(rpc_code(&body), codes::INVALID_REQUEST as i64);
}

#[tokio::test]
async fn heads_hyper_cannot_parse_answer_with_json_rpc_errors() {
    let n = node(config(None)).await;
    let not_a_number = b"POST / HTTP/1.1\r\nhost: test\r\ncontent-length: ten\r\n\r\n";
    let (status, body) = exchange(&n, not_a_number).await.expect("an answer");
    assert_eq!(status, 400);
    assert_eq!(rpc_code(&body), codes::INVALID_REQUEST as i64);
    let mut many_headers = String::from("POST / HTTP/1.1\r\nhost: test\r\n");
    for i in 0..150 {
        many_headers.push_str(&format!("x-{i}: 1\r\n"));
    }
    many_headers.push_str("\r\n");
    let (status, body) = exchange(&n, many_headers.as_bytes())
        .await
        .expect("an answer");
    assert_eq!(status, 431);
    assert_eq!(rpc_code(&body), codes::INVALID_REQUEST as i64);
    let very_long_target = format!(
        "POST /{} HTTP/1.1\r\nhost: test\r\n\r\n",
        "a".repeat(70_000)
    );
    let (status, body) = exchange(&n, very_long_target.as_bytes())
        .await
        .expect("an answer");
    assert_eq!(status, 414);
    assert_eq!(rpc_code(&body), codes::INVALID_REQUEST as i64);
}

#[tokio::test]
async fn over_long_target_and_headers_answer_with_json_rpc_errors() {
    let n = node(config(None)).await;
    let long_target = format!("POST /{} HTTP/1.1\r\nhost: test\r\n\r\n", "a".repeat(9000));
    let (status, body) = exchange(&n, long_target.as_bytes())
        .await
        .expect("an answer");
    assert_eq!(status, 414);
    assert_eq!(rpc_code(&body), codes::INVALID_REQUEST as i64);
    let large_headers = format!(
        "POST / HTTP/1.1\r\nhost: test\r\nx-padding: {}\r\n\r\n",
        "p".repeat(20_000)
    );
    let (status, body) = exchange(&n, large_headers.as_bytes())
        .await
        .expect("an answer");
    assert_eq!(status, 431);
    assert_eq!(rpc_code(&body), codes::INVALID_REQUEST as i64);
}
