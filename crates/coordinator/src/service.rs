//! Assembling a running coordinator from its parts: the service over a store and circuits, the
//! sequences planned at start, the prover API on a socket with its sweeper, and, when it
//! settles on a chain, the proof sender.
//!
//! ```text
//!  ServiceOptions ── Coordinator::new (registry copied into the store)
//!                 ── plan sequences 1..=n (those planned already are left alone)
//!                 ── bind ── serve (HTTP API + sweeper [+ metrics port]) in a task
//!                 ── ProofSender::connect ── spawn            (with settlement options)
//!  CoordinatorService::stop: end long-polls, finish requests, then give the sender role up
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use sheaf_chain::ChainClient;
use sheaf_circuits::CircuitSet;
use sheaf_store::Store;
use sheaf_types::SequenceId;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::admission::Registry;
use crate::config::CoordinatorConfig;
use crate::coordinator::{Coordinator, StartError};
use crate::rollup::RollupNode;
use crate::{ProofSender, SenderConfig, SenderError, SenderHandle};

/// Everything a coordinator is assembled from.
pub struct ServiceOptions {
    /// The store.
    pub store: Store,
    /// The circuits provers prove with.
    pub circuits: Arc<CircuitSet>,
    /// Rows of the work leaf, as a power of two (told to provers).
    pub leaf_rows_log2: usize,
    /// The service's knobs.
    pub config: CoordinatorConfig,
    /// Who may prove; `None` admits the provers already in the store.
    pub registry: Option<Arc<dyn Registry>>,
    /// Sequences `1..=sequences` are planned at start, of `leaves` work leaves each.
    pub sequences: u64,
    /// Work leaves per planned sequence.
    pub leaves: usize,
    /// Where the prover API listens (port 0: any free port).
    pub listen: SocketAddr,
    /// Where `/metrics`, `/healthz` and `/readyz` listen apart from the prover API; `None`
    /// serves them on the API's port.
    pub metrics_listen: Option<SocketAddr>,
    /// Settle root proofs on a chain; `None` proves without settling.
    pub settlement: Option<SettlementOptions>,
    /// Run a rollup node on the store: take transactions, publish a block every interval;
    /// `None` runs none.
    pub rollup: Option<RollupOptions>,
}

/// How a coordinator runs its rollup node.
pub struct RollupOptions {
    /// The rollup's state at genesis.
    pub genesis: sheaf_rollup::RollupState,
    /// The mempool and the proving trees.
    pub config: crate::rollup::RollupConfig,
    /// How often a block is built from the selected batches (none when none wait).
    pub block_interval: std::time::Duration,
    /// How often the queued transactions are cut into batches.
    pub batch_interval: std::time::Duration,
}

/// How a coordinator settles its sequences on a chain.
pub struct SettlementOptions {
    /// The chain, with the timeout of its calls.
    pub chain: ChainClient,
    /// The coordinator's chain key: registers sequences and sends their proofs.
    pub key: SigningKey,
    /// The sender's schedule.
    pub config: SenderConfig,
}

/// Why a coordinator could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The service, its registry or the planning of a sequence failed.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The prover API's address cannot be bound.
    #[error("listening on {address}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The rollup node could not open over the store.
    #[error("opening the rollup node")]
    Rollup(#[source] crate::rollup::RollupError),
    /// The proof sender could not start on the chain.
    #[error("starting the proof sender on the chain at {url}")]
    Sender {
        /// The chain's URL.
        url: String,
        /// The cause.
        #[source]
        source: SenderError,
    },
}

/// A running coordinator: the prover API served in a task, and the proof sender when it
/// settles.
pub struct CoordinatorService {
    coordinator: Arc<Coordinator>,
    address: SocketAddr,
    metrics_address: Option<SocketAddr>,
    planned: Vec<SequenceId>,
    sender: Option<SenderHandle>,
    blocks: Option<JoinHandle<()>>,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<std::io::Result<()>>,
}

impl std::fmt::Debug for CoordinatorService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoordinatorService")
            .field("address", &self.address)
            .field("settling", &self.sender.is_some())
            .finish()
    }
}

impl CoordinatorService {
    /// Assemble and start a coordinator from `options`.
    pub async fn start(options: ServiceOptions) -> Result<Self, ServiceError> {
        let store = options.store.clone();
        // A port in use is found before any work on the store.
        let listener = bind(options.listen).await?;
        let metrics_listener = match options.metrics_listen {
            Some(address) => Some(bind(address).await?),
            None => None,
        };
        let metrics_address = metrics_listener
            .as_ref()
            .map(|l| l.local_addr())
            .transpose()
            .map_err(|source| ServiceError::Listen {
                address: options.listen,
                source,
            })?;
        let coordinator = Arc::new(
            Coordinator::new(
                options.store,
                options.circuits,
                options.leaf_rows_log2,
                options.config,
                options.registry,
            )
            .await?,
        );
        let mut planned = Vec::new();
        for id in (1..=options.sequences).map(SequenceId) {
            if coordinator.plan(id, options.leaves).await? {
                planned.push(id);
            }
        }
        let address = listener
            .local_addr()
            .map_err(|source| ServiceError::Listen {
                address: options.listen,
                source,
            })?;
        let sender = match options.settlement {
            Some(settlement) => Some(start_sender(&coordinator, settlement).await?),
            None => None,
        };
        let blocks = match options.rollup {
            Some(rollup) => {
                let node = RollupNode::open(store, rollup.genesis, rollup.config)
                    .await
                    .map_err(ServiceError::Rollup)?;
                coordinator.attach_rollup(node.clone());
                Some(tokio::spawn(produce_blocks(
                    coordinator.clone(),
                    node,
                    rollup.batch_interval,
                    rollup.block_interval,
                )))
            }
            None => None,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(crate::serve_with_metrics(
            coordinator.clone(),
            listener,
            metrics_listener,
            async {
                let _ = stopped.await;
            },
        ));
        Ok(CoordinatorService {
            coordinator,
            address,
            metrics_address,
            planned,
            sender,
            blocks,
            stop: Some(stop),
            server,
        })
    }

    /// The service.
    pub fn coordinator(&self) -> &Arc<Coordinator> {
        &self.coordinator
    }

    /// Where the prover API listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Where `/metrics` listens apart from the prover API, if it does.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics_address
    }

    /// The prover API's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The live console's URL (`/ui` on the prover API's port).
    pub fn console_url(&self) -> String {
        format!("{}{}", self.url(), crate::console::PATH_UI)
    }

    /// The sequences this start planned (those planned before are not listed).
    pub fn planned(&self) -> &[SequenceId] {
        &self.planned
    }

    /// Stop settling: the sender's tasks end and its role is given up (whatever it stored is
    /// picked up by whoever sends next). Proving goes on.
    pub async fn stop_settling(&mut self) {
        if let Some(blocks) = self.blocks.take() {
            // A publication cut short is a store transaction rolled back: the block is not
            // published, and its transactions wait for the next start.
            blocks.abort();
        }
        if let Some(sender) = self.sender.take() {
            sender.stop().await;
        }
    }

    /// Serve until `shutdown` resolves (or the server fails), then stop.
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        tokio::select! {
            _ = shutdown => self.stop().await,
            ended = &mut self.server => {
                self.stop_settling().await;
                ended.unwrap_or_else(|e| Err(std::io::Error::other(e)))
            }
        }
    }

    /// End long-polls, finish in-flight requests, then give the sender role up so a standby
    /// replica takes it at once rather than after its lease.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = (&mut self.server)
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        self.stop_settling().await;
        served
    }
}

/// The batch interval cuts the queued transactions into batches; the block interval builds a
/// block from the selected batches and publishes it with its proving tree, then wakes the
/// provers. A failure is logged and the next tick tries again (the node rebuilt itself from the
/// store).
async fn produce_blocks(
    coordinator: Arc<Coordinator>,
    node: Arc<RollupNode>,
    batch_interval: std::time::Duration,
    block_interval: std::time::Duration,
) {
    let mut batches = tokio::time::interval(batch_interval);
    let mut blocks = tokio::time::interval(block_interval);
    for tick in [&mut batches, &mut blocks] {
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
    }
    loop {
        tokio::select! {
            _ = batches.tick() => {
                node.select_batches().await;
                continue;
            }
            _ = blocks.tick() => {}
        }
        let now = u64::try_from(sheaf_types::clock::now_ms()).unwrap_or(0);
        match node.build_and_publish(now).await {
            Ok(Some(_)) => coordinator.jobs_added(),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(target: "sheaf::rollup", error = %e, "building a block failed; retrying at the next tick")
            }
        }
    }
}

async fn bind(address: SocketAddr) -> Result<tokio::net::TcpListener, ServiceError> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| ServiceError::Listen { address, source })
}

async fn start_sender(
    coordinator: &Coordinator,
    settlement: SettlementOptions,
) -> Result<SenderHandle, ServiceError> {
    let role_ttl = settlement.config.role_ttl;
    let sender = ProofSender::connect(
        coordinator.store().clone(),
        coordinator.circuits_arc(),
        settlement.chain.clone(),
        settlement.key,
        settlement.config,
    )
    .await
    .map_err(|source| ServiceError::Sender {
        url: settlement.chain.url().to_owned(),
        source,
    })?;
    // Ready while the chain answers the sender within its role's lease: the rule by which
    // the sender keeps the role.
    coordinator.watch_chain(sender.chain_contact(), role_ttl);
    coordinator
        .console()
        .watch_chain(crate::console::ConsoleChain {
            client: settlement.chain.clone(),
            sender: sender.address(),
        });
    metrics::gauge!(crate::metrics::SETTLEMENT_CONFIGURED).set(1.0);
    Ok(sender.spawn())
}
