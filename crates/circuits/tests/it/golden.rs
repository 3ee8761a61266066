//! A root proof checked into the repository: the wire format and the circuits cannot change
//! without this test noticing. Regenerate with
//! `cargo test -p sheaf-circuits --test it -- --ignored regenerate_golden_root`.

use std::path::PathBuf;

use sheaf_circuits::{encode_proof, Header};

use crate::fixture::{arity2, expected_root, prove_tree};

const LEAVES: usize = 3;

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
struct GoldenMeta {
    leaves: usize,
    key_id: String,
    header: Header,
}

#[test]
fn golden_root_proof_still_verifies() {
    let fx = arity2();
    let bytes = std::fs::read(fixture_path("golden_root.proof")).unwrap();
    let meta: GoldenMeta =
        serde_json::from_str(&std::fs::read_to_string(fixture_path("golden_root.json")).unwrap())
            .unwrap();
    assert_eq!(
        meta.key_id,
        fx.key.id().to_string(),
        "the final key changed"
    );
    let verified = fx.key.verify_bytes(&bytes).unwrap();
    assert_eq!(verified.header, meta.header);
    assert_eq!(verified.header, expected_root(fx, LEAVES));
}

#[test]
#[ignore = "rewrites the golden fixture"]
fn regenerate_golden_root() {
    let fx = arity2();
    let (root, _) = prove_tree(fx, LEAVES);
    let meta = GoldenMeta {
        leaves: LEAVES,
        key_id: fx.key.id().to_string(),
        header: expected_root(fx, LEAVES),
    };
    std::fs::write(fixture_path("golden_root.proof"), encode_proof(&root)).unwrap();
    std::fs::write(
        fixture_path("golden_root.json"),
        serde_json::to_string_pretty(&meta).unwrap() + "\n",
    )
    .unwrap();
}
