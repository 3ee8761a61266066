//! `docs/openapi.yaml` against a live coordinator: every documented operation is called over
//! loopback HTTP, successes and refusals alike (a real leaf proof where a valid submission is
//! needed), and every answer is checked against the document as parsed now: the operation
//! exists, the status is one it lists (explicitly: no `default`), the error code is in the documented enum and among the
//! codes of that status, the documented headers (`Retry-After`, `x-sheaf-server-time`) are
//! there, the content type is the documented one, and the body validates against the
//! response's JSON Schema with the document's components resolved.
//!
//! The other direction from the server's behaviour: every documented path is routed (a method
//! no route takes answers 405, not 404), every documented method of it is served and every other
//! method answers 405; and every path the coordinator's sources name that the server routes is
//! documented, with unserved paths answering 404 as controls.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};
use sheaf_api::{
    ErrorBody, ErrorCode, HeartbeatRequest, HelloRequest, JobAssignment, LeaseRequest,
    SignedHeaders, API_VERSION, HEADER_SERVER_TIME,
};
use sheaf_circuits::WorkerSecret;
use sheaf_coordinator::rollup::{
    RollupConfig, RollupNode, DEFAULT_CONCURRENT_BLOCKS, MAX_TRANSACTION_BYTES,
};
use sheaf_coordinator::CoordinatorConfig;
use sheaf_net::ServeLimits;
use sheaf_rollup::demo::DemoRollup;
use sheaf_rollup::MempoolConfig;
use sheaf_types::clock::now_ms;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::harness::{self, prove_leaf, TestProver};

/// Where the document is registered for its schemas' references.
const DOCUMENT_URI: &str = "urn:sheaf:openapi";

/// The document, as JSON, with the operations the test has seen answered.
struct Spec {
    doc: Value,
    /// The document as a schema resource, so `$ref`s into its components resolve.
    registry: jsonschema::Registry<'static>,
    /// (path template, method) → statuses seen.
    seen: BTreeMap<(String, String), BTreeSet<u16>>,
}

/// One answer as the server sent it.
#[derive(Debug)]
struct Observed {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Observed {
    fn code(&self) -> Option<ErrorCode> {
        serde_json::from_slice::<ErrorBody>(&self.body)
            .ok()
            .map(|b| b.error.code)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// A JSON pointer's escaping of one reference token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

impl Spec {
    fn load() -> Spec {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.yaml");
        let text = std::fs::read_to_string(path).expect("docs/openapi.yaml");
        let doc: Value = serde_norway::from_str(&text).expect("openapi.yaml parses");
        assert!(
            doc["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1")),
            "OpenAPI 3.1: its schemas are JSON Schema 2020-12"
        );
        let registry = jsonschema::Registry::new()
            .draft(jsonschema::Draft::Draft202012)
            .add(DOCUMENT_URI, doc.clone())
            .and_then(|builder| builder.prepare())
            .expect("the document registers as a schema resource");
        Spec {
            doc,
            registry,
            seen: BTreeMap::new(),
        }
    }

    /// The value `pointer` (`#/…`) names in the document.
    fn at(&self, reference: &str) -> &Value {
        let pointer = reference.strip_prefix('#').expect("a local reference");
        self.doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{reference} is not in the document"))
    }

    /// `value`, or what its `$ref` names.
    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => self.resolve(self.at(reference)),
            None => value,
        }
    }

    fn documented_paths(&self) -> Vec<String> {
        self.doc["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .cloned()
            .collect()
    }

    fn operations(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (path, item) in self.doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if ["get", "post", "put", "delete", "patch", "head", "options"]
                    .contains(&method.as_str())
                {
                    out.push((path.clone(), method.clone()));
                }
            }
        }
        out
    }

    /// A validator of the schema at `pointer` (`/…`), the document's components resolved.
    fn validator(&self, pointer: &str) -> jsonschema::Validator {
        // A pointer in a URI fragment: the braces of path templates percent-encoded.
        let fragment = pointer.replace('{', "%7B").replace('}', "%7D");
        let schema = json!({"$ref": format!("{DOCUMENT_URI}#{fragment}")});
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .with_registry(&self.registry)
            .build(&schema)
            .unwrap_or_else(|e| panic!("the schema at {pointer} compiles: {e}"))
    }

    /// Check an answer to `method path` (a documented path template) against the document.
    fn check(&mut self, path: &str, method: &str, observed: &Observed) {
        let what = format!("{} {path} → {}", method.to_uppercase(), observed.status);
        let operation = self.doc["paths"][path][method].clone();
        assert!(operation.is_object(), "{what}: the operation is documented");
        self.seen
            .entry((path.to_owned(), method.to_owned()))
            .or_default()
            .insert(observed.status);
        let status = observed.status.to_string();
        assert!(
            operation["responses"].get("default").is_none(),
            "{what}: the operation lists its statuses (no `default`)"
        );
        let Some(response) = operation["responses"].get(&status) else {
            panic!(
                "{what}: status {status} is not documented for the operation: {}",
                String::from_utf8_lossy(&observed.body)
            )
        };
        let pointer = match response.get("$ref").and_then(Value::as_str) {
            Some(reference) => reference.trim_start_matches('#').to_owned(),
            None => format!("/paths/{}/{method}/responses/{status}", escape(path)),
        };
        self.check_response(&what, &pointer, observed);
    }

    /// Check an answer against the response object at `pointer`.
    fn check_response(&self, what: &str, pointer: &str, observed: &Observed) {
        let response = self.resolve(self.at(&format!("#{pointer}"))).clone();
        if observed.status >= 400 {
            self.check_error(what, observed);
        }
        for (name, header) in response["headers"].as_object().into_iter().flatten() {
            let header = self.resolve(header);
            let value = observed.header(name);
            if header["required"] == json!(true) {
                assert!(
                    value.is_some(),
                    "{what}: the documented header {name} is sent"
                );
            }
            if let (Some(value), Some(pattern)) = (value, header["schema"]["pattern"].as_str()) {
                let schema = json!({"type": "string", "pattern": pattern});
                assert!(
                    jsonschema::is_valid(&schema, &json!(value)),
                    "{what}: header {name}: {value:?} is not /{pattern}/"
                );
            }
        }
        let Some(content) = response["content"].as_object() else {
            assert!(
                observed.body.is_empty(),
                "{what}: no content is documented, the body is {} bytes",
                observed.body.len()
            );
            return;
        };
        let content_type = observed.header("content-type").unwrap_or_default();
        let (media, _) = content
            .iter()
            .find(|(media, _)| content_type.starts_with(media.as_str()))
            .unwrap_or_else(|| {
                panic!("{what}: content type {content_type:?} is not one of {content:?}")
            });
        if media != "application/json" {
            return;
        }
        let body: Value = serde_json::from_slice(&observed.body).unwrap_or_else(|e| {
            panic!(
                "{what}: the body is not JSON ({e}): {}",
                String::from_utf8_lossy(&observed.body)
            )
        });
        let schema_pointer = format!(
            "{}/content/{}/schema",
            self.response_pointer(pointer),
            escape(media)
        );
        let validator = self.validator(&schema_pointer);
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{what}: the body does not match its schema: {errors:?}\n{body:#}"
        );
    }

    /// Where the response object at `pointer` really is (through its `$ref`s).
    fn response_pointer(&self, pointer: &str) -> String {
        match self.at(&format!("#{pointer}"))["$ref"].as_str() {
            Some(reference) => self.response_pointer(reference.trim_start_matches('#')),
            None => pointer.to_owned(),
        }
    }

    /// An error answer is the one error shape, its code in the documented enum, and the code
    /// answers with this status.
    fn check_error(&self, what: &str, observed: &Observed) {
        let code = observed.code().unwrap_or_else(|| {
            panic!(
                "{what}: not the error shape: {}",
                String::from_utf8_lossy(&observed.body)
            )
        });
        let documented = self.doc["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .expect("ErrorCode enum");
        assert!(
            documented.contains(&json!(code.as_str())),
            "{what}: code {code} is in the documented enum"
        );
        assert_eq!(
            code.http_status(),
            observed.status,
            "{what}: {code}'s status"
        );
        if observed.status == 401 {
            assert_eq!(
                observed.header(HEADER_SERVER_TIME).is_some(),
                code == ErrorCode::StaleTimestamp,
                "{what}: {HEADER_SERVER_TIME} is sent on stale_timestamp, and only then"
            );
        }
    }
}

/// Send `method url` with `headers` and `body`.
async fn call(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Observed {
    let mut request = http.request(method, url).body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.expect("an answer");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("body").to_vec();
    observed(status, &headers, body)
}

fn observed(status: u16, headers: &HeaderMap, body: Vec<u8>) -> Observed {
    Observed {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body,
    }
}

/// Send raw bytes on a fresh connection and read the answer until the server closes it (or
/// `patience` passes), for what an HTTP client library will not send.
async fn raw(address: &str, request: &[u8], patience: Duration) -> Observed {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    stream.write_all(request).await.expect("write");
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(patience, stream.read_to_end(&mut bytes)).await;
    parse_raw(&bytes)
}

fn parse_raw(bytes: &[u8]) -> Observed {
    let text = String::from_utf8_lossy(bytes);
    let (head, rest) = text.split_once("\r\n\r\n").expect("a response head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(rest.len());
    Observed {
        status,
        headers,
        body: rest.as_bytes()[..length.min(rest.len())].to_vec(),
    }
}

/// The coordinator under test and the keys that call it.
struct Bench {
    url: String,
    http: reqwest::Client,
}

impl Bench {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    fn address(&self) -> String {
        self.url.trim_start_matches("http://").to_owned()
    }

    async fn get(&self, path: &str) -> Observed {
        call(&self.http, Method::GET, &self.url(path), &[], Vec::new()).await
    }

    async fn send(&self, method: Method, path: &str) -> Observed {
        call(&self.http, method, &self.url(path), &[], Vec::new()).await
    }

    /// The status `method path` answers, without reading the body (an event stream's never
    /// ends).
    async fn status(&self, method: Method, path: &str) -> u16 {
        let response = self.http.request(method, self.url(path)).send().await;
        response.expect("an answer").status().as_u16()
    }

    /// `POST path` with `body`, signed by `key` at `timestamp_ms`.
    async fn post_at(
        &self,
        key: &SigningKey,
        path: &str,
        body: Vec<u8>,
        timestamp_ms: i64,
    ) -> Observed {
        let signed = SignedHeaders::sign(key, "POST", path, &body, timestamp_ms);
        self.post_with(path, body, &signed).await
    }

    async fn post(&self, key: &SigningKey, path: &str, body: Vec<u8>) -> Observed {
        self.post_at(key, path, body, now_ms()).await
    }

    async fn post_with(&self, path: &str, body: Vec<u8>, signed: &SignedHeaders) -> Observed {
        let headers: Vec<(&str, String)> = signed.to_pairs().into_iter().collect();
        call(&self.http, Method::POST, &self.url(path), &headers, body).await
    }

    async fn lease(&self, key: &SigningKey) -> Observed {
        let body = serde_json::to_vec(&LeaseRequest { wait_ms: 0 }).unwrap();
        self.post(key, "/v1/lease", body).await
    }
}

fn hello_body(api_version: u32) -> Vec<u8> {
    serde_json::to_vec(&HelloRequest {
        api_version,
        software: "openapi-test".into(),
    })
    .unwrap()
}

/// The work sequence the test proves in: apart from the rollup's, whose block `n` is sequence `n`.
const WORK_SEQUENCE: u64 = 100;

/// Every documented operation answers as documented, successes and refusals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_of_a_live_coordinator_matches_the_openapi_document() {
    let mut spec = Spec::load();
    let alice = TestProver::new("alice");
    // One lease at a time, and one lease an epoch.
    let bob = TestProver::new("bob");
    let carol = TestProver::new("carol");
    let stranger = TestProver::new("stranger");
    let config = CoordinatorConfig {
        prover_request_rate: 0,
        serve: ServeLimits {
            body_timeout: Duration::from_secs(1),
            ..ServeLimits::default()
        },
        ..CoordinatorConfig::default()
    };
    let max_body = config.max_body_bytes;
    let net = harness::start(
        vec![alice.registered(), bob.entry(1_000, 1), carol.entry(1, 4)],
        config,
    )
    .await;
    net.coordinator
        .plan(sheaf_store::SequenceId(WORK_SEQUENCE), 4)
        .await
        .unwrap();
    let b = Bench {
        url: net.url.clone(),
        http: reqwest::Client::new(),
    };

    // Hello.
    let hello = "/v1/hello";
    spec.check(
        hello,
        "post",
        &b.post(&alice.signing, hello, hello_body(API_VERSION)).await,
    );
    let refused = b
        .post(&alice.signing, hello, hello_body(API_VERSION + 1))
        .await;
    assert_eq!(refused.code(), Some(ErrorCode::IncompatibleVersion));
    spec.check(hello, "post", &refused);
    let refused = b.post(&alice.signing, hello, b"{".to_vec()).await;
    assert_eq!(refused.code(), Some(ErrorCode::BadRequest));
    spec.check(hello, "post", &refused);
    let unsigned = call(&b.http, Method::POST, &b.url(hello), &[], hello_body(1)).await;
    assert_eq!(unsigned.code(), Some(ErrorCode::Unauthenticated));
    spec.check(hello, "post", &unsigned);
    let signed = SignedHeaders::sign(&alice.signing, "POST", hello, b"{}", now_ms());
    let forged = b.post_with(hello, hello_body(1), &signed).await;
    assert_eq!(forged.code(), Some(ErrorCode::BadSignature));
    spec.check(hello, "post", &forged);
    let stale = b
        .post_at(&alice.signing, hello, hello_body(1), now_ms() - 120_000)
        .await;
    assert_eq!(stale.code(), Some(ErrorCode::StaleTimestamp));
    spec.check(hello, "post", &stale);
    let signed = SignedHeaders::sign(&alice.signing, "POST", hello, &hello_body(1), now_ms());
    spec.check(
        hello,
        "post",
        &b.post_with(hello, hello_body(1), &signed).await,
    );
    let replayed = b.post_with(hello, hello_body(1), &signed).await;
    assert_eq!(replayed.code(), Some(ErrorCode::ReplayedNonce));
    spec.check(hello, "post", &replayed);
    let unknown = b.post(&stranger.signing, hello, hello_body(1)).await;
    assert_eq!(unknown.code(), Some(ErrorCode::UnknownProver));
    spec.check(hello, "post", &unknown);
    let oversize = b
        .post(&alice.signing, hello, vec![b' '; max_body + 1])
        .await;
    assert_eq!(oversize.code(), Some(ErrorCode::PayloadTooLarge));
    spec.check(hello, "post", &oversize);
    // A body that stops half-way: refused when the body timeout passes.
    let signed = SignedHeaders::sign(&alice.signing, "POST", hello, b"{}", now_ms());
    let mut request = format!(
        "POST {hello} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 40\r\n"
    );
    for (name, value) in signed.to_pairs() {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n{\"api_version\":");
    let slow = raw(&b.address(), request.as_bytes(), Duration::from_secs(10)).await;
    assert_eq!(slow.code(), Some(ErrorCode::RequestTimeout));
    spec.check(hello, "post", &slow);

    // Leases: a job each, then the limits, then none left.
    let lease = "/v1/lease";
    let mut jobs: BTreeMap<&str, JobAssignment> = BTreeMap::new();
    for (name, prover) in [("alice", &alice), ("bob", &bob), ("carol", &carol)] {
        let leased = b.lease(&prover.signing).await;
        spec.check(lease, "post", &leased);
        assert_eq!(leased.status, 200, "{name} leases");
        jobs.insert(name, serde_json::from_slice(&leased.body).unwrap());
    }
    let busy = b.lease(&bob.signing).await;
    assert_eq!(busy.code(), Some(ErrorCode::TooManyLeases));
    spec.check(lease, "post", &busy);
    let spent = b.lease(&carol.signing).await;
    assert_eq!(spent.code(), Some(ErrorCode::RateLimited));
    spec.check(lease, "post", &spent);
    let last = b.lease(&alice.signing).await;
    assert_eq!(last.status, 200);
    spec.check(lease, "post", &last);
    let spare: JobAssignment = serde_json::from_slice(&last.body).unwrap();
    let none = b.lease(&alice.signing).await;
    assert_eq!(none.status, 204, "every leaf is leased, no node is ready");
    spec.check(lease, "post", &none);

    // Heartbeats.
    let heartbeat = "/v1/jobs/{job}/heartbeat";
    let beat = |token| serde_json::to_vec(&HeartbeatRequest { token }).unwrap();
    let job = &jobs["alice"];
    let path = format!("/v1/jobs/{}/heartbeat", job.job);
    spec.check(
        heartbeat,
        "post",
        &b.post(&alice.signing, &path, beat(job.token)).await,
    );
    let stale = b.post(&alice.signing, &path, beat(job.token + 1)).await;
    assert_eq!(stale.code(), Some(ErrorCode::StaleLease));
    spec.check(heartbeat, "post", &stale);
    let unknown = b
        .post(&alice.signing, "/v1/jobs/s9-l0-i0/heartbeat", beat(1))
        .await;
    assert_eq!(unknown.code(), Some(ErrorCode::UnknownJob));
    spec.check(heartbeat, "post", &unknown);
    let malformed = b
        .post(&alice.signing, "/v1/jobs/no-such-id/heartbeat", beat(1))
        .await;
    assert_eq!(malformed.code(), Some(ErrorCode::BadRequest));
    spec.check(heartbeat, "post", &malformed);

    // Submissions: a real proof, its retry, and the refusals.
    let proof = "/v1/jobs/{job}/proof";
    let bytes = tokio::task::spawn_blocking({
        let job = job.clone();
        let worker = alice.worker;
        move || prove_leaf(&job, &worker)
    })
    .await
    .unwrap();
    let path = format!("/v1/jobs/{}/proof?token={}&prove_ms=5", job.job, job.token);
    let stored = b.post(&alice.signing, &path, bytes.clone()).await;
    assert_eq!(
        stored.status,
        200,
        "{}",
        String::from_utf8_lossy(&stored.body)
    );
    spec.check(proof, "post", &stored);
    spec.check(
        proof,
        "post",
        &b.post(&alice.signing, &path, bytes.clone()).await,
    );
    let mut other = bytes.clone();
    other[0] ^= 1;
    let proved = b.post(&alice.signing, &path, other).await;
    assert_eq!(proved.code(), Some(ErrorCode::AlreadyProved));
    spec.check(proof, "post", &proved);
    let spare_path = format!("/v1/jobs/{}/proof?token={}", spare.job, spare.token);
    let garbage = b.post(&alice.signing, &spare_path, vec![7; 64]).await;
    assert_eq!(garbage.code(), Some(ErrorCode::MalformedProof));
    spec.check(proof, "post", &garbage);
    let foreign = tokio::task::spawn_blocking({
        let spare = spare.clone();
        move || prove_leaf(&spare, &WorkerSecret::random())
    })
    .await
    .unwrap();
    let wrong = b.post(&alice.signing, &spare_path, foreign).await;
    assert_eq!(wrong.code(), Some(ErrorCode::WrongWorker));
    spec.check(proof, "post", &wrong);
    let tokenless = format!("/v1/jobs/{}/proof", spare.job);
    let refused = b.post(&alice.signing, &tokenless, bytes.clone()).await;
    assert_eq!(refused.code(), Some(ErrorCode::BadRequest));
    spec.check(proof, "post", &refused);
    let stale_path = format!("/v1/jobs/{}/proof?token={}", spare.job, spare.token + 1);
    let refused = b.post(&alice.signing, &stale_path, bytes.clone()).await;
    assert_eq!(refused.code(), Some(ErrorCode::StaleLease));
    spec.check(proof, "post", &refused);
    let refused = b
        .post(&alice.signing, "/v1/jobs/s9-l0-i0/proof?token=1", bytes)
        .await;
    assert_eq!(refused.code(), Some(ErrorCode::UnknownJob));
    spec.check(proof, "post", &refused);

    // The unsigned reads.
    for path in [
        "/v1/status",
        "/v1/circuits",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        let answer = b.get(path).await;
        assert_eq!(answer.status, 200, "GET {path}");
        spec.check(path, "get", &answer);
    }
    // The console: its page and files, its event stream (the head only: it does not end), a
    // level's page, and the redirect of `/ui/`.
    for path in ["/ui", "/ui/console.js", "/ui/console.css"] {
        let answer = b.get(path).await;
        assert_eq!(answer.status, 200, "GET {path}");
        spec.check(path, "get", &answer);
    }
    let direct = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let slash = call(&direct, Method::GET, &b.url("/ui/"), &[], Vec::new()).await;
    assert_eq!(slash.status, 308);
    spec.check("/ui/", "get", &slash);
    let stream = b.http.get(b.url("/ui/events")).send().await.unwrap();
    let events = observed(
        stream.status().as_u16(),
        &stream.headers().clone(),
        Vec::new(),
    );
    drop(stream);
    assert_eq!(events.status, 200);
    spec.check("/ui/events", "get", &events);
    let level = "/ui/api/sequences/{sequence}/levels/{level}";
    let page = b.get("/ui/api/sequences/1/levels/0?offset=1").await;
    assert_eq!(page.status, 200);
    spec.check(level, "get", &page);
    let refused = b.get("/ui/api/sequences/one/levels/0").await;
    assert_eq!(refused.code(), Some(ErrorCode::BadRequest));
    spec.check(level, "get", &refused);

    let claims = "/v1/claims/{worker_pk}";
    let worker_pk = alice.worker.worker_pk().to_string();
    let page = b.get(&format!("/v1/claims/{worker_pk}?limit=4")).await;
    assert_eq!(page.status, 200);
    spec.check(claims, "get", &page);
    for query in ["/v1/claims/xyz", &format!("/v1/claims/{worker_pk}?limit=0")] {
        let refused = b.get(query).await;
        assert_eq!(refused.code(), Some(ErrorCode::BadRequest), "{query}");
        spec.check(claims, "get", &refused);
    }

    // The rollup's routes, on a coordinator without a rollup node (yet).
    for (path, template, method) in [
        ("/v1/rollup/status", "/v1/rollup/status", Method::GET),
        ("/v1/rollup/genesis", "/v1/rollup/genesis", Method::GET),
        (
            "/v1/rollup/blocks/1",
            "/v1/rollup/blocks/{number}",
            Method::GET,
        ),
        (
            "/v1/rollup/transactions",
            "/v1/rollup/transactions",
            Method::POST,
        ),
        (
            "/v1/rollup/transactions/local",
            "/v1/rollup/transactions/local",
            Method::POST,
        ),
    ] {
        let answer = b.send(method.clone(), path).await;
        assert_eq!(answer.code(), Some(ErrorCode::NotFound), "{method} {path}");
        spec.check(template, &method.as_str().to_ascii_lowercase(), &answer);
    }

    // The rollup's routes with a rollup node: transactions in, a block published, reads.
    let mut demo = DemoRollup::new(3, 16, 1_000).unwrap();
    let rollup = RollupConfig {
        mempool: MempoolConfig {
            capacity: 2,
            ..MempoolConfig::default()
        },
        arity: 2,
        concurrent_blocks: DEFAULT_CONCURRENT_BLOCKS,
    };
    let node = RollupNode::open(net.store.clone(), demo.state.clone(), rollup)
        .await
        .unwrap();
    net.coordinator.attach_rollup(node.clone());
    let txs = demo.transfers(3).unwrap();
    let submit = "/v1/rollup/transactions";
    let submit_url = b.url(submit);
    let post = |body: Vec<u8>| call(&b.http, Method::POST, &submit_url, &[], body);
    for (tx, status) in [(&txs[0], 200), (&txs[1], 200), (&txs[2], 503)] {
        let answer = post(serde_json::to_vec(tx).unwrap()).await;
        assert_eq!(answer.status, status, "{answer:?}");
        spec.check(submit, "post", &answer);
    }
    for (body, code) in [
        (b"not json".to_vec(), ErrorCode::BadRequest),
        (
            vec![b' '; MAX_TRANSACTION_BYTES + 1],
            ErrorCode::PayloadTooLarge,
        ),
    ] {
        let refused = post(body).await;
        assert_eq!(refused.code(), Some(code));
        spec.check(submit, "post", &refused);
    }
    let local = "/v1/rollup/transactions/local";
    let refused = call(&b.http, Method::POST, &b.url(local), &[], b"{}".to_vec()).await;
    assert_eq!(refused.code(), Some(ErrorCode::BadRequest));
    spec.check(local, "post", &refused);
    node.select_batches().await;
    node.build_and_publish(2_000).await.unwrap().unwrap();
    let blocks = "/v1/rollup/blocks/{number}";
    for (path, status) in [
        ("/v1/rollup/blocks/1", 200),
        ("/v1/rollup/blocks/2", 404),
        ("/v1/rollup/blocks/one", 400),
    ] {
        let answer = b.get(path).await;
        assert_eq!(answer.status, status, "GET {path}");
        spec.check(blocks, "get", &answer);
    }
    for path in ["/v1/rollup/status", "/v1/rollup/genesis"] {
        let answer = b.get(path).await;
        assert_eq!(answer.status, 200, "GET {path}");
        spec.check(path, "get", &answer);
    }

    // What the serving loop refuses before routing.
    let long = b
        .get(&format!("/v1/status?pad={}", "x".repeat(9 * 1024)))
        .await;
    assert_eq!(long.code(), Some(ErrorCode::UriTooLong));
    spec.check("/v1/status", "get", &long);
    let big = call(
        &b.http,
        Method::GET,
        &b.url("/v1/status"),
        &[("x-pad", "y".repeat(17 * 1024))],
        Vec::new(),
    )
    .await;
    assert_eq!(big.code(), Some(ErrorCode::HeadersTooLarge));
    spec.check("/v1/status", "get", &big);
    let malformed = raw(
        &b.address(),
        b"GET /v1/status HTTP/1.1\r\nhost: x\r\ncontent-length: many\r\n\r\n",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(malformed.code(), Some(ErrorCode::BadRequest));
    spec.check("/v1/status", "get", &malformed);

    // The two answers of no operation.
    let nowhere = b.get("/v1/nowhere").await;
    assert_eq!(nowhere.status, 404);
    spec.check_response(
        "GET /v1/nowhere",
        "/components/responses/NotFound",
        &nowhere,
    );
    let wrong_method = b.get("/v1/hello").await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(
        wrong_method.header("allow"),
        Some("POST"),
        "405 says what is allowed"
    );
    spec.check_response(
        "GET /v1/hello",
        "/components/responses/MethodNotAllowed",
        &wrong_method,
    );

    // Every documented operation was called.
    let missing: Vec<_> = spec
        .operations()
        .into_iter()
        .filter(|op| !spec.seen.contains_key(op))
        .collect();
    assert!(missing.is_empty(), "operations never called: {missing:?}");
    net.stop().await;
}

/// Above the connection cap, a new connection is answered 503 `overloaded` with `Retry-After`,
/// as the document says of every operation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_answers_as_the_openapi_document_says() {
    let mut spec = Spec::load();
    let config = CoordinatorConfig {
        serve: ServeLimits {
            max_connections: 1,
            ..ServeLimits::default()
        },
        ..CoordinatorConfig::default()
    };
    let net = harness::start(Vec::new(), config).await;
    let address = net.url.trim_start_matches("http://").to_owned();
    // The one slot, held by a request whose body is on its way (an idle connection would be
    // evicted to make room).
    let mut held = tokio::net::TcpStream::connect(&address).await.unwrap();
    held.write_all(
        b"POST /v1/rollup/transactions HTTP/1.1\r\nhost: x\r\ncontent-length: 64\r\n\r\n{",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = raw(
        &address,
        b"GET /v1/status HTTP/1.1\r\nhost: x\r\n\r\n",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(refused.code(), Some(ErrorCode::Overloaded), "{refused:?}");
    spec.check("/v1/status", "get", &refused);
    drop(held);
    net.stop().await;
}

/// With its store out of reach, the coordinator's reads answer 503 `unavailable` with
/// `Retry-After`, as the document says of every 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_store_answers_as_the_openapi_document_says() {
    let mut spec = Spec::load();
    let net = harness::start(Vec::new(), CoordinatorConfig::default()).await;
    net.store.close().await;
    let http = reqwest::Client::new();
    for path in ["/readyz", "/v1/status", "/metrics"] {
        let answer = call(
            &http,
            Method::GET,
            &format!("{}{path}", net.url),
            &[],
            Vec::new(),
        )
        .await;
        assert_eq!(answer.code(), Some(ErrorCode::Unavailable), "GET {path}");
        spec.check(path, "get", &answer);
    }
}

/// The statuses and codes of the document are the API's: the `ErrorCode` enum is every code
/// `sheaf-api` has, and each code is among those of the error schema of its status.
#[test]
fn documented_error_codes_are_the_apis() {
    let spec = Spec::load();
    let documented: BTreeSet<String> = spec.doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let api: BTreeSet<String> = ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    assert_eq!(documented, api);
    for code in ErrorCode::ALL {
        let pointer = format!("/components/schemas/Error{}", code.http_status());
        let validator = spec.validator(&pointer);
        let body = json!({"error": {"code": code.as_str(), "message": "m"}});
        assert!(
            validator.is_valid(&body),
            "{code} is an Error{}",
            code.http_status()
        );
        let other = ErrorCode::ALL
            .into_iter()
            .find(|c| c.http_status() != code.http_status())
            .unwrap();
        let body = json!({"error": {"code": other.as_str(), "message": "m"}});
        assert!(
            !validator.is_valid(&body),
            "{other} is no Error{}",
            code.http_status()
        );
    }
}

/// Every `.rs` file under `dir`.
fn rust_sources(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The routes from the live server's behaviour: a method no route takes answers 405 on a
/// routed path and 404 elsewhere. Every documented path is routed and takes exactly its
/// documented methods; every path the coordinator's API sources name is documented if routed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_routes_are_the_routes_the_server_answers() {
    let spec = Spec::load();
    let net = harness::start(Vec::new(), CoordinatorConfig::default()).await;
    let b = Bench {
        url: net.url.clone(),
        http: reqwest::Client::new(),
    };
    let concrete = |template: &str| {
        template
            .replace("{job}", "s1-l0-i0")
            .replace("{worker_pk}", &"0".repeat(64))
            .replace("{number}", "1")
            .replace("{sequence}", "1")
            .replace("{level}", "0")
    };
    let routed = |answer: &Observed| match answer.status {
        405 => true,
        404 => false,
        other => panic!("DELETE answered {other}"),
    };
    let documented = spec.documented_paths();
    for template in &documented {
        let path = concrete(template);
        assert!(
            routed(&b.send(Method::DELETE, &path).await),
            "{template} is documented but not routed"
        );
        let methods: Vec<&String> = spec.doc["paths"][template]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        for method in [Method::GET, Method::POST, Method::PUT, Method::PATCH] {
            let name = method.as_str().to_ascii_lowercase();
            let status = b.status(method.clone(), &path).await;
            assert_eq!(
                status == 405,
                !methods.contains(&&name),
                "{method} {path}: {status} (documented methods {methods:?})"
            );
        }
    }
    // Candidates: every string literal that starts with `/` in the coordinator's and the API
    // crate's sources (routes may be declared anywhere in them), its query cut off.
    let mut candidates = BTreeSet::new();
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for source in rust_sources(&manifest.join("src"))
        .into_iter()
        .chain(rust_sources(&manifest.join("../api/src")))
    {
        let text = std::fs::read_to_string(&source).unwrap();
        for (start, _) in text.match_indices("\"/") {
            let literal = text[start + 1..].split('"').next().unwrap_or_default();
            let path = literal.split('?').next().unwrap_or_default();
            let plain = |c: char| c.is_ascii_alphanumeric() || "/{}_.-".contains(c);
            if path.chars().all(plain) {
                candidates.insert(path.to_owned());
            }
        }
    }
    assert!(
        candidates.len() >= documented.len(),
        "the sources name the routes: {candidates:?}"
    );
    let controls = [
        "/v1",
        "/v1/jobs/s1-l0-i0",
        "/v1/rollup",
        "/v2/hello",
        "/status",
    ];
    for control in controls {
        assert!(
            !routed(&b.send(Method::DELETE, control).await),
            "{control} is no route"
        );
    }
    let undocumented: Vec<&String> = {
        let mut out = Vec::new();
        for candidate in &candidates {
            let path = concrete(candidate);
            if routed(&b.send(Method::DELETE, &path).await) && !documented.contains(candidate) {
                out.push(candidate);
            }
        }
        out
    };
    assert!(
        undocumented.is_empty(),
        "routed but not in openapi.yaml: {undocumented:?}"
    );
    net.stop().await;
}
