//! A stand-in for the coordinator: it serves the prover API on 127.0.0.1 from scripted state,
//! checks every signature, and verifies every proof it accepts as the real one does. Also the
//! small circuits it proves with, built once per test binary.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use sheaf_api::{
    ChildProof, CircuitSpec, ErrorBody, ErrorCode, ErrorDetail, HeartbeatResponse, HelloResponse,
    JobAssignment, JobId, JobInputs, KindSpec, LeaseRequest, ProverLimits, SequenceId,
    SignedHeaders, SubmitResponse, API_VERSION,
};
use sheaf_circuits::limits::MAX_PROOF_BYTES;
use sheaf_circuits::{
    decode_proof, verify_job_proof, AggregationSettings, ArtifactCache, CircuitSet, Digest,
    Expected, Header, JobCircuit, Profile,
};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// Leaves of 2^6 rows: the smallest realistic shape, cheap to prove.
pub const LEAF_ROWS_LOG2: usize = 6;

/// The circuits of the tests, and where they are cached (in the target directory, so later
/// runs load them).
pub struct Circuits {
    pub set: CircuitSet,
    pub spec: CircuitSpec,
    pub cache: ArtifactCache,
}

pub fn circuits() -> &'static Circuits {
    static CIRCUITS: OnceLock<Circuits> = OnceLock::new();
    CIRCUITS.get_or_init(|| {
        let cache = ArtifactCache::new(
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("sheaf-prover-circuits"),
        );
        let settings = AggregationSettings {
            profile: Profile::Test,
            arity: 2,
            final_zk: false,
            final_compact: false,
        };
        let set = CircuitSet::load_or_build(settings, LEAF_ROWS_LOG2, Some(&cache)).unwrap();
        let key = set.aggregation.final_key();
        let spec = CircuitSpec {
            profile: settings.profile.to_string(),
            arity: settings.arity,
            final_zk: settings.final_zk,
            final_compact: settings.final_compact,
            leaf_rows_log2: LEAF_ROWS_LOG2,
            kinds: set
                .kinds()
                .iter()
                .map(|kind| KindSpec {
                    name: kind.name().to_owned(),
                    key: kind.key_digest().to_string(),
                })
                .collect(),
            kernels: Vec::new(),
            final_key_id: key.id().to_string(),
            whitelist_root: key.whitelist_root().to_string(),
        };
        Circuits { set, spec, cache }
    })
}

/// Serve `router` on a free port of 127.0.0.1; the base URL.
pub async fn serve(router: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve_on(listener, router)
}

/// Serve `router` on `listener`; the base URL.
pub fn serve_on(listener: TcpListener, router: Router) -> String {
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// The API's error answer.
pub fn api_error(code: ErrorCode, message: &str) -> Response {
    (
        StatusCode::from_u16(code.http_status()).unwrap(),
        Json(ErrorBody {
            error: ErrorDetail {
                code,
                message: message.to_owned(),
            },
        }),
    )
        .into_response()
}

/// Check a request's signature over what was received, as the coordinator does.
pub fn check_signature(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), sheaf_api::AuthError> {
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    SignedHeaders::parse(|name| headers.get(name).and_then(|v| v.to_str().ok()))
        .and_then(|signed| signed.verify(method.as_str(), path_and_query, body))
}

/// One submission attempt as received.
#[derive(Clone, Debug)]
pub struct Submission {
    pub job: String,
    pub token: i64,
    pub prove_ms: u64,
    pub bytes: Vec<u8>,
}

/// The scripted coordinator.
pub struct Fake {
    pub hello: Mutex<HelloResponse>,
    /// Answer hello with this error instead.
    pub hello_error: Mutex<Option<ErrorCode>>,
    /// Jobs handed out in order.
    pub jobs: Mutex<VecDeque<JobAssignment>>,
    /// Errors answered to the next lease requests, before any job.
    pub lease_errors: Mutex<VecDeque<ErrorCode>>,
    /// Answer heartbeats with this error.
    pub heartbeat_error: Mutex<Option<ErrorCode>>,
    /// From the first submission on, answer heartbeats with this error.
    pub heartbeat_error_once_submitted: Mutex<Option<ErrorCode>>,
    /// Errors answered to the next submissions, before any is verified.
    pub submit_errors: Mutex<VecDeque<ErrorCode>>,
    /// Wait this long before answering a submission.
    pub submit_delay: Mutex<Duration>,
    /// When the proof of the first job is accepted, hand out the second with it as child.
    pub parents: Mutex<HashMap<String, JobAssignment>>,
    pub submissions: Mutex<Vec<Submission>>,
    pub accepted: Mutex<Vec<String>>,
    pub heartbeats: AtomicUsize,
    /// Fired when a heartbeat is answered with an error.
    pub lease_lost: Notify,
    /// Fired when a lease is asked for.
    pub lease_asked: Notify,
    leased: Mutex<HashMap<String, JobAssignment>>,
    worker_pk: Digest,
}

impl Fake {
    /// A coordinator of the test circuits, expecting proofs by `worker_pk`.
    pub fn new(worker_pk: Digest) -> Arc<Self> {
        Arc::new(Fake {
            hello: Mutex::new(HelloResponse {
                api_version: API_VERSION,
                prover: "test".into(),
                circuits: circuits().spec.clone(),
                lease_ttl_ms: 10_000,
                heartbeat_interval_ms: 100,
                max_lease_wait_ms: 1_000,
                limits: ProverLimits {
                    rate_limit: 600,
                    epoch_ms: 60_000,
                    max_concurrent: 2,
                },
            }),
            hello_error: Mutex::new(None),
            jobs: Mutex::new(VecDeque::new()),
            lease_errors: Mutex::new(VecDeque::new()),
            heartbeat_error: Mutex::new(None),
            heartbeat_error_once_submitted: Mutex::new(None),
            submit_errors: Mutex::new(VecDeque::new()),
            submit_delay: Mutex::new(Duration::ZERO),
            parents: Mutex::new(HashMap::new()),
            submissions: Mutex::new(Vec::new()),
            accepted: Mutex::new(Vec::new()),
            heartbeats: AtomicUsize::new(0),
            lease_lost: Notify::new(),
            lease_asked: Notify::new(),
            leased: Mutex::new(HashMap::new()),
            worker_pk,
        })
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new().fallback(handle).with_state(self.clone())
    }

    pub async fn serve(self: &Arc<Self>) -> String {
        serve(self.router()).await
    }

    pub fn push_job(&self, job: JobAssignment) {
        self.jobs.lock().unwrap().push_back(job);
    }

    fn lease(&self) -> Result<Option<JobAssignment>, ErrorCode> {
        self.lease_asked.notify_one();
        if let Some(code) = self.lease_errors.lock().unwrap().pop_front() {
            return Err(code);
        }
        let job = self.jobs.lock().unwrap().pop_front();
        if let Some(job) = &job {
            self.leased
                .lock()
                .unwrap()
                .insert(job.job.to_string(), job.clone());
        }
        Ok(job)
    }

    /// Verify a submission on receipt; on acceptance, hand out the parent if one waits on it.
    fn receive(&self, job: &str, token: i64, bytes: &[u8]) -> Result<(), (ErrorCode, String)> {
        let leased = self
            .leased
            .lock()
            .unwrap()
            .get(job)
            .cloned()
            .ok_or((ErrorCode::UnknownJob, job.to_owned()))?;
        if leased.token != token {
            return Err((ErrorCode::StaleLease, format!("token {token}")));
        }
        let set = &circuits().set;
        let bad = |e: sheaf_circuits::CircuitError| (ErrorCode::InvalidProof, e.to_string());
        let children = leased
            .children
            .iter()
            .map(|child| {
                let proof =
                    decode_proof(&child.proof, set.common(&child.circuit)?, MAX_PROOF_BYTES)?;
                Header::from_public_inputs(&proof.public_inputs)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        let expected = Expected {
            header: set
                .expected_header(&leased.circuit, &leased.inputs, &children, self.worker_pk)
                .map_err(bad)?,
            whitelist_root: set.whitelist_root(&leased.circuit),
        };
        let verifier = set.verifier_data(&leased.circuit).map_err(bad)?;
        verify_job_proof(bytes, &verifier, &expected).map_err(bad)?;
        self.accepted.lock().unwrap().push(job.to_owned());
        if let Some(mut parent) = self.parents.lock().unwrap().remove(job) {
            parent.children = vec![ChildProof {
                job: job.parse().expect("a job the fake handed out"),
                circuit: leased.circuit.clone(),
                proof: bytes.to_vec(),
            }];
            self.push_job(parent);
        }
        Ok(())
    }
}

/// A leased work leaf.
pub fn leaf_job(index: u64, token: i64) -> JobAssignment {
    JobAssignment {
        job: JobId::new(SequenceId(1), 0, index),
        token,
        attempt: 1,
        expires_ms: 0,
        circuit: JobCircuit::Leaf {
            kind: "work".into(),
        },
        inputs: JobInputs::Work { seed: 7, index },
        children: Vec::new(),
    }
}

/// A leased leaf node (its children are filled in when they are proved).
pub fn node_job(index: u64, token: i64) -> JobAssignment {
    JobAssignment {
        job: JobId::new(SequenceId(1), 1, index),
        token,
        attempt: 1,
        expires_ms: 0,
        circuit: JobCircuit::LeafNode {
            kind: "work".into(),
        },
        inputs: JobInputs::Aggregate,
        children: Vec::new(),
    }
}

async fn handle(
    State(fake): State<Arc<Fake>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method == Method::POST {
        if let Err(e) = check_signature(&method, &uri, &headers, &body) {
            return api_error(ErrorCode::BadSignature, &e.to_string());
        }
    }
    let path = uri.path();
    let segments: Vec<&str> = path.split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["", "v1", "hello"]) => match *fake.hello_error.lock().unwrap() {
            Some(code) => api_error(code, "scripted"),
            None => Json(fake.hello.lock().unwrap().clone()).into_response(),
        },
        ("POST", ["", "v1", "lease"]) => {
            let Ok(request) = serde_json::from_slice::<LeaseRequest>(&body) else {
                return api_error(ErrorCode::BadRequest, "lease body");
            };
            match fake.lease() {
                Err(code) => api_error(code, "scripted"),
                Ok(Some(job)) => Json(job).into_response(),
                Ok(None) => {
                    tokio::time::sleep(Duration::from_millis(request.wait_ms)).await;
                    StatusCode::NO_CONTENT.into_response()
                }
            }
        }
        ("POST", ["", "v1", "jobs", _job, "heartbeat"]) => {
            fake.heartbeats.fetch_add(1, Ordering::SeqCst);
            let scripted = *fake.heartbeat_error.lock().unwrap();
            match scripted {
                Some(code) => {
                    fake.lease_lost.notify_one();
                    api_error(code, "scripted")
                }
                None => Json(HeartbeatResponse { expires_ms: 1 }).into_response(),
            }
        }
        ("POST", ["", "v1", "jobs", job, "proof"]) => {
            let query: HashMap<String, String> = uri
                .query()
                .unwrap_or("")
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            let (Some(Ok(token)), Some(Ok(prove_ms))) = (
                query.get("token").map(|t| t.parse::<i64>()),
                query.get("prove_ms").map(|t| t.parse::<u64>()),
            ) else {
                return api_error(ErrorCode::BadRequest, "query");
            };
            if headers
                .get("content-type")
                .is_none_or(|v| v != "application/octet-stream")
            {
                return api_error(ErrorCode::BadRequest, "content type");
            }
            fake.submissions.lock().unwrap().push(Submission {
                job: job.to_string(),
                token,
                prove_ms,
                bytes: body.to_vec(),
            });
            if let Some(code) = fake.heartbeat_error_once_submitted.lock().unwrap().take() {
                *fake.heartbeat_error.lock().unwrap() = Some(code);
            }
            let delay = *fake.submit_delay.lock().unwrap();
            tokio::time::sleep(delay).await;
            let scripted = fake.submit_errors.lock().unwrap().pop_front();
            if let Some(code) = scripted {
                return api_error(code, "scripted");
            }
            match fake.receive(job, token, &body) {
                Ok(()) => Json(SubmitResponse {
                    proof_hash: "00".repeat(32),
                    parent_ready: None,
                    sequence_proved: false,
                })
                .into_response(),
                Err((code, message)) => api_error(code, &message),
            }
        }
        _ => api_error(ErrorCode::BadRequest, "no such route"),
    }
}
