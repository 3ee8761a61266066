//! The provers file: a TOML list the operator maintains (`--provers FILE`), re-read when it
//! changes.
//!
//! ```toml
//! [[prover]]
//! name = "alice"
//! public_key = "<64 hex: the ed25519 key that signs its requests>"
//! worker_pk = "<64 hex: H(worker secret), carried in its proofs>"
//! rate_limit = 600        # leases per epoch
//! max_concurrent = 2      # leases held at once
//! ```

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Deserialize;
use sheaf_circuits::Digest;
use sheaf_store::Prover;

use super::{Registry, RegistryError, DEFAULT_MAX_CONCURRENT, DEFAULT_RATE_LIMIT};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProversFile {
    #[serde(default)]
    prover: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    public_key: String,
    worker_pk: String,
    rate_limit: Option<i64>,
    max_concurrent: Option<i64>,
}

/// Parse a provers file's text.
pub fn parse_provers(text: &str) -> Result<Vec<Prover>, String> {
    let file: ProversFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut names = HashSet::new();
    let mut keys = HashSet::new();
    file.prover
        .into_iter()
        .map(|entry| {
            let what = |field: &str, why: &dyn std::fmt::Display| {
                format!("prover {:?}: {field}: {why}", entry.name)
            };
            if entry.name.is_empty() || entry.name.len() > 64 {
                return Err(what("name", &"must be 1 to 64 characters"));
            }
            let mut public_key = [0u8; 32];
            hex::decode_to_slice(&entry.public_key, &mut public_key)
                .map_err(|e| what("public_key", &e))?;
            ed25519_dalek::VerifyingKey::from_bytes(&public_key)
                .map_err(|e| what("public_key", &e))?;
            let worker_pk: Digest = entry.worker_pk.parse().map_err(|e| what("worker_pk", &e))?;
            let rate_limit = entry.rate_limit.unwrap_or(DEFAULT_RATE_LIMIT);
            let max_concurrent = entry.max_concurrent.unwrap_or(DEFAULT_MAX_CONCURRENT);
            if rate_limit < 1 || max_concurrent < 1 {
                return Err(what(
                    "limits",
                    &"rate_limit and max_concurrent must be at least 1",
                ));
            }
            if !names.insert(entry.name.clone()) {
                return Err(what("name", &"listed twice"));
            }
            if !keys.insert(public_key) {
                return Err(what("public_key", &"listed twice"));
            }
            Ok(Prover {
                id: entry.name,
                public_key,
                worker_pk: worker_pk.to_bytes(),
                rate_limit,
                max_concurrent,
            })
        })
        .collect()
}

/// The provers file, re-read when its modification time changes.
#[derive(Debug)]
pub struct FileRegistry {
    path: PathBuf,
    seen: std::sync::Mutex<Option<SystemTime>>,
}

impl FileRegistry {
    /// A registry backed by the file at `path` (read at the first [`Registry::admitted`]).
    pub fn new(path: impl AsRef<Path>) -> Self {
        FileRegistry {
            path: path.as_ref().to_path_buf(),
            seen: std::sync::Mutex::new(None),
        }
    }

    fn modified(&self) -> Option<SystemTime> {
        std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok()
    }
}

impl Registry for FileRegistry {
    fn admitted(&self) -> Result<Vec<Prover>, RegistryError> {
        let modified = self.modified();
        let text = std::fs::read_to_string(&self.path).map_err(|source| RegistryError::Io {
            path: self.path.clone(),
            source,
        })?;
        let provers = parse_provers(&text).map_err(|message| RegistryError::Parse {
            path: self.path.clone(),
            message,
        })?;
        if let Ok(mut seen) = self.seen.lock() {
            *seen = modified;
        }
        Ok(provers)
    }

    fn changed(&self) -> bool {
        let seen = self.seen.lock().map(|seen| *seen).unwrap_or(None);
        seen.is_none() || self.modified() != seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    fn entry(name: &str, key: &str) -> String {
        format!(
            "[[prover]]\nname = \"{name}\"\npublic_key = \"{key}\"\nworker_pk = \"{}\"\n",
            Digest([1, 2, 3, 4])
        )
    }

    #[test]
    fn entries_parse_with_default_limits() {
        let provers = parse_provers(&entry("alice", KEY)).unwrap();
        assert_eq!(provers.len(), 1);
        assert_eq!(provers[0].id, "alice");
        assert_eq!(provers[0].rate_limit, DEFAULT_RATE_LIMIT);
        assert_eq!(provers[0].max_concurrent, DEFAULT_MAX_CONCURRENT);
        assert_eq!(provers[0].worker_pk, Digest([1, 2, 3, 4]).to_bytes());
    }

    #[test]
    fn duplicate_names_and_keys_are_refused() {
        let twice = format!("{}{}", entry("alice", KEY), entry("alice", KEY));
        assert!(parse_provers(&twice).unwrap_err().contains("listed twice"));
        let same_key = format!("{}{}", entry("alice", KEY), entry("bob", KEY));
        assert!(parse_provers(&same_key)
            .unwrap_err()
            .contains("public_key: listed twice"));
    }

    #[test]
    fn bad_fields_are_named() {
        assert!(parse_provers(&entry("alice", "zz"))
            .unwrap_err()
            .contains("public_key"));
        let unknown = format!("{}colour = \"red\"\n", entry("alice", KEY));
        assert!(parse_provers(&unknown).unwrap_err().contains("colour"));
        let zero = format!("{}rate_limit = 0\n", entry("alice", KEY));
        assert!(parse_provers(&zero).unwrap_err().contains("at least 1"));
    }
}
