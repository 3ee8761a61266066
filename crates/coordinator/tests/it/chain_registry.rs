//! Admission from the chain's membership registry: a chain node in this process on a loopback
//! port (blocks by hand), a `ChainRegistry` following it over JSON-RPC, and the coordinator over
//! real HTTP and SQLite. Tests move chain time by producing blocks, then `refresh()` the registry
//! and `sweep()` the coordinator, so nothing waits on a timer.

use std::sync::Arc;
use std::time::Duration;

use sheaf_api::{ErrorCode, HelloRequest, HelloResponse, JobAssignment, API_VERSION, PATH_HELLO};
use sheaf_chain::membership::{MembershipParams, MembershipState};
use sheaf_chain::node::{Allocation, Chain, ChainConfig, Genesis};
use sheaf_chain::settlement::RootVerifier;
use sheaf_chain::tx::Call;
use sheaf_chain::ChainClient;
use sheaf_circuits::{Header, PossessionCircuit, WorkerSecret};
use sheaf_coordinator::{
    ChainRegistry, ChainRegistryConfig, CoordinatorConfig, Registry, RegistryError,
};
use sheaf_store::{JobId, JobStatus};
use tokio::sync::oneshot;

use crate::harness::{sqlite_store, start_with_registry, Answer, Net, TestProver};

/// The test chain's admin token (`chain_produceBlock` needs it).
const ADMIN_TOKEN: &str = "registry-test";
use sheaf_types::SequenceId;

/// Genesis time of the test chain, ms.
const GENESIS_MS: u64 = 1_700_000_000_000;
/// Block interval of the test chain: one block is one membership phase.
const BLOCK_MS: u64 = 10_000;
/// Active duration and grace period of new memberships, s: a membership registered in block n is
/// Active at n, in grace at n + 1, Expired from n + 2.
const PHASE_S: u64 = 10;
/// Each prover's genesis balance; deposits cost one unit per message of rate limit.
const BALANCE: u128 = 1_000_000;
/// A poll (and sweep) interval the tests never reach: they refresh and sweep by hand.
const BY_HAND: Duration = Duration::from_secs(3600);
/// Leaves of the sequence each test plans.
const LEAVES: usize = 8;

/// The settlement contract is not used here.
struct NoRootProofs;

impl RootVerifier for NoRootProofs {
    fn verify(&self, _proof: &[u8]) -> Result<Header, String> {
        Err("no root proofs in these tests".into())
    }
}

/// A chain node served on a loopback port until stopped.
struct TestChain {
    client: ChainClient,
    url: String,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestChain {
    /// A chain with manual blocks that funds `provers`.
    async fn start(provers: &[&TestProver]) -> Self {
        let genesis = Genesis {
            genesis_time_ms: GENESIS_MS,
            block_ms: BLOCK_MS,
            allocations: provers
                .iter()
                .map(|p| Allocation {
                    address: sheaf_chain::Address(p.signing.verifying_key().to_bytes()),
                    balance: sheaf_chain::Amount(BALANCE),
                })
                .collect(),
            membership: MembershipParams {
                min_membership_rate_limit: 1,
                active_duration: PHASE_S,
                grace_period: PHASE_S,
                price_per_message: sheaf_chain::Amount(1),
                ..MembershipParams::default()
            },
            ..Genesis::default()
        };
        let config = ChainConfig {
            genesis,
            manual_blocks: true,
            admin_token: Some(ADMIN_TOKEN.into()),
            ..ChainConfig::default()
        };
        let chain = Arc::new(Chain::open(config, Box::new(NoRootProofs)).expect("chain"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(sheaf_chain::serve(chain, listener, async move {
            let _ = stopped.await;
        }));
        TestChain {
            client: ChainClient::new(url.clone()).unwrap(),
            url,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// A client of this chain for a registry to follow it with.
    fn client_for_registry(&self) -> ChainClient {
        ChainClient::new(self.url.clone()).unwrap()
    }

    /// Produce the next block (one membership phase later).
    async fn block(&self) {
        self.client.produce_block(ADMIN_TOKEN).await.expect("block");
    }

    /// Send `call` signed by `prover`, produce its block, and check it succeeded.
    async fn transact(&self, prover: &TestProver, call: Call) {
        let hash = self.client.send(&prover.signing, call).await.expect("send");
        self.block().await;
        let receipt = self.client.receipt(&hash).await.expect("receipt");
        let receipt = receipt.expect("included");
        assert!(receipt.is_ok(), "{:?}", receipt.error);
    }

    /// Register `prover`'s membership (id commitment = its worker_pk) at `rate_limit`.
    async fn register(&self, prover: &TestProver, rate_limit: u32) {
        let call = Call::Register {
            id_commitment: prover.worker.worker_pk(),
            rate_limit,
            erase_list: vec![],
            possession: self.possession(prover, &prover.worker).await,
        };
        self.transact(prover, call).await;
    }

    /// The proof that `holder` knows `worker`'s secret, for `holder`'s account on this chain.
    async fn possession(&self, holder: &TestProver, worker: &WorkerSecret) -> Vec<u8> {
        let chain_id = self.client.chain_id().await.expect("chain id");
        let address = sheaf_chain::Address(holder.signing.verifying_key().to_bytes());
        PossessionCircuit::shared()
            .prove(worker, &address, chain_id)
            .expect("possession proof")
    }

    /// The state of `prover`'s membership at the head.
    async fn state(&self, prover: &TestProver) -> MembershipState {
        let view = self.client.membership(&prover.worker.worker_pk()).await;
        view.expect("membership_get").expect("a membership").state
    }

    /// Stop serving; later calls fail to connect.
    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("chain task").expect("chain server");
        }
    }
}

/// A chain funding `provers`, a registry following it, and a coordinator admitting from it with
/// one sequence planned.
struct Setup {
    chain: TestChain,
    registry: Arc<ChainRegistry>,
    net: Net,
    _dir: tempfile::TempDir,
}

impl Setup {
    async fn new(provers: &[&TestProver], config: ChainRegistryConfig) -> Self {
        let chain = TestChain::start(provers).await;
        let registry = Arc::new(
            ChainRegistry::connect(chain.client_for_registry(), config)
                .await
                .expect("connect"),
        );
        let (store, dir) = sqlite_store().await;
        // The tests sweep by hand, so that a registry change reaches the store when they say.
        let config = CoordinatorConfig {
            sweep_interval: BY_HAND,
            ..CoordinatorConfig::default()
        };
        let net = start_with_registry(store, registry.clone(), config).await;
        net.coordinator
            .plan(SequenceId(1), LEAVES)
            .await
            .expect("plan");
        Setup {
            chain,
            registry,
            net,
            _dir: dir,
        }
    }

    async fn by_hand(provers: &[&TestProver]) -> Self {
        Self::new(
            provers,
            ChainRegistryConfig {
                poll_interval: BY_HAND,
                ..ChainRegistryConfig::default()
            },
        )
        .await
    }

    /// Take in the chain's head now: poll the registry, then sweep it into the store.
    async fn follow(&self) {
        self.registry.refresh().await.expect("refresh");
        self.net.coordinator.sweep().await.expect("sweep");
    }

    async fn hello(&self, prover: &TestProver) -> Answer {
        let body = serde_json::to_vec(&HelloRequest {
            api_version: API_VERSION,
            software: "test".into(),
        })
        .expect("json");
        self.net.post(prover, PATH_HELLO, body).await
    }

    /// Jobs leased now.
    async fn leased(&self) -> i64 {
        let counts = self.net.store.counts_by_status().await.expect("counts");
        counts
            .iter()
            .filter(|c| c.status == JobStatus::Leased)
            .map(|c| c.count)
            .sum()
    }
}

/// The message of an error answer.
fn message(answer: &Answer) -> String {
    let body: sheaf_api::ErrorBody = serde_json::from_slice(&answer.body).expect("error body");
    body.error.message
}

/// The prover id a membership at leaf `index` gets.
fn member_id(index: u32, prover: &TestProver) -> String {
    let worker_pk = prover.worker.worker_pk().to_bytes();
    format!("member-{index}-{}", hex::encode(&worker_pk[..4]))
}

#[tokio::test]
async fn an_active_member_says_hello_and_leases_with_its_rate_limit() {
    let alice = TestProver::new("alice");
    let s = Setup::by_hand(&[&alice]).await;
    s.chain.register(&alice, 5).await;
    s.follow().await;
    assert_eq!(s.chain.state(&alice).await, MembershipState::Active);

    let hello: HelloResponse = s.hello(&alice).await.json();
    assert_eq!(hello.prover, member_id(0, &alice));
    assert_eq!(hello.limits.rate_limit, 5);
    assert_eq!(
        hello.limits.max_concurrent,
        sheaf_coordinator::admission::DEFAULT_MAX_CONCURRENT
    );
    let job: JobAssignment = s.net.lease(&alice).await;
    let stored = s
        .net
        .store
        .get_job(job.job.to_string().parse().unwrap())
        .await
        .unwrap();
    assert_eq!(stored.unwrap().lease_holder, Some(member_id(0, &alice)));
    let key = alice.signing.verifying_key().to_bytes();
    let admitted = s.net.store.prover_by_key(&key).await.unwrap();
    let admitted = admitted.expect("in the store");
    assert_eq!(admitted.worker_pk, alice.worker.worker_pk().to_bytes());
    s.net.stop().await;
}

#[tokio::test]
async fn a_member_in_its_grace_period_still_leases() {
    let alice = TestProver::new("alice");
    let s = Setup::by_hand(&[&alice]).await;
    s.chain.register(&alice, 5).await;
    s.follow().await;
    s.net.lease(&alice).await;
    s.chain.block().await;
    s.follow().await;
    assert_eq!(s.chain.state(&alice).await, MembershipState::GracePeriod);
    s.hello(&alice).await.json::<HelloResponse>();
    s.net.lease(&alice).await;
    assert_eq!(s.leased().await, 2);
    s.net.stop().await;
}

#[tokio::test]
async fn an_expired_member_is_refused_and_its_lease_is_left_alone() {
    let alice = TestProver::new("alice");
    let s = Setup::by_hand(&[&alice]).await;
    s.chain.register(&alice, 5).await;
    s.follow().await;
    let job = s.net.lease(&alice).await;
    s.chain.block().await;
    s.chain.block().await;
    assert_eq!(s.chain.state(&alice).await, MembershipState::Expired);
    let view = s.chain.client.membership(&alice.worker.worker_pk()).await;
    let expired_at = view.unwrap().unwrap().info.expiration_timestamp();
    s.follow().await;
    let key = alice.signing.verifying_key().to_bytes();
    assert_eq!(s.net.store.prover_by_key(&key).await.unwrap(), None);

    let refused = s.net.try_lease(&alice, 0).await;
    assert_eq!(refused.status.as_u16(), 403);
    assert_eq!(refused.code(), ErrorCode::MembershipExpired);
    assert!(
        message(&refused).contains(&format!("expired at chain time {expired_at} s")),
        "{}",
        message(&refused)
    );
    assert_eq!(s.hello(&alice).await.code(), ErrorCode::MembershipExpired);
    // The refusal leased nothing, and the lease taken while active runs its course.
    assert_eq!(s.leased().await, 1);
    let id: JobId = job.job.to_string().parse().unwrap();
    let stored = s.net.store.get_job(id).await.unwrap().unwrap();
    assert_eq!(stored.status, JobStatus::Leased);
    assert_eq!(stored.lease_token, job.token);
    assert_eq!(stored.lease_holder, Some(member_id(0, &alice)));
    s.net.stop().await;
}

#[tokio::test]
async fn an_erased_membership_is_refused_as_not_a_member() {
    let alice = TestProver::new("alice");
    let s = Setup::by_hand(&[&alice]).await;
    s.chain.register(&alice, 5).await;
    s.follow().await;
    s.net.lease(&alice).await;
    // The erase lands in the next block, where the membership is in its grace period: only its
    // holder may erase it then.
    let erase = Call::Erase {
        ids: vec![alice.worker.worker_pk()],
        cleanup: false,
    };
    s.chain.transact(&alice, erase).await;
    assert_eq!(
        s.chain
            .client
            .membership(&alice.worker.worker_pk())
            .await
            .unwrap(),
        None
    );
    s.follow().await;
    let refused = s.net.try_lease(&alice, 0).await;
    assert_eq!(refused.code(), ErrorCode::NotAMember);
    assert!(
        message(&refused).contains("erased"),
        "{}",
        message(&refused)
    );
    assert_eq!(s.leased().await, 1);
    s.net.stop().await;
}

#[tokio::test]
async fn a_key_never_registered_is_refused_as_not_a_member() {
    let alice = TestProver::new("alice");
    let mallory = TestProver::new("mallory");
    let s = Setup::by_hand(&[&alice, &mallory]).await;
    s.chain.register(&alice, 5).await;
    s.follow().await;
    let refused = s.net.try_lease(&mallory, 0).await;
    assert_eq!(refused.status.as_u16(), 403);
    assert_eq!(refused.code(), ErrorCode::NotAMember);
    assert!(
        message(&refused).contains("holds no membership"),
        "{}",
        message(&refused)
    );
    assert_eq!(s.hello(&mallory).await.code(), ErrorCode::NotAMember);
    assert_eq!(s.leased().await, 0);
    s.net.stop().await;
}

#[tokio::test]
async fn a_member_gets_its_rate_limit_of_leases_per_epoch() {
    let alice = TestProver::new("alice");
    let rate_limit = 3;
    let s = Setup::new(
        &[&alice],
        ChainRegistryConfig {
            poll_interval: BY_HAND,
            max_concurrent: LEAVES as i64,
        },
    )
    .await;
    s.chain.register(&alice, rate_limit).await;
    s.follow().await;
    for _ in 0..rate_limit {
        s.net.lease(&alice).await;
    }
    let refused = s.net.try_lease(&alice, 0).await;
    assert_eq!(refused.code(), ErrorCode::RateLimited);
    assert!(refused.retry_after.is_some());
    assert_eq!(s.leased().await, i64::from(rate_limit));
    s.net.stop().await;
}

#[tokio::test]
async fn a_member_admitted_on_chain_but_not_yet_swept_is_told_to_retry() {
    let alice = TestProver::new("alice");
    let s = Setup::by_hand(&[&alice]).await;
    s.chain.register(&alice, 5).await;
    assert!(s.registry.refresh().await.unwrap(), "the admitted set grew");
    let early = s.net.try_lease(&alice, 0).await;
    assert_eq!(early.code(), ErrorCode::Unavailable);
    assert!(early.retry_after.is_some());
    s.net.coordinator.sweep().await.unwrap();
    s.net.lease(&alice).await;
    s.net.stop().await;
}

#[tokio::test]
async fn changed_reports_a_new_admitted_set_until_it_is_read() {
    let alice = TestProver::new("alice");
    let chain = TestChain::start(&[&alice]).await;
    let config = ChainRegistryConfig {
        poll_interval: BY_HAND,
        ..ChainRegistryConfig::default()
    };
    let registry = ChainRegistry::connect(chain.client_for_registry(), config)
        .await
        .unwrap();
    assert!(registry.changed(), "the first set is not read yet");
    assert!(registry.admitted().unwrap().is_empty());
    assert!(!registry.changed());
    chain.block().await;
    assert!(
        !registry.refresh().await.unwrap(),
        "a block changed nothing"
    );
    assert!(!registry.changed());
    assert_eq!(registry.taken_at(), (1, GENESIS_MS + BLOCK_MS));

    chain.register(&alice, 5).await;
    assert!(registry.refresh().await.unwrap());
    assert!(registry.changed());
    let admitted = registry.admitted().unwrap();
    assert_eq!(admitted.len(), 1);
    assert_eq!(admitted[0].id, member_id(0, &alice));
    assert_eq!(admitted[0].rate_limit, 5);
    assert!(!registry.changed());
    // Into its grace period: admitted alike, so nothing changed.
    chain.block().await;
    assert!(!registry.refresh().await.unwrap());
    assert!(!registry.changed());
    // Expired: no longer admitted.
    chain.block().await;
    assert!(registry.refresh().await.unwrap());
    assert!(registry.admitted().unwrap().is_empty());
}

#[tokio::test]
async fn a_holder_with_two_memberships_is_admitted_once_with_the_later_one() {
    let alice = TestProver::new("alice");
    let s = Setup::by_hand(&[&alice]).await;
    s.chain.register(&alice, 5).await;
    let second_worker = WorkerSecret::random();
    let second = second_worker.worker_pk();
    let register = Call::Register {
        id_commitment: second,
        rate_limit: 9,
        erase_list: vec![],
        possession: s.chain.possession(&alice, &second_worker).await,
    };
    s.chain.transact(&alice, register).await;
    s.follow().await;
    let admitted = s.registry.admitted().unwrap();
    assert_eq!(admitted.len(), 1, "one key, one prover");
    assert_eq!(admitted[0].worker_pk, second.to_bytes());
    assert_eq!(admitted[0].rate_limit, 9);
    let hello: HelloResponse = s.hello(&alice).await.json();
    assert_eq!(hello.limits.rate_limit, 9);
    s.net.stop().await;
}

#[tokio::test]
async fn connect_fails_when_the_chain_is_unreachable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let result = ChainRegistry::connect(
        ChainClient::new(url).unwrap(),
        ChainRegistryConfig::default(),
    )
    .await;
    assert!(matches!(result, Err(RegistryError::Chain(_))), "{result:?}");
}

#[tokio::test]
async fn a_failed_poll_keeps_the_last_snapshot() {
    let alice = TestProver::new("alice");
    let mut s = Setup::by_hand(&[&alice]).await;
    s.chain.register(&alice, 5).await;
    s.follow().await;
    s.chain.stop().await;
    let failed = s.registry.refresh().await;
    assert!(matches!(failed, Err(RegistryError::Chain(_))), "{failed:?}");
    assert!(!s.registry.changed());
    let admitted = s.registry.admitted().unwrap();
    assert_eq!(admitted.len(), 1);
    assert_eq!(admitted[0].id, member_id(0, &alice));
    s.net.coordinator.sweep().await.unwrap();
    s.net.lease(&alice).await;
    s.net.stop().await;
}

#[tokio::test]
async fn the_poller_follows_the_chain_without_refresh() {
    let alice = TestProver::new("alice");
    let s = Setup::new(
        &[&alice],
        ChainRegistryConfig {
            poll_interval: Duration::from_millis(20),
            ..ChainRegistryConfig::default()
        },
    )
    .await;
    s.chain.register(&alice, 5).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !s.registry.changed() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the poller did not pick up the registration"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s.net.coordinator.sweep().await.unwrap();
    s.net.lease(&alice).await;
    s.net.stop().await;
}
