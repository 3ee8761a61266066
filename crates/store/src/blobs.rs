//! Proof blobs in an object store, addressed by their hash, referenced from the rows.
//!
//! ```text
//!  submit_proof(bytes) ──▶ put proofs/<hash>  (whole or nothing: a local file is written aside,
//!        │                 fsynced and renamed into place; an S3 PUT is atomic)
//!        ▼
//!  write transaction: proofs row (hash, size, stored = 'object') + the job proved
//!        │   a put that failed leaves no row; a row never names an object not wholly written
//!        ▼
//!  reads (child proofs for a lease, a job's proof, claims) get proofs/<hash>
//!  collect_proofs: sequences settled longer ago than the claims window → objects deleted,
//!  rows 'collected'; objects no row names (a put whose transaction failed) swept after a grace
//! ```
//!
//! Where: a local directory by default (`--proof-store /path`, or `file:///path`), or any
//! S3-compatible service (`s3://bucket/prefix`, configured by the usual `AWS_*` environment
//! variables: `AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//! `AWS_ALLOW_HTTP` for a plain-HTTP endpoint), which several coordinators on one PostgreSQL
//! database share.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, PutPayload, RetryConfig};

use crate::error::{Result, StoreError};

/// The folder of the object store the blobs live under, each at `proofs/<hash>`.
const PROOFS: &str = "proofs";

/// How an S3 request that failed (connection refused or reset, 5xx) is retried: a few times,
/// within seconds. A submission waits for its blob, so a service that is gone must fail it
/// soon (the prover retries later), not hold it for object_store's default three minutes.
const S3_RETRY: RetryConfig = RetryConfig {
    backoff: BackoffConfig {
        init_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(2),
        base: 2.0,
    },
    max_retries: 3,
    retry_timeout: Duration::from_secs(10),
};

/// Longest wait for a connection to the S3 service.
const S3_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest an S3 request may take, a proof's upload included.
const S3_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// An object store holding proof blobs by hash.
#[derive(Clone)]
pub struct ProofBlobs {
    objects: Arc<dyn ObjectStore>,
    /// The directory of a local store, whose files are fsynced after each put (object_store's
    /// local store renames a written file into place but does not flush it).
    local: Option<Arc<LocalFileSystem>>,
    /// Where, for people (no credentials).
    location: String,
}

impl std::fmt::Debug for ProofBlobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProofBlobs")
            .field("location", &self.location)
            .finish()
    }
}

/// One stored object: its hash and when it was written (milliseconds since the Unix epoch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBlob {
    /// The blob's hash, its name.
    pub hash: String,
    /// When it was last written.
    pub written_ms: i64,
}

impl ProofBlobs {
    /// The object store at `location`: `s3://bucket[/prefix]` (configured from the `AWS_*`
    /// environment), `file:///dir`, or a directory path (created if missing).
    pub fn open(location: &str) -> Result<Self> {
        Self::open_with(location, &[])
    }

    /// As [`ProofBlobs::open`], with S3 settings (`aws_endpoint`, `aws_access_key_id`,
    /// `aws_allow_http`, … as object_store's `AmazonS3ConfigKey` names them) over the
    /// environment's.
    pub fn open_with(location: &str, s3_settings: &[(&str, &str)]) -> Result<Self> {
        if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(StoreError::InvalidArgument(format!(
                    "proof store {location:?} names no bucket: expected s3://bucket[/prefix]"
                )));
            }
            let mut builder = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_retry(S3_RETRY)
                .with_client_options(
                    ClientOptions::new()
                        .with_connect_timeout(S3_CONNECT_TIMEOUT)
                        .with_timeout(S3_REQUEST_TIMEOUT),
                );
            for (key, value) in s3_settings {
                let key: AmazonS3ConfigKey = key
                    .parse()
                    .map_err(|e| blob_error("configuring the S3 proof store", e))?;
                builder = builder.with_config(key, *value);
            }
            let s3 = builder
                .build()
                .map_err(|e| blob_error("configuring the S3 proof store", e))?;
            let objects: Arc<dyn ObjectStore> = if prefix.trim_matches('/').is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(object_store::prefix::PrefixStore::new(
                    s3,
                    prefix.trim_matches('/'),
                ))
            };
            return Ok(ProofBlobs {
                objects,
                local: None,
                location: location.to_owned(),
            });
        }
        if location.contains("://") && !location.starts_with("file://") {
            return Err(StoreError::InvalidArgument(format!(
                "unsupported proof store {location:?}: expected a directory, file:///dir or \
                 s3://bucket[/prefix]"
            )));
        }
        let dir = PathBuf::from(location.strip_prefix("file://").unwrap_or(location));
        std::fs::create_dir_all(dir.join(PROOFS))?;
        let local = Arc::new(
            LocalFileSystem::new_with_prefix(&dir)
                .map_err(|e| blob_error("opening the proof directory", e))?,
        );
        Ok(ProofBlobs {
            objects: local.clone(),
            local: Some(local),
            location: dir.display().to_string(),
        })
    }

    /// Where the blobs are, for people.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Writes `bytes` as the blob `hash`, whole or not at all; on a local directory it is on
    /// disk (the file and the folder entry its rename made) when this returns.
    pub(crate) async fn put(&self, hash: &str, bytes: &[u8]) -> Result<()> {
        let path = blob_path(hash);
        self.objects
            .put(&path, PutPayload::from(Bytes::copy_from_slice(bytes)))
            .await
            .map_err(|e| blob_error("writing a proof blob", e))?;
        if let Some(local) = &self.local {
            let file = local
                .path_to_filesystem(&path)
                .map_err(|e| blob_error("locating a proof blob", e))?;
            tokio::task::spawn_blocking(move || sync_file_and_folder(&file))
                .await
                .map_err(|e| StoreError::Io(std::io::Error::other(e)))??;
        }
        Ok(())
    }

    /// The blob `hash`.
    pub(crate) async fn get(&self, hash: &str) -> Result<Vec<u8>> {
        let got = self
            .objects
            .get(&blob_path(hash))
            .await
            .map_err(|e| blob_error("reading a proof blob", e))?;
        let bytes = got
            .bytes()
            .await
            .map_err(|e| blob_error("reading a proof blob", e))?;
        Ok(bytes.to_vec())
    }

    /// Deletes the blob `hash`; one already gone is no error.
    pub(crate) async fn delete(&self, hash: &str) -> Result<()> {
        match self.objects.delete(&blob_path(hash)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(blob_error("deleting a proof blob", e)),
        }
    }

    /// Every blob stored, with when it was written.
    pub async fn list(&self) -> Result<Vec<StoredBlob>> {
        let prefix = Path::from(PROOFS);
        let objects: Vec<_> = self
            .objects
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| blob_error("listing proof blobs", e))?;
        Ok(objects
            .into_iter()
            .filter_map(|meta| {
                let hash = meta.location.filename()?.to_owned();
                // A local store's half-written staging files (`<hash>#<n>`) are not blobs.
                is_hash(&hash).then(|| StoredBlob {
                    hash,
                    written_ms: meta.last_modified.timestamp_millis(),
                })
            })
            .collect())
    }
}

/// A blob's place in the object store.
fn blob_path(hash: &str) -> Path {
    Path::from(format!("{PROOFS}/{hash}"))
}

/// Whether `name` is a blob's name: 64 lowercase hex digits.
fn is_hash(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Flushes a renamed-into-place file and the folder entry that names it.
fn sync_file_and_folder(file: &std::path::Path) -> Result<()> {
    std::fs::File::open(file)?.sync_all()?;
    if let Some(folder) = file.parent() {
        std::fs::File::open(folder)?.sync_all()?;
    }
    Ok(())
}

fn blob_error(doing: &str, e: object_store::Error) -> StoreError {
    StoreError::Blobs(format!("{doing}: {e}"))
}
