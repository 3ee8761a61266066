//! The prover's side of the API: one method per endpoint, every `POST` signed, every answer
//! parsed into the API's types or a typed [`ClientError`]. Nothing here panics on what the
//! coordinator sends, and no answer is read past [`MAX_RESPONSE_BYTES`].
//!
//! Requests are signed by the coordinator's time as the client knows it: its own clock plus an
//! offset, 0 at first. A `stale_timestamp` refusal tells the coordinator's clock
//! ([`HEADER_SERVER_TIME`]); the client keeps the difference as its offset and sends the request
//! once more, signed anew, so a prover whose clock is off by minutes still works.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sheaf_api::{
    heartbeat_path, submit_path, ErrorBody, ErrorCode, HeartbeatRequest, HeartbeatResponse,
    HelloRequest, HelloResponse, JobAssignment, JobId, LeaseRequest, SignedHeaders, StatusResponse,
    SubmitResponse, API_VERSION, HEADER_SERVER_TIME, PATH_HELLO, PATH_LEASE, PATH_STATUS,
};
use sheaf_types::clock::now_ms;
use thiserror::Error;

use crate::key::ProverKey;

/// Longest wait for a TCP (and TLS) connection to the coordinator.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest wait for a whole request and its answer, except leases and submissions. Generous for
/// a loaded coordinator, short enough that a hung one is noticed and retried.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest wait for a submission: the upload of a proof and its verification on receipt.
pub const SUBMIT_TIMEOUT: Duration = Duration::from_secs(120);

/// A lease request may take its long-poll wait plus this long before it is given up.
pub const LEASE_TIMEOUT_MARGIN: Duration = Duration::from_secs(15);

/// Largest answer read: an assignment carries at most a few children of at most
/// [`sheaf_circuits::limits::MAX_PROOF_BYTES`] each, base64-encoded.
pub const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// How much of an unparseable answer is quoted in an error.
const EXCERPT_CHARS: usize = 200;

/// What the prover reports as its software at hello.
const SOFTWARE: &str = concat!("sheaf-prover ", env!("CARGO_PKG_VERSION"));

/// Why a call to the coordinator failed.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The coordinator's URL is not an absolute http(s) URL.
    #[error("bad coordinator URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The coordinator answered with the API's error shape.
    #[error("coordinator refused ({status} {code}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The error's code.
        code: ErrorCode,
        /// The coordinator's explanation.
        message: String,
    },
    /// No answer: connection refused or reset, timeout, TLS failure.
    #[error("cannot reach the coordinator")]
    Transport(#[source] reqwest::Error),
    /// An answer that is not what the API promises: unparseable, of the wrong shape, too large,
    /// or an error without the API's error body.
    #[error("bad answer from the coordinator (HTTP {status}): {reason}")]
    BadResponse {
        /// HTTP status of the answer (0 when the fault came in an earlier answer, such as a
        /// job id that cannot go into a path).
        status: u16,
        /// What is wrong with it.
        reason: String,
    },
}

impl ClientError {
    /// Whether the same call may succeed later, so the prover backs off and retries: transport
    /// failures, retryable API codes, and gateway errors (502, 503, 504 without the API's
    /// error body: a proxy in front of a coordinator that is restarting).
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Transport(_) => true,
            ClientError::Api { code, .. } => code.is_retryable(),
            ClientError::BadResponse { status, .. } => matches!(status, 502..=504),
            ClientError::InvalidUrl { .. } => false,
        }
    }

    /// The API error code, if the coordinator answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A wall clock in ms since the Unix epoch: the machine's by default, injectable for tests.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    /// The clock `now` reads.
    pub fn new(now: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        Clock(Arc::new(now))
    }

    /// The time now.
    pub fn now_ms(&self) -> i64 {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new(now_ms)
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({} ms)", self.now_ms())
    }
}

/// A signed client of one coordinator. Cheap to clone; clones share connections and the clock
/// offset.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    key: Arc<ProverKey>,
    clock: Clock,
    /// The coordinator's clock minus ours, as learnt from its last `stale_timestamp` refusal.
    offset_ms: Arc<AtomicI64>,
}

impl Client {
    /// A client of the coordinator at `base_url` (`http://host:port`, optionally with a path
    /// prefix), signing with `key`.
    pub fn new(base_url: &str, key: ProverKey) -> Result<Self, ClientError> {
        let invalid = |reason: String| ClientError::InvalidUrl {
            url: base_url.to_owned(),
            reason,
        };
        let base =
            Url::parse(base_url.trim_end_matches('/')).map_err(|e| invalid(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https".into()));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(invalid("no query or fragment allowed".into()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(SOFTWARE)
            .build()
            .map_err(ClientError::Transport)?;
        Ok(Client {
            http,
            base,
            key: Arc::new(key),
            clock: Clock::default(),
            offset_ms: Arc::new(AtomicI64::new(0)),
        })
    }

    /// The same client reading `clock` instead of the machine's.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The coordinator's clock minus this client's, as last learnt (0 until a refusal told it).
    pub fn clock_offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// The key requests are signed with.
    pub fn key(&self) -> &ProverKey {
        &self.key
    }

    /// The coordinator's base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// Introduce the prover: the coordinator answers with the circuits and lease parameters.
    pub async fn hello(&self) -> Result<HelloResponse, ClientError> {
        let body = HelloRequest {
            api_version: API_VERSION,
            software: SOFTWARE.to_owned(),
        };
        let response = self.post_json(PATH_HELLO, &body, REQUEST_TIMEOUT).await?;
        read_json(response).await
    }

    /// Ask for a job, waiting up to `wait_ms` for one; `None` when none came (204 No Content).
    pub async fn lease(&self, wait_ms: u64) -> Result<Option<JobAssignment>, ClientError> {
        let timeout = Duration::from_millis(wait_ms).saturating_add(LEASE_TIMEOUT_MARGIN);
        let response = self
            .post_json(PATH_LEASE, &LeaseRequest { wait_ms }, timeout)
            .await?;
        if response.status() == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        read_json(response).await.map(Some)
    }

    /// Extend the lease `token` of `job`.
    pub async fn heartbeat(
        &self,
        job: JobId,
        token: i64,
    ) -> Result<HeartbeatResponse, ClientError> {
        let response = self
            .post_json(
                &heartbeat_path(job),
                &HeartbeatRequest { token },
                REQUEST_TIMEOUT,
            )
            .await?;
        read_json(response).await
    }

    /// Submit the proof of `job` under lease `token`, reporting `prove_ms` spent proving.
    pub async fn submit(
        &self,
        job: JobId,
        token: i64,
        prove_ms: u64,
        proof: &[u8],
    ) -> Result<SubmitResponse, ClientError> {
        let response = self
            .post(
                &submit_path(job, token, prove_ms),
                proof.to_vec(),
                "application/octet-stream",
                SUBMIT_TIMEOUT,
            )
            .await?;
        read_json(response).await
    }

    /// The coordinator's sequences and jobs by status (unsigned).
    pub async fn status(&self) -> Result<StatusResponse, ClientError> {
        let url = self.url(PATH_STATUS)?;
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(ClientError::Transport)?;
        read_json(response).await
    }

    /// The absolute URL of `path_and_query` under the base URL.
    fn url(&self, path_and_query: &str) -> Result<Url, ClientError> {
        let joined = format!(
            "{}{path_and_query}",
            self.base.as_str().trim_end_matches('/')
        );
        Url::parse(&joined).map_err(|e| ClientError::InvalidUrl {
            url: joined,
            reason: e.to_string(),
        })
    }

    async fn post_json(
        &self,
        path: &str,
        body: &impl Serialize,
        timeout: Duration,
    ) -> Result<reqwest::Response, ClientError> {
        // The API's request bodies are plain structs of numbers and strings.
        let bytes = serde_json::to_vec(body).expect("request bodies serialize");
        self.post(path, bytes, "application/json", timeout).await
    }

    /// Send a signed `POST`. The signature covers the path and query exactly as sent. Refused
    /// as stale with the coordinator's clock, it learns the offset and is sent once more.
    async fn post(
        &self,
        path: &str,
        body: Vec<u8>,
        content_type: &'static str,
        timeout: Duration,
    ) -> Result<reqwest::Response, ClientError> {
        let url = self.url(path)?;
        let path_and_query = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let mut retried = false;
        loop {
            let offset = self.clock_offset_ms();
            let signed = SignedHeaders::sign(
                &self.key.signing,
                Method::POST.as_str(),
                &path_and_query,
                &body,
                self.clock.now_ms().saturating_add(offset),
            );
            let mut request = self
                .http
                .post(url.clone())
                .timeout(timeout)
                .header(CONTENT_TYPE, content_type)
                .body(body.clone());
            for (name, value) in signed.to_pairs() {
                request = request.header(name, value);
            }
            let response = request.send().await.map_err(ClientError::Transport)?;
            match self.learn_offset(&response) {
                Some(learnt) if !retried && learnt != offset => {
                    tracing::warn!(
                        target: "sheaf::prover",
                        offset_ms = learnt,
                        "this machine's clock is off the coordinator's; signing by the coordinator's time"
                    );
                    self.offset_ms.store(learnt, Ordering::Relaxed);
                    retried = true;
                }
                _ => return Ok(response),
            }
        }
    }

    /// The offset a `stale_timestamp` refusal's [`HEADER_SERVER_TIME`] tells, if it is one.
    fn learn_offset(&self, response: &reqwest::Response) -> Option<i64> {
        if response.status() != StatusCode::UNAUTHORIZED {
            return None;
        }
        let server_ms: i64 = response
            .headers()
            .get(HEADER_SERVER_TIME)?
            .to_str()
            .ok()?
            .parse()
            .ok()?;
        Some(server_ms.saturating_sub(self.clock.now_ms()))
    }
}

/// Read an answer: the JSON of `T` on success, a [`ClientError`] otherwise.
async fn read_json<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, ClientError> {
    let status = response.status();
    let body = read_body(response).await?;
    if status.is_success() {
        serde_json::from_slice(&body).map_err(|e| ClientError::BadResponse {
            status: status.as_u16(),
            reason: format!("{e}; body: {}", excerpt(&body)),
        })
    } else {
        Err(error_from_body(status.as_u16(), &body))
    }
}

/// The error an unsuccessful answer stands for: the API's error if its body has the one error
/// shape, a bad answer otherwise.
pub fn error_from_body(status: u16, body: &[u8]) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => ClientError::Api {
            status,
            code: error.code,
            message: error.message,
        },
        Err(_) => ClientError::BadResponse {
            status,
            reason: format!("no API error body: {}", excerpt(body)),
        },
    }
}

/// The body, read up to [`MAX_RESPONSE_BYTES`].
async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, ClientError> {
    let status = response.status().as_u16();
    let too_large = || ClientError::BadResponse {
        status,
        reason: format!("answer larger than {MAX_RESPONSE_BYTES} bytes"),
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ClientError::Transport)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The start of `bytes`, printable.
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text
        .chars()
        .take(EXCERPT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > EXCERPT_CHARS {
        out.push('…');
    }
    out
}
