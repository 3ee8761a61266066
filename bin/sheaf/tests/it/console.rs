//! The live console in a real browser: Debian's `chromium`, driven through `chromedriver` over
//! the W3C WebDriver protocol, opens `/ui` on a running `sheaf devnet`, watches a sequence's
//! tree fill in until its root is proved and the sequences settle, and sees a prover killed
//! with SIGKILL lose its job back to `ready` and another prover prove it (the devnet carries
//! on without it). A screenshot of the finished trees is kept under the target directory.
//!
//! Without `chromium` and `chromedriver` the test says SKIPPED and passes, unless
//! `SHEAF_TEST_BROWSER=required` (CI sets it), when it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{free_port, sheaf, Process};

const SEQUENCES: usize = 2;

/// The first of `names` found on the `PATH` (or as an absolute path).
fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// A WebDriver session on one chromedriver; dropped (a failed assertion too), it ends the
/// session, so chromium does not outlive the test.
struct Browser {
    http: reqwest::Client,
    base: String,
    driver: String,
    session: String,
}

impl Drop for Browser {
    fn drop(&mut self) {
        use std::io::{Read as _, Write as _};
        // Blocking and plain: this may run while a panic unwinds out of the runtime.
        let Some(address) = self.driver.strip_prefix("http://") else {
            return;
        };
        let Ok(mut socket) = std::net::TcpStream::connect(address) else {
            return;
        };
        let _ = socket.set_read_timeout(Some(Duration::from_secs(10)));
        let request = format!(
            "DELETE /session/{} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.session
        );
        if socket.write_all(request.as_bytes()).is_ok() {
            let _ = socket.read_to_end(&mut Vec::new());
        }
    }
}

impl Browser {
    async fn start(driver: &str, chromium: &Path) -> Browser {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http.get(format!("{driver}/status")).send().await;
            if let Ok(response) = ready {
                let status: Value = response.json().await.unwrap_or_default();
                if status["value"]["ready"] == true {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1400,1100"],
            },
        }}});
        let created: Value = http
            .post(format!("{driver}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("a session")
            .json()
            .await
            .expect("a session's JSON");
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        Browser {
            http,
            base: format!("{driver}/session/{session}"),
            driver: driver.to_owned(),
            session,
        }
    }

    async fn command(&self, path: &str, body: Value) -> Value {
        let answer: Value = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("the driver answers")
            .json()
            .await
            .expect("JSON");
        if answer["value"]["error"].is_string() {
            panic!("WebDriver {path}: {answer}");
        }
        answer["value"].clone()
    }

    async fn open(&self, url: &str) {
        self.command("/url", json!({ "url": url })).await;
    }

    /// Runs `script` (a function body that returns a JSON value) in the page.
    async fn eval(&self, script: &str) -> Value {
        self.command("/execute/sync", json!({ "script": script, "args": [] }))
            .await
    }

    async fn screenshot(&self) -> Vec<u8> {
        let answer: Value = self
            .http
            .get(format!("{}/screenshot", self.base))
            .send()
            .await
            .expect("a screenshot")
            .json()
            .await
            .expect("JSON");
        base64_decode(answer["value"].as_str().expect("base64 PNG"))
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let bytes: Vec<u8> = text.bytes().filter(|c| *c != b'=' && *c != b'\n').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, c)| n | value(*c) << (18 - 6 * i));
        let full = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&full[..chunk.len() - 1]);
    }
    out
}

/// The pid of the `sheaf prover` process started with key file `key`.
fn prover_pid(key: &Path) -> Option<u32> {
    let key = key.to_str()?;
    std::fs::read_dir("/proc").ok()?.find_map(|entry| {
        let entry = entry.ok()?;
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_prover = args.contains(&&b"prover"[..]) && args.contains(&key.as_bytes());
        is_prover.then_some(pid)
    })
}

/// The devnet process: on the way out (a failed assertion too) it gets SIGTERM first, so it
/// stops its prover processes before it is killed.
struct Devnet(Process);

impl Drop for Devnet {
    fn drop(&mut self) {
        let child = &mut self.0.child;
        if let Ok(None) = child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Waits (polling the page) until `script` returns something other than `null` or `false`.
async fn wait_for(browser: &Browser, what: &str, timeout: Duration, script: &str) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let value = browser.eval(script).await;
        if !value.is_null() && value != false {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

#[test]
fn console_in_a_browser_shows_a_devnet_tree_fill_in_settle_and_survive_a_killed_prover() {
    let required = std::env::var("SHEAF_TEST_BROWSER").as_deref() == Ok("required");
    let (Some(chromium), Some(chromedriver)) = (
        find(&["chromium", "chromium-browser"]),
        find(&["chromedriver"]),
    ) else {
        assert!(
            !required,
            "SHEAF_TEST_BROWSER=required but chromium or chromedriver is not installed \
             (apt-get install chromium chromium-driver)"
        );
        // Straight to stderr, past the test harness's capture, so the skip shows.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED console_in_a_browser_shows_a_devnet_tree_fill_in_settle_and_survive_a_killed_prover: \
             chromium and chromedriver not found (apt-get install chromium chromium-driver); \
             SHEAF_TEST_BROWSER=required fails instead"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("devnet");
    let started = Instant::now();
    let mut devnet = Devnet(Process::spawn(
        "devnet",
        sheaf()
            .args([
                "devnet",
                "--workload",
                "work",
                "--provers",
                "2",
                "--threads",
                "1",
            ])
            .args(["--sequences", &SEQUENCES.to_string(), "--leaves", "4"])
            .args(["--lease-ttl-ms", "3000", "--heartbeat-ms", "1000"])
            .args(["--console-interval-ms", "200"])
            .arg("--data-dir")
            .arg(&data),
        dir.path(),
    ));
    let log = dir.path().join("devnet.log");
    let console = {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(url) = text
                .lines()
                .find_map(|line| line.strip_prefix("devnet: console "))
            {
                break url.trim().to_owned();
            }
            devnet.0.assert_running(dir.path());
            assert!(Instant::now() < deadline, "no console URL:\n{text}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert!(
        console.starts_with("http://127.0.0.1:") && console.ends_with("/ui"),
        "{console}"
    );

    let port = free_port();
    let mut driver = Process::spawn(
        "chromedriver",
        Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null()),
        dir.path(),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let shot = runtime.block_on(async {
        let browser = Browser::start(&format!("http://127.0.0.1:{port}"), &chromium).await;
        browser.open(&console).await;
        wait_for(&browser, "the stream", Duration::from_secs(20),
            "return document.getElementById('connection').dataset.connection === 'live'").await;

        // A prover holding a lease, as the page shows it: SIGKILL its process. It is stopped
        // (SIGSTOP) first, so what the page shows it holding cannot change under the test; one
        // that finished its job meanwhile is let go on (SIGCONT) and another chosen.
        let deadline = Instant::now() + Duration::from_secs(120);
        let (prover, held) = loop {
            let victim = wait_for(&browser, "a leased job", Duration::from_secs(120), r#"
                const job = document.querySelector('.job[data-status="leased"][data-prover]');
                if (!job) return null;
                const row = document.querySelector('#provers tr[data-prover="' + job.dataset.prover + '"]');
                return row ? { prover: job.dataset.prover, key: row.dataset.publicKey } : null;
            "#).await;
            let prover = victim["prover"].as_str().unwrap().to_owned();
            let public_key = victim["key"].as_str().unwrap();
            let key_file = (1..=2)
                .map(|i| data.join(format!("prover-{i}.key")))
                .find(|path| {
                    sheaf_prover::ProverKey::read(path).is_ok_and(|k| k.public_key_hex() == public_key)
                })
                .expect("the leasing prover's key file");
            let pid = prover_pid(&key_file).expect("the leasing prover's process").to_string();
            assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
            // What it holds, stopped: a submission already sent lands within this wait.
            tokio::time::sleep(Duration::from_millis(750)).await;
            let held = browser.eval(&format!(r#"
                return Array.from(document.querySelectorAll('.job[data-status="leased"][data-prover="{prover}"]'))
                    .map(j => j.dataset.job);
            "#)).await;
            let held: Vec<String> = serde_json::from_value(held).unwrap();
            if !held.is_empty() {
                assert!(Command::new("kill").args(["-KILL", &pid]).status().unwrap().success());
                break (prover, held);
            }
            assert!(Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
            assert!(Instant::now() < deadline, "no prover was seen holding a lease while stopped");
        };

        // Each of its jobs turns back to ready (the lease expired), then another prover proves it.
        for job in &held {
            wait_for(&browser, "the lease taken back", Duration::from_secs(30), &format!(r#"
                return document.querySelector('#events li[data-event="requeued"][data-job="{job}"]') !== null;
            "#)).await;
            let proved = wait_for(&browser, "the job proved by another", Duration::from_secs(90), &format!(r#"
                const j = document.querySelector('.job[data-job="{job}"]');
                return j && j.dataset.status === 'proved' ? {{ prover: j.dataset.prover, seen: j.dataset.seen, requeued: j.dataset.requeued }} : null;
            "#)).await;
            assert_ne!(proved["prover"], prover.as_str(), "{job}: {proved}");
            assert!(proved["requeued"].as_str().is_some(), "{job} not marked requeued: {proved}");
        }

        // The trees fill in, pushed: proved counts grow until every root is proved, then every
        // sequence settles.
        let mut proved_counts = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let state = browser.eval(r#"
                const rows = Array.from(document.querySelectorAll('#sequences tr[data-sequence]'));
                const roots = Array.from(document.querySelectorAll('details.tree')).map(t => {
                    const top = t.querySelector('.level .job');
                    return top ? top.dataset.status : null;
                });
                return {
                    proved: document.querySelectorAll('.job[data-status="proved"]').length,
                    states: rows.map(r => r.dataset.state),
                    roots,
                    settled: document.getElementById('tips').dataset.settled,
                    blocks: document.querySelectorAll('#sequences td[data-finalized-block]').length,
                };
            "#).await;
            let proved = state["proved"].as_u64().unwrap();
            if proved_counts.last() != Some(&proved) {
                proved_counts.push(proved);
            }
            let states = state["states"].as_array().unwrap();
            let finalized = states.len() == SEQUENCES && states.iter().all(|s| s == "finalized");
            let roots_proved = state["roots"].as_array().unwrap().iter().all(|r| r == "proved");
            // The chain's view (the block that finalized each) and the settled tip, which
            // follows the store's mark of each sequence (a snapshot's reads are not one
            // transaction, so the tip may show that mark a snapshot later).
            if finalized
                && roots_proved
                && state["blocks"] == SEQUENCES
                && state["settled"].as_str() == Some(SEQUENCES.to_string().as_str())
            {
                break;
            }
            assert!(Instant::now() < deadline, "not settled: {state}");
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        assert!(proved_counts.len() >= 2, "the trees did not fill in while watched: {proved_counts:?}");
        // Each finalized sequence names its block and sender.
        let finalized = browser.eval(r#"
            return Array.from(document.querySelectorAll('#sequences td[data-finalized-block]'))
                .map(td => td.dataset.finalizedBlock);
        "#).await;
        assert_eq!(finalized.as_array().unwrap().len(), SEQUENCES, "{finalized}");
        browser.screenshot().await
    });
    assert!(shot.starts_with(b"\x89PNG"), "a PNG screenshot");
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console");
    std::fs::create_dir_all(&artifacts).unwrap();
    let path = artifacts.join("console.png");
    std::fs::write(&path, &shot).unwrap();
    eprintln!("console screenshot: {}", path.display());
    driver.kill();

    // The devnet carried on without the killed prover (it said so); it is stopped here, before
    // its claims, which other tests cover.
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("was killed (SIGKILL)"), "{text}");
    devnet.0.assert_running(dir.path());
    eprintln!(
        "console browser test: {:.0} s",
        started.elapsed().as_secs_f64()
    );
}
