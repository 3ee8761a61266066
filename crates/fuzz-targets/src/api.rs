//! The prover API's bodies, both ways (what the coordinator reads from provers and what a
//! prover reads from the coordinator), and the claims query.

use serde::de::DeserializeOwned;
use serde::Serialize;
use sheaf_api::{
    CircuitSpec, ErrorBody, HeartbeatRequest, HeartbeatResponse, HelloRequest, HelloResponse,
    JobAssignment, JobId, LeaseRequest, StatusResponse, SubmitResponse,
};
use sheaf_coordinator::claims::{ClaimsPage, ClaimsQuery};
use sheaf_coordinator::config::DEFAULT_MAX_BODY_BYTES;

/// Decode `data` as a `T` body; what decodes re-encodes to JSON that decodes to the same.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(body) = serde_json::from_slice::<T>(data) {
        let json = serde_json::to_vec(&body).expect("a decoded body encodes");
        let again: T = serde_json::from_slice(&json).expect("an encoded body decodes");
        assert_eq!(again, body, "{}", String::from_utf8_lossy(&json));
    }
}

/// Every body the API carries, decoded from the same bytes: nothing panics, and each body that
/// decodes round-trips. Bodies above the coordinator's limit are refused before decoding.
pub fn api_bodies(data: &[u8]) {
    if data.len() > DEFAULT_MAX_BODY_BYTES {
        return;
    }
    round_trip::<HelloRequest>(data);
    round_trip::<LeaseRequest>(data);
    round_trip::<HeartbeatRequest>(data);
    round_trip::<HelloResponse>(data);
    round_trip::<CircuitSpec>(data);
    round_trip::<HeartbeatResponse>(data);
    round_trip::<SubmitResponse>(data);
    round_trip::<StatusResponse>(data);
    round_trip::<ErrorBody>(data);
    round_trip::<ClaimsPage>(data);
    // A job's inputs may hold any JSON, floats too, which serde_json does not promise to read
    // back bit for bit: the assignment must re-decode, its ids and proofs unchanged.
    if let Ok(assignment) = serde_json::from_slice::<JobAssignment>(data) {
        let json = serde_json::to_vec(&assignment).expect("an assignment encodes");
        let again: JobAssignment = serde_json::from_slice(&json).expect("an assignment decodes");
        assert_eq!(again.job, assignment.job);
        assert_eq!(again.circuit, assignment.circuit);
        assert_eq!(again.children, assignment.children);
    }
}

/// One body of each request and of the answers a prover reads.
pub fn body_seeds() -> Vec<Vec<u8>> {
    [
        r#"{"api_version":1,"software":"sheaf 0.1.0"}"#,
        r#"{"wait_ms":30000}"#,
        r#"{"token":7}"#,
        r#"{"expires_ms":1764547200000}"#,
        r#"{"job":"s1-l1-i0","token":3,"attempt":2,"expires_ms":99,"circuit":"node:work","inputs":{"kind":"aggregate"},"children":[{"job":"s1-l0-i0","circuit":"leaf:work","proof":"AP8H"}]}"#,
        r#"{"job":"s2-l0-i1","token":1,"attempt":1,"expires_ms":5,"circuit":"leaf:tx","inputs":{"kind":"tx","n":1.5e300,"x":[null,true,"s"]},"children":[]}"#,
        r#"{"proof_hash":"00ff","parent_ready":"s1-l1-i0","sequence_proved":false}"#,
        r#"{"sequences":[{"id":1,"leaves":4,"root_job":"s1-l2-i0","proved":true}],"jobs":[{"status":"ready","level":0,"count":3}]}"#,
        r#"{"error":{"code":"stale_lease","message":"lease 3 of s1-l0-i0 is not current"}}"#,
        r#"{"api_version":1,"prover":"p1","circuits":{"profile":"standard","arity":2,"final_zk":false,"leaf_rows_log2":6,"kinds":[{"name":"work","key":"00"}],"kernels":["tx"],"final_key_id":"ab","whitelist_root":"cd"},"lease_ttl_ms":30000,"heartbeat_interval_ms":10000,"max_lease_wait_ms":30000,"limits":{"rate_limit":100,"epoch_ms":60000,"max_concurrent":4}}"#,
        r#"{"jobs":[],"next":"s3-l0-i7"}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

/// `GET /v1/claims/{worker_pk}?{query}` as the coordinator parses it, from `worker_pk`, a `?`,
/// then the query; and the path's text as a job id (`/v1/jobs/{id}/…`). Nothing panics, and
/// a parsed cursor or job id prints as the text it parses from.
pub fn claims_query(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (path, query) = match text.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (text, None),
    };
    if let Ok(parsed) = ClaimsQuery::parse(path, query) {
        if let Some(after) = parsed.after {
            assert_eq!(after.to_string().parse::<JobId>(), Ok(after));
        }
        assert!(parsed.limit >= 1);
    }
    if let Ok(job) = path.parse::<JobId>() {
        assert_eq!(job.to_string().parse::<JobId>(), Ok(job));
    }
}

/// Claims queries with and without a cursor and a limit, and a job id.
pub fn query_seeds() -> Vec<Vec<u8>> {
    let key = "0100000000000000110000000000000000000000000000000000000000000000";
    [
        key.to_owned(),
        format!("{key}?after=s1-l0-i3&limit=64"),
        format!("{key}?limit=1&other=x"),
        "s12-l3-i456".to_owned(),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect()
}
