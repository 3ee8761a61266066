//! Operator actions, reads, and refused input.

use sheaf_store::{
    InvalidJobId, JobCircuit, JobFilter, JobId, JobInputs, JobStatus, NewJob, NewSequence,
    SequenceId, StatusCount, StoreError,
};

use crate::harness::{
    assert_nothing_planned, each_engine, lease_at, lease_expecting, plan, prove_next, reward,
    status_of, submit, tree, MAX_ATTEMPTS, T0, TTL,
};

#[tokio::test]
async fn unknown_job_ids_give_unknown_job() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 2, 2).await;
        let ghost = JobId::new(SequenceId(1), 0, 99);
        let unknown = |result: Result<(), StoreError>| match result {
            Err(StoreError::UnknownJob(job)) => assert_eq!(job, ghost),
            other => panic!("expected UnknownJob, got {other:?}"),
        };
        assert_eq!(store.get_job(ghost).await.unwrap(), None);
        unknown(store.heartbeat(ghost, 1, T0, TTL).await.map(drop));
        unknown(
            store
                .submit_proof(ghost, 1, "p", b"x", reward("p"), T0, None)
                .await
                .map(drop),
        );
        unknown(store.requeue_job(ghost).await.map(drop));
        unknown(store.cancel_job(ghost).await);
        unknown(store.proof_of(ghost).await.map(drop));
        unknown(store.child_proofs(ghost).await.map(drop));
        let err = store.rewards(SequenceId(7)).await.unwrap_err();
        assert!(
            matches!(err, StoreError::UnknownSequence(SequenceId(7))),
            "{err:?}"
        );
        assert_eq!(store.get_sequence(SequenceId(7)).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn get_job_shows_tree_links_and_inputs() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 3, 4, 2).await;
        let id = JobId::new(SequenceId(3), 1, 1);
        let job = store.get_job(id).await.unwrap().unwrap();
        assert_eq!(
            job.children,
            vec![
                JobId::new(SequenceId(3), 0, 2),
                JobId::new(SequenceId(3), 0, 3)
            ]
        );
        assert_eq!(job.parent, Some(JobId::new(SequenceId(3), 2, 0)));
        assert_eq!(
            (job.status, job.circuit),
            (JobStatus::Waiting, JobCircuit::Universal)
        );
        let leaf = store
            .get_job(JobId::new(SequenceId(3), 0, 3))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(leaf.inputs, JobInputs::Work { seed: 3, index: 3 });
        assert_eq!((leaf.status, leaf.parent), (JobStatus::Ready, Some(id)));
        let sequence = store.get_sequence(SequenceId(3)).await.unwrap().unwrap();
        assert_eq!(
            (sequence.root, sequence.leaves),
            (JobId::new(SequenceId(3), 2, 0), 4)
        );
    })
    .await;
}

#[tokio::test]
async fn planning_a_sequence_twice_gives_sequence_exists() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 2, 2).await;
        let again = NewSequence {
            id: SequenceId(1),
            leaves: 4,
            created_ms: T0 + 1,
        };
        let err = store
            .insert_sequence(again, &tree(1, 4, 2))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::SequenceExists(SequenceId(1))),
            "{err:?}"
        );
        // The first plan is untouched.
        assert_eq!(
            store
                .get_sequence(SequenceId(1))
                .await
                .unwrap()
                .unwrap()
                .leaves,
            2
        );
        let jobs = store.list_jobs(JobFilter::default()).await.unwrap();
        assert_eq!(jobs.len(), 3);
    })
    .await;
}

#[tokio::test]
async fn invalid_plans_are_refused_and_store_nothing() {
    each_engine(|db| async move {
        let store = db.connect().await;
        let job = |level, index, children: &[(u32, u64)]| NewJob {
            id: JobId::new(SequenceId(1), level, index),
            circuit: JobCircuit::Universal,
            inputs: JobInputs::Aggregate,
            children: children
                .iter()
                .map(|&(l, i)| JobId::new(SequenceId(1), l, i))
                .collect(),
        };
        let mut foreign = tree(1, 2, 2);
        foreign[0].id.sequence = SequenceId(2);
        let cases: Vec<(&str, Vec<NewJob>)> = vec![
            ("empty", vec![]),
            ("missing child", vec![job(1, 0, &[(0, 0)])]),
            ("foreign job", foreign),
            ("listed twice", vec![job(0, 0, &[]), job(0, 0, &[])]),
            ("two roots", vec![job(0, 0, &[]), job(0, 1, &[])]),
            (
                "two parents",
                vec![
                    job(0, 0, &[]),
                    job(1, 0, &[(0, 0)]),
                    job(1, 1, &[(0, 0)]),
                    job(2, 0, &[(1, 0), (1, 1)]),
                ],
            ),
            (
                "cycle beside the tree",
                vec![job(0, 0, &[]), job(0, 1, &[(0, 2)]), job(0, 2, &[(0, 1)])],
            ),
            ("index beyond the stored range", vec![job(0, u64::MAX, &[])]),
        ];
        for (case, jobs) in cases {
            let sequence = NewSequence {
                id: SequenceId(1),
                leaves: 1,
                created_ms: T0,
            };
            let err = store.insert_sequence(sequence, &jobs).await.unwrap_err();
            assert!(matches!(err, StoreError::InvalidPlan(_)), "{case}: {err:?}");
        }
        assert_nothing_planned(&store).await;
    })
    .await;
}

#[tokio::test]
async fn requeue_job_revives_a_dead_job_with_fresh_attempts() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 1, 2).await;
        let job = JobId::new(SequenceId(1), 0, 0);
        let mut now = T0;
        for attempt in 0..MAX_ATTEMPTS {
            let lease = lease_at(&store, &format!("p{attempt}"), now).await;
            now = lease.expires_ms;
            store.requeue_expired(now, MAX_ATTEMPTS).await.unwrap();
        }
        assert_eq!(status_of(&store, job).await, JobStatus::Dead);

        assert_eq!(store.requeue_job(job).await.unwrap(), JobStatus::Ready);
        let revived = store.get_job(job).await.unwrap().unwrap();
        assert_eq!((revived.status, revived.attempts), (JobStatus::Ready, 0));
        let lease = lease_at(&store, "p0", now).await;
        // A fresh budget, but never a reused token.
        assert_eq!((lease.attempt, lease.token), (1, MAX_ATTEMPTS + 1));
        // Its former abandoners count no more: one more abandonment leaves it ready.
        let expired = store
            .requeue_expired(lease.expires_ms, MAX_ATTEMPTS)
            .await
            .unwrap();
        assert_eq!(expired.requeued, vec![job]);
    })
    .await;
}

#[tokio::test]
async fn requeue_job_of_a_leased_job_makes_the_lease_stale() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 1, 2).await;
        let lease = lease_expecting(&store, "stuck", JobId::new(SequenceId(1), 0, 0)).await;
        assert_eq!(
            store.requeue_job(lease.job).await.unwrap(),
            JobStatus::Ready
        );
        let err = store
            .submit_proof(
                lease.job,
                lease.token,
                "stuck",
                b"x",
                reward("stuck"),
                T0,
                None,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::StaleLease { .. }), "{err:?}");
        assert_eq!(store.count_active_leases("stuck", T0).await.unwrap(), 0);
    })
    .await;
}

#[tokio::test]
async fn requeue_job_refuses_waiting_ready_and_proved_jobs() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 2, 2).await;
        let (proved, _) = prove_next(&store, "p").await;
        let cases = [
            (JobId::new(SequenceId(1), 1, 0), JobStatus::Waiting),
            (JobId::new(SequenceId(1), 0, 1), JobStatus::Ready),
            (proved.job, JobStatus::Proved),
        ];
        for (job, status) in cases {
            let err = store.requeue_job(job).await.unwrap_err();
            assert!(
                matches!(err, StoreError::InvalidTransition { job: j, from, action: "requeue" } if j == job && from == status),
                "{err:?}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn cancelled_job_is_never_leased_and_its_lease_is_stale() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 2, 2).await;
        let lease = lease_expecting(&store, "p", JobId::new(SequenceId(1), 0, 0)).await;
        store.cancel_job(lease.job).await.unwrap();
        store
            .cancel_job(JobId::new(SequenceId(1), 0, 1))
            .await
            .unwrap();
        // Cancelling twice changes nothing.
        store
            .cancel_job(JobId::new(SequenceId(1), 0, 1))
            .await
            .unwrap();
        let err = store
            .heartbeat(lease.job, lease.token, T0, TTL)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::StaleLease { .. }), "{err:?}");
        let err = store
            .submit_proof(lease.job, lease.token, "p", b"x", reward("p"), T0, None)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::StaleLease { .. }), "{err:?}");
        assert_eq!(store.lease_next_job("p", T0, TTL).await.unwrap(), None);
        let cancelled = store
            .list_jobs(JobFilter {
                status: Some(JobStatus::Cancelled),
                ..JobFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(cancelled.len(), 2);
    })
    .await;
}

#[tokio::test]
async fn cancel_job_refuses_a_proved_job() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 2, 2).await;
        let (lease, _) = prove_next(&store, "p").await;
        let err = store.cancel_job(lease.job).await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::InvalidTransition {
                    from: JobStatus::Proved,
                    action: "cancel",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(status_of(&store, lease.job).await, JobStatus::Proved);
    })
    .await;
}

#[tokio::test]
async fn requeued_parent_waits_for_its_unproved_children() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 2, 2).await;
        let root = JobId::new(SequenceId(1), 1, 0);
        store.cancel_job(root).await.unwrap();
        prove_next(&store, "p").await;
        assert_eq!(store.requeue_job(root).await.unwrap(), JobStatus::Waiting);
        // Its last child then releases it as usual.
        let (_, outcome) = prove_next(&store, "p").await;
        assert_eq!(outcome.parent_ready, Some(root));
    })
    .await;
}

#[tokio::test]
async fn list_jobs_filters_by_sequence_and_status() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 2, 2).await;
        plan(&store, 2, 4, 2).await;
        let list = |sequence, status| {
            let store = store.clone();
            async move {
                store
                    .list_jobs(JobFilter { sequence, status })
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|job| job.id)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(list(None, None).await.len(), 3 + 7);
        assert_eq!(
            list(Some(SequenceId(1)), None).await,
            vec![
                JobId::new(SequenceId(1), 0, 0),
                JobId::new(SequenceId(1), 0, 1),
                JobId::new(SequenceId(1), 1, 0)
            ]
        );
        assert_eq!(
            list(Some(SequenceId(2)), Some(JobStatus::Waiting)).await,
            vec![
                JobId::new(SequenceId(2), 1, 0),
                JobId::new(SequenceId(2), 1, 1),
                JobId::new(SequenceId(2), 2, 0)
            ]
        );
        assert_eq!(list(None, Some(JobStatus::Ready)).await.len(), 2 + 4);
        assert!(list(Some(SequenceId(3)), None).await.is_empty());
        // Listed jobs carry their children like get_job.
        let listed = store
            .list_jobs(JobFilter {
                sequence: Some(SequenceId(2)),
                status: None,
            })
            .await
            .unwrap();
        for job in listed {
            assert_eq!(Some(&job), store.get_job(job.id).await.unwrap().as_ref());
        }
    })
    .await;
}

#[tokio::test]
async fn counts_by_status_groups_by_state_and_level() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 4, 2).await;
        prove_next(&store, "p").await;
        lease_expecting(&store, "p", JobId::new(SequenceId(1), 0, 1)).await;
        let count = |status, level, count| StatusCount {
            status,
            level,
            count,
        };
        let mut counts = store.counts_by_status().await.unwrap();
        counts.sort_by_key(|c| (c.level, c.status.as_str()));
        assert_eq!(
            counts,
            vec![
                count(JobStatus::Leased, 0, 1),
                count(JobStatus::Proved, 0, 1),
                count(JobStatus::Ready, 0, 2),
                count(JobStatus::Waiting, 1, 2),
                count(JobStatus::Waiting, 2, 1),
            ]
        );
    })
    .await;
}

#[test]
fn job_ids_and_statuses_parse_only_canonical_forms() {
    let id = JobId::new(SequenceId(12), 3, 45);
    assert_eq!(id.to_string(), "s12-l3-i45");
    assert_eq!("s12-l3-i45".parse::<JobId>().unwrap(), id);
    for bad in [
        "",
        "s12-l3",
        "12-l3-i45",
        "s012-l3-i45",
        "s12-l+3-i45",
        "s1-l2-i3x",
        "sx-l1-i1",
    ] {
        assert!(
            matches!(bad.parse::<JobId>(), Err(InvalidJobId(s)) if s == bad),
            "{bad:?}"
        );
    }
    for status in JobStatus::ALL {
        assert_eq!(status.as_str().parse::<JobStatus>().unwrap(), status);
    }
    assert!(matches!(
        "failed".parse::<JobStatus>(),
        Err(StoreError::InvalidStatus(_))
    ));
}

/// Sequences 1 and 2 of two leaves each (arity 2), every leaf dead after one expired lease.
async fn two_sequences_of_dead_leaves(store: &sheaf_store::Store) -> i64 {
    plan(store, 1, 2, 2).await;
    plan(store, 2, 2, 2).await;
    for _ in 0..4 {
        lease_at(store, "gone", T0).await;
    }
    let expired = store.requeue_expired(T0 + TTL, 1).await.unwrap();
    assert_eq!(expired.dead.len(), 4);
    T0 + TTL
}

#[tokio::test]
async fn requeue_sequence_revives_every_dead_job_of_that_sequence_only() {
    each_engine(|db| async move {
        let store = db.connect().await;
        let now = two_sequences_of_dead_leaves(&store).await;
        let leaf = |sequence, index| JobId::new(SequenceId(sequence), 0, index);
        assert_eq!(
            store
                .requeue_sequence(SequenceId(1), JobStatus::Dead)
                .await
                .unwrap(),
            vec![
                (leaf(1, 0), JobStatus::Ready),
                (leaf(1, 1), JobStatus::Ready)
            ]
        );
        for index in 0..2 {
            let revived = store.get_job(leaf(1, index)).await.unwrap().unwrap();
            assert_eq!((revived.status, revived.attempts), (JobStatus::Ready, 0));
            assert_eq!(status_of(&store, leaf(2, index)).await, JobStatus::Dead);
        }
        let lease = lease_at(&store, "p", now).await;
        assert_eq!(lease.job.sequence, SequenceId(1));
        // None left: nothing to do, no error.
        assert_eq!(
            store
                .requeue_sequence(SequenceId(1), JobStatus::Dead)
                .await
                .unwrap(),
            vec![]
        );
    })
    .await;
}

#[tokio::test]
async fn requeue_sequence_refuses_states_other_than_dead_or_cancelled() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 2, 2).await;
        let lease = lease_at(&store, "p", T0).await;
        for status in [
            JobStatus::Leased,
            JobStatus::Ready,
            JobStatus::Waiting,
            JobStatus::Proved,
        ] {
            let err = store
                .requeue_sequence(SequenceId(1), status)
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::InvalidArgument(_)), "{err:?}");
        }
        assert_eq!(status_of(&store, lease.job).await, JobStatus::Leased);
    })
    .await;
}

#[tokio::test]
async fn requeue_sequence_of_an_unknown_sequence_gives_unknown_sequence() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 2, 2).await;
        let err = store
            .requeue_sequence(SequenceId(5), JobStatus::Dead)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::UnknownSequence(SequenceId(5))),
            "{err:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn counts_by_sequence_count_each_sequences_jobs_per_state() {
    each_engine(|db| async move {
        let store = db.connect().await;
        two_sequences_of_dead_leaves(&store).await;
        store
            .requeue_job(JobId::new(SequenceId(2), 0, 1))
            .await
            .unwrap();
        let counts: Vec<(u64, JobStatus, i64)> = store
            .counts_by_sequence()
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.sequence.get(), c.status, c.count))
            .collect();
        assert_eq!(
            counts,
            [
                (1, JobStatus::Dead, 2),
                (1, JobStatus::Waiting, 1),
                (2, JobStatus::Dead, 1),
                (2, JobStatus::Ready, 1),
                (2, JobStatus::Waiting, 1),
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn prover_activity_counts_live_leases_proofs_and_work_units_per_prover() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 4, 2).await;
        let first = lease_at(&store, "alice", T0).await;
        submit(&store, &first).await;
        let second = lease_at(&store, "alice", T0 + 5).await;
        submit(&store, &second).await;
        let held = lease_at(&store, "bob", T0 + 7).await;
        let expired = store
            .lease_next_job("bob", T0 + 9, 1)
            .await
            .unwrap()
            .unwrap();
        let activity = store.prover_activity(T0 + 10).await.unwrap();
        let names: Vec<&str> = activity.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(names, ["alice", "bob"]);
        let (alice, bob) = (&activity[0], &activity[1]);
        assert_eq!(
            (alice.live_leases, alice.jobs_proved, alice.work_units),
            (0, 2, 2 * reward("alice").work_units)
        );
        assert_eq!(alice.last_seen_ms, Some(T0));
        // One lease live, one past its expiry (not yet swept): only the live one counts.
        assert_eq!(
            (bob.live_leases, bob.jobs_proved, bob.work_units),
            (1, 0, 0)
        );
        assert_eq!(bob.last_seen_ms, Some(T0 + 9));
        assert!(alice.registered.is_none() && bob.registered.is_none());
        assert_ne!(held.job, expired.job);
    })
    .await;
}

#[tokio::test]
async fn rejections_are_counted_per_prover_and_reason_most_frequent_first() {
    each_engine(|db| async move {
        let store = db.connect().await;
        for (prover, reason, at) in [
            ("carol", "stale_lease", T0),
            ("carol", "invalid_proof", T0 + 1),
            ("carol", "invalid_proof", T0 + 2),
            ("dave", "already_proved", T0 + 3),
        ] {
            store.record_rejection(prover, reason, at).await.unwrap();
        }
        let activity = store.prover_activity(T0 + 10).await.unwrap();
        let reasons = |pairs: &[(&str, i64)]| -> Vec<(String, i64)> {
            pairs.iter().map(|(r, n)| (r.to_string(), *n)).collect()
        };
        assert_eq!(activity.len(), 2, "[{}]", db.engine);
        let (carol, dave) = (&activity[0], &activity[1]);
        assert_eq!(carol.id, "carol");
        assert_eq!(
            carol.rejections,
            reasons(&[("invalid_proof", 2), ("stale_lease", 1)])
        );
        assert_eq!(carol.last_seen_ms, Some(T0 + 2));
        assert_eq!(dave.id, "dave");
        assert_eq!(dave.rejections, reasons(&[("already_proved", 1)]));
        assert_eq!(activity[0].jobs_proved, 0);
    })
    .await;
}
