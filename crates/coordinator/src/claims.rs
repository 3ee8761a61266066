//! Reward claims, the coordinator's side: what a prover needs to claim its reward for a job of a
//! sequence finalized on chain, served unsigned and read-only at `GET /v1/claims/{worker_pk}`.
//!
//! ```text
//!  GET /v1/claims/{worker_pk}?after={job id}&limit={n}
//!     store.claimable_rewards: the key's reward entries in settled sequences, tree order,
//!     after the cursor, limit + 1 (the extra one only says whether a next page exists)
//!     per job, climbing its parent chain to the universal root (the wrap, with
//!     --final-zk, is above it and no part of a path):
//!        its children's and each parent's children's stored proofs ──▶ headers ──▶ commitments
//!     ──▶ ClaimsPage { jobs: [ClaimableJob {job, sequence, position, units, root, path}], next }
//! ```
//!
//! The path is [`sheaf_circuits::claim::CommitmentPath`]: what the claim circuit proves climbs
//! to the sequence's root commitment, and its position is the one the sender registered
//! ([`crate::settlement::tree_plan`]). Headers are read from the stored proofs, decoded with
//! their circuits' shapes on the blocking pool, one sibling set at a time; every sibling set
//! is read once per request. The work of a request is bounded by its limit
//! ([`MAX_CLAIMS_LIMIT`]): at most that many paths of at most the tree's depth.
//!
//! The client-proved halves of local transactions have no reward entry (no prover of the
//! network made them), so they are not listed.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sheaf_api::{ErrorBody, ErrorCode};
use sheaf_circuits::claim::{CommitmentPath, PathStep, Position};
use sheaf_circuits::{Digest, Header, JobCircuit};
use sheaf_store::{Job, StoreError};
use sheaf_types::{JobId, SequenceId};

use crate::coordinator::{stored_header, Coordinator};
use crate::error::{ClaimsError, InternalError};

/// Jobs a page holds when the request names no limit.
pub const DEFAULT_CLAIMS_LIMIT: u32 = 16;

/// Most jobs a page holds: each is a path of up to the tree's depth, whose sibling proofs are
/// read and decoded, so this bounds what one unauthenticated request costs.
pub const MAX_CLAIMS_LIMIT: u32 = 64;

/// One job a worker key may claim the reward of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimableJob {
    /// The job.
    pub job: JobId,
    /// Its sequence, finalized on chain.
    pub sequence: SequenceId,
    /// Its position below the sequence's universal root, as registered on chain.
    pub position: Position,
    /// Its circuit's work units, as registered on chain.
    pub units: u64,
    /// The sequence's root commitment, which the path climbs to.
    pub root: Digest,
    /// The public data of the claim: the job's worker key and children, and the levels above.
    pub path: CommitmentPath,
}

/// One page of a worker key's claimable jobs, in tree order (sequence, level, index).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimsPage {
    /// The jobs.
    pub jobs: Vec<ClaimableJob>,
    /// The cursor of the next page (`after=`), `None` on the last page.
    pub next: Option<JobId>,
}

/// A request for claimable jobs, parsed at the edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClaimsQuery {
    /// The worker key.
    pub worker_pk: Digest,
    /// List the jobs after this one.
    pub after: Option<JobId>,
    /// At most this many, from 1 to [`MAX_CLAIMS_LIMIT`].
    pub limit: u32,
}

impl ClaimsQuery {
    /// The request for `worker_pk` (64 hex digits) with the query string `after=…&limit=…`
    /// (both optional; other parameters are ignored).
    pub fn parse(worker_pk: &str, query: Option<&str>) -> Result<ClaimsQuery, ClaimsError> {
        let worker_pk = worker_pk
            .parse()
            .map_err(|_| ClaimsError::BadWorkerKey(worker_pk.to_owned()))?;
        let mut after = None;
        let mut limit = DEFAULT_CLAIMS_LIMIT;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "after" => {
                    after = Some(
                        value
                            .parse()
                            .map_err(|_| ClaimsError::BadCursor(value.to_owned()))?,
                    )
                }
                "limit" => {
                    limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_CLAIMS_LIMIT).contains(n))
                        .ok_or_else(|| ClaimsError::BadLimit(value.to_owned()))?
                }
                _ => {}
            }
        }
        Ok(ClaimsQuery {
            worker_pk,
            after,
            limit,
        })
    }
}

/// The jobs and headers one request has read, so paths that share ancestors read them once.
#[derive(Default)]
struct Reads {
    jobs: HashMap<JobId, Job>,
    headers: HashMap<JobId, Header>,
}

impl Coordinator {
    /// The page of `query.worker_pk`'s claimable jobs: those it proved in sequences finalized
    /// on chain, after `query.after`, at most `query.limit`.
    pub async fn claimable(&self, query: ClaimsQuery) -> Result<ClaimsPage, ClaimsError> {
        let limit = query.limit.min(MAX_CLAIMS_LIMIT);
        let mut rewards = self
            .store()
            .claimable_rewards(&query.worker_pk.to_bytes(), query.after, limit + 1)
            .await?;
        let next = if rewards.len() > limit as usize {
            rewards.truncate(limit as usize);
            rewards.last().map(|r| r.job)
        } else {
            None
        };
        let mut reads = Reads::default();
        let mut jobs = Vec::with_capacity(rewards.len());
        for reward in rewards {
            jobs.push(
                self.claimable_job(&mut reads, reward.job, query.worker_pk, reward.work_units)
                    .await?,
            );
        }
        Ok(ClaimsPage { jobs, next })
    }

    /// The claim of `job`, proved by `worker_pk` for `units`: its path from the stored proofs.
    async fn claimable_job(
        &self,
        reads: &mut Reads,
        job: JobId,
        worker_pk: Digest,
        units: i64,
    ) -> Result<ClaimableJob, InternalError> {
        let children = self.child_commitments(reads, job).await?;
        let mut steps = Vec::new();
        let mut current = job;
        // Climb to the universal root: the sequence's root, or the child of its wrap.
        let top = loop {
            let Some(parent) = self.read_job(reads, current).await?.parent else {
                break current;
            };
            let parent_job = self.read_job(reads, parent).await?;
            if parent_job.circuit == JobCircuit::Wrap {
                break current;
            }
            let slot = parent_job
                .children
                .iter()
                .position(|c| *c == current)
                .ok_or_else(|| InternalError::StoredJob {
                    job: current,
                    what: "parent",
                    reason: format!("{parent} does not list it as a child"),
                })?;
            let siblings = self.child_commitments(reads, parent).await?;
            steps.push((siblings, slot, parent));
            current = parent;
        };
        let top_header = self.read_header(reads, top).await?;
        // Each parent's header was read with its own siblings, the top's just now.
        let steps = steps
            .into_iter()
            .map(|(siblings, slot, parent)| PathStep {
                siblings,
                slot,
                worker_pk: reads.headers[&parent].worker_pk,
            })
            .collect();
        let path = CommitmentPath {
            worker_pk,
            children,
            steps,
        };
        let arity = self.circuits().aggregation.settings().arity;
        Ok(ClaimableJob {
            job,
            sequence: job.sequence,
            position: path.position(arity),
            units: units as u64,
            root: top_header.commitment,
            path,
        })
    }

    /// The stored job `id`, read once per request.
    async fn read_job<'r>(
        &self,
        reads: &'r mut Reads,
        id: JobId,
    ) -> Result<&'r Job, InternalError> {
        Ok(match reads.jobs.entry(id) {
            Entry::Occupied(job) => job.into_mut(),
            Entry::Vacant(slot) => slot.insert(
                self.store()
                    .get_job(id)
                    .await?
                    .ok_or(InternalError::Store(StoreError::UnknownJob(id)))?,
            ),
        })
    }

    /// The commitments of `parent`'s children, in order, from their stored proofs (each
    /// child's header kept for the climb above it).
    async fn child_commitments(
        &self,
        reads: &mut Reads,
        parent: JobId,
    ) -> Result<Vec<Digest>, InternalError> {
        let children = self.read_job(reads, parent).await?.children.clone();
        if children.iter().any(|c| !reads.headers.contains_key(c)) {
            let proofs = self.store().child_proofs(parent).await?;
            let mut decode = Vec::with_capacity(proofs.len());
            for (child, bytes) in proofs {
                decode.push((
                    child,
                    self.read_job(reads, child).await?.circuit.clone(),
                    bytes,
                ));
            }
            for (child, header) in self.decode_headers(decode).await? {
                reads.headers.insert(child, header);
            }
        }
        Ok(children
            .iter()
            .map(|c| reads.headers[c].commitment)
            .collect())
    }

    /// The header of `id`'s own stored proof.
    async fn read_header(&self, reads: &mut Reads, id: JobId) -> Result<Header, InternalError> {
        if let Some(header) = reads.headers.get(&id) {
            return Ok(*header);
        }
        let circuit = self.read_job(reads, id).await?.circuit.clone();
        let bytes = self
            .store()
            .proof_of(id)
            .await?
            .ok_or(InternalError::Store(StoreError::NotProved(id)))?;
        let (_, header) = self
            .decode_headers(vec![(id, circuit, bytes)])
            .await?
            .pop()
            .ok_or(InternalError::Store(StoreError::NotProved(id)))?;
        reads.headers.insert(id, header);
        Ok(header)
    }

    /// Decode stored proofs' headers on the blocking pool.
    async fn decode_headers(
        &self,
        proofs: Vec<(JobId, JobCircuit, Vec<u8>)>,
    ) -> Result<Vec<(JobId, Header)>, InternalError> {
        let circuits = self.circuits_arc();
        tokio::task::spawn_blocking(move || {
            proofs
                .into_iter()
                .map(|(job, circuit, bytes)| {
                    Ok((job, stored_header(&circuits, job, &circuit, &bytes)?))
                })
                .collect()
        })
        .await
        .map_err(InternalError::DecodeTask)?
    }
}

/// Longest wait for one claims request and its answer.
pub const CLAIMS_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a call to `GET /v1/claims/{worker_pk}` failed.
#[derive(Debug, thiserror::Error)]
pub enum ClaimsClientError {
    /// The URL is not an http(s) URL.
    #[error("{0:?} is not a coordinator URL (e.g. http://127.0.0.1:7878)")]
    BadUrl(String),
    /// No answer, or no answer in time.
    #[error("cannot reach the coordinator: {0}")]
    Unreachable(#[source] reqwest::Error),
    /// The coordinator refused the request, with its code and reason.
    #[error("the coordinator refused: {message} ({code})")]
    Refused {
        /// The API's error code.
        code: ErrorCode,
        /// The coordinator's reason.
        message: String,
    },
    /// The answer is not a page of claimable jobs.
    #[error("unexpected answer (HTTP {status}): {reason}")]
    BadAnswer {
        /// Its HTTP status.
        status: u16,
        /// Why it does not parse.
        reason: String,
    },
}

/// A client of one coordinator's claims endpoint.
#[derive(Clone, Debug)]
pub struct ClaimsClient {
    base: reqwest::Url,
    http: reqwest::Client,
}

impl ClaimsClient {
    /// A client of the coordinator at `url` (`http://host:port`).
    pub fn new(url: &str) -> Result<ClaimsClient, ClaimsClientError> {
        let base = reqwest::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| ClaimsClientError::BadUrl(url.to_owned()))?;
        let http = reqwest::Client::builder()
            .timeout(CLAIMS_REQUEST_TIMEOUT)
            .build()
            .map_err(ClaimsClientError::Unreachable)?;
        Ok(ClaimsClient { base, http })
    }

    /// `GET /v1/circuits`: the circuits the network's proofs, claims included, are made with.
    pub async fn circuits(&self) -> Result<sheaf_api::CircuitSpec, ClaimsClientError> {
        let url = self
            .base
            .join(crate::api::PATH_CIRCUITS)
            .map_err(|_| ClaimsClientError::BadUrl(self.base.to_string()))?;
        self.get_json(url).await
    }

    /// `GET /v1/claims/{worker_pk}?after=…&limit=…`: one page of `worker_pk`'s claimable jobs,
    /// after the job `after` (from the first when `None`), at most `limit` (the coordinator's
    /// [`DEFAULT_CLAIMS_LIMIT`] when `None`).
    pub async fn claimable(
        &self,
        worker_pk: Digest,
        after: Option<JobId>,
        limit: Option<u32>,
    ) -> Result<ClaimsPage, ClaimsClientError> {
        let mut url = self
            .base
            .join(&format!("/v1/claims/{worker_pk}"))
            .map_err(|_| ClaimsClientError::BadUrl(self.base.to_string()))?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(after) = after {
                query.append_pair("after", &after.to_string());
            }
            if let Some(limit) = limit {
                query.append_pair("limit", &limit.to_string());
            }
        }
        self.get_json(url).await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: reqwest::Url,
    ) -> Result<T, ClaimsClientError> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(ClaimsClientError::Unreachable)?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(ClaimsClientError::Unreachable)?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| ClaimsClientError::BadAnswer {
                status: status.as_u16(),
                reason: e.to_string(),
            });
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Err(ClaimsClientError::Refused {
                code: body.error.code,
                message: body.error.message,
            }),
            Err(e) => Err(ClaimsClientError::BadAnswer {
                status: status.as_u16(),
                reason: e.to_string(),
            }),
        }
    }
}
