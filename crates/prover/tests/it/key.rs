//! The key file: round trip, refusal to overwrite, owner-only mode, one error per bad file.

use std::fs;
use std::path::Path;

use sheaf_prover::key::KEY_FORMAT;
use sheaf_prover::{KeyFileError, ProverKey};

fn write_json(path: &Path, json: &str) {
    fs::write(path, json).unwrap();
}

fn valid_json() -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.json");
    ProverKey::generate().write(&path, false).unwrap();
    serde_json::from_slice(&fs::read(&path).unwrap()).unwrap()
}

#[test]
fn key_file_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prover.key");
    let key = ProverKey::generate();
    key.write(&path, false).unwrap();
    let read = ProverKey::read(&path).unwrap();
    assert_eq!(read.signing.to_bytes(), key.signing.to_bytes());
    assert_eq!(read.worker, key.worker);
    assert_eq!(read.public_key_hex(), key.public_key_hex());
    assert_eq!(read.worker_pk(), key.worker_pk());
    let json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(json["format"], KEY_FORMAT);
    assert_eq!(json["signing_key"].as_str().unwrap().len(), 64);
    assert_eq!(
        json["worker_secret"].as_str().unwrap(),
        key.worker.expose().to_string()
    );
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left behind"
    );
}

#[test]
fn write_refuses_to_overwrite_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prover.key");
    let first = ProverKey::generate();
    first.write(&path, false).unwrap();
    let second = ProverKey::generate();
    assert!(matches!(
        second.write(&path, false),
        Err(KeyFileError::Exists(p)) if p == path
    ));
    assert_eq!(
        ProverKey::read(&path).unwrap().public_key_hex(),
        first.public_key_hex(),
        "the first key is untouched"
    );
    second.write(&path, true).unwrap();
    assert_eq!(
        ProverKey::read(&path).unwrap().public_key_hex(),
        second.public_key_hex()
    );
}

#[cfg(unix)]
#[test]
fn key_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prover.key");
    ProverKey::generate().write(&path, false).unwrap();
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    ProverKey::generate().write(&path, true).unwrap();
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn read_fails_on_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.key");
    assert!(matches!(ProverKey::read(&path), Err(KeyFileError::Missing(p)) if p == path));
}

#[test]
fn read_fails_on_bad_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prover.key");
    write_json(&path, "{\"format\": ");
    assert!(matches!(
        ProverKey::read(&path),
        Err(KeyFileError::Json { .. })
    ));
    write_json(&path, "{\"format\": \"sheaf-prover-key-v1\"}");
    assert!(matches!(
        ProverKey::read(&path),
        Err(KeyFileError::Json { .. })
    ));
}

#[test]
fn read_fails_on_oversized_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prover.key");
    fs::write(&path, vec![b' '; 100_000]).unwrap();
    assert!(matches!(
        ProverKey::read(&path),
        Err(KeyFileError::TooLarge { .. })
    ));
}

#[test]
fn read_fails_on_wrong_format_tag() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prover.key");
    let mut json = valid_json();
    json["format"] = "sheaf-prover-key-v0".into();
    write_json(&path, &json.to_string());
    assert!(matches!(
        ProverKey::read(&path),
        Err(KeyFileError::Format { found, .. }) if found == "sheaf-prover-key-v0"
    ));
}

#[test]
fn read_fails_on_bad_signing_key_hex() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prover.key");
    for bad in [
        "zz".repeat(32),
        "ab".repeat(31),
        "ab".repeat(33),
        String::new(),
    ] {
        let mut json = valid_json();
        json["signing_key"] = bad.clone().into();
        write_json(&path, &json.to_string());
        assert!(
            matches!(ProverKey::read(&path), Err(KeyFileError::SigningKey { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn read_fails_on_bad_or_non_canonical_worker_secret() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prover.key");
    // The last limb is the field order itself (little-endian 0xffffffff00000001): not canonical.
    let non_canonical = format!("{}{}", "00".repeat(24), "01000000ffffffff");
    for bad in ["xyz".to_owned(), "00".repeat(31), non_canonical] {
        let mut json = valid_json();
        json["worker_secret"] = bad.clone().into();
        write_json(&path, &json.to_string());
        assert!(
            matches!(
                ProverKey::read(&path),
                Err(KeyFileError::WorkerSecret { .. })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn registry_entry_is_the_block_the_coordinator_parses() {
    let key = ProverKey::generate();
    let entry = key.registry_entry("alice");
    let expected = format!(
        "[[prover]]\n\
         name = \"alice\"\n\
         public_key = \"{}\"\n\
         worker_pk = \"{}\"\n\
         rate_limit = 600        # leases per epoch\n\
         max_concurrent = 2      # leases held at once\n",
        key.public_key_hex(),
        key.worker_pk()
    );
    assert_eq!(entry, expected);
}
