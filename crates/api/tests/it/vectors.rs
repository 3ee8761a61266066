//! The test vectors of `docs/CLIENT.md`, read from the document itself: Sheaf's signer must
//! produce exactly the published headers and signed message, its verifier must accept them,
//! and a one-byte change to any signed field must be refused.

use ed25519_dalek::SigningKey;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use sheaf_api::auth::{
    signing_message, HEADER_KEY, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP,
};
use sheaf_api::{AuthError, SignedHeaders};
use std::collections::BTreeMap;

/// The marker line before the JSON block of vectors in `docs/CLIENT.md`.
const MARKER: &str = "<!-- test-vectors:";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Vectors {
    secret_key: String,
    public_key: String,
    requests: Vec<Vector>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Vector {
    method: String,
    path: String,
    body: Option<String>,
    body_hex: Option<String>,
    timestamp_ms: i64,
    nonce: String,
    body_sha256: String,
    message: String,
    headers: BTreeMap<String, String>,
}

impl Vector {
    fn body(&self) -> Vec<u8> {
        match (&self.body, &self.body_hex) {
            (Some(text), None) => text.as_bytes().to_vec(),
            (None, Some(hex)) => hex::decode(hex).expect("body_hex is hex"),
            _ => panic!("{}: exactly one of body and body_hex", self.path),
        }
    }

    fn nonce(&self) -> [u8; 16] {
        let mut nonce = [0u8; 16];
        hex::decode_to_slice(&self.nonce, &mut nonce).expect("a 16-byte hex nonce");
        nonce
    }
}

/// The vectors as `docs/CLIENT.md` publishes them: the fenced JSON block after [`MARKER`].
fn published() -> Vectors {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/CLIENT.md");
    let text = std::fs::read_to_string(path).expect("docs/CLIENT.md");
    let after = &text[text.find(MARKER).expect("the test-vectors marker")..];
    let start = after
        .find("```json\n")
        .expect("a json block after the marker")
        + "```json\n".len();
    let block = &after[start..];
    let end = block.find("\n```").expect("the block's end");
    serde_json::from_str(&block[..end]).expect("the vectors parse")
}

fn key(vectors: &Vectors) -> SigningKey {
    let mut secret = [0u8; 32];
    hex::decode_to_slice(&vectors.secret_key, &mut secret).expect("a 32-byte hex secret");
    SigningKey::from_bytes(&secret)
}

fn parse(headers: &BTreeMap<String, String>) -> Result<SignedHeaders, AuthError> {
    SignedHeaders::parse(|name| headers.get(name).map(String::as_str))
}

#[test]
fn published_vectors_are_what_sheafs_signer_produces() {
    let vectors = published();
    let key = key(&vectors);
    assert_eq!(
        hex::encode(key.verifying_key().as_bytes()),
        vectors.public_key
    );
    assert!(vectors.requests.len() >= 3, "a vector per kind of request");
    for v in &vectors.requests {
        let body = v.body();
        assert_eq!(
            hex::encode(Sha256::digest(&body)),
            v.body_sha256,
            "{}",
            v.path
        );
        let message = signing_message(&v.method, &v.path, &body, v.timestamp_ms, &v.nonce());
        assert_eq!(String::from_utf8(message).unwrap(), v.message, "{}", v.path);
        let signed = SignedHeaders::sign_with_nonce(
            &key,
            &v.method,
            &v.path,
            &body,
            v.timestamp_ms,
            v.nonce(),
        );
        let produced: BTreeMap<String, String> = signed
            .to_pairs()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        assert_eq!(produced, v.headers, "{}: the published headers", v.path);
        assert_eq!(produced.keys().map(String::as_str).collect::<Vec<_>>(), {
            let mut names = vec![HEADER_KEY, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP];
            names.sort();
            names
        },);
    }
}

#[test]
fn published_vectors_verify() {
    for v in &published().requests {
        let signed = parse(&v.headers).expect("the published headers parse");
        assert_eq!(signed.timestamp_ms, v.timestamp_ms);
        signed
            .verify(&v.method, &v.path, &v.body())
            .unwrap_or_else(|e| panic!("{}: {e}", v.path));
    }
}

#[test]
fn published_vectors_with_one_byte_changed_are_refused() {
    for v in &published().requests {
        let body = v.body();
        let signed = parse(&v.headers).unwrap();
        let bad = Err(AuthError::BadSignature);

        let mut other_body = body.clone();
        other_body[0] ^= 1;
        assert_eq!(
            signed.verify(&v.method, &v.path, &other_body),
            bad,
            "{}: body",
            v.path
        );
        let mut longer_body = body.clone();
        longer_body.push(b'\n');
        assert_eq!(
            signed.verify(&v.method, &v.path, &longer_body),
            bad,
            "{}: body",
            v.path
        );

        let other_path = v.path.replacen('v', "V", 1);
        assert_eq!(
            signed.verify(&v.method, &other_path, &body),
            bad,
            "{}: path",
            v.path
        );
        assert_eq!(
            signed.verify("PUT", &v.path, &body),
            bad,
            "{}: method",
            v.path
        );

        let mut headers = v.headers.clone();
        headers.insert(HEADER_TIMESTAMP.into(), (v.timestamp_ms + 1).to_string());
        assert_eq!(
            parse(&headers).unwrap().verify(&v.method, &v.path, &body),
            bad,
            "{}: timestamp",
            v.path
        );

        let mut nonce = v.nonce();
        nonce[15] ^= 1;
        let mut headers = v.headers.clone();
        headers.insert(HEADER_NONCE.into(), hex::encode(nonce));
        assert_eq!(
            parse(&headers).unwrap().verify(&v.method, &v.path, &body),
            bad,
            "{}: nonce",
            v.path
        );

        let mut signature = hex::decode(&v.headers[HEADER_SIGNATURE]).unwrap();
        signature[0] ^= 1;
        let mut headers = v.headers.clone();
        headers.insert(HEADER_SIGNATURE.into(), hex::encode(signature));
        assert_eq!(
            parse(&headers).unwrap().verify(&v.method, &v.path, &body),
            bad,
            "{}: signature",
            v.path
        );
    }
}
