//! The one error every API failure answers with.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sheaf_api::{AuthError, ErrorBody, ErrorCode, ErrorDetail};
use sheaf_circuits::CircuitError;
use sheaf_store::StoreError;
use sqlx::Error as SqlxError;

/// Result alias of the coordinator.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

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

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let code = match &e {
            StoreError::UnknownJob(_) => ErrorCode::UnknownJob,
            StoreError::InvalidJobId(_) => ErrorCode::BadRequest,
            StoreError::StaleLease { .. } => ErrorCode::StaleLease,
            StoreError::AlreadyProved(_) => ErrorCode::AlreadyProved,
            StoreError::UnknownProver(_) => ErrorCode::UnknownProver,
            StoreError::Database(sqlx_error) if is_unavailable(sqlx_error) => {
                return ApiError::new(ErrorCode::Unavailable, e.to_string()).retry_after(1)
            }
            _ => ErrorCode::Internal,
        };
        if code == ErrorCode::Internal {
            tracing::error!(target: "sheaf::coordinator", error = %e, "store failure");
        }
        ApiError::new(code, e.to_string())
    }
}

fn is_unavailable(e: &SqlxError) -> bool {
    matches!(
        e,
        SqlxError::PoolTimedOut | SqlxError::PoolClosed | SqlxError::Io(_) | SqlxError::Tls(_)
    )
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

/// Maps a rejection of a submitted proof to its code.
pub fn proof_rejection(e: CircuitError) -> ApiError {
    let code = match &e {
        CircuitError::Malformed(_)
        | CircuitError::TrailingBytes(_)
        | CircuitError::NonCanonical => ErrorCode::MalformedProof,
        CircuitError::Oversized { .. } => ErrorCode::PayloadTooLarge,
        CircuitError::WrongCircuit(_) => ErrorCode::WrongCircuit,
        CircuitError::HeaderMismatch {
            field: sheaf_circuits::HeaderField::WorkerPk,
        } => ErrorCode::WrongWorker,
        CircuitError::HeaderMismatch { .. } | CircuitError::WhitelistMismatch => {
            ErrorCode::HeaderMismatch
        }
        CircuitError::VerificationFailed(_) => ErrorCode::InvalidProof,
        _ => ErrorCode::Internal,
    };
    ApiError::new(code, e.to_string())
}
