//! Proof blobs outside the rows, addressed by their hash, referenced from the rows.
//!
//! ```text
//!  submit_proof(bytes) ──▶ put: a local directory appends it to the open segment file and
//!        │                 fdatasyncs it; S3 PUTs proofs/<hash> (atomic)
//!        ▼
//!  write transaction: proofs row (hash, size, stored = 'segment' + segment id and offset,
//!        │             or 'object') + the job proved
//!        │   a put that failed leaves no row; a row never names bytes not wholly on disk
//!        ▼
//!  reads (child proofs for a lease, a job's proof, claims): pread the segment at the row's
//!  offset and check the bytes against the hash, or get proofs/<hash>
//!  collect_proofs: sequences settled longer ago than the claims window → rows 'collected',
//!  objects deleted; sealed segments no row names any more (and unnamed objects) swept after
//!  a grace
//! ```
//!
//! Where: a local directory by default (`--proof-store /path`, or `file:///path`), or any
//! S3-compatible service (`s3://bucket/prefix`, configured by the usual `AWS_*` environment
//! variables: `AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//! `AWS_ALLOW_HTTP` for a plain-HTTP endpoint), which several coordinators on one PostgreSQL
//! database share.
//!
//! A local directory keeps blobs in append-only segment files (`segments/<id>.seg`, a new one
//! per process and every [`SEGMENT_BYTES`]) rather than a file per blob: creating, renaming
//! and flushing a file and its folder entry per blob cost half the store's CPU in the
//! kernel's directory code and twice the cycles per second (README, store bench). The open
//! segment is held under a shared `flock`, so a sweep in any process skips it. Blobs a
//! directory got as files per hash (`proofs/<hash>`, before segments) stay readable.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::TryStreamExt;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, PutPayload, RetryConfig};

use crate::error::{Result, StoreError};
use crate::flush::SharedFlush;
use crate::proofs::Placed;

/// The folder of the object store the blobs live under, each at `proofs/<hash>`.
const PROOFS: &str = "proofs";

/// The folder of a local directory's segment files.
const SEGMENTS: &str = "segments";

/// A segment file's name ends so.
const SEGMENT_SUFFIX: &str = ".seg";

/// Bytes after which a local directory starts a new segment file: the unit the sweep
/// deletes, once no row names a blob in it.
pub const SEGMENT_BYTES: u64 = 64 << 20;

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
    /// A local directory's segment files, which new blobs go to.
    segments: Option<Arc<Segments>>,
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

/// One segment file of a local directory, not open for appending in any process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedSegment {
    /// Its id, as the rows name it.
    pub id: i64,
    /// When it was last written (milliseconds since the Unix epoch).
    pub written_ms: i64,
}

/// A local directory's append-only segment files.
struct Segments {
    /// `<dir>/segments`.
    folder: PathBuf,
    /// Bytes after which a new segment starts.
    limit: u64,
    /// The segment appended to, once this process appended a blob.
    open: Mutex<Option<OpenSegment>>,
}

/// The segment blobs are appended to, and its length so far (bytes reserved). Its appenders
/// share their flushes; one that fails ends the segment, and the next blob starts another.
struct OpenSegment {
    id: i64,
    file: Arc<SharedFlush>,
    len: u64,
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
        Self::open_segmented(location, s3_settings, SEGMENT_BYTES)
    }

    /// As [`ProofBlobs::open`] for a local directory, starting a new segment file every
    /// `segment_bytes` instead of every [`SEGMENT_BYTES`] (1: a segment per blob, as tests of
    /// the sweep want).
    pub fn open_directory(dir: &FsPath, segment_bytes: u64) -> Result<Self> {
        Self::open_segmented(&dir.display().to_string(), &[], segment_bytes.max(1))
    }

    /// [`ProofBlobs::open_with`], with local segments of `segment_bytes`.
    fn open_segmented(
        location: &str,
        s3_settings: &[(&str, &str)],
        segment_bytes: u64,
    ) -> Result<Self> {
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
                segments: None,
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
        let objects = Arc::new(
            LocalFileSystem::new_with_prefix(&dir)
                .map_err(|e| blob_error("opening the proof directory", e))?,
        );
        let segments = Segments::open(dir.join(SEGMENTS), segment_bytes)?;
        Ok(ProofBlobs {
            objects,
            segments: Some(Arc::new(segments)),
            location: dir.display().to_string(),
        })
    }

    /// Where the blobs are, for people.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Writes `bytes` as the blob `hash`, whole or not at all, and says where the row must
    /// find it. On a local directory it is on disk when this returns.
    pub(crate) async fn put(&self, hash: &str, bytes: &[u8]) -> Result<Placed> {
        if let Some(segments) = &self.segments {
            let segments = segments.clone();
            let bytes = bytes.to_vec();
            return tokio::task::spawn_blocking(move || segments.append(&bytes))
                .await
                .map_err(|e| StoreError::Io(std::io::Error::other(e)))?;
        }
        self.objects
            .put(
                &blob_path(hash),
                PutPayload::from(Bytes::copy_from_slice(bytes)),
            )
            .await
            .map_err(|e| blob_error("writing a proof blob", e))?;
        Ok(Placed::Object)
    }

    /// The blob `hash`, from where its row says it is: an object, or `size` bytes of a
    /// segment at an offset (checked against the hash: a damaged segment is
    /// [`StoreError::Corrupt`], never a wrong proof).
    pub(crate) async fn get(&self, hash: &str, placed: Placed, size: i64) -> Result<Vec<u8>> {
        let Placed::Segment { id, offset } = placed else {
            return self.get_object(hash).await;
        };
        let Some(segments) = &self.segments else {
            return Err(StoreError::Blobs(format!(
                "proof {hash} is in segment {id:016x} of a local proof directory, and this \
                 store's proofs are at {}",
                self.location
            )));
        };
        let (Ok(offset), Ok(size)) = (u64::try_from(offset), usize::try_from(size)) else {
            return Err(StoreError::Corrupt(format!(
                "proof {hash} is at offset {offset}, {size} bytes"
            )));
        };
        let path = segments.path(id);
        let bytes = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
            let file = File::open(path)?;
            // Within the file before allocating: a row is trusted, a segment's length is not.
            if offset.saturating_add(size as u64) > file.metadata()?.len() {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let mut bytes = vec![0; size];
            file.read_exact_at(&mut bytes, offset)?;
            Ok(bytes)
        })
        .await
        .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
        .map_err(|e| {
            StoreError::Blobs(format!("reading proof {hash} from segment {id:016x}: {e}"))
        })?;
        if crate::submit::proof_hash(&bytes) != hash {
            return Err(StoreError::Corrupt(format!(
                "segment {id:016x} at offset {offset} does not hold proof {hash}"
            )));
        }
        Ok(bytes)
    }

    /// The object `hash`.
    async fn get_object(&self, hash: &str) -> Result<Vec<u8>> {
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

    /// A local directory's segments that no process appends to (none elsewhere).
    pub fn sealed_segments(&self) -> Result<Vec<SealedSegment>> {
        match &self.segments {
            Some(segments) => segments.sealed(),
            None => Ok(Vec::new()),
        }
    }

    /// Deletes sealed segment `id`, unless a process has opened it for appending since it was
    /// listed.
    pub(crate) fn delete_segment(&self, id: i64) -> Result<bool> {
        match &self.segments {
            Some(segments) => segments.delete_if_sealed(id),
            None => Ok(false),
        }
    }
}

impl Segments {
    /// The segment files in `folder`; the first append starts a segment of this process's.
    fn open(folder: PathBuf, limit: u64) -> Result<Self> {
        std::fs::create_dir_all(&folder)?;
        Ok(Segments {
            folder,
            limit,
            open: Mutex::new(None),
        })
    }

    /// Creates a segment under a fresh random id, holds it under a shared lock (a sweep takes
    /// an exclusive one before deleting), and flushes the folder entry naming it.
    fn start(folder: &FsPath) -> Result<OpenSegment> {
        loop {
            let id = (rand::random::<u64>() >> 1) as i64;
            let path = folder.join(segment_name(id));
            // Not O_APPEND: Linux's pwrite ignores the offset of a file opened so.
            let file = match File::options().write(true).create_new(true).open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e.into()),
            };
            file.lock_shared()?;
            File::open(folder)?.sync_all()?;
            return Ok(OpenSegment {
                id,
                file: Arc::new(SharedFlush::new(file)),
                len: 0,
            });
        }
    }

    /// Appends `bytes` to the open segment (a new one when there is none yet or it is full)
    /// and flushes them. Appenders reserve their ranges under the lock, then write and flush
    /// side by side.
    fn append(&self, bytes: &[u8]) -> Result<Placed> {
        self.reserve(bytes.len() as u64)?.write(bytes)
    }

    /// Reserves `len` bytes at the end of the open segment (a new one when there is none yet
    /// or it is full).
    fn reserve(&self, len: u64) -> Result<Reserved> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let mut segment = match open.take() {
            Some(segment)
                if !segment.file.failed()
                    && (segment.len == 0 || segment.len + len <= self.limit) =>
            {
                segment
            }
            _ => Self::start(&self.folder)?,
        };
        let reserved = Reserved {
            id: segment.id,
            file: segment.file.clone(),
            offset: segment.len,
        };
        segment.len += len;
        *open = Some(segment);
        Ok(reserved)
    }

    /// Where segment `id` is.
    fn path(&self, id: i64) -> PathBuf {
        self.folder.join(segment_name(id))
    }

    /// The segments no process holds open for appending.
    fn sealed(&self) -> Result<Vec<SealedSegment>> {
        let mut sealed = Vec::new();
        for entry in std::fs::read_dir(&self.folder)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(segment_id) else {
                continue;
            };
            let file = match File::open(entry.path()) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            if file.try_lock().is_err() {
                continue;
            }
            let written_ms = file
                .metadata()?
                .modified()?
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            sealed.push(SealedSegment { id, written_ms });
        }
        Ok(sealed)
    }

    /// Deletes segment `id` if no process holds it open for appending; whether it did.
    fn delete_if_sealed(&self, id: i64) -> Result<bool> {
        let path = self.path(id);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        if file.try_lock().is_err() {
            return Ok(false);
        }
        std::fs::remove_file(&path)?;
        Ok(true)
    }
}

/// A range of a segment reserved for one blob.
struct Reserved {
    id: i64,
    file: Arc<SharedFlush>,
    offset: u64,
}

impl Reserved {
    /// Writes `bytes` into the range and flushes them.
    fn write(self, bytes: &[u8]) -> Result<Placed> {
        self.file.write_durably(bytes, self.offset)?;
        Ok(Placed::Segment {
            id: self.id,
            offset: self.offset as i64,
        })
    }
}

/// Segment `id`'s file name.
fn segment_name(id: i64) -> String {
    format!("{id:016x}{SEGMENT_SUFFIX}")
}

/// The id a segment file's name gives, if it is one.
fn segment_id(name: &str) -> Option<i64> {
    let hex = name.strip_suffix(SEGMENT_SUFFIX)?;
    (hex.len() == 16)
        .then(|| i64::from_str_radix(hex, 16).ok())
        .flatten()
        .filter(|id| *id >= 0)
}

/// A blob's place in the object store.
fn blob_path(hash: &str) -> Path {
    Path::from(format!("{PROOFS}/{hash}"))
}

/// Whether `name` is a blob's name: 64 lowercase hex digits.
fn is_hash(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn blob_error(doing: &str, e: object_store::Error) -> StoreError {
    StoreError::Blobs(format!("{doing}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A segment whose flush failed takes no more blobs: the next starts a new segment.
    #[test]
    fn a_failed_flush_ends_the_segment() {
        let dir = tempfile::tempdir().unwrap();
        let segments = Segments::open(dir.path().join("segments"), 1 << 20).unwrap();
        let used = segments.reserve(10).unwrap();
        used.file.fail();
        let next = segments.reserve(10).unwrap();
        assert_ne!(next.id, used.id, "a failed segment takes no more blobs");
        assert_eq!(next.offset, 0);
    }

    /// Appenders write their reserved ranges in whatever order they get to: a later range
    /// written first must not move (as `pwrite` on a file opened `O_APPEND` would).
    #[tokio::test]
    async fn ranges_written_out_of_order_stay_where_they_were_reserved() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = ProofBlobs::open(&dir.path().display().to_string()).unwrap();
        let segments = blobs.segments.clone().unwrap();
        let (first, second) = (vec![1u8; 100], vec![2u8; 50]);
        let first_range = segments.reserve(first.len() as u64).unwrap();
        let second_range = segments.reserve(second.len() as u64).unwrap();
        let second_at = second_range.write(&second).unwrap();
        let first_at = first_range.write(&first).unwrap();
        let Placed::Segment { id, offset } = second_at else {
            panic!("a directory puts blobs in segments, got {second_at:?}");
        };
        assert_eq!(offset, 100);
        assert_eq!(first_at, Placed::Segment { id, offset: 0 });
        for (bytes, at) in [(&first, first_at), (&second, second_at)] {
            let hash = crate::submit::proof_hash(bytes);
            assert_eq!(
                &blobs.get(&hash, at, bytes.len() as i64).await.unwrap(),
                bytes
            );
        }
    }
}
