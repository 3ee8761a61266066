//! Hostile clients over real loopback sockets: stalled headers, trickled bodies, floods of
//! connections and of bodies, strangers' uploads, malformed requests and clocks far off. Each
//! refusal comes in the one error shape, and an honest prover still gets through.

use std::time::Duration;

use sheaf_api::{
    ErrorBody, ErrorCode, HelloRequest, SignedHeaders, API_VERSION, HEADER_SERVER_TIME, PATH_HELLO,
    PATH_LEASE,
};
use sheaf_coordinator::CoordinatorConfig;
use sheaf_net::ServeLimits;
use sheaf_types::clock::now_ms;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{registered_key, start, Answer, Net, TestProver};

/// How long a test waits for what must happen well before: a guard against a hang (what the
/// defect looked like), never a measure of speed.
const GUARD: Duration = Duration::from_secs(20);

fn limits(max_connections: usize, header_ms: u64, body_ms: u64) -> CoordinatorConfig {
    CoordinatorConfig {
        serve: ServeLimits {
            max_connections,
            header_timeout: Duration::from_millis(header_ms),
            body_timeout: Duration::from_millis(body_ms),
            ..ServeLimits::default()
        },
        ..CoordinatorConfig::default()
    }
}

fn hello_body() -> Vec<u8> {
    serde_json::to_vec(&HelloRequest {
        api_version: API_VERSION,
        software: "hostile test".into(),
    })
    .unwrap()
}

async fn connect(net: &Net) -> TcpStream {
    TcpStream::connect(net.url.trim_start_matches("http://"))
        .await
        .expect("connect")
}

/// The head of a signed `POST path` declaring `length` body bytes.
fn signed_head(path: &str, headers: &SignedHeaders, length: usize) -> Vec<u8> {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n"
    );
    for (name, value) in headers.to_pairs() {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Read one answer off a raw connection: its status and body (`None` when the server closed
/// the connection without one).
async fn read_answer(stream: &mut TcpStream) -> Option<(u16, Vec<u8>)> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(GUARD, stream.read(&mut chunk))
            .await
            .expect("the server answers or closes")
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
    Some((status, bytes[end + 4..].to_vec()))
}

/// The code of an error body in the one shape.
fn code_of(status: u16, body: &[u8]) -> ErrorCode {
    let error: ErrorBody = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{status} not in the error shape ({e}): {}",
            String::from_utf8_lossy(body)
        )
    });
    assert_eq!(error.error.code.http_status(), status);
    error.error.code
}

/// Whether the server closes `stream` (read returns end of file or a reset) before the guard.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
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
    let net = start(vec![], limits(16, 200, 10_000)).await;
    let mut stalled = connect(&net).await;
    stalled
        .write_all(b"POST /v1/hello HTTP/1.1\r\nhost: te")
        .await
        .unwrap();
    assert!(closed_by_server(&mut stalled).await);
    net.stop().await;
}

#[tokio::test]
async fn idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let net = start(vec![], limits(16, 200, 10_000)).await;
    let mut idle = connect(&net).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let (status, _) = read_answer(&mut idle).await.expect("an answer");
    assert_eq!(status, 200);
    assert!(closed_by_server(&mut idle).await);
    net.stop().await;
}

#[tokio::test]
async fn stalled_clients_over_the_cap_do_not_starve_an_honest_hello() {
    let alice = TestProver::new("alice");
    let net = start(vec![alice.registered()], limits(4, 300, 10_000)).await;
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut stream = connect(&net).await;
        let _ = stream.write_all(b"POST /v1/hello HTTP/1.1\r\n").await;
        stalled.push(stream);
    }
    // The stalled ones fill every slot, and keep coming: each newcomer, the honest one too,
    // takes the slot of the connection idle longest, so the honest hello is served at once.
    hello_is_served(&net, &alice).await;
    // The oldest stalled connections gave way.
    assert!(closed_by_server(&mut stalled[0]).await);
    drop(stalled);
    net.stop().await;
}

/// Alice's signed hello is answered 200.
async fn hello_is_served(net: &Net, alice: &TestProver) {
    let answer = net.post(alice, PATH_HELLO, hello_body()).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
}

/// A keep-alive connection that has been served one request, idle now.
async fn served_once(net: &Net) -> TcpStream {
    let mut stream = connect(net).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_answer(&mut stream).await.expect("an answer").0, 200);
    stream
}

/// A connection from `from` (a loopback address of its own: 127.0.0.0/8 is all loopback).
async fn connect_from(net: &Net, from: [u8; 4]) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind((std::net::Ipv4Addr::from(from), 0).into())
        .expect("bind a loopback address");
    let to = net
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    socket.connect(to).await.expect("connect")
}

/// With a share per address, a flood of stalled sockets from one address holds its share and
/// no more: the rest are closed at once (long before the header timeout), and no other
/// client's slot is taken, so an honest client's keep-alive connection stays open.
#[tokio::test]
async fn an_address_over_its_share_is_closed_at_once_and_takes_no_ones_slot() {
    let alice = TestProver::new("alice");
    let config = CoordinatorConfig {
        serve: ServeLimits {
            max_connections: 6,
            max_connections_per_address: 4,
            header_timeout: Duration::from_secs(60),
            ..ServeLimits::default()
        },
        ..CoordinatorConfig::default()
    };
    let net = start(vec![alice.registered()], config).await;
    // Alice's keep-alive connection, served once and idle.
    let mut honest = served_once(&net).await;

    let mut flood = Vec::new();
    for _ in 0..12 {
        let mut stream = connect_from(&net, [127, 0, 0, 2]).await;
        let _ = stream.write_all(b"POST /v1/hello HTTP/1.1\r\n").await;
        flood.push(stream);
    }
    // The four first hold the share and stall (the header timeout is a minute away); every
    // later one was closed at accept.
    for (i, stream) in flood.iter_mut().enumerate().skip(4) {
        assert!(
            closed_by_server(stream).await,
            "flood socket {i} still open"
        );
    }
    let mut sink = [0u8; 16];
    for (i, stream) in flood.iter_mut().take(4).enumerate() {
        let read = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut sink)).await;
        assert!(
            read.is_err(),
            "flood socket {i} within the share was closed"
        );
    }
    // Alice's idle connection kept its slot, and a new client of another address is served.
    honest
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_answer(&mut honest).await.expect("still open").0, 200);
    hello_is_served(&net, &alice).await;
    // Closing the share's connections gives the address its share back.
    drop(flood);
    let mut again = connect_from(&net, [127, 0, 0, 2]).await;
    let mut answered = false;
    for _ in 0..50 {
        again
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n")
            .await
            .ok();
        if read_answer(&mut again)
            .await
            .is_some_and(|(status, _)| status == 200)
        {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        again = connect_from(&net, [127, 0, 0, 2]).await;
    }
    assert!(answered, "the address never got its share back");
    net.stop().await;
}

/// At the cap, a new connection takes the slot of the connection idle longest (here, one
/// between keep-alive requests), which the server closes.
#[tokio::test]
async fn at_the_cap_the_connection_idle_longest_gives_way() {
    let net = start(vec![], limits(2, 10_000, 10_000)).await;
    let mut held = vec![connect(&net).await, connect(&net).await];
    for stream in &mut held {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(read_answer(stream).await.expect("an answer").0, 200);
    }
    let answer = net.get("/healthz").await;
    assert_eq!(answer.status, 200);
    assert!(
        closed_by_server(&mut held[0]).await,
        "the older idle one gave way"
    );
    net.stop().await;
}

/// At the cap, a connection that has been served (an honest client's keep-alive connection,
/// idle while it works) stays while one that never sent a whole request is left to give way,
/// however much longer it has been idle.
#[tokio::test]
async fn at_the_cap_a_stalled_connection_gives_way_before_a_served_one() {
    let net = start(vec![], limits(2, 10_000, 10_000)).await;
    let mut served = served_once(&net).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut stalled = connect(&net).await;
    stalled
        .write_all(b"POST /v1/hello HTTP/1.1\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let answer = net.get("/healthz").await;
    assert_eq!(answer.status, 200);
    assert!(
        closed_by_server(&mut stalled).await,
        "the stalled one gave way"
    );
    served
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(
        read_answer(&mut served)
            .await
            .expect("the served one is still open")
            .0,
        200
    );
    net.stop().await;
}

/// When every connection is in a request (here, each waiting for the rest of its body), a new
/// one is refused with overloaded until one frees.
#[tokio::test]
async fn connections_over_the_cap_are_refused_while_every_one_is_busy() {
    let alice = TestProver::new("alice");
    let net = start(vec![alice.registered()], limits(2, 10_000, 10_000)).await;
    let body = hello_body();
    let mut held = Vec::new();
    for _ in 0..2 {
        let headers = SignedHeaders::sign(&alice.signing, "POST", PATH_HELLO, &body, now_ms());
        let mut stream = connect(&net).await;
        stream
            .write_all(&signed_head(PATH_HELLO, &headers, body.len()))
            .await
            .unwrap();
        held.push(stream);
    }
    // Both heads are read and their requests wait for their bodies.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = connect(&net).await;
    let (status, body) = read_answer(&mut third).await.expect("a 503");
    assert_eq!(code_of(status, &body), ErrorCode::Overloaded);
    drop(held.pop());
    let mut tries = 0;
    loop {
        // Refused at the cap: a 503, or a connection closed before the request was written.
        if let Ok(answer) = net.try_get("/healthz").await {
            if answer.status == 200 {
                break;
            }
            assert_eq!(answer.code(), ErrorCode::Overloaded);
        }
        tries += 1;
        assert!(tries < 200, "a freed slot was never reused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    net.stop().await;
}

#[tokio::test]
async fn slow_body_is_cut_at_the_body_timeout() {
    let alice = TestProver::new("alice");
    let net = start(vec![alice.registered()], limits(16, 10_000, 300)).await;
    let body = hello_body();
    let headers = SignedHeaders::sign(&alice.signing, "POST", PATH_HELLO, &body, now_ms());
    let mut slow = connect(&net).await;
    slow.write_all(&signed_head(PATH_HELLO, &headers, body.len()))
        .await
        .unwrap();
    slow.write_all(&body[..body.len() / 2]).await.unwrap();
    let (status, answer) = read_answer(&mut slow).await.expect("an answer");
    assert_eq!(code_of(status, &answer), ErrorCode::RequestTimeout);
    net.stop().await;
}

#[tokio::test]
async fn strangers_upload_is_refused_before_its_body_is_read() {
    let alice = TestProver::new("alice");
    let stranger = TestProver::new("stranger");
    let net = start(vec![alice.registered()], CoordinatorConfig::default()).await;
    let path = "/v1/jobs/s1-l0-i0/proof?token=1";
    let body = vec![7u8; 2 * 1024 * 1024 - 1];
    let headers = SignedHeaders::sign(&stranger.signing, "POST", path, &body, now_ms());
    let mut upload = connect(&net).await;
    upload
        .write_all(&signed_head(path, &headers, body.len()))
        .await
        .unwrap();
    // Not a byte of the body is sent: the answer comes all the same.
    let (status, answer) = read_answer(&mut upload).await.expect("an answer");
    assert_eq!(code_of(status, &answer), ErrorCode::UnknownProver);
    net.stop().await;
}

#[tokio::test]
async fn full_body_budget_refuses_with_overloaded_until_it_frees() {
    let alice = TestProver::new("alice");
    let config = CoordinatorConfig {
        max_body_bytes: 64 * 1024,
        body_budget_bytes: 64 * 1024,
        ..limits(16, 10_000, 10_000)
    };
    let net = start(vec![alice.registered()], config).await;
    // One registered prover's large body, half sent, holds nearly all of the budget.
    let big = vec![b' '; 60 * 1024];
    let headers = SignedHeaders::sign(&alice.signing, "POST", PATH_HELLO, &big, now_ms());
    let mut holder = connect(&net).await;
    holder
        .write_all(&signed_head(PATH_HELLO, &headers, big.len()))
        .await
        .unwrap();
    holder.write_all(&big[..1024]).await.unwrap();
    let mut refused = net.post(&alice, PATH_HELLO, vec![b' '; 8 * 1024]).await;
    for _ in 0..100 {
        if refused.status == 503 {
            break;
        }
        // The holder's request may not have reached the budget yet.
        tokio::time::sleep(Duration::from_millis(20)).await;
        refused = net.post(&alice, PATH_HELLO, vec![b' '; 8 * 1024]).await;
    }
    assert_eq!(refused.code(), ErrorCode::Overloaded);
    assert!(refused.retry_after.is_some());
    drop(holder);
    let mut tries = 0;
    loop {
        let answer = net.post(&alice, PATH_HELLO, hello_body()).await;
        if answer.status == 200 {
            break;
        }
        assert_eq!(answer.code(), ErrorCode::Overloaded);
        tries += 1;
        assert!(tries < 100, "the budget was never freed");
    }
    net.stop().await;
}

#[tokio::test]
async fn timestamps_at_the_ends_of_time_are_refused_as_stale() {
    let alice = TestProver::new("alice");
    let net = start(vec![alice.registered()], CoordinatorConfig::default()).await;
    let now = now_ms();
    // `now - 2^63` wrapped the old `(ts - now).abs()` into a small distance (or panicked).
    for ts in [now.wrapping_sub(1 << 63), i64::MIN, i64::MAX, i64::MIN + 1] {
        let body = hello_body();
        let headers = SignedHeaders::sign(&alice.signing, "POST", PATH_HELLO, &body, ts);
        let answer = net.send(PATH_HELLO, body, &headers).await;
        assert_eq!(answer.code(), ErrorCode::StaleTimestamp, "timestamp {ts}");
    }
    net.stop().await;
}

#[tokio::test]
async fn stale_timestamp_refusal_tells_the_coordinators_clock() {
    let alice = TestProver::new("alice");
    let net = start(vec![alice.registered()], CoordinatorConfig::default()).await;
    let body = hello_body();
    let before = now_ms();
    let headers = SignedHeaders::sign(&alice.signing, "POST", PATH_HELLO, &body, before - 600_000);
    let response = net
        .http
        .post(format!("{}{PATH_HELLO}", net.url))
        .headers(
            headers
                .to_pairs()
                .iter()
                .map(|(n, v)| (n.parse().unwrap(), v.parse().unwrap()))
                .collect(),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let told: i64 = response.headers()[HEADER_SERVER_TIME]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((before..=now_ms()).contains(&told));
    net.stop().await;
}

#[tokio::test]
async fn prover_with_a_clock_five_minutes_ahead_completes_a_hello() {
    let key = sheaf_prover::ProverKey::generate();
    let net = start(
        vec![registered_key("ahead", &key)],
        CoordinatorConfig::default(),
    )
    .await;
    let ahead = sheaf_prover::client::Clock::new(|| now_ms() + 300_000);
    let client = sheaf_prover::Client::new(&net.url, key)
        .unwrap()
        .with_clock(ahead);
    client
        .hello()
        .await
        .expect("hello by the coordinator's time");
    let offset = client.clock_offset_ms();
    assert!(
        (-300_000 - 30_000..=-300_000 + 30_000).contains(&offset),
        "learnt offset {offset}"
    );
    // The offset is kept: the next request is signed right the first time.
    assert!(client.lease(0).await.expect("lease").is_none());
    assert_eq!(client.clock_offset_ms(), offset);
    net.stop().await;
}

// ---- the one error shape for what the framework and the loop refuse ----

#[tokio::test]
async fn wrong_method_answers_405_in_the_error_shape() {
    let net = start(vec![], CoordinatorConfig::default()).await;
    for path in [PATH_HELLO, PATH_LEASE, "/healthz"] {
        let answer = Answer::read(
            net.http
                .delete(format!("{}{path}", net.url))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(answer.code(), ErrorCode::MethodNotAllowed, "{path}");
    }
    net.stop().await;
}

#[tokio::test]
async fn undecodable_path_answers_400_in_the_error_shape() {
    let net = start(vec![], CoordinatorConfig::default()).await;
    let answer = net.get("/v1/claims/%FF").await;
    assert_eq!(answer.code(), ErrorCode::BadRequest);
    let answer = net.get("/v1/rollup/blocks/%FF%FE").await;
    assert_eq!(answer.code(), ErrorCode::BadRequest);
    net.stop().await;
}

#[tokio::test]
async fn over_long_target_answers_414_in_the_error_shape() {
    let net = start(vec![], CoordinatorConfig::default()).await;
    let answer = net.get(&format!("/v1/claims/{}", "a".repeat(9000))).await;
    assert_eq!(answer.code(), ErrorCode::UriTooLong);
    net.stop().await;
}

#[tokio::test]
async fn over_large_headers_answer_431_in_the_error_shape() {
    let net = start(vec![], CoordinatorConfig::default()).await;
    let response = net
        .http
        .get(format!("{}/v1/status", net.url))
        .header("x-padding", "p".repeat(20_000))
        .send()
        .await
        .unwrap();
    let answer = Answer::read(response).await;
    assert_eq!(answer.code(), ErrorCode::HeadersTooLarge);
    net.stop().await;
}

/// A head hyper refuses by itself before any service sees it, answered on a raw connection.
async fn answer_to_unparseable(net: &Net, head: &[u8]) -> ErrorCode {
    let mut stream = connect(net).await;
    stream.write_all(head).await.unwrap();
    let (status, body) = read_answer(&mut stream).await.expect("an answer");
    code_of(status, &body)
}

#[tokio::test]
async fn content_length_that_is_not_a_number_answers_400_in_the_error_shape() {
    let net = start(vec![], CoordinatorConfig::default()).await;
    let head =
        b"POST /v1/rollup/transactions HTTP/1.1\r\nhost: test\r\ncontent-length: ten\r\n\r\n";
    assert_eq!(
        answer_to_unparseable(&net, head).await,
        ErrorCode::BadRequest
    );
    // The server is unharmed: the next client is served.
    assert!(net.get("/v1/status").await.status.is_success());
    net.stop().await;
}

#[tokio::test]
async fn more_headers_than_hyper_parses_answer_431_in_the_error_shape() {
    let net = start(vec![], CoordinatorConfig::default()).await;
    let mut head = String::from("GET /v1/status HTTP/1.1\r\nhost: test\r\n");
    for i in 0..150 {
        head.push_str(&format!("x-{i}: 1\r\n"));
    }
    head.push_str("\r\n");
    assert_eq!(
        answer_to_unparseable(&net, head.as_bytes()).await,
        ErrorCode::HeadersTooLarge
    );
    net.stop().await;
}

#[tokio::test]
async fn target_over_hyper_s_limit_answers_414_in_the_error_shape() {
    let net = start(vec![], CoordinatorConfig::default()).await;
    let head = format!("GET /{} HTTP/1.1\r\nhost: test\r\n\r\n", "a".repeat(70_000));
    assert_eq!(
        answer_to_unparseable(&net, head.as_bytes()).await,
        ErrorCode::UriTooLong
    );
    net.stop().await;
}

#[tokio::test]
async fn over_large_unsigned_body_answers_413_in_the_error_shape() {
    let net = start(vec![], CoordinatorConfig::default()).await;
    let mut upload = connect(&net).await;
    upload
        .write_all(b"POST /v1/rollup/transactions HTTP/1.1\r\nhost: test\r\ncontent-length: 3145728\r\n\r\n")
        .await
        .unwrap();
    let (status, body) = read_answer(&mut upload).await.expect("an answer");
    assert_eq!(code_of(status, &body), ErrorCode::PayloadTooLarge);
    net.stop().await;
}

#[tokio::test]
async fn short_body_answers_400_in_the_error_shape() {
    let net = start(vec![], CoordinatorConfig::default()).await;
    let mut short = connect(&net).await;
    short
        .write_all(
            b"POST /v1/rollup/transactions HTTP/1.1\r\nhost: test\r\ncontent-length: 100\r\n\r\n{}",
        )
        .await
        .unwrap();
    short.shutdown().await.unwrap();
    let (status, body) = read_answer(&mut short).await.expect("an answer");
    assert_eq!(code_of(status, &body), ErrorCode::BadRequest);
    net.stop().await;
}
