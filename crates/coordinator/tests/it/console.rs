//! The live console at `/ui`: its page is served with a restrictive Content-Security-Policy and
//! no inline script, its event stream delivers a snapshot and then the updates a lease makes,
//! without any secret, large trees come as counts per level and expand a page at a time, the
//! viewer cap holds, and an open stream does not hold a shutdown up.

use std::time::Duration;

use serde_json::Value;
use sheaf_api::ErrorCode;
use sheaf_coordinator::console::CONTENT_SECURITY_POLICY;
use sheaf_coordinator::CoordinatorConfig;
use sheaf_types::SequenceId;

use crate::harness::{start, Answer, TestProver};

fn console_config() -> CoordinatorConfig {
    CoordinatorConfig {
        console_interval: Duration::from_millis(50),
        ..CoordinatorConfig::default()
    }
}

/// An open event stream and what has been read of it.
struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    async fn open(url: &str) -> Stream {
        let response = reqwest::Client::new()
            .get(format!("{url}/ui/events"))
            .send()
            .await
            .expect("the stream opens");
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        Stream {
            response,
            buffer: String::new(),
        }
    }

    /// The next `snapshot` event's data, parsed; fails after 10 s.
    async fn next_snapshot(&mut self) -> (String, Value) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                let mut name = None;
                let mut data = String::new();
                for line in event.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        name = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if name.as_deref() == Some("snapshot") {
                    let value = serde_json::from_str(&data).expect("the snapshot is JSON");
                    return (data, value);
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .expect("a snapshot within 10 s")
                .expect("the stream reads")
                .expect("the stream is open");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// Snapshots until one satisfies `done`; returns every raw one read and that one.
    async fn until(&mut self, done: impl Fn(&Value) -> bool) -> (Vec<String>, Value) {
        let mut raw = Vec::new();
        loop {
            let (text, value) = self.next_snapshot().await;
            raw.push(text);
            if done(&value) {
                return (raw, value);
            }
        }
    }
}

fn sequence(snapshot: &Value, id: u64) -> &Value {
    snapshot["sequences"]
        .as_array()
        .expect("sequences")
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("sequence {id} in {snapshot}"))
}

fn jobs(sequence: &Value) -> Vec<&Value> {
    sequence["levels"]
        .as_array()
        .expect("levels")
        .iter()
        .flat_map(|l| l["jobs"].as_array().expect("jobs").iter())
        .collect()
}

#[tokio::test]
async fn console_page_and_assets_carry_a_restrictive_csp_and_no_inline_script() {
    let net = start(Vec::new(), console_config()).await;
    let http = reqwest::Client::new();
    for (path, kind) in [
        ("/ui", "text/html"),
        ("/ui/console.js", "text/javascript"),
        ("/ui/console.css", "text/css"),
    ] {
        let response = http.get(format!("{}{path}", net.url)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-security-policy"], CONTENT_SECURITY_POLICY);
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert!(
            headers["content-type"].to_str().unwrap().starts_with(kind),
            "{path}: {:?}",
            headers["content-type"]
        );
        let body = response.text().await.unwrap();
        // Nothing from another origin: no absolute URL the browser would fetch.
        assert!(
            !body.contains("http://") && !body.contains("https://") && !body.contains("//cdn"),
            "{path} names another origin"
        );
        if path == "/ui" {
            // Every script is a same-origin file; no inline script, handler or style.
            assert!(body.contains(r#"<script src="/ui/console.js" defer></script>"#));
            assert_eq!(body.matches("<script").count(), 1, "{body}");
            assert!(
                !body.contains(" onclick=") && !body.contains(" style="),
                "{body}"
            );
        }
    }
    let policy = CONTENT_SECURITY_POLICY;
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{policy} lacks {directive}");
    }
    assert!(!policy.contains("unsafe"), "{policy}");
    net.stop().await;
}

#[tokio::test]
async fn console_stream_sends_a_snapshot_then_the_lease_and_shows_no_secret() {
    let alice = TestProver::new("alice");
    let net = start(vec![alice.registered()], console_config()).await;
    net.coordinator.plan(SequenceId(1), 2).await.unwrap();
    let mut stream = Stream::open(&net.url).await;

    let (mut raw, first) = stream
        .until(|s| !s["sequences"].as_array().unwrap().is_empty())
        .await;
    let one = sequence(&first, 1);
    assert_eq!(one["state"], "published");
    assert_eq!(first["tips"]["published"], 1);
    assert!(first["tips"]["proven"].is_null());
    let planned = jobs(one);
    assert_eq!(planned.len() as i64, one["jobs"].as_i64().unwrap());
    assert!(planned.len() >= 3, "two leaves and their root: {one}");
    assert!(planned
        .iter()
        .all(|j| j["status"] == "ready" || j["status"] == "waiting"));
    assert!(planned
        .iter()
        .all(|j| j["kind"] == "work" || j["kind"] == "universal"));
    let provers = first["provers"].as_array().unwrap();
    assert_eq!(provers.len(), 1);
    assert_eq!(provers[0]["id"], "alice");
    assert_eq!(provers[0]["leases"], 0);

    // A lease: the next snapshots show it, pushed without asking.
    let assignment = net.lease(&alice).await;
    let leased_id = assignment.job.to_string();
    let (more, leased) = stream
        .until(|s| {
            jobs(sequence(s, 1))
                .iter()
                .any(|j| j["id"] == leased_id.as_str() && j["status"] == "leased")
        })
        .await;
    raw.extend(more);
    let one = sequence(&leased, 1);
    assert_eq!(one["state"], "proving");
    let job = jobs(one)
        .into_iter()
        .find(|j| j["id"] == leased_id.as_str())
        .unwrap();
    assert_eq!(job["prover"], "alice");
    assert_eq!(job["attempts"], 1);
    assert!(job["expires_ms"].as_i64().unwrap() > job["leased_ms"].as_i64().unwrap());
    assert_eq!(leased["provers"][0]["leases"], 1);

    // Public keys are shown; secrets never: not the worker secret, not the signing key.
    let public = hex::encode(alice.signing.verifying_key().to_bytes());
    assert_eq!(leased["provers"][0]["public_key"], public.as_str());
    let secrets = [
        hex::encode(alice.signing.to_bytes()),
        hex::encode(alice.worker.expose().to_bytes()),
        alice.worker.expose().to_string(),
    ];
    for text in &raw {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "a secret in {text}");
        }
    }

    // An open stream does not hold a graceful shutdown up.
    tokio::time::timeout(Duration::from_secs(10), net.stop())
        .await
        .expect("the server stops with a console stream open");
}

#[tokio::test]
async fn a_tree_of_ten_thousand_jobs_comes_as_counts_per_level_and_expands_a_page_at_a_time() {
    let net = start(Vec::new(), console_config()).await;
    // 5,000 leaves of a binary tree: 9,999 jobs and a wrap or root above, at least 10^4.
    net.coordinator.plan(SequenceId(1), 5_000).await.unwrap();
    let mut stream = Stream::open(&net.url).await;
    let (raw, snapshot) = stream
        .until(|s| !s["sequences"].as_array().unwrap().is_empty())
        .await;
    let text = raw.last().expect("the snapshot's text");
    let one = sequence(&snapshot, 1);
    let total = one["jobs"].as_i64().unwrap();
    assert!(total >= 10_000, "{total} jobs");
    assert_eq!(one["collapsed"], true);
    let levels = one["levels"].as_array().unwrap();
    let mut counted = 0;
    for level in levels {
        assert!(level["jobs"].is_null(), "a collapsed level lists no job");
        counted += level["counts"]
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_i64().unwrap())
            .sum::<i64>();
    }
    assert_eq!(counted, total);
    assert_eq!(levels[0]["counts"]["ready"], 5_000);
    assert!(
        text.len() < 16 * 1024,
        "a snapshot of a collapsed tree stays small: {} bytes",
        text.len()
    );

    // Expanding level 0: 500 jobs a page, in index order, and a last page without more.
    let page: Value = reqwest::get(format!("{}/ui/api/sequences/1/levels/0", net.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jobs = page["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 500);
    assert_eq!(jobs[0]["id"], "s1-l0-i0");
    assert_eq!(jobs[499]["index"], 499);
    assert_eq!(page["more"], true);
    let last: Value = reqwest::get(format!(
        "{}/ui/api/sequences/1/levels/0?offset=4800",
        net.url
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(last["jobs"].as_array().unwrap().len(), 200);
    assert_eq!(last["more"], false);
    let bad = Answer::read(
        reqwest::get(format!("{}/ui/api/sequences/1/levels/x", net.url))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(bad.code(), ErrorCode::BadRequest);
    net.stop().await;
}

#[tokio::test]
async fn one_snapshot_serves_every_viewer_and_none_is_built_while_nobody_watches() {
    let alice = TestProver::new("alice");
    let net = start(vec![alice.registered()], console_config()).await;
    net.coordinator.plan(SequenceId(1), 2).await.unwrap();
    let console = net.coordinator.console();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(console.builds(), 0, "built with nobody watching");

    let mut first = Stream::open(&net.url).await;
    let (text, _) = first.next_snapshot().await;
    let built = console.builds();
    assert!(built >= 1);
    // Nine more viewers get the same snapshot at once, without a build of their own.
    let mut others = Vec::new();
    for _ in 0..9 {
        let mut stream = Stream::open(&net.url).await;
        let (theirs, _) = stream.next_snapshot().await;
        assert_eq!(theirs, text);
        others.push(stream);
    }
    // Nothing changes for a second (less than the idle refresh): at most one more build (the
    // one after the last write), whatever the number of viewers.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert!(
        console.builds() <= built + 1,
        "{} builds for 10 viewers of an unchanged store (from {built})",
        console.builds()
    );
    assert_eq!(console.viewers(), 10);

    // A change: every viewer gets the one new snapshot.
    let assignment = net.lease(&alice).await;
    let leased = assignment.job.to_string();
    let is_leased = |s: &Value| {
        jobs(sequence(s, 1))
            .iter()
            .any(|j| j["id"] == leased.as_str() && j["status"] == "leased")
    };
    let (_, seen) = first.until(is_leased).await;
    for stream in &mut others {
        let (_, theirs) = stream.until(is_leased).await;
        assert_eq!(theirs, seen);
    }
    drop(others);
    drop(first);
    net.stop().await;
}

#[tokio::test]
async fn console_viewers_beyond_the_cap_are_refused_as_overloaded() {
    let config = CoordinatorConfig {
        console_max_viewers: 1,
        ..console_config()
    };
    let net = start(Vec::new(), config).await;
    let mut first = Stream::open(&net.url).await;
    let refused = Answer::read(
        reqwest::get(format!("{}/ui/events", net.url))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.code(), ErrorCode::Overloaded);
    // The first viewer still gets its snapshot.
    let (_, snapshot) = first.next_snapshot().await;
    assert!(snapshot["sequences"].as_array().unwrap().is_empty());
    drop(first);
    net.stop().await;
}
