//! The genesis file: accounts and balances in, block 0 out.

use sheaf_circuits::Digest;
use sheaf_rollup::limits::MAX_AMOUNT;
use sheaf_rollup::smt::empty_root;
use sheaf_rollup::{AccountId, Genesis, GenesisError};
use sheaf_types::Amount;

const JSON: &str = r#"{
  "timestamp": 1767225600000,
  "accounts": [
    { "id": 1, "balance": 1000, "auth_commitment": "0100000000000000020000000000000003000000000000000400000000000000" },
    { "id": 7, "balance": 25, "auth_commitment": "0500000000000000060000000000000007000000000000000800000000000000" }
  ]
}"#;

#[test]
fn genesis_file_builds_block_0_with_the_funded_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("genesis.json");
    std::fs::write(&path, JSON).unwrap();
    let state = Genesis::load(&path).unwrap().build().unwrap();
    let alice = state.account(AccountId(1)).unwrap();
    assert_eq!(alice.balance, Amount(1000));
    assert_eq!(alice.nonce, 0);
    assert_eq!(alice.auth_commitment, Digest([1, 2, 3, 4]));
    assert_eq!(state.account(AccountId(7)).unwrap().balance, Amount(25));
    let header = state.tip();
    assert_eq!(header.number, 0);
    assert_eq!(header.prev_block_commitment, Digest::ZERO);
    assert_eq!(header.chain_root, empty_root(32));
    assert_eq!(header.account_root, state.account_root());
    assert_eq!(header.timestamp, 1767225600000);
    assert_ne!(
        state.chain_root(),
        empty_root(32),
        "block 0 is in the chain"
    );
}

#[test]
fn genesis_refuses_an_account_listed_twice() {
    let json = JSON.replace("\"id\": 7", "\"id\": 1");
    let error = Genesis::from_json(&json).unwrap().build().unwrap_err();
    assert!(matches!(
        error,
        GenesisError::DuplicateAccount(AccountId(1))
    ));
}

#[test]
fn genesis_refuses_a_supply_above_the_largest_amount() {
    let json = JSON.replace("\"balance\": 25", &format!("\"balance\": {MAX_AMOUNT}"));
    let error = Genesis::from_json(&json).unwrap().build().unwrap_err();
    assert!(matches!(error, GenesisError::SupplyOutOfRange(a) if a == Amount(MAX_AMOUNT + 1000)));
}

#[test]
fn genesis_refuses_a_malformed_file() {
    let error = Genesis::from_json("{\"accounts\": 3}").unwrap_err();
    assert!(matches!(error, GenesisError::Json(_)));
    let error = Genesis::load(std::path::Path::new("/nonexistent/genesis.json")).unwrap_err();
    assert!(matches!(error, GenesisError::Read { .. }));
}
