//! The server side of the API: the three namespaces implemented on a shared [`Chain`], served
//! over HTTP by jsonrpsee with the node's body limit (and `GET /healthz`, `/readyz`, `/metrics`
//! answered in front of it, [`super::health`]), and the block ticker beside it.

use std::future::Future;
use std::sync::Arc;

use jsonrpsee::server::{stop_channel, Methods, RpcModule, Server, ServerConfig};
use sha2::{Digest as _, Sha256};
use sheaf_circuits::Digest;
use sheaf_net::{BodyBudget, BODY_BUDGET_WAIT};
use tokio::net::TcpListener;

use super::health::{refusal_shape, Guard, HealthLayer};
use super::{
    codes, ChainApiServer, MembershipApiServer, RpcError, RpcResult, SettlementApiServer,
    MAX_NULLIFIERS_PER_QUERY,
};
use crate::membership::MerkleProof;
use crate::node::{
    AccountView, Block, Chain, Head, MembershipList, MembershipView, ProverRewardsView, Receipt,
    SequenceView, SettlementStatus,
};
use crate::settlement::{Address, FinalizedSequence, SequenceId};
use crate::tx::{SignedTx, TxHash};

/// The API of one node, every namespace.
struct Api(Arc<Chain>);

#[jsonrpsee::core::async_trait]
impl ChainApiServer for Api {
    fn chain_id(&self) -> RpcResult<u64> {
        Ok(self.0.chain_id())
    }

    fn height(&self) -> RpcResult<u64> {
        Ok(self.0.height())
    }

    fn head(&self) -> RpcResult<Head> {
        Ok(self.0.head())
    }

    fn send_transaction(&self, tx: SignedTx) -> RpcResult<TxHash> {
        Ok(self.0.submit(tx)?)
    }

    fn get_receipt(&self, hash: TxHash) -> RpcResult<Option<Receipt>> {
        Ok(self.0.receipt(&hash))
    }

    fn get_account(&self, address: Address) -> RpcResult<AccountView> {
        Ok(self.0.account(&address))
    }

    async fn produce_block(&self, admin_token: Option<String>) -> RpcResult<Block> {
        let config = self.0.config();
        if !config.manual_blocks {
            return Err(RpcError::new(
                codes::METHOD_NOT_FOUND,
                "chain_produceBlock is enabled only with manual blocks",
            ));
        }
        let authorized = match (&config.admin_token, &admin_token) {
            (Some(expected), Some(given)) => tokens_match(expected, given),
            _ => false,
        };
        if !authorized {
            return Err(RpcError::new(
                codes::UNAUTHORIZED,
                "chain_produceBlock needs the node's admin token",
            ));
        }
        let chain = self.0.clone();
        // A block may verify root proofs: off the reactor.
        let block = tokio::task::spawn_blocking(move || chain.produce_block())
            .await
            .map_err(|e| RpcError::new(codes::INTERNAL_ERROR, e.to_string()))??;
        Ok(block)
    }
}

impl SettlementApiServer for Api {
    fn get_sequence(&self, sequence: SequenceId) -> RpcResult<Option<SequenceView>> {
        Ok(self.0.sequence(sequence))
    }

    fn status(&self) -> RpcResult<SettlementStatus> {
        Ok(self.0.settlement_status())
    }

    fn finalized(&self, sequence: SequenceId) -> RpcResult<Option<FinalizedSequence>> {
        Ok(self.0.finalized(sequence))
    }

    fn prover_rewards(&self, sequence: SequenceId) -> RpcResult<Option<ProverRewardsView>> {
        Ok(self.0.prover_rewards(sequence))
    }

    fn nullifiers_spent(&self, nullifiers: Vec<Digest>) -> RpcResult<Vec<bool>> {
        if nullifiers.len() > MAX_NULLIFIERS_PER_QUERY {
            return Err(RpcError::new(
                codes::INVALID_PARAMS,
                format!(
                    "{} nullifiers asked; at most {MAX_NULLIFIERS_PER_QUERY} per call",
                    nullifiers.len()
                ),
            ));
        }
        Ok(self.0.nullifiers_spent(&nullifiers))
    }
}

impl MembershipApiServer for Api {
    fn get(&self, id_commitment: Digest) -> RpcResult<Option<MembershipView>> {
        Ok(self.0.membership(&id_commitment))
    }

    fn root(&self) -> RpcResult<Digest> {
        Ok(self.0.membership_root())
    }

    fn proof(&self, index: u64) -> RpcResult<MerkleProof> {
        self.0
            .membership_proof(index)
            .map_err(|e| RpcError::new(codes::INVALID_PARAMS, e.to_string()))
    }

    fn list(&self) -> RpcResult<MembershipList> {
        Ok(self.0.memberships())
    }
}

/// Whether `given` is `expected`, in time independent of where they differ (and of their
/// lengths: the digests are compared, not the tokens).
fn tokens_match(expected: &str, given: &str) -> bool {
    let (a, b) = (Sha256::digest(expected), Sha256::digest(given));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |diff, (x, y)| diff | (x ^ y))
        == 0
}

/// Every method of the node, ready to serve (or to call in-process, without a socket).
pub fn rpc_module(chain: Arc<Chain>) -> RpcModule<()> {
    let mut module = RpcModule::new(());
    let methods = [
        ChainApiServer::into_rpc(Api(chain.clone())),
        SettlementApiServer::into_rpc(Api(chain.clone())),
        MembershipApiServer::into_rpc(Api(chain)),
    ];
    for namespace in methods {
        module
            .merge(namespace)
            .expect("the namespaces' method names are distinct");
    }
    module
}

/// Serve the JSON-RPC API on `listener` (HTTP only, bodies up to the configured limit, 413
/// above it), with `GET /healthz`, `/readyz` and `/metrics`, and, unless blocks are manual,
/// produce a block every block interval, until `shutdown` resolves; then finish in-flight
/// requests and return. Served by [`sheaf_net::serve`] within the configured limits (connection
/// cap, header and body timeouts, body budget), every refusal a JSON-RPC error
/// ([`super::health::Guard`]).
pub async fn serve(
    chain: Arc<Chain>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = chain.config();
    let limit = u32::try_from(config.max_body_bytes).unwrap_or(u32::MAX);
    let limits = config.serve.clone();
    let budget = BodyBudget::new(
        config.body_budget_bytes.max(config.max_body_bytes),
        BODY_BUDGET_WAIT,
    );
    let address = listener.local_addr()?;
    let server_config = ServerConfig::builder()
        .http_only()
        .max_request_body_size(limit)
        // The serving loop caps connections; jsonrpsee's own cap would only answer 429.
        .max_connections(u32::try_from(limits.max_connections).unwrap_or(u32::MAX))
        .build();
    let services = Server::builder()
        .set_config(server_config)
        .set_http_middleware(
            tower::ServiceBuilder::new()
                .layer(Guard::new(budget, config.max_body_bytes))
                .layer(HealthLayer::new(chain.clone())),
        )
        .to_service_builder();
    let methods: Methods = rpc_module(chain.clone()).into();
    let (stop_handle, _server_handle) = stop_channel();
    let ticker =
        (!chain.config().manual_blocks).then(|| tokio::spawn(chain.clone().produce_blocks()));
    tracing::info!(
        target: "sheaf_chain::rpc",
        %address, manual_blocks = ticker.is_none(), "serving JSON-RPC"
    );
    let served = sheaf_net::serve(
        listener,
        limits,
        refusal_shape(),
        move || services.clone().build(methods.clone(), stop_handle.clone()),
        shutdown,
    )
    .await;
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    served
}
