//! What the serving loop itself refuses, answered in the server's own error shape.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

/// A request (or connection) refused by the serving loop before the service saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Every connection slot is taken, or every one of the client's address (503).
    Overloaded,
    /// The request target is longer than [`crate::MAX_URI_BYTES`] (414).
    UriTooLong,
    /// The request headers are larger than [`crate::MAX_HEADER_BYTES`] (431).
    HeadersTooLarge,
    /// The request head is not HTTP/1.1 that parses: a request line or a header line that is
    /// not one, or a Content-Length that is not a number (400). hyper refuses it before any
    /// service sees it, and the connection is closed.
    Malformed,
}

impl Refusal {
    /// The HTTP status this refusal answers with.
    pub fn status(self) -> StatusCode {
        match self {
            Refusal::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::UriTooLong => StatusCode::URI_TOO_LONG,
            Refusal::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Refusal::Malformed => StatusCode::BAD_REQUEST,
        }
    }

    /// What went wrong, for people.
    pub fn message(self) -> String {
        match self {
            Refusal::Overloaded => {
                "the server is at its connection limit (overall or for this address); retry later"
                    .into()
            }
            Refusal::UriTooLong => format!(
                "the request target is longer than {} bytes",
                crate::MAX_URI_BYTES
            ),
            Refusal::HeadersTooLarge => format!(
                "the request headers are larger than {} bytes",
                crate::MAX_HEADER_BYTES
            ),
            Refusal::Malformed => {
                "the request is not HTTP/1.1 that parses: its request line or a header \
                 line is malformed, or its Content-Length is not a number"
                    .into()
            }
        }
    }
}

/// How a server words a refusal: a JSON body of its own error shape (the status is the
/// refusal's). `Content-Type` is set to JSON.
pub type Shape = Arc<dyn Fn(Refusal) -> String + Send + Sync>;

/// The response for `refusal` in `shape`.
pub fn respond(shape: &Shape, refusal: Refusal) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(shape(refusal))));
    *response.status_mut() = refusal.status();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if refusal == Refusal::Overloaded {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// The same response as raw HTTP/1.1 bytes, for a connection refused outside hyper's serving
/// (then closed).
pub fn raw(shape: &Shape, refusal: Refusal) -> Vec<u8> {
    let body = shape(refusal);
    let status = refusal.status();
    let retry_after = if refusal == Refusal::Overloaded {
        "retry-after: 1\r\n"
    } else {
        ""
    };
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{retry_after}connection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes()
}
