//! Admission from the chain's RLNv2 membership registry: who may prove, and at which rate, is
//! what the chain says.
//!
//! ```text
//!  chain ── membership_list {height, timestamp_ms, members} ◀── poll every poll_interval
//!                 │                                              (background task; refresh() now)
//!                 ▼
//!  snapshot: Active and GracePeriod members ──▶ admitted provers, one per holder key
//!            every member by holder key     ──▶ refusal reasons (expired, erased, never)
//!                 │ admitted() whenever changed()
//!                 ▼
//!  sweeper: store.sync_provers ──▶ lease admission: rate_limit per epoch, max_concurrent
//! ```
//!
//! A membership maps to a prover as Sheaf defines it: its `id_commitment` is the prover's
//! `worker_pk` (carried in its proofs), its holder (who sent the registration) is the ed25519 key
//! that signs the prover's requests, and its rate limit is the prover's leases per epoch. States
//! are the chain's, taken at its head block's timestamp: the coordinator's clock plays no part in
//! whether a membership is Active, in grace or Expired.
//!
//! A holder key may hold several memberships; a request names only its key, so one of them is
//! admitted: among its Active and GracePeriod memberships, the one that expires last (the
//! lowest leaf index on a tie). The others are listed on the chain but take no work here.
//!
//! Failure semantics: [`ChainRegistry::connect`] polls once before it returns and fails when
//! that poll fails, so [`Registry::admitted`] never answers before a snapshot exists and never
//! wipes the store's provers with an empty list. Afterwards a failed poll is logged and retried
//! at the next tick; the last snapshot stays, so a chain that is down freezes admission as it
//! was rather than revoking every prover.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sheaf_chain::membership::MembershipState;
use sheaf_chain::node::{Member, MembershipList};
use sheaf_chain::ChainClient;
use sheaf_circuits::Digest;
use sheaf_store::Prover;

use crate::admission::{Refusal, Registry, RegistryError, DEFAULT_MAX_CONCURRENT};
use crate::config::DEFAULT_CHAIN_POLL_INTERVAL;

/// Seconds a prover admitted on the chain but not yet copied into the store is told to wait:
/// the next sweep copies it.
const NOT_YET_LOADED_RETRY_S: u64 = 1;

/// How a [`ChainRegistry`] follows the chain.
#[derive(Clone, Debug)]
pub struct ChainRegistryConfig {
    /// Time between two polls of the membership list.
    pub poll_interval: Duration,
    /// Leases a member may hold at once: the chain sets the rate, not the concurrency.
    pub max_concurrent: i64,
}

impl Default for ChainRegistryConfig {
    fn default() -> Self {
        ChainRegistryConfig {
            poll_interval: DEFAULT_CHAIN_POLL_INTERVAL,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
        }
    }
}

/// A [`Registry`] that follows the chain's membership registry; hand it to the coordinator as
/// `Arc<dyn Registry>`. Polls in a background task until dropped.
#[derive(Debug)]
pub struct ChainRegistry {
    shared: Arc<Shared>,
    poller: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    client: ChainClient,
    max_concurrent: i64,
    /// Held through a whole poll, so an older answer never replaces a newer one.
    polling: tokio::sync::Mutex<()>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    snapshot: Snapshot,
    /// Bumped whenever the admitted set changes.
    generation: u64,
    /// The generation [`Registry::admitted`] last answered with.
    returned: Option<u64>,
    /// Every key ever admitted, with its membership's id commitment: such a key without a
    /// membership now was erased, not never registered.
    once_admitted: HashMap<[u8; 32], Digest>,
}

/// One answer of the chain, as admission reads it.
#[derive(Debug)]
struct Snapshot {
    height: u64,
    timestamp_ms: u64,
    /// Sorted by id, so two snapshots of one set compare equal.
    admitted: Vec<Prover>,
    /// Every membership, Expired ones included, by holder key.
    by_holder: HashMap<[u8; 32], Vec<Member>>,
}

impl ChainRegistry {
    /// Follow the chain that `client` talks to: poll its membership list once now (failing if
    /// that fails), then every `config.poll_interval` in a task on the current tokio runtime.
    pub async fn connect(
        client: ChainClient,
        config: ChainRegistryConfig,
    ) -> Result<Self, RegistryError> {
        let list = client.memberships().await?;
        let snapshot = Snapshot::new(list, config.max_concurrent);
        let once_admitted = snapshot.admitted_keys().collect();
        tracing::info!(
            target: "sheaf::coordinator",
            height = snapshot.height, admitted = snapshot.admitted.len(),
            "following the chain's membership registry"
        );
        let shared = Arc::new(Shared {
            client,
            max_concurrent: config.max_concurrent,
            polling: tokio::sync::Mutex::new(()),
            state: Mutex::new(State {
                snapshot,
                generation: 0,
                returned: None,
                once_admitted,
            }),
        });
        // `interval` panics on a zero period.
        let period = config.poll_interval.max(Duration::from_millis(1));
        let poller = tokio::spawn(poll_forever(shared.clone(), period));
        Ok(ChainRegistry { shared, poller })
    }

    /// Poll the membership list now, without waiting for the next tick; returns whether the
    /// admitted set changed. On failure the last snapshot stays.
    pub async fn refresh(&self) -> Result<bool, RegistryError> {
        self.shared.poll().await
    }

    /// Height and timestamp (ms) of the chain head the current snapshot was taken at.
    pub fn taken_at(&self) -> (u64, u64) {
        let state = self.shared.lock();
        (state.snapshot.height, state.snapshot.timestamp_ms)
    }
}

impl Drop for ChainRegistry {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

impl Registry for ChainRegistry {
    fn admitted(&self) -> Result<Vec<Prover>, RegistryError> {
        let mut state = self.shared.lock();
        state.returned = Some(state.generation);
        Ok(state.snapshot.admitted.clone())
    }

    fn changed(&self) -> bool {
        let state = self.shared.lock();
        state.returned != Some(state.generation)
    }

    fn refusal(&self, public_key: &[u8; 32]) -> Option<Refusal> {
        let state = self.shared.lock();
        let snapshot = &state.snapshot;
        let key = hex::encode(public_key);
        let now_s = snapshot.timestamp_ms / 1000;
        let at = format!("chain block {}, time {now_s} s", snapshot.height);
        let members = snapshot.by_holder.get(public_key);
        if let Some(member) = members.and_then(|m| admissible(m)) {
            // Admitted on the chain, not yet in the store: the next sweep copies it.
            return Some(Refusal::NotLoadedYet {
                message: format!(
                    "membership {} is admitted ({at}) but not loaded yet",
                    member.id_commitment
                ),
                retry_after_s: NOT_YET_LOADED_RETRY_S,
            });
        }
        if let Some(expired) = members.and_then(|m| {
            m.iter()
                .max_by_key(|m| m.membership.info.expiration_timestamp())
        }) {
            let info = &expired.membership.info;
            return Some(Refusal::MembershipExpired(format!(
                "membership {} of key {key} expired at chain time {} s (the end of its grace \
                     period; now {at}): register again",
                expired.id_commitment,
                info.expiration_timestamp()
            )));
        }
        let message = match state.once_admitted.get(public_key) {
            Some(id_commitment) => {
                format!("membership {id_commitment} of key {key} was erased from the chain ({at})")
            }
            None => format!("key {key} holds no membership on the chain ({at})"),
        };
        Some(Refusal::NotAMember(message))
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is replaced whole under the lock, never left half-written.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fetch the membership list and install it; returns whether the admitted set changed.
    async fn poll(&self) -> Result<bool, RegistryError> {
        let _polling = self.polling.lock().await;
        let list = self.client.memberships().await?;
        let snapshot = Snapshot::new(list, self.max_concurrent);
        let mut state = self.lock();
        let changed = snapshot.admitted != state.snapshot.admitted;
        if changed {
            state.generation += 1;
            state.once_admitted.extend(snapshot.admitted_keys());
            tracing::info!(
                target: "sheaf::coordinator",
                height = snapshot.height, admitted = snapshot.admitted.len(),
                "chain membership set changed"
            );
        }
        state.snapshot = snapshot;
        Ok(changed)
    }
}

/// Poll every `period` (the first poll was [`ChainRegistry::connect`]'s), until aborted.
async fn poll_forever(shared: Arc<Shared>, period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = shared.poll().await {
            tracing::warn!(
                target: "sheaf::coordinator",
                error = %e, "membership poll failed; keeping the last snapshot, retrying next tick"
            );
        }
    }
}

impl Snapshot {
    fn new(list: MembershipList, max_concurrent: i64) -> Self {
        let mut by_holder: HashMap<[u8; 32], Vec<Member>> = HashMap::new();
        for member in list.members {
            by_holder
                .entry(member.membership.info.holder.0)
                .or_default()
                .push(member);
        }
        let mut admitted: Vec<Prover> = by_holder
            .values()
            .filter_map(|members| admissible(members))
            .map(|member| prover(member, max_concurrent))
            .collect();
        admitted.sort_by(|a, b| a.id.cmp(&b.id));
        Snapshot {
            height: list.height,
            timestamp_ms: list.timestamp_ms,
            admitted,
            by_holder,
        }
    }

    /// Each admitted holder key with its admitted membership's id commitment.
    fn admitted_keys(&self) -> impl Iterator<Item = ([u8; 32], Digest)> + '_ {
        self.by_holder
            .iter()
            .filter_map(|(key, members)| admissible(members).map(|m| (*key, m.id_commitment)))
    }
}

/// The membership of one holder that admission uses: of its Active and GracePeriod ones, the
/// one that expires last, the lowest leaf index on a tie.
fn admissible(members: &[Member]) -> Option<&Member> {
    members
        .iter()
        .filter(|m| {
            matches!(
                m.membership.state,
                MembershipState::Active | MembershipState::GracePeriod
            )
        })
        .max_by_key(|m| {
            let info = &m.membership.info;
            (info.expiration_timestamp(), Reverse(info.index))
        })
}

/// The prover a membership admits. Its id, `member-<leaf index>-<8 hex of the id commitment>`,
/// is unique among the memberships of one snapshot (leaf indices are) and readable in logs; a
/// leaf index reused by another membership gets another id, so the newcomer does not inherit
/// its predecessor's lease counts.
fn prover(member: &Member, max_concurrent: i64) -> Prover {
    let info = &member.membership.info;
    let worker_pk = member.id_commitment.to_bytes();
    Prover {
        id: format!("member-{}-{}", info.index, hex::encode(&worker_pk[..4])),
        public_key: info.holder.0,
        worker_pk,
        rate_limit: i64::from(info.rate_limit),
        max_concurrent,
    }
}
