//! Winternitz one-time signatures: sign and verify, and no key signs twice.

use sheaf_circuits::Digest;
use sheaf_rollup::signature::{
    message_digits, verify, SigningKey, WOTS_CHAINS, WOTS_MESSAGE_DIGITS, WOTS_W,
};
use sheaf_rollup::SignatureError;

use crate::support::{signing_key, world, ALICE, BOB, TEST_KEY_COUNT};

const MESSAGE: Digest = Digest([11, 22, 33, 44]);

#[test]
fn signature_verifies_under_the_auth_commitment() {
    let mut key = signing_key(ALICE);
    let root = key.auth_commitment();
    for index in [0, 3, TEST_KEY_COUNT - 1] {
        let message = Digest([index, 1, 2, 3]);
        let signature = key.sign(index, message).unwrap();
        assert_eq!(signature.chains.len(), WOTS_CHAINS);
        assert!(verify(root, index, message, &signature));
    }
}

#[test]
fn signature_fails_for_another_message_key_or_account() {
    let mut key = signing_key(ALICE);
    let root = key.auth_commitment();
    let signature = key.sign(2, MESSAGE).unwrap();
    assert!(!verify(root, 2, Digest([11, 22, 33, 45]), &signature));
    assert!(!verify(root, 1, MESSAGE, &signature));
    assert!(!verify(
        signing_key(BOB).auth_commitment(),
        2,
        MESSAGE,
        &signature
    ));
    let mut tampered = signature.clone();
    tampered.chains[WOTS_CHAINS - 1].0[3] ^= 1;
    assert!(!verify(root, 2, MESSAGE, &tampered));
    let mut truncated = signature;
    truncated.chains.pop();
    assert!(!verify(root, 2, MESSAGE, &truncated));
}

#[test]
fn a_one_time_key_refuses_a_second_message() {
    let mut key = signing_key(ALICE);
    let first = key.sign(0, MESSAGE).unwrap();
    assert_eq!(
        key.sign(0, MESSAGE).unwrap(),
        first,
        "re-signing is harmless"
    );
    assert_eq!(
        key.sign(0, Digest([1, 2, 3, 4])),
        Err(SignatureError::KeyReused(0))
    );
    assert!(key.sign(1, Digest([1, 2, 3, 4])).is_ok());
}

#[test]
fn keys_past_the_generated_count_do_not_exist() {
    let mut key = signing_key(ALICE);
    assert_eq!(
        key.sign(TEST_KEY_COUNT, MESSAGE),
        Err(SignatureError::NoSuchKey(TEST_KEY_COUNT))
    );
    assert_eq!(
        SigningKey::generate(MESSAGE, 0).unwrap_err(),
        SignatureError::KeyCount(0)
    );
    assert_eq!(
        SigningKey::generate(MESSAGE, (1 << 16) + 1).unwrap_err(),
        SignatureError::KeyCount((1 << 16) + 1)
    );
}

#[test]
fn each_nonce_signs_with_its_own_key() {
    let mut world = world();
    let tx = world.tx(ALICE, &[], &[]);
    world.block(std::slice::from_ref(&tx)).unwrap();
    // Key 0 is spent on the first transaction; the account now wants key 1.
    let next = world.body(ALICE, &[], &[]);
    assert_eq!(next.account.nonce, 1);
    let key = world.keys.get_mut(&ALICE).unwrap();
    assert_eq!(key.sign(0, next.id().0), Err(SignatureError::KeyReused(0)));
    let tx = world.sign(next);
    world.block(&[tx]).unwrap();
}

#[test]
fn checksum_falls_when_a_message_digit_rises() {
    let low = message_digits(Digest([0, 0, 0, 0]));
    let high = message_digits(Digest([1, 0, 0, 0]));
    let checksum = |d: &[usize; WOTS_CHAINS]| {
        d[WOTS_MESSAGE_DIGITS..]
            .iter()
            .rev()
            .fold(0, |acc, digit| acc * WOTS_W + digit)
    };
    assert_eq!(checksum(&low), WOTS_MESSAGE_DIGITS * (WOTS_W - 1));
    assert_eq!(checksum(&high), checksum(&low) - 1);
}
