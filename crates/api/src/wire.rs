//! The JSON bodies of the prover API, its paths and its one error shape.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use sheaf_types::{JobCircuit, JobId, JobInputs, SequenceId};

/// Version of the prover API. A prover speaking another version is refused at hello.
pub const API_VERSION: u32 = 1;

/// `POST`: introduce a prover; answers which circuits to load and the lease parameters.
pub const PATH_HELLO: &str = "/v1/hello";
/// `POST`: lease the next job (long-poll).
pub const PATH_LEASE: &str = "/v1/lease";
/// `GET`, unsigned: sequences and jobs by status.
pub const PATH_STATUS: &str = "/v1/status";
/// `GET`, unsigned: Prometheus metrics.
pub const PATH_METRICS: &str = "/metrics";

/// `POST`: extend a lease.
pub fn heartbeat_path(job: JobId) -> String {
    format!("/v1/jobs/{job}/heartbeat")
}

/// `POST`, body the raw proof bytes: submit a job's proof under lease `token`, reporting the
/// wall milliseconds spent proving (informational, for the overhead figures).
pub fn submit_path(job: JobId, token: i64, prove_ms: u64) -> String {
    format!("/v1/jobs/{job}/proof?token={token}&prove_ms={prove_ms}")
}

/// Body of `POST /v1/hello`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct HelloRequest {
    /// The API version the prover speaks ([`API_VERSION`]).
    pub api_version: u32,
    /// The prover's software, for logs (e.g. `sheaf 0.1.0`).
    pub software: String,
}

/// The circuits a coordinator proves with; a prover builds (or loads) the same kinds, refusing a
/// set naming a kind it cannot build, and checks each kind's key and the final key.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CircuitSpec {
    /// Circuit profile (`standard`, `seed`, or `test`: for tests only).
    pub profile: String,
    /// Children per aggregation node.
    pub arity: usize,
    /// Whether the root is wrapped in a zero-knowledge proof.
    pub final_zk: bool,
    /// Whether the root is wrapped in the compact (size-tuned, zero-knowledge) wrap. Absent
    /// (false) from a coordinator older than the compact wrap, and when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub final_compact: bool,
    /// Rows of a work leaf, as a power of two.
    pub leaf_rows_log2: usize,
    /// The leaf kinds of the set, by name: every one has a leaf node in the whitelist. Absent
    /// (empty) from a coordinator older than kinds, whose only kind is the work leaf.
    #[serde(default)]
    pub kinds: Vec<KindSpec>,
    /// The kernel rules of the set, by name: every one has a `kernel:<name>` node in the
    /// whitelist. Absent (empty) from a coordinator older than kernels, or one without them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernels: Vec<String>,
    /// Id of the final verifier key (hex).
    pub final_key_id: String,
    /// Root of the circuit whitelist (hex).
    pub whitelist_root: String,
}

/// One leaf kind of a [`CircuitSpec`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KindSpec {
    /// The kind's name (`work`), as in `leaf:<name>`.
    pub name: String,
    /// Digest of its leaf circuit's verifier key (hex), as the whitelist hashes keys.
    pub key: String,
}

/// A registered prover's limits.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProverLimits {
    /// Leases granted per epoch.
    pub rate_limit: i64,
    /// Length of an epoch in ms.
    pub epoch_ms: i64,
    /// Leases held at once.
    pub max_concurrent: i64,
}

/// Answer to hello.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct HelloResponse {
    /// The coordinator's API version.
    pub api_version: u32,
    /// The prover's name in the registry.
    pub prover: String,
    /// The circuits to prove with.
    pub circuits: CircuitSpec,
    /// A lease lives this long without a heartbeat.
    pub lease_ttl_ms: i64,
    /// Heartbeat this often.
    pub heartbeat_interval_ms: u64,
    /// Longest wait a lease request may ask for.
    pub max_lease_wait_ms: u64,
    /// The prover's limits.
    pub limits: ProverLimits,
}

/// Body of `POST /v1/lease`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LeaseRequest {
    /// Wait up to this long for a job before answering 204 No Content (capped by the
    /// coordinator's `max_lease_wait_ms`).
    pub wait_ms: u64,
}

/// A child's proof, handed out with its parent's lease.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChildProof {
    /// The child job's id.
    pub job: JobId,
    /// The circuit that proved it.
    pub circuit: JobCircuit,
    /// The proof bytes (base64 in JSON).
    #[serde(with = "sheaf_types::base64_bytes")]
    pub proof: Vec<u8>,
}

/// Answer to a lease that got a job.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobAssignment {
    /// Job id (`s{sequence}-l{level}-i{index}`).
    pub job: JobId,
    /// Fencing token: heartbeats and the submission must carry it.
    pub token: i64,
    /// Which attempt at this job this lease is (1 for the first).
    pub attempt: i64,
    /// When the lease expires without a heartbeat, ms by the coordinator's clock.
    pub expires_ms: i64,
    /// The circuit to prove.
    pub circuit: JobCircuit,
    /// Its inputs.
    pub inputs: JobInputs,
    /// The children's proofs, in order.
    pub children: Vec<ChildProof>,
}

/// Body of a heartbeat.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct HeartbeatRequest {
    /// The lease's fencing token.
    pub token: i64,
}

/// Answer to a heartbeat.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct HeartbeatResponse {
    /// The lease's new expiry.
    pub expires_ms: i64,
}

/// Answer to an accepted submission.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SubmitResponse {
    /// SHA-256 of the stored proof (hex).
    pub proof_hash: String,
    /// The parent job this proof made ready, if any.
    pub parent_ready: Option<JobId>,
    /// Whether this proof was its sequence's root.
    pub sequence_proved: bool,
}

/// One sequence in the status.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SequenceStatus {
    /// Sequence id.
    pub id: SequenceId,
    /// Its leaves.
    pub leaves: i64,
    /// Its root job.
    pub root_job: JobId,
    /// Whether the root is proved.
    pub proved: bool,
}

/// Jobs of one status at one level.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobCount {
    /// Status (`waiting`, `ready`, `leased`, `proved`, `dead`, `cancelled`).
    pub status: String,
    /// Tree level.
    pub level: u32,
    /// Number of jobs.
    pub count: i64,
}

/// Answer to `GET /v1/status`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatusResponse {
    /// Every sequence.
    pub sequences: Vec<SequenceStatus>,
    /// Jobs by status and level.
    pub jobs: Vec<JobCount>,
}

/// Every failure of the API, one code each; the HTTP status follows from the code.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed (body, query or path).
    BadRequest,
    /// A signature header is missing or malformed.
    Unauthenticated,
    /// The signature does not verify.
    BadSignature,
    /// The request's timestamp is too far from the coordinator's clock.
    StaleTimestamp,
    /// The request's nonce was seen before.
    ReplayedNonce,
    /// The signing key is not a registered prover.
    UnknownProver,
    /// The signing key's membership on the chain is expired: it must be extended in grace or
    /// registered again before the prover may take work.
    MembershipExpired,
    /// The signing key holds no membership on the chain: never registered, or erased.
    NotAMember,
    /// The prover speaks another API version.
    IncompatibleVersion,
    /// No such job.
    UnknownJob,
    /// No such endpoint: the path is not one of the API's.
    NotFound,
    /// The path is the API's, the method is not the one it takes.
    MethodNotAllowed,
    /// The lease is not current: expired, taken over, or another prover's.
    StaleLease,
    /// The job is proved already.
    AlreadyProved,
    /// The body is larger than the limit.
    PayloadTooLarge,
    /// The body did not arrive within the server's body timeout.
    RequestTimeout,
    /// The request target (path and query) is longer than the server takes.
    UriTooLong,
    /// The request headers are larger than the server takes.
    HeadersTooLarge,
    /// The proof bytes do not decode (truncated, trailing bytes, non-canonical, garbage).
    MalformedProof,
    /// The proof is not of the job's circuit.
    WrongCircuit,
    /// The proof's header is not the job's (children, statement, whitelist).
    HeaderMismatch,
    /// The proof carries another prover's worker_pk.
    WrongWorker,
    /// The proof does not verify.
    InvalidProof,
    /// The prover used up its leases for this epoch.
    RateLimited,
    /// The prover holds as many leases as it may.
    TooManyLeases,
    /// Every verifier is busy; retry later.
    Overloaded,
    /// The store is unreachable; retry later.
    Unavailable,
    /// A bug or an unexpected failure.
    Internal,
}

impl ErrorCode {
    /// Every code, so metrics can count each refusal reason from zero.
    pub const ALL: [ErrorCode; 28] = {
        use ErrorCode::*;
        [
            BadRequest,
            Unauthenticated,
            BadSignature,
            StaleTimestamp,
            ReplayedNonce,
            UnknownProver,
            MembershipExpired,
            NotAMember,
            IncompatibleVersion,
            UnknownJob,
            NotFound,
            MethodNotAllowed,
            StaleLease,
            AlreadyProved,
            PayloadTooLarge,
            RequestTimeout,
            UriTooLong,
            HeadersTooLarge,
            MalformedProof,
            WrongCircuit,
            HeaderMismatch,
            WrongWorker,
            InvalidProof,
            RateLimited,
            TooManyLeases,
            Overloaded,
            Unavailable,
            Internal,
        ]
    };

    /// The HTTP status this code answers with.
    pub fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            BadRequest | IncompatibleVersion => 400,
            Unauthenticated | BadSignature | StaleTimestamp | ReplayedNonce => 401,
            UnknownProver | MembershipExpired | NotAMember => 403,
            UnknownJob | NotFound => 404,
            MethodNotAllowed => 405,
            StaleLease | AlreadyProved => 409,
            RequestTimeout => 408,
            PayloadTooLarge => 413,
            UriTooLong => 414,
            HeadersTooLarge => 431,
            MalformedProof | WrongCircuit | HeaderMismatch | WrongWorker | InvalidProof => 422,
            RateLimited | TooManyLeases => 429,
            Internal => 500,
            Overloaded | Unavailable => 503,
        }
    }

    /// Whether the same request may succeed later (the prover backs off and retries).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::RateLimited
                | ErrorCode::TooManyLeases
                | ErrorCode::Overloaded
                | ErrorCode::RequestTimeout
                | ErrorCode::Unavailable
                | ErrorCode::Internal
        )
    }

    /// The snake_case name, as in JSON.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            BadRequest => "bad_request",
            Unauthenticated => "unauthenticated",
            BadSignature => "bad_signature",
            StaleTimestamp => "stale_timestamp",
            ReplayedNonce => "replayed_nonce",
            UnknownProver => "unknown_prover",
            MembershipExpired => "membership_expired",
            NotAMember => "not_a_member",
            IncompatibleVersion => "incompatible_version",
            UnknownJob => "unknown_job",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            StaleLease => "stale_lease",
            AlreadyProved => "already_proved",
            PayloadTooLarge => "payload_too_large",
            RequestTimeout => "request_timeout",
            UriTooLong => "uri_too_long",
            HeadersTooLarge => "headers_too_large",
            MalformedProof => "malformed_proof",
            WrongCircuit => "wrong_circuit",
            HeaderMismatch => "header_mismatch",
            WrongWorker => "wrong_worker",
            InvalidProof => "invalid_proof",
            RateLimited => "rate_limited",
            TooManyLeases => "too_many_leases",
            Overloaded => "overloaded",
            Unavailable => "unavailable",
            Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one error shape: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Code and human-readable message of an error.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorDetail {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
}

impl FromStr for ErrorCode {
    type Err = serde_json::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(serde_json::Value::String(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_name_themselves_as_in_json() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(code.as_str().parse::<ErrorCode>().unwrap(), code);
        }
    }

    #[test]
    fn all_error_codes_are_listed_once() {
        let names: std::collections::BTreeSet<&str> =
            ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len());
    }

    #[test]
    fn membership_refusals_are_forbidden_and_final() {
        for code in [ErrorCode::MembershipExpired, ErrorCode::NotAMember] {
            assert_eq!(code.http_status(), 403);
            assert!(!code.is_retryable(), "{code} is not retried");
        }
        assert_eq!(ErrorCode::MembershipExpired.as_str(), "membership_expired");
        assert_eq!(ErrorCode::NotAMember.as_str(), "not_a_member");
    }

    #[test]
    fn assignment_round_trips_with_binary_proofs() {
        let assignment = JobAssignment {
            job: JobId::new(SequenceId(1), 1, 0),
            token: 3,
            attempt: 2,
            expires_ms: 99,
            circuit: JobCircuit::LeafNode {
                kind: "work".into(),
            },
            inputs: JobInputs::Aggregate,
            children: vec![ChildProof {
                job: JobId::new(SequenceId(1), 0, 0),
                circuit: JobCircuit::Leaf {
                    kind: "work".into(),
                },
                proof: vec![0, 255, 7],
            }],
        };
        let json = serde_json::to_string(&assignment).unwrap();
        assert_eq!(
            json,
            r#"{"job":"s1-l1-i0","token":3,"attempt":2,"expires_ms":99,"circuit":"node:work","inputs":{"kind":"aggregate"},"children":[{"job":"s1-l0-i0","circuit":"leaf:work","proof":"AP8H"}]}"#,
            "the wire form of ids, circuits and inputs is their text form"
        );
        assert_eq!(
            serde_json::from_str::<JobAssignment>(&json).unwrap(),
            assignment
        );
    }

    #[test]
    fn malformed_job_id_is_a_decode_error() {
        let json = r#"{"proof_hash":"00","parent_ready":"../../admin","sequence_proved":false}"#;
        assert!(serde_json::from_str::<SubmitResponse>(json).is_err());
    }
}
