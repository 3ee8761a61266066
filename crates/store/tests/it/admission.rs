//! Leasing within a prover's limits: `lease_admitted`.

use std::collections::HashSet;

use sheaf_store::{JobId, LeaseOutcome, Prover, SequenceId, Store, StoreError};

use crate::harness::{each_engine, plan, submit, T0, TTL};

/// Rate-limit epoch used by these tests (milliseconds). `T0` is 16 epochs and 40 s in.
const EPOCH: i64 = 60_000;
/// End of the epoch `T0` falls in.
const EPOCH_END: i64 = (T0 / EPOCH + 1) * EPOCH;

/// A prover whose keys are derived from its id.
pub fn prover(id: &str, rate_limit: i64, max_concurrent: i64) -> Prover {
    let mut public_key = [0u8; 32];
    public_key[..id.len().min(32)].copy_from_slice(&id.as_bytes()[..id.len().min(32)]);
    let mut worker_pk = public_key;
    worker_pk[31] ^= 0xff;
    Prover {
        id: id.to_owned(),
        public_key,
        worker_pk,
        rate_limit,
        max_concurrent,
    }
}

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
async fn lease_admitted_leases_critical_path_first_and_records_the_grant_time() {
    each_engine(|db| async move {
        let store = db.connect().await;
        store.upsert_prover(&prover("p", 100, 100)).await.unwrap();
        plan(&store, 2, 2, 2).await;
        plan(&store, 1, 2, 2).await;
        let first = leased(lease(&store, "p", T0).await);
        let second = leased(lease(&store, "p", T0 + 5).await);
        assert_eq!(
            (first.job, second.job),
            (
                JobId::new(SequenceId(1), 0, 0),
                JobId::new(SequenceId(1), 0, 1)
            )
        );
        assert_eq!(
            (first.attempt, first.token, first.expires_ms),
            (1, 1, T0 + TTL)
        );
        let job = store.get_job(second.job).await.unwrap().unwrap();
        assert_eq!(job.leased_ms, Some(T0 + 5));
        assert_eq!(job.lease_holder.as_deref(), Some("p"));
    })
    .await;
}

#[tokio::test]
async fn lease_admitted_refuses_an_unknown_prover() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 1, 2).await;
        let err = store
            .lease_admitted("mallory", T0, TTL, EPOCH)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::UnknownProver(id) if id == "mallory"),
            "{err:?}"
        );
        // Nothing was leased.
        assert!(store.lease_next_job("p", T0, TTL).await.unwrap().is_some());
    })
    .await;
}

#[tokio::test]
async fn lease_admitted_refuses_a_non_positive_epoch() {
    each_engine(|db| async move {
        let store = db.connect().await;
        store.upsert_prover(&prover("p", 10, 10)).await.unwrap();
        plan(&store, 1, 1, 2).await;
        for epoch in [0, -EPOCH] {
            let err = store.lease_admitted("p", T0, TTL, epoch).await.unwrap_err();
            assert!(matches!(err, StoreError::InvalidArgument(_)), "{err:?}");
        }
        leased(lease(&store, "p", T0).await);
    })
    .await;
}

#[tokio::test]
async fn lease_admitted_refuses_a_non_positive_ttl() {
    each_engine(|db| async move {
        let store = db.connect().await;
        store.upsert_prover(&prover("p", 10, 10)).await.unwrap();
        plan(&store, 1, 1, 2).await;
        let err = store.lease_admitted("p", T0, 0, EPOCH).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidArgument(_)), "{err:?}");
        leased(lease(&store, "p", T0).await);
    })
    .await;
}

#[tokio::test]
async fn rate_limit_is_hit_exactly_at_the_limit_and_resets_next_epoch() {
    each_engine(|db| async move {
        let store = db.connect().await;
        store.upsert_prover(&prover("p", 3, 100)).await.unwrap();
        plan(&store, 1, 8, 8).await;
        for _ in 0..3 {
            leased(lease(&store, "p", T0).await);
        }
        let limited = LeaseOutcome::RateLimited {
            used: 3,
            limit: 3,
            epoch_ends_ms: EPOCH_END,
        };
        assert_eq!(lease(&store, "p", T0).await, limited);
        // The last millisecond of the epoch is still in it.
        assert_eq!(lease(&store, "p", EPOCH_END - 1).await, limited);
        // The next epoch starts over.
        for _ in 0..3 {
            leased(lease(&store, "p", EPOCH_END).await);
        }
        assert_eq!(
            lease(&store, "p", EPOCH_END).await,
            LeaseOutcome::RateLimited {
                used: 3,
                limit: 3,
                epoch_ends_ms: EPOCH_END + EPOCH,
            }
        );
    })
    .await;
}

#[tokio::test]
async fn rate_limit_is_per_prover() {
    each_engine(|db| async move {
        let store = db.connect().await;
        store.upsert_prover(&prover("a", 1, 10)).await.unwrap();
        store.upsert_prover(&prover("b", 1, 10)).await.unwrap();
        plan(&store, 1, 4, 4).await;
        leased(lease(&store, "a", T0).await);
        assert!(matches!(
            lease(&store, "a", T0).await,
            LeaseOutcome::RateLimited { .. }
        ));
        leased(lease(&store, "b", T0).await);
    })
    .await;
}

#[tokio::test]
async fn no_work_does_not_consume_the_rate() {
    each_engine(|db| async move {
        let store = db.connect().await;
        store.upsert_prover(&prover("p", 2, 10)).await.unwrap();
        for _ in 0..5 {
            assert_eq!(lease(&store, "p", T0).await, LeaseOutcome::NoWork);
        }
        plan(&store, 1, 4, 4).await;
        leased(lease(&store, "p", T0).await);
        leased(lease(&store, "p", T0).await);
        assert!(matches!(
            lease(&store, "p", T0).await,
            LeaseOutcome::RateLimited {
                used: 2,
                limit: 2,
                ..
            }
        ));
    })
    .await;
}

#[tokio::test]
async fn concurrency_limit_is_hit_exactly_and_freed_by_submit_and_expiry() {
    each_engine(|db| async move {
        let store = db.connect().await;
        store.upsert_prover(&prover("p", 100, 2)).await.unwrap();
        plan(&store, 1, 8, 8).await;
        let first = leased(lease(&store, "p", T0).await);
        let second = leased(lease(&store, "p", T0 + 10).await);
        let full = LeaseOutcome::TooManyLeases {
            active: 2,
            limit: 2,
        };
        assert_eq!(lease(&store, "p", T0 + 10).await, full);

        // A submitted lease frees its slot.
        submit(&store, &first).await;
        let third = leased(lease(&store, "p", T0 + 10).await);
        assert_eq!(lease(&store, "p", T0 + 10).await, full);

        // An expired lease frees its slot at its expiry, before any requeue.
        assert_eq!(lease(&store, "p", second.expires_ms - 1).await, full);
        leased(lease(&store, "p", second.expires_ms).await);
        assert_eq!(third.expires_ms, second.expires_ms);
    })
    .await;
}

#[tokio::test]
async fn too_many_leases_is_answered_before_the_rate_and_costs_no_rate() {
    each_engine(|db| async move {
        let store = db.connect().await;
        store.upsert_prover(&prover("p", 2, 1)).await.unwrap();
        plan(&store, 1, 4, 4).await;
        let held = leased(lease(&store, "p", T0).await);
        for _ in 0..3 {
            assert_eq!(
                lease(&store, "p", T0).await,
                LeaseOutcome::TooManyLeases {
                    active: 1,
                    limit: 1
                }
            );
        }
        submit(&store, &held).await;
        // Only the one granted lease counted: one more fits the rate of 2.
        leased(lease(&store, "p", T0).await);
    })
    .await;
}

#[tokio::test]
async fn a_prover_with_zero_limits_is_never_leased() {
    each_engine(|db| async move {
        let store = db.connect().await;
        store.upsert_prover(&prover("rate", 0, 5)).await.unwrap();
        store.upsert_prover(&prover("slots", 5, 0)).await.unwrap();
        plan(&store, 1, 2, 2).await;
        assert!(matches!(
            lease(&store, "rate", T0).await,
            LeaseOutcome::RateLimited {
                used: 0,
                limit: 0,
                ..
            }
        ));
        assert_eq!(
            lease(&store, "slots", T0).await,
            LeaseOutcome::TooManyLeases {
                active: 0,
                limit: 0
            }
        );
    })
    .await;
}

/// Many requests of one prover at once, through two replicas: the limits are never exceeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_admitted_leases_never_exceed_the_limits() {
    each_engine(|db| async move {
        const TASKS: usize = 24;
        let replicas = db.replicas().await;
        replicas[0]
            .upsert_prover(&prover("slots", 1_000, 5))
            .await
            .unwrap();
        replicas[0]
            .upsert_prover(&prover("rate", 7, 1_000))
            .await
            .unwrap();
        plan(&replicas[0], 1, 64, 64).await;
        for (name, limit) in [("slots", 5), ("rate", 7)] {
            let tasks: Vec<_> = (0..TASKS)
                .map(|task| {
                    let store = replicas[task % 2].clone();
                    tokio::spawn(async move {
                        store.lease_admitted(name, T0, TTL, EPOCH).await.unwrap()
                    })
                })
                .collect();
            let mut jobs = HashSet::new();
            for task in tasks {
                match task.await.unwrap() {
                    LeaseOutcome::Leased(lease) => assert!(jobs.insert(lease.job)),
                    LeaseOutcome::TooManyLeases { .. } if name == "slots" => {}
                    LeaseOutcome::RateLimited { .. } if name == "rate" => {}
                    other => panic!("{name}: unexpected {other:?}"),
                }
            }
            assert_eq!(jobs.len(), limit, "{name}");
        }
    })
    .await;
}
