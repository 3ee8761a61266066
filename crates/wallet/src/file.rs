//! The wallet file: the account's key seed and everything the wallet knows of its account,
//! written whole to a temporary file and renamed over the old one, readable by its owner only.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sheaf_circuits::Digest;
use sheaf_rollup::chain::BlockNumber;
use sheaf_rollup::signature::DEFAULT_KEY_COUNT;
use sheaf_rollup::{Account, Note, NoteOrigin, SignatureError, SigningKey, Transaction};

/// The wallet file's format version.
pub const WALLET_VERSION: u32 = 1;

/// One-time keys a new wallet makes by default: as many transactions as its account can sign.
///
/// Every signature regenerates the key tree from the seed (about 1.7 ms a key on one core), so
/// the default keeps a transaction's signing under two seconds; `--keys` trades that for more
/// transactions, up to the account tree's `2^16`.
pub const DEFAULT_WALLET_KEYS: u64 = 1024;

/// Why a wallet file cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WalletFileError {
    /// No wallet there.
    #[error("no wallet at {path} (make one with `sheaf wallet new`)")]
    Missing {
        /// The path.
        path: PathBuf,
    },
    /// The file exists but cannot be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a wallet.
    #[error("{path} is not a wallet file: {source}")]
    Parse {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A wallet of another format version.
    #[error(
        "{path} is a wallet of format version {found}; this sheaf reads version {WALLET_VERSION}"
    )]
    Version {
        /// The path.
        path: PathBuf,
        /// Its version.
        found: u32,
    },
    /// The file cannot be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The path.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// `new` over an existing file.
    #[error("{path} exists; a wallet holds its account's only key, so it is never overwritten")]
    Exists {
        /// The path.
        path: PathBuf,
    },
    /// The key count is out of range.
    #[error(transparent)]
    Keys(#[from] SignatureError),
    /// Another running command holds the wallet.
    #[error(
        "another sheaf command (process {pid}) is using the wallet {path}; one command at a time \
         signs with an account's keys (if none is running, remove {path}.lock)"
    )]
    Busy {
        /// The wallet.
        path: PathBuf,
        /// The process that holds it.
        pid: u32,
    },
}

/// A wallet held by this process: `PATH.lock` holds its process id, created exclusively and
/// removed when the lock is dropped. Two commands on one wallet could otherwise both sign with
/// the account's next one-time key. A lock whose process is gone (killed before it could remove
/// it) is taken over; on systems without `/proc` it must be removed by hand.
#[derive(Debug)]
pub struct WalletLock {
    path: PathBuf,
}

impl WalletLock {
    /// Hold the wallet at `wallet`.
    pub fn acquire(wallet: &Path) -> Result<WalletLock, WalletFileError> {
        if !wallet.exists() {
            return Err(WalletFileError::Missing {
                path: wallet.to_path_buf(),
            });
        }
        let mut lock = wallet.as_os_str().to_owned();
        lock.push(".lock");
        let lock = PathBuf::from(lock);
        let write = |source| WalletFileError::Write {
            path: lock.clone(),
            source,
        };
        // Twice at most: the second time after taking over a dead process's lock.
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock)
            {
                Ok(mut file) => {
                    use std::io::Write as _;
                    file.write_all(std::process::id().to_string().as_bytes())
                        .map_err(write)?;
                    return Ok(WalletLock { path: lock });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&lock)
                        .ok()
                        .and_then(|text| text.trim().parse::<u32>().ok());
                    let alive = |pid: u32| {
                        !Path::new("/proc/self").exists()
                            || Path::new(&format!("/proc/{pid}")).exists()
                    };
                    match holder {
                        Some(pid) if alive(pid) => {
                            return Err(WalletFileError::Busy {
                                path: wallet.to_path_buf(),
                                pid,
                            })
                        }
                        // Its process is gone (or it never wrote its id): take it over.
                        _ => std::fs::remove_file(&lock).map_err(write)?,
                    }
                }
                Err(e) => return Err(write(e)),
            }
        }
        Err(WalletFileError::Busy {
            path: wallet.to_path_buf(),
            pid: 0,
        })
    }
}

impl Drop for WalletLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A note the wallet's account owns, with where it was created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedNote {
    /// The note.
    pub note: Note,
    /// The block that created it.
    pub block: BlockNumber,
    /// Its index in that block's note tree.
    pub index: u32,
}

impl OwnedNote {
    /// The origin a transaction consuming it names.
    pub fn origin(&self) -> NoteOrigin {
        NoteOrigin::Committed {
            block: self.block,
            index: self.index,
        }
    }
}

/// The last published block the wallet has read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Its number (0: the genesis).
    pub block: BlockNumber,
    /// Its header's commitment: the next block must name it as its predecessor.
    pub commitment: Digest,
}

/// What the wallet file holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WalletFile {
    /// [`WALLET_VERSION`].
    pub version: u32,
    /// The seed every one-time key derives from: the account's only secret.
    pub seed: Digest,
    /// One-time keys under the auth commitment: the account signs at most this many
    /// transactions.
    pub key_count: u64,
    /// The root of the key tree, which a genesis funds.
    pub auth_commitment: Digest,
    /// The account as of [`Self::cursor`], once a genesis funding it was found.
    pub account: Option<Account>,
    /// The last block read, once the account was found.
    pub cursor: Option<Cursor>,
    /// Notes addressed to the account, not yet spent as of the cursor.
    pub notes: Vec<OwnedNote>,
    /// A transaction signed (and perhaps sent) that no block read so far includes.
    pub pending: Option<Transaction>,
}

impl WalletFile {
    /// A new wallet of `key_count` one-time keys from a random seed.
    pub fn generate(key_count: u64) -> Result<WalletFile, WalletFileError> {
        let seed = random_digest();
        let key = SigningKey::generate(seed, key_count)?;
        Ok(WalletFile {
            version: WALLET_VERSION,
            seed,
            key_count,
            auth_commitment: key.auth_commitment(),
            account: None,
            cursor: None,
            notes: Vec::new(),
            pending: None,
        })
    }

    /// The signer: every key regenerated from the seed.
    pub fn signing_key(&self) -> Result<SigningKey, SignatureError> {
        SigningKey::generate(self.seed, self.key_count)
    }

    /// Read the wallet at `path`.
    pub fn load(path: &Path) -> Result<WalletFile, WalletFileError> {
        let bytes = std::fs::read(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => WalletFileError::Missing {
                path: path.to_path_buf(),
            },
            _ => WalletFileError::Read {
                path: path.to_path_buf(),
                source,
            },
        })?;
        let wallet: WalletFile =
            serde_json::from_slice(&bytes).map_err(|source| WalletFileError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        if wallet.version != WALLET_VERSION {
            return Err(WalletFileError::Version {
                path: path.to_path_buf(),
                found: wallet.version,
            });
        }
        Ok(wallet)
    }

    /// Write a new wallet at `path`, never over an existing file.
    pub fn create(&self, path: &Path) -> Result<(), WalletFileError> {
        if path.exists() {
            return Err(WalletFileError::Exists {
                path: path.to_path_buf(),
            });
        }
        self.save(path)
    }

    /// Write the wallet at `path`: a temporary file beside it (mode 0600), renamed over it, so a
    /// crash leaves the old wallet or the new one, never half of one.
    pub fn save(&self, path: &Path) -> Result<(), WalletFileError> {
        let write = |source| WalletFileError::Write {
            path: path.to_path_buf(),
            source,
        };
        let json = serde_json::to_vec_pretty(self).expect("a wallet serializes to JSON");
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        write_private(&temporary, &json).map_err(write)?;
        std::fs::rename(&temporary, path).map_err(write)
    }
}

// The default fits the account's key tree.
const _: () = assert!(DEFAULT_WALLET_KEYS <= DEFAULT_KEY_COUNT);

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// A digest of four uniformly random canonical field elements.
pub fn random_digest() -> Digest {
    use plonky2::field::types::Field64 as _;
    let order = sheaf_circuits::F::ORDER;
    let mut limbs = [0u64; 4];
    for limb in &mut limbs {
        // Rejection sampling: uniform below the order, which almost every u64 is.
        *limb = loop {
            let x = rand::random::<u64>();
            if x < order {
                break x;
            }
        };
    }
    Digest(limbs)
}
