//! Reward claims, the coordinator's side: the tree plan the sender registers, and the
//! claimable jobs served at `GET /v1/claims/{worker_pk}`, whose paths climb to the root
//! commitment at the registered positions.

use std::collections::{HashMap, HashSet};

use sheaf_api::ErrorCode;
use sheaf_chain::settlement::PlannedJob;
use sheaf_circuits::{CircuitSet, Digest, JobInputs, KindCatalog, TreePlan};
use sheaf_coordinator::claims::{ClaimsClient, ClaimsClientError, ClaimsPage, MAX_CLAIMS_LIMIT};
use sheaf_coordinator::{tree_plan, CoordinatorConfig, StaticRegistry};
use sheaf_prover::ProverKey;
use sheaf_store::{JobFilter, JobId, SequenceId, Store};
use sheaf_types::clock::now_ms;

use crate::harness::{prove_until, registered_key, sqlite_store, start, start_with_registry, Net};

/// The plan of sequence `id` as the sender computes it from the stored tree.
pub(crate) async fn plan_of(
    store: &Store,
    circuits: &CircuitSet,
    id: SequenceId,
) -> Vec<(JobId, PlannedJob)> {
    let jobs = store
        .list_jobs(JobFilter {
            sequence: Some(id),
            status: None,
        })
        .await
        .unwrap();
    tree_plan(circuits, id, &jobs).unwrap().jobs
}

/// The plan's jobs are as many as the root's header counts, at distinct positions, and their
/// units add up to the root's.
pub(crate) fn assert_plan_matches_root(
    plan: &[(JobId, PlannedJob)],
    root: &sheaf_circuits::JobStats,
) {
    let units: u64 = plan.iter().map(|(_, job)| job.units).sum();
    assert_eq!(units, root.work_units, "Σ units is the root's work units");
    assert_eq!(
        plan.len() as u64,
        root.leaf_jobs + root.aggregation_jobs,
        "one planned job per job the root counts"
    );
    let positions: HashSet<_> = plan.iter().map(|(_, job)| job.position).collect();
    assert_eq!(positions.len(), plan.len(), "positions are distinct");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_work_sequences_plan_places_each_job_at_its_level_and_index_and_sums_to_the_root() {
    let net = start(vec![], CoordinatorConfig::default()).await;
    let circuits = net.coordinator.circuits_arc();
    let arity = circuits.aggregation.settings().arity;
    let leaves = 5;
    net.coordinator.plan(SequenceId(1), leaves).await.unwrap();
    let plan = plan_of(&net.store, &circuits, SequenceId(1)).await;

    // The root's header, from the work leaves' headers up a regular tree.
    let tree = TreePlan::new(leaves, arity).unwrap();
    let leaf = sheaf_circuits::JobCircuit::Leaf {
        kind: "work".into(),
    };
    let leaf_headers: Vec<_> = (0..leaves as u64)
        .map(|index| {
            let inputs = JobInputs::Work { seed: 1, index };
            circuits
                .expected_header(&leaf, &inputs, &[], Digest::default())
                .unwrap()
        })
        .collect();
    let root = tree.expected_root_header(
        &leaf_headers,
        circuits.aggregation.universal().weight(),
        |_, _| Digest::default(),
    );
    assert_plan_matches_root(&plan, &root.stats);
    let root_level = plan.iter().map(|(job, _)| job.level).max().unwrap();
    for (job, planned) in &plan {
        assert_eq!(planned.position.depth, root_level - job.level, "{job}");
        assert_eq!(planned.position.index, job.index, "{job}");
    }
    net.stop().await;
}

/// Sequence 1 of 3 leaves and sequence 2 of 1 proved by two provers, sequence 1 settled.
async fn settled_net() -> (Net, tempfile::TempDir, [ProverKey; 2]) {
    let keys = [ProverKey::generate(), ProverKey::generate()];
    let (store, dir) = sqlite_store().await;
    let registry = std::sync::Arc::new(StaticRegistry(vec![
        registered_key("alice", &keys[0]),
        registered_key("bob", &keys[1]),
    ]));
    let net = start_with_registry(store, registry, CoordinatorConfig::default()).await;
    net.coordinator.plan(SequenceId(1), 3).await.unwrap();
    net.coordinator.plan(SequenceId(2), 1).await.unwrap();
    prove_until(
        &net,
        &keys,
        KindCatalog::standard(),
        "both sequences",
        || async {
            let mut proved = true;
            for id in [1, 2] {
                let sequence = net.store.get_sequence(SequenceId(id)).await.unwrap();
                proved &= sequence.unwrap().proved_ms.is_some();
            }
            proved
        },
    )
    .await;
    net.store
        .mark_sequences_settled(SequenceId(1), SequenceId(2), now_ms())
        .await
        .unwrap();
    (net, dir, keys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claimable_jobs_are_a_keys_settled_jobs_whose_paths_climb_to_the_root_at_the_planned_positions(
) {
    let (net, _dir, keys) = settled_net().await;
    let root_proof = net
        .store
        .proof_of(net.sequence_one().await.root)
        .await
        .unwrap()
        .unwrap();
    let root = net
        .coordinator
        .circuits()
        .aggregation
        .final_key()
        .verify_bytes(&root_proof)
        .unwrap()
        .header;
    // Sequence 2 is proved too, but not settled: only sequence 1's jobs are listed.
    assert_claims_climb_to_root(&net, &keys, &root).await;
    net.stop().await;
}

/// Every job of sequence 1 (settled, and the only one settled) is listed, paged one a page,
/// for the key that proved it, in tree order, with a path that climbs to `root`'s commitment at
/// the position the sender registers and the planned units.
pub(crate) async fn assert_claims_climb_to_root(
    net: &Net,
    keys: &[ProverKey],
    root: &sheaf_circuits::Header,
) {
    let circuits = net.coordinator.circuits_arc();
    let arity = circuits.aggregation.settings().arity;
    let plan: HashMap<JobId, PlannedJob> = plan_of(&net.store, &circuits, SequenceId(1))
        .await
        .into_iter()
        .collect();
    let rewards = net.rewards_of_sequence_one().await;
    let client = ClaimsClient::new(&net.url).unwrap();
    let mut claimed = 0;
    for key in keys {
        let worker_pk = key.worker_pk();
        // Pages of one, each after the last: every page's cursor leads to the next.
        let mut jobs = Vec::new();
        let mut after = None;
        loop {
            let page: ClaimsPage = client.claimable(worker_pk, after, Some(1)).await.unwrap();
            assert!(page.jobs.len() <= 1);
            jobs.extend(page.jobs);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let expected: Vec<JobId> = rewards
            .iter()
            .filter(|r| r.worker_pk == worker_pk.to_bytes())
            .map(|r| r.job)
            .collect();
        assert_eq!(jobs.iter().map(|j| j.job).collect::<Vec<_>>(), expected);
        for job in &jobs {
            assert_eq!(job.sequence, SequenceId(1));
            assert_eq!(job.root, root.commitment);
            assert_eq!(job.path.worker_pk, worker_pk);
            assert_eq!(
                job.path.root(arity).unwrap(),
                root.commitment,
                "{}",
                job.job
            );
            assert_eq!(job.path.position(arity), plan[&job.job].position);
            assert_eq!(job.position, plan[&job.job].position);
            assert_eq!(job.units, plan[&job.job].units);
        }
        claimed += jobs.len();
    }
    assert_eq!(claimed, plan.len(), "every job is some key's");
}

/// `GET path` refused with `bad_request`.
async fn assert_bad_request(path: &str) {
    let net = start(vec![], CoordinatorConfig::default()).await;
    let answer = net.get(path).await;
    assert_eq!(answer.code(), ErrorCode::BadRequest, "{path}");
    net.stop().await;
}

fn some_worker_pk() -> Digest {
    sheaf_circuits::WorkerSecret::random().worker_pk()
}

#[tokio::test]
async fn claims_refuse_a_malformed_worker_key() {
    assert_bad_request("/v1/claims/not-a-key").await;
}

#[tokio::test]
async fn claims_refuse_a_cursor_that_is_not_a_job_id() {
    assert_bad_request(&format!("/v1/claims/{}?after=s1-l0", some_worker_pk())).await;
}

#[tokio::test]
async fn claims_refuse_a_limit_out_of_range() {
    let key = some_worker_pk();
    for limit in [
        "0".to_owned(),
        (MAX_CLAIMS_LIMIT + 1).to_string(),
        "x".into(),
    ] {
        assert_bad_request(&format!("/v1/claims/{key}?limit={limit}")).await;
    }
}

#[tokio::test]
async fn the_claims_client_reports_a_refusal_with_its_code() {
    let net = start(vec![], CoordinatorConfig::default()).await;
    let client = ClaimsClient::new(&net.url).unwrap();
    let err = client
        .claimable(some_worker_pk(), None, Some(MAX_CLAIMS_LIMIT + 1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClaimsClientError::Refused {
                code: ErrorCode::BadRequest,
                ..
            }
        ),
        "{err}"
    );
    // A key with nothing settled has an empty last page.
    let page = client
        .claimable(some_worker_pk(), None, None)
        .await
        .unwrap();
    assert_eq!(
        page,
        ClaimsPage {
            jobs: vec![],
            next: None
        }
    );
    net.stop().await;
}
