//! The one error every API failure answers with, and the one place the service's typed errors
//! become the API's codes.
//!
//! A refusal keeps its code and message. An [`InternalError`] is logged in full (with its
//! sources) under a fresh reference, and the prover is told only the reference: the log line
//! holds the text, the answer never does.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sheaf_api::{AuthError, ErrorBody, ErrorCode, ErrorDetail, StaleTimestamp, HEADER_SERVER_TIME};
use sheaf_circuits::{CircuitError, HeaderField};
use sheaf_net::{BodyError, Refusal as ServeRefusal, Shape};

use crate::admission::Refusal;
use crate::error::{
    AdmissionError, ClaimsError, HeartbeatError, HelloError, InternalError, JobRefusal, LeaseError,
    SubmitError,
};

/// Result alias of the API's handlers.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// Seconds a prover is told to wait when the store is out of reach or every verifier is busy.
const RETRY_AFTER_BUSY_S: u64 = 1;

/// A refused or failed request: a code (which fixes the HTTP status) and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// What went wrong, for machines.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
    /// For 429 and 503: when to retry, in seconds.
    pub retry_after_s: Option<u64>,
    /// For `stale_timestamp`: the coordinator's clock, so the prover can correct its own.
    pub server_time_ms: Option<i64>,
}

impl ApiError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            retry_after_s: None,
            server_time_ms: None,
        }
    }

    /// The same error, telling the client to retry after `seconds`.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_s = Some(seconds.max(1));
        self
    }

    /// The label metrics count this rejection under.
    pub fn reason(&self) -> &'static str {
        self.code.as_str()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        let mut response = (status, Json(body)).into_response();
        // Every 429 and 503 tells when to retry, as the API promises: one that set no time of
        // its own (a shutdown, a readiness refusal) says the busy default.
        let retry_after_s = self
            .retry_after_s
            .or_else(|| matches!(status.as_u16(), 429 | 503).then_some(RETRY_AFTER_BUSY_S));
        if let Some(seconds) = retry_after_s {
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        if let Some(now_ms) = self.server_time_ms {
            if let Ok(value) = HeaderValue::from_str(&now_ms.to_string()) {
                response.headers_mut().insert(HEADER_SERVER_TIME, value);
            }
        }
        response
    }
}

impl From<StaleTimestamp> for ApiError {
    fn from(e: StaleTimestamp) -> Self {
        let mut error = ApiError::new(ErrorCode::StaleTimestamp, e.to_string());
        error.server_time_ms = Some(e.now_ms);
        error
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        let code = match e {
            BodyError::TooLarge { .. } => ErrorCode::PayloadTooLarge,
            BodyError::TimedOut(_) => ErrorCode::RequestTimeout,
            BodyError::Overloaded => {
                return ApiError::new(ErrorCode::Overloaded, e.to_string())
                    .retry_after(RETRY_AFTER_BUSY_S)
            }
            BodyError::Read(_) => ErrorCode::BadRequest,
        };
        ApiError::new(code, e.to_string())
    }
}

/// The serving loop's own refusals (connection cap, URI and header size, a head that does not
/// parse) in the one error shape.
pub fn refusal_shape() -> Shape {
    std::sync::Arc::new(|refusal: ServeRefusal| {
        let code = match refusal {
            ServeRefusal::Overloaded => ErrorCode::Overloaded,
            ServeRefusal::UriTooLong => ErrorCode::UriTooLong,
            ServeRefusal::HeadersTooLarge => ErrorCode::HeadersTooLarge,
            ServeRefusal::Malformed => ErrorCode::BadRequest,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: refusal.message(),
            },
        };
        serde_json::to_string(&body).expect("an error body serializes")
    })
}

/// Most bytes of a framework's plain-text refusal quoted in the JSON answer that replaces it.
const PLAIN_REFUSAL_BYTES: usize = 1024;

/// Middleware: a failure answered by the framework rather than a handler (a path that does not
/// decode, a body that does not parse, an empty 405) is rewritten into the one error shape,
/// its status kept and its text (if any) as the message. Answers already in JSON pass as they
/// are.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let code = match status.as_u16() {
        404 => ErrorCode::NotFound,
        405 => ErrorCode::MethodNotAllowed,
        408 => ErrorCode::RequestTimeout,
        413 => ErrorCode::PayloadTooLarge,
        414 => ErrorCode::UriTooLong,
        429 => ErrorCode::RateLimited,
        431 => ErrorCode::HeadersTooLarge,
        503 => ErrorCode::Unavailable,
        400..=499 => ErrorCode::BadRequest,
        _ => ErrorCode::Internal,
    };
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, PLAIN_REFUSAL_BYTES)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("refused").to_owned()
    } else {
        text
    };
    let mut answer = ApiError::new(code, message).into_response();
    *answer.status_mut() = status;
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(value) = parts.headers.get(&name) {
            answer.headers_mut().insert(name, value.clone());
        }
    }
    answer
}

/// An internal failure as the prover sees it: logged in full under a fresh reference, answered
/// with the reference only (`unavailable` when the store is out of reach, `internal` otherwise).
pub fn internal(e: &InternalError) -> ApiError {
    let reference = format!("{:08x}", rand::random::<u32>());
    tracing::error!(
        target: "sheaf::coordinator",
        reference = %reference,
        // Recorded as an error, so the log shows its sources too.
        error = e as &(dyn std::error::Error + 'static),
        "internal failure"
    );
    if e.is_unavailable() {
        ApiError::new(
            ErrorCode::Unavailable,
            format!("the store is unavailable; retry later (reference {reference})"),
        )
        .retry_after(RETRY_AFTER_BUSY_S)
    } else {
        ApiError::new(
            ErrorCode::Internal,
            format!("internal error (reference {reference})"),
        )
    }
}

impl From<InternalError> for ApiError {
    fn from(e: InternalError) -> Self {
        internal(&e)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let code = match e {
            AuthError::BadSignature => ErrorCode::BadSignature,
            AuthError::Missing(_) | AuthError::Malformed { .. } => ErrorCode::Unauthenticated,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<AdmissionError> for ApiError {
    fn from(e: AdmissionError) -> Self {
        match e {
            AdmissionError::UnknownProver { .. } => {
                ApiError::new(ErrorCode::UnknownProver, e.to_string())
            }
            AdmissionError::Refused(Refusal::NotLoadedYet {
                message,
                retry_after_s,
            }) => ApiError::new(ErrorCode::Unavailable, message).retry_after(retry_after_s),
            AdmissionError::Refused(Refusal::MembershipExpired(message)) => {
                ApiError::new(ErrorCode::MembershipExpired, message)
            }
            AdmissionError::Refused(Refusal::NotAMember(message)) => {
                ApiError::new(ErrorCode::NotAMember, message)
            }
            AdmissionError::ReplayedNonce => ApiError::new(ErrorCode::ReplayedNonce, e.to_string()),
            AdmissionError::RequestRate { retry_after_ms, .. } => {
                ApiError::new(ErrorCode::RateLimited, e.to_string())
                    .retry_after(retry_after_ms.div_ceil(1000))
            }
            AdmissionError::Internal(e) => internal(&e),
        }
    }
}

impl From<HelloError> for ApiError {
    fn from(e: HelloError) -> Self {
        match e {
            HelloError::IncompatibleVersion { .. } => {
                ApiError::new(ErrorCode::IncompatibleVersion, e.to_string())
            }
        }
    }
}

impl From<LeaseError> for ApiError {
    fn from(e: LeaseError) -> Self {
        match e {
            LeaseError::RateLimited { retry_after_s, .. }
            | LeaseError::Suspended { retry_after_s, .. } => {
                ApiError::new(ErrorCode::RateLimited, e.to_string()).retry_after(retry_after_s)
            }
            LeaseError::TooManyLeases { .. } => {
                ApiError::new(ErrorCode::TooManyLeases, e.to_string()).retry_after(1)
            }
            LeaseError::Internal(e) => internal(&e),
        }
    }
}

impl From<JobRefusal> for ApiError {
    fn from(e: JobRefusal) -> Self {
        let code = match e {
            JobRefusal::UnknownJob(_) => ErrorCode::UnknownJob,
            JobRefusal::StaleLease { .. } => ErrorCode::StaleLease,
            JobRefusal::AlreadyProved(_) => ErrorCode::AlreadyProved,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<HeartbeatError> for ApiError {
    fn from(e: HeartbeatError) -> Self {
        match e {
            HeartbeatError::Job(refusal) => refusal.into(),
            HeartbeatError::Internal(e) => internal(&e),
        }
    }
}

impl From<crate::rollup::RollupError> for ApiError {
    fn from(e: crate::rollup::RollupError) -> Self {
        use crate::rollup::RollupError;
        use sheaf_rollup::MempoolError;
        match e {
            RollupError::Refused(MempoolError::CapacityExceeded { .. }) => {
                ApiError::new(ErrorCode::Overloaded, e.to_string()).retry_after(RETRY_AFTER_BUSY_S)
            }
            RollupError::Malformed(_) | RollupError::Refused(_) => {
                ApiError::new(ErrorCode::BadRequest, e.to_string())
            }
            RollupError::TooLarge { .. } => {
                ApiError::new(ErrorCode::PayloadTooLarge, e.to_string())
            }
            RollupError::Store(e) => internal(&InternalError::Store(e)),
            other => {
                let reference = format!("{:08x}", rand::random::<u32>());
                tracing::error!(target: "sheaf::rollup", reference = %reference, error = %other, "rollup failure");
                ApiError::new(
                    ErrorCode::Internal,
                    format!("internal error (reference {reference})"),
                )
            }
        }
    }
}

impl From<ClaimsError> for ApiError {
    fn from(e: ClaimsError) -> Self {
        match e {
            ClaimsError::BadWorkerKey(_) | ClaimsError::BadCursor(_) | ClaimsError::BadLimit(_) => {
                ApiError::new(ErrorCode::BadRequest, e.to_string())
            }
            ClaimsError::Internal(e) => internal(&e),
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Job(refusal) => refusal.into(),
            SubmitError::Proof(e) => proof_refusal(e),
            SubmitError::Overloaded => {
                ApiError::new(ErrorCode::Overloaded, e.to_string()).retry_after(RETRY_AFTER_BUSY_S)
            }
            SubmitError::ShuttingDown => ApiError::new(ErrorCode::Unavailable, e.to_string()),
            SubmitError::Internal(e) => internal(&e),
        }
    }
}

/// A refused proof's code, by what was wrong with it; a circuit failure that is not about the
/// proof is internal.
fn proof_refusal(e: CircuitError) -> ApiError {
    let code = match &e {
        CircuitError::Malformed(_)
        | CircuitError::TrailingBytes(_)
        | CircuitError::NonCanonical => ErrorCode::MalformedProof,
        CircuitError::Oversized { .. } => ErrorCode::PayloadTooLarge,
        CircuitError::WrongCircuit(_) => ErrorCode::WrongCircuit,
        CircuitError::HeaderMismatch {
            field: HeaderField::WorkerPk,
        } => ErrorCode::WrongWorker,
        CircuitError::HeaderMismatch { .. } | CircuitError::WhitelistMismatch => {
            ErrorCode::HeaderMismatch
        }
        CircuitError::VerificationFailed(_) => ErrorCode::InvalidProof,
        _ => return internal(&InternalError::Circuits(e)),
    };
    ApiError::new(code, e.to_string())
}
