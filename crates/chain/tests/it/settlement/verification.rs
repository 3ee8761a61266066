//! A real root proof through the real final key, and the golden fixtures other tests share.

use std::path::PathBuf;
use std::sync::OnceLock;

use sheaf_circuits::{
    AggregationCircuits, AggregationSettings, FinalKey, LeafCircuit as _, Profile, WorkLeaf,
};

use super::*;

pub(crate) fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../circuits/tests/fixtures")
        .join(name)
}

#[derive(serde::Deserialize)]
pub(crate) struct GoldenMeta {
    pub(crate) key_id: String,
    pub(crate) header: Header,
}

/// The final key of the circuits the golden root proof was made with (the circuits crate's
/// fixture: work leaves of 2^6 rows alone, arity 2, standard profile), built once per binary.
/// Not a network's [`sheaf_circuits::CircuitSet`]: a set admits claim leaves too, so its
/// whitelist, and its key, differ.
pub(crate) fn final_key() -> &'static FinalKey {
    static KEY: OnceLock<FinalKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let settings = AggregationSettings {
            profile: Profile::Standard,
            arity: 2,
            final_zk: false,
            final_compact: false,
        };
        let leaf = WorkLeaf::build(Profile::Standard.leaf_config(), 6).unwrap();
        AggregationCircuits::build(settings, &[leaf.verifier()])
            .unwrap()
            .final_key()
    })
}

#[test]
fn real_root_proof_settles_a_sequence_end_to_end() {
    let key = final_key().clone();
    let bytes = std::fs::read(golden("golden_root.proof")).unwrap();
    let meta: GoldenMeta =
        serde_json::from_str(&std::fs::read_to_string(golden("golden_root.json")).unwrap())
            .unwrap();
    assert_eq!(meta.key_id, key.id().to_string(), "the final key changed");

    let mut c = SettlementContract::new(SettlementParams::default(), COORDINATOR, key).unwrap();
    c.register_sequence(
        &COORDINATOR,
        SequenceId(0),
        meta.header.statement,
        Vec::new(),
    )
    .unwrap();
    c.register_sequence(&COORDINATOR, SequenceId(1), statement(1), Vec::new())
        .unwrap();
    for sender in [ALICE, BOB] {
        c.deposit_stake(&sender, Amount(DEFAULT_MIN_STAKE));
    }
    let mut corrupt = bytes.clone();
    *corrupt.last_mut().unwrap() ^= 1;
    c.commit(&ALICE, 0, &bytes, F).unwrap();
    c.commit(&BOB, 0, &corrupt, F + 1).unwrap();

    let events = c.reveal(&BOB, 0, &corrupt, F + T1).unwrap();
    assert!(matches!(
        penalties(&events)[..],
        [(
            BOB,
            PenaltyReason::InvalidProof(_),
            DEFAULT_WRONG_HASH_PENALTY
        )]
    ));
    let events = c.reveal(&ALICE, 0, &bytes, F + T1).unwrap();
    assert_eq!(
        events[0],
        SettlementEvent::SequenceFinalized {
            sequence: SequenceId(0),
            commitment: meta.header.commitment,
            stats: meta.header.stats,
            sender: ALICE
        }
    );
    assert_eq!(
        paid(&events),
        vec![(ALICE, DEFAULT_REWARD_PER_SEQUENCE / 2)]
    );

    // The same valid proof cannot settle another sequence.
    c.commit(&ALICE, 1, &bytes, F + T1 + 1).unwrap();
    let events = c.reveal(&ALICE, 1, &bytes, F + 2 * T1 + 1).unwrap();
    assert!(matches!(
        penalties(&events)[..],
        [(
            ALICE,
            PenaltyReason::WrongStatement { .. },
            DEFAULT_WRONG_HASH_PENALTY
        )]
    ));
    assert!(c.finalized(SequenceId(1)).is_none());
}
