//! The rollup node's HTTP API, from the client's side: one method per endpoint, every answer
//! parsed into its type or a typed [`ClientError`].

use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sheaf_api::{ErrorBody, ErrorCode};
use sheaf_coordinator::rollup::{BlockView, LocalTransaction};
use sheaf_rollup::{Genesis, Transaction, TxId};

/// Longest wait for a TCP connection to the coordinator.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest wait for one request and its answer: every rollup endpoint answers from memory or
/// one store read.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of an unparseable answer is quoted in an error.
const EXCERPT_CHARS: usize = 200;

/// Why a call to the rollup node failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not an http(s) URL.
    #[error("{url:?} is not a coordinator URL (e.g. http://127.0.0.1:7878)")]
    BadUrl {
        /// The text given.
        url: String,
    },
    /// No answer: nothing listens there, or it did not answer in time.
    #[error("cannot reach the coordinator at {url}: {source}")]
    Unreachable {
        /// The coordinator's URL.
        url: String,
        /// What the connection did.
        #[source]
        source: reqwest::Error,
    },
    /// The coordinator answers but runs no rollup node.
    #[error("the coordinator at {url} runs no rollup: {message}")]
    NoRollup {
        /// The coordinator's URL.
        url: String,
        /// The coordinator's words.
        message: String,
    },
    /// The coordinator refused the request, with its code and reason.
    #[error("the coordinator refused: {message} ({code})")]
    Refused {
        /// The API's error code.
        code: ErrorCode,
        /// The coordinator's reason.
        message: String,
    },
    /// The answer is not what the endpoint answers.
    #[error("unexpected answer from {url} (HTTP {status}): {excerpt}")]
    BadAnswer {
        /// The endpoint.
        url: String,
        /// Its HTTP status.
        status: u16,
        /// The start of the answer, or why it did not parse.
        excerpt: String,
    },
}

/// `GET /v1/rollup/status`, as this client reads it. `settled_tip` is absent from a node that
/// does not settle blocks (it then reads as `None`, as before any block settles).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollupStatusView {
    /// The highest published block.
    pub published_tip: Option<i64>,
    /// The highest block such that it and every block before it are proved.
    pub proven_tip: Option<i64>,
    /// The highest block settled on the base chain, when the node reports one.
    #[serde(default)]
    pub settled_tip: Option<i64>,
    /// Transactions waiting for a block.
    pub pending: usize,
}

/// What `POST /v1/rollup/transactions` answers.
#[derive(Deserialize)]
struct Submitted {
    id: TxId,
}

/// A client of one coordinator's rollup API.
#[derive(Clone, Debug)]
pub struct RollupClient {
    base: Url,
    http: reqwest::Client,
}

impl RollupClient {
    /// A client of the coordinator at `url` (`http://host:port`).
    pub fn new(url: &str) -> Result<RollupClient, ClientError> {
        let bad = || ClientError::BadUrl {
            url: url.to_owned(),
        };
        let base = Url::parse(url).map_err(|_| bad())?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(bad());
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|source| ClientError::Unreachable {
                url: url.to_owned(),
                source,
            })?;
        Ok(RollupClient { base, http })
    }

    /// The coordinator's URL.
    pub fn url(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// `GET /v1/rollup/status`.
    pub async fn status(&self) -> Result<RollupStatusView, ClientError> {
        self.get("/v1/rollup/status").await
    }

    /// `GET /v1/rollup/genesis`: the genesis the node started from.
    pub async fn genesis(&self) -> Result<Genesis, ClientError> {
        self.get("/v1/rollup/genesis").await
    }

    /// `GET /v1/rollup/blocks/{number}`: a published block.
    pub async fn block(&self, number: i64) -> Result<BlockView, ClientError> {
        self.get(&format!("/v1/rollup/blocks/{number}")).await
    }

    /// `POST /v1/rollup/transactions/local`: hand a local transaction (with the proof of its
    /// signed half) to the node, which verifies the proof before its mempool sees it.
    pub async fn submit_local(&self, local: &LocalTransaction) -> Result<TxId, ClientError> {
        self.post_transaction("/v1/rollup/transactions/local", local)
            .await
    }

    /// `POST /v1/rollup/transactions`: hand a signed transaction to the node's mempool.
    pub async fn submit(&self, tx: &Transaction) -> Result<TxId, ClientError> {
        self.post_transaction("/v1/rollup/transactions", tx).await
    }

    /// POST `body` as JSON to `path`; the node answers the transaction's id.
    async fn post_transaction<B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<TxId, ClientError> {
        let url = self.endpoint(path)?;
        let response = self
            .http
            .post(url.clone())
            .json(body)
            .send()
            .await
            .map_err(|source| self.unreachable(source))?;
        let submitted: Submitted = self.read(url, response).await?;
        Ok(submitted.id)
    }

    fn endpoint(&self, path: &str) -> Result<Url, ClientError> {
        self.base.join(path).map_err(|_| ClientError::BadUrl {
            url: self.base.to_string(),
        })
    }

    fn unreachable(&self, source: reqwest::Error) -> ClientError {
        ClientError::Unreachable {
            url: self.url().to_owned(),
            source,
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = self.endpoint(path)?;
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|source| self.unreachable(source))?;
        self.read(url, response).await
    }

    /// The answer as `T`, or the API's error as a [`ClientError`].
    async fn read<T: DeserializeOwned>(
        &self,
        url: Url,
        response: reqwest::Response,
    ) -> Result<T, ClientError> {
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|source| self.unreachable(source))?;
        let bad = |excerpt: String| ClientError::BadAnswer {
            url: url.to_string(),
            status: status.as_u16(),
            excerpt,
        };
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()));
        }
        let Ok(ErrorBody { error }) = serde_json::from_slice::<ErrorBody>(&bytes) else {
            let text = String::from_utf8_lossy(&bytes);
            return Err(bad(text.chars().take(EXCERPT_CHARS).collect()));
        };
        // Every rollup endpoint but a block's answers not_found only when there is no rollup.
        let no_rollup = status == StatusCode::NOT_FOUND && !url.path().contains("/blocks/");
        if no_rollup {
            return Err(ClientError::NoRollup {
                url: self.url().to_owned(),
                message: error.message,
            });
        }
        Err(ClientError::Refused {
            code: error.code,
            message: error.message,
        })
    }
}
