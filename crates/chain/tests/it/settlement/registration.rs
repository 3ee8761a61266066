//! Parameters, the registration of sequences, and the state as JSON.

use super::*;

#[test]
fn new_rejects_an_empty_phase() {
    let empty_hash_phase = SettlementParams {
        hash_window_blocks: 0,
        ..SettlementParams::default()
    };
    let empty_proof_phase = SettlementParams {
        proof_window_blocks: 0,
        ..SettlementParams::default()
    };
    for params in [empty_hash_phase, empty_proof_phase] {
        let err = SettlementContract::new(params, COORDINATOR, StubVerifier).unwrap_err();
        assert!(
            matches!(err, SettlementError::InvalidParameters(_)),
            "{params:?}"
        );
    }
}

#[test]
fn register_sequence_rejects_other_callers() {
    let mut c = contract(0);
    assert_eq!(
        c.register_sequence(&ALICE, SequenceId(0), statement(0), Vec::new()),
        Err(SettlementError::NotCoordinator)
    );
}

#[test]
fn register_sequence_rejects_sequences_out_of_order() {
    let mut c = contract(1);
    assert_eq!(
        c.register_sequence(&COORDINATOR, SequenceId(2), statement(2), Vec::new()),
        Err(SettlementError::SequenceOutOfOrder {
            expected: SequenceId(1),
            got: SequenceId(2)
        })
    );
}

#[test]
fn first_registration_fixes_the_numbering() {
    let mut c = contract(0);
    c.register_sequence(&COORDINATOR, SequenceId(5), statement(5), Vec::new())
        .unwrap();
    assert_eq!(c.state().first_sequence, SequenceId(5));
    assert_eq!(c.state().next_to_finalize, SequenceId(5));
    assert_eq!(c.state().next_sequence(), SequenceId(6));
    assert_eq!(
        c.register_sequence(&COORDINATOR, SequenceId(7), statement(7), Vec::new()),
        Err(SettlementError::SequenceOutOfOrder {
            expected: SequenceId(6),
            got: SequenceId(7)
        })
    );
    c.register_sequence(&COORDINATOR, SequenceId(6), statement(6), Vec::new())
        .unwrap();
    // Numbers below the first are unknown; 5 and 6 settle as usual.
    assert_eq!(
        c.commit(&ALICE, 4, &proof(4, 1), F),
        Err(SettlementError::UnknownSequence(SequenceId(4)))
    );
    c.commit(&ALICE, 5, &proof(5, 1), F).unwrap();
    let events = c.reveal(&ALICE, 5, &proof(5, 1), F + T1).unwrap();
    assert!(events.iter().any(|e| matches!(
        e,
        SettlementEvent::SequenceFinalized {
            sequence: SequenceId(5),
            ..
        }
    )));
    assert_eq!(c.state().next_to_finalize, SequenceId(6));
    assert!(c.finalized(SequenceId(5)).is_some());
    assert!(c.finalized(SequenceId(6)).is_none());
}

#[test]
fn state_round_trips_through_json() {
    let c = alice_finalized_bob_pending(2);
    let json = serde_json::to_string(c.state()).unwrap();
    let state: SettlementState = serde_json::from_str(&json).unwrap();
    assert_eq!(&state, c.state());
    let mut restored = SettlementContract::from_state(state, StubVerifier);
    let events = restored.reveal(&BOB, 0, &proof(0, 2), F + T1 + 1).unwrap();
    assert_eq!(paid(&events), vec![(BOB, DEFAULT_REWARD_PER_SEQUENCE / 2)]);
}
