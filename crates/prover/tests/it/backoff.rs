//! The retry schedule: exponential ceilings, jittered delays within bounds, reset.

use std::time::Duration;

use sheaf_prover::backoff::{FACTOR, INITIAL_DELAY, MAX_DELAY};
use sheaf_prover::Backoff;

#[test]
fn ceilings_grow_by_the_factor_up_to_the_maximum() {
    assert_eq!(Backoff::ceiling(0), INITIAL_DELAY);
    assert_eq!(Backoff::ceiling(1), INITIAL_DELAY * FACTOR);
    assert_eq!(Backoff::ceiling(2), INITIAL_DELAY * FACTOR * FACTOR);
    assert_eq!(Backoff::ceiling(10), MAX_DELAY);
    assert_eq!(Backoff::ceiling(u32::MAX), MAX_DELAY, "no overflow");
    for n in 0..64 {
        assert!(Backoff::ceiling(n) <= Backoff::ceiling(n + 1));
    }
}

#[test]
fn delays_stay_between_half_the_ceiling_and_the_ceiling() {
    for _ in 0..50 {
        let mut backoff = Backoff::new();
        for n in 0..20 {
            let delay = backoff.next_delay();
            let ceiling = Backoff::ceiling(n);
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "delay {n}: {delay:?}"
            );
            assert!(delay >= INITIAL_DELAY / 2);
            assert!(delay <= MAX_DELAY);
        }
        assert_eq!(backoff.failures(), 20);
    }
}

#[test]
fn delays_are_jittered() {
    let mut delays: Vec<Duration> = (0..20).map(|_| Backoff::new().next_delay()).collect();
    delays.dedup();
    assert!(delays.len() > 1, "20 first delays all equal: no jitter");
}

#[test]
fn reset_starts_the_schedule_over() {
    let mut backoff = Backoff::new();
    for _ in 0..8 {
        backoff.next_delay();
    }
    backoff.reset();
    assert_eq!(backoff.failures(), 0);
    assert!(backoff.next_delay() <= INITIAL_DELAY);
}
