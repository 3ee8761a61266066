//! The one error every API failure answers with, and the one place the service's typed errors
//! become the API's codes.
//!
//! A refusal keeps its code and message. An [`InternalError`] is logged in full (with its
//! sources) under a fresh reference, and the prover is told only the reference: the log line
//! holds the text, the answer never does.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sheaf_api::{AuthError, ErrorBody, ErrorCode, ErrorDetail};
use sheaf_circuits::{CircuitError, HeaderField};

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
}

impl ApiError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            retry_after_s: None,
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
        if let Some(seconds) = self.retry_after_s {
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
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
