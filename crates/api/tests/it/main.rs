//! `sheaf-api`'s integration tests: the signing test vectors that `docs/CLIENT.md` publishes for
//! client authors, checked against the signer and verifier every Sheaf party uses.

mod vectors;
