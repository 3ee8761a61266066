//! The prover's key file: an ed25519 key that signs every API request, and the worker secret
//! whose hash (`worker_pk`) every proof carries.
//!
//! File format (JSON, mode 0600 on unix):
//!
//! ```text
//! {"format":"sheaf-prover-key-v1","signing_key":"<64 hex>","worker_secret":"<64 hex digest>"}
//! ```

use std::fs;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use sheaf_circuits::{CircuitError, Digest, PossessionCircuit, WorkerSecret};
use sheaf_types::Address;
use thiserror::Error;

/// The format tag of key files this version reads and writes.
pub const KEY_FORMAT: &str = "sheaf-prover-key-v1";

/// Largest key file read; a real one is under 200 bytes.
pub const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// Leases per epoch suggested for a new prover in its registry entry.
pub const DEFAULT_RATE_LIMIT: u64 = 600;

/// Leases held at once suggested for a new prover in its registry entry: one being proved and
/// one being submitted.
pub const DEFAULT_MAX_CONCURRENT: u64 = 2;

/// Column at which the comments of a registry entry start.
const COMMENT_COLUMN: usize = 24;

/// Why a key file could not be written or read.
#[derive(Debug, Error)]
pub enum KeyFileError {
    /// There is no file at the path.
    #[error("no key file at {0}")]
    Missing(PathBuf),
    /// A file exists at the path and overwriting was not asked for.
    #[error("{0} exists; refusing to overwrite a key file")]
    Exists(PathBuf),
    /// Reading or writing failed.
    #[error("I/O error on {path}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file is larger than any key file.
    #[error("{path} is larger than {MAX_KEY_FILE_BYTES} bytes: not a key file")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file is not JSON of a key file's shape.
    #[error("{path} is not a key file")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The file's format tag is not [`KEY_FORMAT`].
    #[error("{path} has format {found:?}, expected {KEY_FORMAT:?}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The tag found.
        found: String,
    },
    /// The signing key is not 64 hex digits.
    #[error("{path}: signing_key must be 64 hex digits")]
    SigningKey {
        /// The file.
        path: PathBuf,
    },
    /// The worker secret is not 64 hex digits of four canonical field elements.
    #[error("{path}: worker_secret must be 64 hex digits of a canonical digest")]
    WorkerSecret {
        /// The file.
        path: PathBuf,
    },
}

/// A prover's identity: the request-signing key and the worker secret.
#[derive(Clone)]
pub struct ProverKey {
    /// Signs every API request; its verifying key names the prover in the registry.
    pub signing: SigningKey,
    /// Its hash, `worker_pk`, goes into every proof the prover makes.
    pub worker: WorkerSecret,
}

impl std::fmt::Debug for ProverKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProverKey")
            .field("public_key", &self.public_key_hex())
            .field("worker_pk", &self.worker_pk())
            .finish_non_exhaustive()
    }
}

/// The file's JSON shape.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    format: String,
    signing_key: String,
    worker_secret: String,
}

impl ProverKey {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Self {
        ProverKey {
            signing: SigningKey::generate(&mut rand::rngs::OsRng),
            worker: WorkerSecret::random(),
        }
    }

    /// The ed25519 verifying key, 64 hex digits, as the registry and the request headers name it.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.signing.verifying_key().as_bytes())
    }

    /// `H(worker secret)`, the identity every proof of this prover carries.
    pub fn worker_pk(&self) -> Digest {
        self.worker.worker_pk()
    }

    /// The chain account this key signs for: its ed25519 verifying key.
    pub fn address(&self) -> Address {
        Address(self.signing.verifying_key().to_bytes())
    }

    /// Proof that this prover knows its worker secret, for its own account on chain
    /// `chain_id`: what registering its membership carries. CPU-bound (building the circuit on
    /// first use, then a fraction of a second).
    pub fn possession_proof(&self, chain_id: u64) -> Result<Vec<u8>, CircuitError> {
        PossessionCircuit::shared().prove(&self.worker, &self.address(), chain_id)
    }

    /// The entry to paste into the coordinator's provers file, with the suggested limits.
    pub fn registry_entry(&self, name: &str) -> String {
        let rate = format!("rate_limit = {DEFAULT_RATE_LIMIT}");
        let concurrent = format!("max_concurrent = {DEFAULT_MAX_CONCURRENT}");
        format!(
            "[[prover]]\nname = {}\npublic_key = \"{}\"\nworker_pk = \"{}\"\n\
             {rate:<COMMENT_COLUMN$}# leases per epoch\n\
             {concurrent:<COMMENT_COLUMN$}# leases held at once\n",
            toml_string(name),
            self.public_key_hex(),
            self.worker_pk(),
        )
    }

    /// Write the key to `path`: atomically (a temporary file renamed into place), readable by
    /// the owner only, and never over an existing file unless `overwrite`.
    pub fn write(&self, path: &Path, overwrite: bool) -> Result<(), KeyFileError> {
        if !overwrite && path.exists() {
            return Err(KeyFileError::Exists(path.to_owned()));
        }
        let file = KeyFile {
            format: KEY_FORMAT.to_owned(),
            signing_key: hex::encode(self.signing.to_bytes()),
            worker_secret: self.worker.expose().to_string(),
        };
        let mut json = serde_json::to_vec(&file).map_err(|source| KeyFileError::Json {
            path: path.to_owned(),
            source,
        })?;
        json.push(b'\n');
        let tmp = temp_path(path);
        let io_err = |source: io::Error| KeyFileError::Io {
            path: path.to_owned(),
            source,
        };
        if let Err(e) = write_private(&tmp, &json) {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(e));
        }
        let placed = if overwrite {
            fs::rename(&tmp, path)
        } else {
            // A hard link fails if the target exists, so a file created since the check above
            // is not replaced either.
            fs::hard_link(&tmp, path)
        };
        let _ = fs::remove_file(&tmp);
        match placed {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Err(KeyFileError::Exists(path.to_owned()))
            }
            Err(e) => Err(io_err(e)),
        }
    }

    /// Read a key file written by [`ProverKey::write`].
    pub fn read(path: &Path) -> Result<Self, KeyFileError> {
        let io_err = |source: io::Error| {
            if source.kind() == io::ErrorKind::NotFound {
                KeyFileError::Missing(path.to_owned())
            } else {
                KeyFileError::Io {
                    path: path.to_owned(),
                    source,
                }
            }
        };
        let file = fs::File::open(path).map_err(io_err)?;
        warn_if_readable_by_others(path, &file);
        let mut bytes = Vec::new();
        file.take(MAX_KEY_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err)?;
        if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
            return Err(KeyFileError::TooLarge {
                path: path.to_owned(),
            });
        }
        let file: KeyFile =
            serde_json::from_slice(&bytes).map_err(|source| KeyFileError::Json {
                path: path.to_owned(),
                source,
            })?;
        if file.format != KEY_FORMAT {
            return Err(KeyFileError::Format {
                path: path.to_owned(),
                found: file.format,
            });
        }
        let mut seed = [0u8; 32];
        hex::decode_to_slice(&file.signing_key, &mut seed).map_err(|_| {
            KeyFileError::SigningKey {
                path: path.to_owned(),
            }
        })?;
        let secret: Digest =
            file.worker_secret
                .parse()
                .map_err(|_| KeyFileError::WorkerSecret {
                    path: path.to_owned(),
                })?;
        Ok(ProverKey {
            signing: SigningKey::from_bytes(&seed),
            worker: WorkerSecret::from_digest(secret),
        })
    }
}

/// `name` as a TOML basic string.
fn toml_string(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A temporary file beside `path`, so the final rename stays on one filesystem.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "key".to_owned());
    let salt: u32 = rand::random();
    path.with_file_name(format!(".{name}.tmp{}-{salt:08x}", std::process::id()))
}

/// Create `path` (which must not exist) readable by the owner only, and write `bytes` durably.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path, file: &fs::File) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = file.metadata() {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(target: "sheaf::prover", path = %path.display(), mode = format!("{:o}", mode & 0o777), "key file is accessible by other users; chmod 600 it");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path, _file: &fs::File) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_as_toml_strings() {
        assert_eq!(toml_string("alice"), "\"alice\"");
        assert_eq!(toml_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000A\"");
    }
}
