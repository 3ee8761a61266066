//! Request signing as the coordinator checks it: the four signature headers, the signature over
//! method, path and body, and the timestamp's distance from the coordinator's clock.

use ed25519_dalek::SigningKey;
use sheaf_api::auth::{HEADER_KEY, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use sheaf_api::{SignedHeaders, MAX_CLOCK_SKEW_MS};

/// The coordinator's largest request body (its default `max_body_bytes`).
const MAX_BODY_BYTES: usize = sheaf_coordinator::config::DEFAULT_MAX_BODY_BYTES;

/// The coordinator's clock in [`signed_request`]: a realistic "now", in ms.
const NOW_MS: i64 = 1_764_547_200_000;

/// The request a [`signed_request`] input describes: lines `key`, `timestamp`, `nonce`,
/// `signature` (the header values), `method`, `path?query`, then the body (the rest).
struct RawRequest<'a> {
    headers: [Option<&'a str>; 4],
    method: &'a str,
    path: &'a str,
    body: &'a [u8],
}

const HEADERS: [&str; 4] = [HEADER_KEY, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE];

fn split(data: &[u8]) -> Option<RawRequest<'_>> {
    let mut lines = data.splitn(7, |b| *b == b'\n');
    // A header value that is not text is absent to the coordinator (`to_str().ok()`).
    let mut text = || lines.next().map(|l| std::str::from_utf8(l).ok());
    let headers = [text()?, text()?, text()?, text()?];
    let method = text()??;
    let path = text()??;
    let body = lines.next().unwrap_or_default();
    Some(RawRequest {
        headers,
        method,
        path,
        body,
    })
}

/// A [`signed_request`] input for `headers` over `method`, `path` and `body`.
pub fn request_input(headers: &SignedHeaders, method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    for (_, value) in headers.to_pairs() {
        data.extend_from_slice(value.as_bytes());
        data.push(b'\n');
    }
    data.extend_from_slice(format!("{method}\n{path}\n").as_bytes());
    data.extend_from_slice(body);
    data
}

/// Signed hello, lease and proof submissions.
pub fn request_seeds() -> Vec<Vec<u8>> {
    let key = SigningKey::from_bytes(&[7; 32]);
    let requests: [(&str, &[u8]); 3] = [
        (
            "/v1/hello",
            br#"{"api_version":1,"software":"sheaf 0.1.0"}"#,
        ),
        ("/v1/lease", br#"{"wait_ms":1000}"#),
        (
            "/v1/jobs/s1-l0-i3/proof?token=2&prove_ms=10",
            &[0, 1, 2, 255],
        ),
    ];
    requests
        .iter()
        .map(|(path, body)| {
            let signed = SignedHeaders::sign(&key, "POST", path, body, NOW_MS);
            request_input(&signed, "POST", path, body)
        })
        .collect()
}

/// `SignedHeaders::parse`, then `verify` over the method, path and body, then the skew check:
/// nothing panics, and parsed headers print as headers that parse to the same.
pub fn signed_request(data: &[u8]) {
    let Some(request) = split(data) else {
        return;
    };
    if request.body.len() > MAX_BODY_BYTES {
        return;
    }
    let Ok(signed) = SignedHeaders::parse(|name| {
        let at = HEADERS.iter().position(|h| *h == name)?;
        request.headers[at]
    }) else {
        return;
    };
    let pairs = signed.to_pairs();
    let reparsed = SignedHeaders::parse(|name| {
        pairs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    });
    assert_eq!(reparsed.as_ref(), Ok(&signed), "headers round-trip");
    let verified = signed.verify(request.method, request.path, request.body);
    let _ = within_skew(signed.timestamp_ms, NOW_MS);
    if verified.is_ok() {
        // The signature covers the method case-insensitively and nothing else loosely.
        assert!(signed
            .verify(
                &request.method.to_ascii_lowercase(),
                request.path,
                request.body
            )
            .is_ok());
    }
}

/// Whether a request signed at `timestamp_ms` is within [`MAX_CLOCK_SKEW_MS`] of `now_ms`.
///
/// A copy of the coordinator's check (`crates/coordinator/src/api/mod.rs`), written without
/// overflow; the coordinator's `(timestamp_ms - now).abs()` overflows for a timestamp near
/// `i64::MIN` (found by this target: `regressions/clock_skew/`).
pub fn within_skew(timestamp_ms: i64, now_ms: i64) -> bool {
    timestamp_ms.abs_diff(now_ms) <= MAX_CLOCK_SKEW_MS.unsigned_abs()
}

/// An input of [`clock_skew`]: the timestamp, then the clock, little-endian.
pub fn skew_input(timestamp_ms: i64, now_ms: i64) -> Vec<u8> {
    [timestamp_ms.to_le_bytes(), now_ms.to_le_bytes()].concat()
}

/// Timestamps at, inside and just outside the window.
pub fn skew_seeds() -> Vec<Vec<u8>> {
    [0, 1, MAX_CLOCK_SKEW_MS, MAX_CLOCK_SKEW_MS + 1]
        .iter()
        .flat_map(|d| {
            [
                skew_input(NOW_MS + d, NOW_MS),
                skew_input(NOW_MS - d, NOW_MS),
            ]
        })
        .collect()
}

/// The skew check on any timestamp and clock (16 bytes, [`skew_input`]): it never panics and
/// agrees with the exact distance.
pub fn clock_skew(data: &[u8]) {
    let Some((ts, now)) = data.split_first_chunk::<8>().and_then(|(ts, rest)| {
        let now = rest.first_chunk::<8>()?;
        Some((i64::from_le_bytes(*ts), i64::from_le_bytes(*now)))
    }) else {
        return;
    };
    let exact = (i128::from(ts) - i128::from(now)).abs() <= i128::from(MAX_CLOCK_SKEW_MS);
    assert_eq!(within_skew(ts, now), exact, "skew of {ts} at {now}");
}
