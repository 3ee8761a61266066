//! Abandoned leases cost the prover that walked away, not the job: a job dies only when
//! `max_attempts` distinct provers let its lease expire, and the abandoner is suspended.

use sheaf_store::{AbandonBackoff, JobId, JobStatus, LeaseOutcome, SequenceId, Store};

use crate::admission::prover;
use crate::harness::{each_engine, lease_at, plan, submit_as, MAX_ATTEMPTS, T0, TTL};

/// Rate-limit epoch of these tests: long enough never to limit them.
const EPOCH: i64 = 3_600_000;
/// Back-off of these tests: 1 s, 2 s, then 4 s at most.
const BACKOFF: AbandonBackoff = AbandonBackoff {
    base_ms: 1_000,
    max_ms: 4_000,
};

async fn lease(store: &Store, prover: &str, now_ms: i64) -> LeaseOutcome {
    store
        .lease_admitted(prover, now_ms, TTL, EPOCH)
        .await
        .unwrap_or_else(|e| panic!("lease_admitted: {e}"))
}

fn leased(outcome: LeaseOutcome) -> sheaf_store::Lease {
    match outcome {
        LeaseOutcome::Leased(lease) => lease,
        other => panic!("expected a lease, got {other:?}"),
    }
}

#[tokio::test]
async fn one_prover_abandoning_a_job_ten_times_does_not_kill_it() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 1, 2).await;
        let job = JobId::new(SequenceId(1), 0, 0);
        let mut now = T0;
        for attempt in 1..=10 {
            let lease = lease_at(&store, "walker", now).await;
            assert_eq!((lease.job, lease.attempt), (job, attempt));
            now = lease.expires_ms;
            let expired = store.requeue_expired(now, MAX_ATTEMPTS).await.unwrap();
            assert_eq!(
                (expired.requeued, expired.dead),
                (vec![job], vec![]),
                "[{}] abandonment {attempt} of one prover",
                db.engine
            );
        }
        let stored = store.get_job(job).await.unwrap().unwrap();
        assert_eq!((stored.status, stored.attempts), (JobStatus::Ready, 10));
        // An honest prover still gets it.
        let honest = lease_at(&store, "honest", now).await;
        assert_eq!(honest.job, job);
        submit_as(&store, &honest, "honest", now).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_job_abandoned_by_max_attempts_distinct_provers_is_dead() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 1, 2).await;
        let job = JobId::new(SequenceId(1), 0, 0);
        let mut now = T0;
        // The first prover walks away twice; it counts once.
        for walker in ["a", "a", "b"] {
            let lease = lease_at(&store, walker, now).await;
            now = lease.expires_ms;
            let expired = store.requeue_expired(now, MAX_ATTEMPTS).await.unwrap();
            assert_eq!(
                expired.requeued,
                vec![job],
                "[{}] after {walker}",
                db.engine
            );
        }
        let lease = lease_at(&store, "c", now).await;
        now = lease.expires_ms;
        let expired = store.requeue_expired(now, MAX_ATTEMPTS).await.unwrap();
        assert_eq!((expired.requeued, expired.dead), (vec![], vec![job]));
        assert_eq!(
            store.get_job(job).await.unwrap().unwrap().status,
            JobStatus::Dead
        );
        assert_eq!(store.lease_next_job("d", now, TTL).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn an_abandoning_prover_is_suspended_for_a_growing_backoff_then_admitted() {
    each_engine(|db| async move {
        let store = db.connect().await;
        for id in ["walker", "other"] {
            store.upsert_prover(&prover(id, 1_000, 1)).await.unwrap();
        }
        plan(&store, 1, 4, 2).await;
        let mut now = T0;
        let mut suspended_until = Vec::new();
        for abandoned in 1..=4 {
            let walked = leased(lease(&store, "walker", now).await);
            now = walked.expires_ms;
            store
                .requeue_expired_with_backoff(now, MAX_ATTEMPTS, BACKOFF)
                .await
                .unwrap();
            let until_ms = now + BACKOFF.suspension_ms(abandoned);
            assert_eq!(
                lease(&store, "walker", now).await,
                LeaseOutcome::Suspended {
                    abandoned,
                    until_ms
                },
                "[{}] right after abandonment {abandoned}",
                db.engine
            );
            assert_eq!(
                lease(&store, "walker", until_ms - 1).await,
                LeaseOutcome::Suspended {
                    abandoned,
                    until_ms
                }
            );
            suspended_until.push(until_ms - now);
            now = until_ms;
        }
        assert_eq!(suspended_until, vec![1_000, 2_000, 4_000, 4_000]);
        // Another prover is not held back by the walker's suspension.
        let others = leased(lease(&store, "other", now).await);

        // Served: admitted again; an accepted proof ends the run, so the next abandonment
        // costs the base again.
        let lease_now = leased(lease(&store, "walker", now).await);
        submit_as(&store, &lease_now, "walker", now).await.unwrap();
        let again = leased(lease(&store, "walker", now).await);
        assert_ne!(again.job, others.job);
        now = again.expires_ms;
        store
            .requeue_expired_with_backoff(now, MAX_ATTEMPTS, BACKOFF)
            .await
            .unwrap();
        assert_eq!(
            lease(&store, "walker", now).await,
            LeaseOutcome::Suspended {
                abandoned: 1,
                until_ms: now + BACKOFF.base_ms
            }
        );
    })
    .await;
}

#[test]
fn backoff_doubles_per_abandonment_up_to_its_max() {
    let backoff = AbandonBackoff {
        base_ms: 5_000,
        max_ms: 600_000,
    };
    let steps: Vec<i64> = (0..=9).map(|n| backoff.suspension_ms(n)).collect();
    assert_eq!(
        steps,
        [0, 5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 600_000, 600_000]
    );
    assert_eq!(backoff.suspension_ms(i64::MAX), 600_000);
    assert_eq!(AbandonBackoff::NONE.suspension_ms(7), 0);
}
