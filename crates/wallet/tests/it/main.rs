//! The wallet file on disk: written whole and private, never overwritten by a new wallet,
//! refused when it is not a wallet of this version, held by one command at a time.

use sheaf_wallet::{WalletFile, WalletFileError, WalletLock};

#[test]
fn a_new_wallet_is_private_and_reads_back_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.json");
    let wallet = WalletFile::generate(2).unwrap();
    wallet.create(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let read = WalletFile::load(&path).unwrap();
    assert_eq!(read.seed, wallet.seed);
    assert_eq!(read.auth_commitment, wallet.auth_commitment);
    // The keys regenerate from the seed alone.
    assert_eq!(
        read.signing_key().unwrap().auth_commitment(),
        wallet.auth_commitment
    );
    assert!(read.account.is_none() && read.cursor.is_none() && read.pending.is_none());
}

#[test]
fn create_never_overwrites_a_wallet() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.json");
    let first = WalletFile::generate(1).unwrap();
    first.create(&path).unwrap();
    let second = WalletFile::generate(1).unwrap();
    assert!(matches!(
        second.create(&path),
        Err(WalletFileError::Exists { .. })
    ));
    assert_eq!(WalletFile::load(&path).unwrap().seed, first.seed);
}

#[test]
fn load_refuses_a_missing_file_another_format_and_another_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.json");
    assert!(matches!(
        WalletFile::load(&path),
        Err(WalletFileError::Missing { .. })
    ));
    std::fs::write(&path, "{\"seed\": 1}").unwrap();
    assert!(matches!(
        WalletFile::load(&path),
        Err(WalletFileError::Parse { .. })
    ));
    let mut wallet = WalletFile::generate(1).unwrap();
    wallet.version += 1;
    std::fs::remove_file(&path).unwrap();
    wallet.save(&path).unwrap();
    assert!(matches!(
        WalletFile::load(&path),
        Err(WalletFileError::Version { .. })
    ));
}

#[test]
fn a_key_count_outside_the_key_tree_is_refused() {
    assert!(matches!(
        WalletFile::generate(0),
        Err(WalletFileError::Keys(_))
    ));
    assert!(matches!(
        WalletFile::generate((1 << 16) + 1),
        Err(WalletFileError::Keys(_))
    ));
}

#[test]
fn one_command_at_a_time_holds_a_wallet_and_a_dead_holders_lock_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.json");
    assert!(matches!(
        WalletLock::acquire(&path),
        Err(WalletFileError::Missing { .. })
    ));
    WalletFile::generate(1).unwrap().create(&path).unwrap();
    let held = WalletLock::acquire(&path).unwrap();
    match WalletLock::acquire(&path) {
        Err(WalletFileError::Busy { pid, .. }) => assert_eq!(pid, std::process::id()),
        other => panic!("a held wallet was not refused: {other:?}"),
    }
    drop(held);
    let again = WalletLock::acquire(&path).unwrap();
    drop(again);
    // Left by a process that no longer runs (pids stay below 2^22 on Linux).
    std::fs::write(dir.path().join("w.json.lock"), "999999999").unwrap();
    WalletLock::acquire(&path).unwrap();
}
