//! A coordinator on a fresh store, served on a loopback port, and signed raw requests to it.

use std::sync::{Arc, OnceLock};

use ed25519_dalek::SigningKey;
use reqwest::StatusCode;
use sheaf_api::{
    ErrorBody, ErrorCode, JobAssignment, JobInputs, LeaseRequest, SignedHeaders, PATH_LEASE,
};
use sheaf_circuits::{
    encode_proof, AggregationSettings, ArtifactCache, CircuitSet, JobCircuit, Profile, WorkerSecret,
};
use sheaf_coordinator::{Coordinator, CoordinatorConfig, Registry, StaticRegistry};
use sheaf_store::{Prover, Store};
use sheaf_types::clock::now_ms;

/// Work leaves of the test circuits: the smallest there is.
pub const LEAF_ROWS_LOG2: usize = 5;

/// The settings of the test circuits: binary trees of the test profile (nodes of 2^12 rows,
/// half the proving time of the standard profile's; what this crate tests is the service,
/// the circuits crate tests the standard profile's circuits).
pub fn settings() -> AggregationSettings {
    AggregationSettings {
        profile: Profile::Test,
        arity: 2,
        final_zk: false,
        final_compact: false,
    }
}

/// The test circuits, built (or loaded from the target directory's cache) once per binary.
pub fn circuits() -> Arc<CircuitSet> {
    static CIRCUITS: OnceLock<Arc<CircuitSet>> = OnceLock::new();
    CIRCUITS
        .get_or_init(|| {
            let cache = ArtifactCache::new(
                std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("sheaf-circuits"),
            );
            Arc::new(
                CircuitSet::load_or_build(settings(), LEAF_ROWS_LOG2, Some(&cache))
                    .expect("test circuits"),
            )
        })
        .clone()
}

/// A prover as the tests drive it: its request key and worker secret.
pub struct TestProver {
    /// Registry name.
    pub name: String,
    /// Signs its requests.
    pub signing: SigningKey,
    /// Its worker secret.
    pub worker: WorkerSecret,
}

impl TestProver {
    /// A new prover with fresh keys.
    pub fn new(name: &str) -> Self {
        TestProver {
            name: name.to_owned(),
            signing: SigningKey::generate(&mut rand::rngs::OsRng),
            worker: WorkerSecret::random(),
        }
    }

    /// Its registry entry with these limits.
    pub fn entry(&self, rate_limit: i64, max_concurrent: i64) -> Prover {
        Prover {
            id: self.name.clone(),
            public_key: self.signing.verifying_key().to_bytes(),
            worker_pk: self.worker.worker_pk().to_bytes(),
            rate_limit,
            max_concurrent,
        }
    }

    /// Its registry entry with generous limits.
    pub fn registered(&self) -> Prover {
        self.entry(1_000, 4)
    }
}

/// The registry entry of a library prover with `key`: generous rate, two leases at once.
pub fn registered_key(name: &str, key: &sheaf_prover::ProverKey) -> Prover {
    Prover {
        id: name.to_owned(),
        public_key: key.signing.verifying_key().to_bytes(),
        worker_pk: key.worker_pk().to_bytes(),
        rate_limit: 1_000,
        max_concurrent: 2,
    }
}

/// A served coordinator.
pub struct Net {
    /// The coordinator.
    pub coordinator: Arc<Coordinator>,
    /// Its base URL.
    pub url: String,
    /// Its store.
    pub store: Store,
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
}

/// A fresh SQLite store in a temporary directory.
pub async fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_data_dir(dir.path()).await.expect("store");
    (store, dir)
}

/// A coordinator on a fresh SQLite store admitting `provers`.
pub async fn start(provers: Vec<Prover>, config: CoordinatorConfig) -> Net {
    let (store, dir) = sqlite_store().await;
    let mut net = start_on(store, provers, config).await;
    net._dir = Some(dir);
    net
}

/// A coordinator on `store` admitting `provers`.
pub async fn start_on(store: Store, provers: Vec<Prover>, config: CoordinatorConfig) -> Net {
    start_with_registry(store, Arc::new(StaticRegistry(provers)), config).await
}

/// A coordinator on `store` admitting the provers of `registry`.
pub async fn start_with_registry(
    store: Store,
    registry: Arc<dyn Registry>,
    config: CoordinatorConfig,
) -> Net {
    let circuits = tokio::task::spawn_blocking(circuits)
        .await
        .expect("circuits");
    start_with_circuits(store, registry, config, circuits).await
}

/// A coordinator on `store` serving `circuits`, admitting the provers of `registry`.
pub async fn start_with_circuits(
    store: Store,
    registry: Arc<dyn Registry>,
    config: CoordinatorConfig,
    circuits: Arc<CircuitSet>,
) -> Net {
    let coordinator = Arc::new(
        Coordinator::new(
            store.clone(),
            circuits,
            LEAF_ROWS_LOG2,
            config,
            Some(registry),
        )
        .await
        .expect("coordinator"),
    );
    serve_coordinator(coordinator, store).await
}

/// Serve `coordinator` (made on `store`) on a free port.
pub async fn serve_coordinator(coordinator: Arc<Coordinator>, store: Store) -> Net {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sheaf_coordinator::serve(
        coordinator.clone(),
        listener,
        async {
            let _ = stopped.await;
        },
    ));
    Net {
        coordinator,
        url,
        store,
        http: reqwest::Client::new(),
        stop: Some(stop),
        server: Some(server),
        _dir: None,
    }
}

/// A response's status and body.
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// Body bytes.
    pub body: Vec<u8>,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
}

impl Answer {
    /// Read a response.
    pub async fn read(response: reqwest::Response) -> Answer {
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Answer {
            status: response.status(),
            retry_after,
            body: response.bytes().await.expect("body").to_vec(),
        }
    }

    /// The error code of an error answer (panics on any other shape: the one error shape is
    /// part of what is tested).
    pub fn code(&self) -> ErrorCode {
        let body: ErrorBody = serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} with a body not in the error shape ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        });
        assert_eq!(
            body.error.code.http_status(),
            self.status.as_u16(),
            "status matches the code"
        );
        body.error.code
    }

    /// Parse a success body.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        assert!(
            self.status.is_success(),
            "status {}: {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        serde_json::from_slice(&self.body).expect("response body")
    }
}

impl Net {
    /// Send `body` to `path` with the given signature headers.
    pub async fn send(&self, path: &str, body: Vec<u8>, headers: &SignedHeaders) -> Answer {
        self.try_send(path, body, headers).await.expect("request")
    }

    /// As [`Net::send`], but a request that got no HTTP answer (a connection the server
    /// refused at its cap may answer 503 and close before the request is written) is an error.
    pub async fn try_send(
        &self,
        path: &str,
        body: Vec<u8>,
        headers: &SignedHeaders,
    ) -> Result<Answer, reqwest::Error> {
        let mut request = self.http.post(format!("{}{path}", self.url)).body(body);
        for (name, value) in headers.to_pairs() {
            request = request.header(name, value);
        }
        Ok(Answer::read(request.send().await?).await)
    }

    /// `GET path`, unsigned.
    pub async fn get(&self, path: &str) -> Answer {
        self.try_get(path).await.expect("request")
    }

    /// As [`Net::get`], but a request that got no HTTP answer is an error.
    pub async fn try_get(&self, path: &str) -> Result<Answer, reqwest::Error> {
        let response = self.http.get(format!("{}{path}", self.url)).send().await?;
        Ok(Answer::read(response).await)
    }

    /// `POST path` signed by `prover` now.
    pub async fn post(&self, prover: &TestProver, path: &str, body: Vec<u8>) -> Answer {
        self.try_post(prover, path, body).await.expect("request")
    }

    /// As [`Net::post`], but a request that got no HTTP answer is an error.
    pub async fn try_post(
        &self,
        prover: &TestProver,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Answer, reqwest::Error> {
        let headers = SignedHeaders::sign(&prover.signing, "POST", path, &body, now_ms());
        self.try_send(path, body, &headers).await
    }

    /// Lease a job without waiting; panics when none is leased.
    pub async fn lease(&self, prover: &TestProver) -> JobAssignment {
        self.try_lease(prover, 0).await.json()
    }

    /// Ask for a lease, waiting up to `wait_ms`.
    pub async fn try_lease(&self, prover: &TestProver, wait_ms: u64) -> Answer {
        let body = serde_json::to_vec(&LeaseRequest { wait_ms }).expect("json");
        self.post(prover, PATH_LEASE, body).await
    }

    /// Submit `bytes` as the proof of `job` (any text, so malformed ids can be sent) under
    /// `token`.
    pub async fn submit(
        &self,
        prover: &TestProver,
        job: &(impl std::fmt::Display + ?Sized),
        token: i64,
        bytes: Vec<u8>,
    ) -> Answer {
        let path = format!("/v1/jobs/{job}/proof?token={token}&prove_ms=1");
        self.post(prover, &path, bytes).await
    }

    /// The stored job that `job` (any text form of its id) names.
    pub async fn stored_job(&self, job: &impl std::fmt::Display) -> sheaf_store::Job {
        let id = job.to_string().parse().expect("a job id");
        self.store.get_job(id).await.unwrap().expect("the job")
    }

    /// Sequence 1, the one the tests plan, as the store has it.
    pub async fn sequence_one(&self) -> sheaf_store::Sequence {
        let id = sheaf_store::SequenceId(1);
        self.store
            .get_sequence(id)
            .await
            .unwrap()
            .expect("sequence 1")
    }

    /// The rewards the store has recorded for sequence 1.
    pub async fn rewards_of_sequence_one(&self) -> Vec<sheaf_store::Reward> {
        let id = sheaf_store::SequenceId(1);
        self.store.rewards(id).await.unwrap()
    }

    /// Stop serving.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server");
        }
    }
}

/// Alice alone on a coordinator served with `config` that planned sequence 1 over `leaves`
/// leaves, and her first lease.
pub async fn alice_leasing(
    config: CoordinatorConfig,
    leaves: usize,
) -> (TestProver, Net, JobAssignment) {
    let alice = TestProver::new("alice");
    let net = start(vec![alice.registered()], config).await;
    let sequence = sheaf_store::SequenceId(1);
    net.coordinator.plan(sequence, leaves).await.unwrap();
    let job = net.lease(&alice).await;
    (alice, net, job)
}

/// Prove a leased leaf job as `worker`.
pub fn prove_leaf(assignment: &JobAssignment, worker: &WorkerSecret) -> Vec<u8> {
    let JobInputs::Work { .. } = assignment.inputs else {
        panic!("{} is not a leaf job", assignment.job);
    };
    let circuit: JobCircuit = assignment.circuit.clone();
    let proof = circuits()
        .prove_job(&circuit, &assignment.inputs, &[], worker)
        .expect("leaf proof");
    encode_proof(&proof)
}

/// The tests' circuit cache (in the target directory), shared by coordinators and provers.
pub fn test_cache() -> ArtifactCache {
    ArtifactCache::new(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("sheaf-circuits"))
}

/// A library prover's configuration against `net`: one thread, the tests' circuit cache.
pub fn prover_config(net: &Net, key: &sheaf_prover::ProverKey) -> sheaf_prover::ProverConfig {
    prover_config_at(&net.url, key)
}

/// A library prover's configuration against the coordinator at `url`.
pub fn prover_config_at(url: &str, key: &sheaf_prover::ProverKey) -> sheaf_prover::ProverConfig {
    sheaf_prover::ProverConfig {
        coordinator: url.to_owned(),
        key: key.clone(),
        threads: 1,
        max_jobs: None,
        cache: Some(ArtifactCache::new(
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("sheaf-circuits"),
        )),
        lease_wait_ms: 1_000,
        kinds: sheaf_circuits::KindCatalog::standard(),
    }
}

/// Run a library prover per key (with the kinds of `kinds`) against `net` until `done` says
/// the work is finished (polled every 200 ms, at most 10 minutes, failing with `what`); then
/// stop them and return their reports.
pub async fn prove_until<F, Fut>(
    net: &Net,
    keys: &[sheaf_prover::ProverKey],
    kinds: sheaf_circuits::KindCatalog,
    what: &str,
    done: F,
) -> Vec<sheaf_prover::ProverReport>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    prove_until_at(&net.url, keys, kinds, what, done).await
}

/// [`prove_until`] against the coordinator at `url` (one started as a service, say).
pub async fn prove_until_at<F, Fut>(
    url: &str,
    keys: &[sheaf_prover::ProverKey],
    kinds: sheaf_circuits::KindCatalog,
    what: &str,
    mut done: F,
) -> Vec<sheaf_prover::ProverReport>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let provers: Vec<_> = keys
        .iter()
        .map(|key| {
            let mut config = prover_config_at(url, key);
            config.kinds = kinds.clone();
            let mut stopped = stopped.clone();
            tokio::spawn(sheaf_prover::run(config, async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            }))
        })
        .collect();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(600);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "{what} not in time");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    stop.send_replace(true);
    let mut reports = Vec::new();
    for prover in provers {
        reports.push(prover.await.expect("prover task").expect("prover ran"));
    }
    reports
}
