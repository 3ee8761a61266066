//! JSON-RPC tests over a real loopback socket: one per rejection, the settlement round trip
//! through `ChainClient`, and the block ticker.

use std::sync::Arc;
use std::time::Duration;

use sheaf_chain::node::{Chain, ChainConfig, Genesis};
use sheaf_chain::rpc::{codes, MAX_NULLIFIERS_PER_QUERY};
use sheaf_chain::settlement::{ClaimEntry, PlannedJob, Position};
use sheaf_chain::tx::{Call, SignedTx, TxHash};
use sheaf_chain::{Address, Amount, SequenceId, WindowPhase};
use sheaf_chain::{ChainClient, ClientError, RpcError};
use sheaf_circuits::claim::{batch_statement, ClaimStatement};
use sheaf_circuits::Digest;
use tokio::sync::oneshot;

use crate::node::{
    addr, alice, bob, commit_zero, config, coordinator, member_id, register_membership,
    register_sequence_zero, reveal_zero, root_proof, stake_minimum, statement, StubVerifier,
    ADMIN_TOKEN, BALANCE, CHAIN_ID, MIN_STAKE, T1,
};

/// A node served on an ephemeral loopback port until the sender is dropped.
pub struct Node {
    pub client: ChainClient,
    pub url: String,
    _stop: oneshot::Sender<()>,
}

pub async fn node(config: ChainConfig) -> Node {
    let chain = Arc::new(Chain::open(config, Box::new(StubVerifier)).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(sheaf_chain::serve(chain, listener, async move {
        let _ = stopped.await;
    }));
    Node {
        client: ChainClient::new(url.clone()).unwrap(),
        url,
        _stop: stop,
    }
}

pub async fn manual_node() -> Node {
    node(config(None)).await
}

/// A node whose own ticker produces a block every `block_ms`.
async fn ticking_node(block_ms: u64) -> Node {
    node(ChainConfig {
        manual_blocks: false,
        genesis: Genesis {
            block_ms,
            ..crate::node::genesis()
        },
        ..config(None)
    })
    .await
}

/// Produces blocks up to the last of the hash phase of sequence 0's window opened at block `f`,
/// checks that the next block opens the proof phase, and sends ALICE's reveal of `proof` for it.
async fn reveal_when_the_proof_phase_opens(c: &ChainClient, f: u64, proof: Vec<u8>) -> TxHash {
    while c.height().await.unwrap() < f + T1 - 1 {
        c.produce_block(ADMIN_TOKEN).await.unwrap();
    }
    let view = c.sequence(SequenceId(0)).await.unwrap().unwrap();
    assert_eq!(
        view.phase,
        Some(WindowPhase::Proof),
        "the next block opens the proof phase"
    );
    c.send(&alice(), reveal_zero(proof)).await.unwrap()
}

fn rpc_error<T: std::fmt::Debug>(result: Result<T, ClientError>) -> RpcError {
    match result {
        Err(ClientError::Rpc(e)) => e,
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
}

/// Post a raw body; returns the JSON answer.
async fn post_raw(url: &str, body: &'static str) -> serde_json::Value {
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

// ---- rejections ----

#[tokio::test]
async fn send_transaction_rejects_a_bad_signature() {
    let n = manual_node().await;
    let mut tx = SignedTx::sign(&alice(), CHAIN_ID, 0, Call::WithdrawRewards);
    tx.signature[0] ^= 1;
    let e = rpc_error(n.client.send_transaction(&tx).await);
    assert_eq!(e.code, codes::BAD_SIGNATURE);
}

#[tokio::test]
async fn send_transaction_rejects_a_replayed_nonce() {
    let n = manual_node().await;
    let tx = SignedTx::sign(&alice(), CHAIN_ID, 0, Call::WithdrawRewards);
    n.client.send_transaction(&tx).await.unwrap();
    n.client.produce_block(ADMIN_TOKEN).await.unwrap();
    let e = rpc_error(n.client.send_transaction(&tx).await);
    assert_eq!(e.code, codes::NONCE_TOO_LOW);
}

#[tokio::test]
async fn rpc_rejects_an_unknown_method() {
    let n = manual_node().await;
    let e = rpc_error(n.client.call::<_, u64>("chain_mine", [0u8; 0]).await);
    assert_eq!(e.code, codes::METHOD_NOT_FOUND);
}

#[tokio::test]
async fn rpc_rejects_malformed_params() {
    let n = manual_node().await;
    let e = rpc_error(
        n.client
            .call::<_, serde_json::Value>("chain_getAccount", ["not hex"])
            .await,
    );
    assert_eq!(e.code, codes::INVALID_PARAMS);
    let e = rpc_error(
        n.client
            .call::<_, serde_json::Value>("settlement_finalized", ["zero"])
            .await,
    );
    assert_eq!(e.code, codes::INVALID_PARAMS);
}

#[tokio::test]
async fn rpc_rejects_a_body_that_is_not_json() {
    let n = manual_node().await;
    let answer = post_raw(&n.url, "{\"jsonrpc\":").await;
    assert_eq!(answer["error"]["code"], codes::PARSE_ERROR);
    let answer = post_raw(
        &n.url,
        "{\"jsonrpc\":\"1.0\",\"method\":\"chain_height\",\"id\":3}",
    )
    .await;
    assert_eq!(answer["error"]["code"], codes::INVALID_REQUEST);
    assert_eq!(answer["id"], 3);
}

#[tokio::test]
async fn membership_proof_rejects_an_index_outside_the_tree() {
    let n = manual_node().await;
    let e = rpc_error(n.client.membership_proof(u64::MAX).await);
    assert_eq!(e.code, codes::INVALID_PARAMS);
    assert_eq!(
        n.client.membership_proof(0).await.unwrap().siblings.len(),
        20
    );
}

#[tokio::test]
async fn produce_block_is_refused_without_manual_blocks() {
    let n = ticking_node(3_600_000).await;
    let e = rpc_error(n.client.produce_block(ADMIN_TOKEN).await);
    assert_eq!(e.code, codes::METHOD_NOT_FOUND);
}

#[tokio::test]
async fn produce_block_is_refused_without_the_admin_token() {
    let n = manual_node().await;
    let e = rpc_error(n.client.produce_block("not-the-token").await);
    assert_eq!(e.code, codes::UNAUTHORIZED);
    let answer = post_raw(
        &n.url,
        r#"{"jsonrpc":"2.0","id":1,"method":"chain_produceBlock","params":[]}"#,
    )
    .await;
    assert_eq!(answer["error"]["code"], codes::UNAUTHORIZED, "{answer}");
    assert_eq!(n.client.height().await.unwrap(), 0, "no block was produced");
    assert_eq!(n.client.produce_block(ADMIN_TOKEN).await.unwrap().number, 1);
}

#[tokio::test]
async fn produce_block_is_refused_on_a_node_without_an_admin_token() {
    let n = node(ChainConfig {
        admin_token: None,
        ..config(None)
    })
    .await;
    let e = rpc_error(n.client.produce_block("").await);
    assert_eq!(e.code, codes::UNAUTHORIZED);
    assert_eq!(n.client.height().await.unwrap(), 0);
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let n = node(ChainConfig {
        max_body_bytes: 1024,
        ..config(None)
    })
    .await;
    let status = reqwest::Client::new()
        .post(&n.url)
        .header("content-type", "application/json")
        .body(vec![b' '; 4096])
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, reqwest::StatusCode::PAYLOAD_TOO_LARGE);
}

// ---- round trips ----

#[tokio::test]
async fn a_sequence_settles_over_rpc() {
    let n = manual_node().await;
    let c = &n.client;
    assert_eq!(c.chain_id().await.unwrap(), CHAIN_ID);
    let register = c
        .send(&coordinator(), register_sequence_zero(statement(0)))
        .await
        .unwrap();
    let deposit = c.send(&alice(), stake_minimum()).await.unwrap();
    let proof = root_proof(0);
    let commit = c
        .send(&alice(), commit_zero(&proof, &alice()))
        .await
        .unwrap();
    assert_eq!(c.receipt(&commit).await.unwrap(), None, "pending");
    let f = c.produce_block(ADMIN_TOKEN).await.unwrap().number;
    for tx in [register, deposit, commit] {
        let receipt = c.receipt(&tx).await.unwrap().unwrap();
        assert!(receipt.is_ok(), "{:?}", receipt.error);
    }
    let view = c.sequence(SequenceId(0)).await.unwrap().unwrap();
    let window = view.window.unwrap();
    assert_eq!(window.opened_at, f);
    assert_eq!(
        view.phase,
        Some(WindowPhase::Hash),
        "at the head's next block"
    );
    let status = c.settlement_status().await.unwrap();
    assert_eq!(status.height, f);
    assert_eq!(status.params.hash_window_blocks, T1);
    assert_eq!(status.coordinator, addr(&coordinator()));
    assert_eq!(
        (
            status.first_sequence,
            status.next_sequence,
            status.next_to_finalize
        ),
        (SequenceId(0), SequenceId(1), SequenceId(0))
    );

    // A reveal in the hash phase is refused in its receipt.
    let early = c.send(&alice(), reveal_zero(proof.clone())).await.unwrap();
    c.produce_block(ADMIN_TOKEN).await.unwrap();
    let receipt = c.receipt(&early).await.unwrap().unwrap();
    assert!(receipt.error.unwrap().contains("opens at block"));

    let reveal = reveal_when_the_proof_phase_opens(c, f, proof).await;
    c.produce_block(ADMIN_TOKEN).await.unwrap();
    let receipt = c
        .wait_for_receipt(&reveal, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(receipt.is_ok(), "{:?}", receipt.error);
    let finalized = c.finalized(SequenceId(0)).await.unwrap().unwrap();
    assert_eq!(finalized.sender, addr(&alice()));
    assert_eq!(finalized.statement, statement(0));
    assert_eq!(c.finalized(SequenceId(1)).await.unwrap(), None);
    assert_eq!(
        c.settlement_status().await.unwrap().next_to_finalize,
        SequenceId(1)
    );

    let account = c.account(&addr(&alice())).await.unwrap();
    assert_eq!(
        account.balance,
        Amount(BALANCE - MIN_STAKE),
        "above u64::MAX"
    );
    assert_eq!(
        (account.stake, account.rewards),
        (Amount(MIN_STAKE), Amount(600))
    );
}

#[tokio::test]
async fn claims_are_paid_to_their_exits_and_served_over_rpc() {
    let n = manual_node().await;
    let c = &n.client;
    // The stub's root: 2 leaf jobs, 1 aggregation job, 10 work units; the rate is 7.
    let jobs = [((0, 0), 6), ((1, 0), 2), ((1, 1), 2)]
        .map(|((depth, index), units)| PlannedJob {
            position: Position { depth, index },
            units,
        })
        .to_vec();
    let register = Call::RegisterSequence {
        sequence: SequenceId(0),
        statement: statement(0),
        jobs,
    };
    c.send(&coordinator(), register).await.unwrap();
    c.send(&alice(), stake_minimum()).await.unwrap();
    let proof = root_proof(0);
    c.send(&alice(), commit_zero(&proof, &alice()))
        .await
        .unwrap();
    let f = c.produce_block(ADMIN_TOKEN).await.unwrap().number;
    let owed = c.prover_rewards(SequenceId(0)).await.unwrap().unwrap();
    assert!(!owed.finalized && !owed.plan_consistent);
    assert_eq!((owed.jobs, owed.owed), (3, Amount::ZERO));
    reveal_when_the_proof_phase_opens(c, f, proof).await;
    c.produce_block(ADMIN_TOKEN).await.unwrap();
    let owed = c.prover_rewards(SequenceId(0)).await.unwrap().unwrap();
    assert!(owed.finalized && owed.plan_consistent);
    assert_eq!(
        (owed.owed, owed.paid, owed.remaining),
        (Amount(70), Amount::ZERO, Amount(70))
    );

    let exit = Address([0xEE; 32]);
    let claims: Vec<ClaimEntry> = [((0, 0), 1), ((1, 1), 2)]
        .map(|((depth, index), n)| ClaimEntry {
            sequence: SequenceId(0),
            position: Position { depth, index },
            nullifier: Digest([n, 0, 0, 0]),
            exit,
        })
        .to_vec();
    let nullifiers: Vec<Digest> = claims.iter().map(|e| e.nullifier).collect();
    assert_eq!(
        c.nullifiers_spent(&nullifiers).await.unwrap(),
        [false, false]
    );
    let root = c
        .finalized(SequenceId(0))
        .await
        .unwrap()
        .unwrap()
        .commitment;
    let statements: Vec<ClaimStatement> = claims
        .iter()
        .map(|e| ClaimStatement {
            root,
            sequence: e.sequence,
            position: e.position,
            nullifier: e.nullifier,
            exit: e.exit,
        })
        .collect();
    let mut claim_proof = b"root".to_vec();
    claim_proof.extend_from_slice(&batch_statement(&statements, 2).unwrap().to_bytes());
    // Anyone may send a batch: the exits are paid, not the sender.
    let tx = c
        .send(
            &bob(),
            Call::ClaimRewards {
                arity: 2,
                claims: claims.clone(),
                proof: claim_proof,
            },
        )
        .await
        .unwrap();
    c.produce_block(ADMIN_TOKEN).await.unwrap();
    let receipt = c.receipt(&tx).await.unwrap().unwrap();
    assert!(receipt.is_ok(), "{:?}", receipt.error);
    assert_eq!(
        c.account(&exit).await.unwrap().balance,
        Amount(6 * 7 + 2 * 7)
    );
    let owed = c.prover_rewards(SequenceId(0)).await.unwrap().unwrap();
    assert_eq!((owed.paid, owed.remaining), (Amount(56), Amount(14)));
    let unspent = Digest([3, 0, 0, 0]);
    assert_eq!(
        c.nullifiers_spent(&[nullifiers[1], unspent, nullifiers[0]])
            .await
            .unwrap(),
        [true, false, true]
    );
    assert_eq!(c.prover_rewards(SequenceId(1)).await.unwrap(), None);
    let too_many = vec![unspent; MAX_NULLIFIERS_PER_QUERY + 1];
    let e = rpc_error(c.nullifiers_spent(&too_many).await);
    assert_eq!(e.code, codes::INVALID_PARAMS);
}

#[tokio::test]
async fn memberships_are_served_with_root_and_path() {
    let n = manual_node().await;
    let c = &n.client;
    let id = member_id(11);
    c.send(&bob(), register_membership(&bob(), 11, 50))
        .await
        .unwrap();
    assert_eq!(c.membership(&id).await.unwrap(), None);
    c.produce_block(ADMIN_TOKEN).await.unwrap();
    let view = c.membership(&id).await.unwrap().unwrap();
    assert_eq!((view.info.holder, view.info.index), (addr(&bob()), 0));
    let root = c.membership_root().await.unwrap();
    let path = c.membership_proof(0).await.unwrap();
    assert!(path.verify(root, view.rate_commitment, 0));
}

#[tokio::test]
async fn membership_list_serves_every_membership_with_its_head() {
    let n = manual_node().await;
    let c = &n.client;
    let empty = c.memberships().await.unwrap();
    assert_eq!(empty.height, 0);
    assert!(empty.members.is_empty());
    let (a, b) = (member_id(11), member_id(12));
    for (key, n) in [(alice(), 11), (bob(), 12)] {
        c.send(&key, register_membership(&key, n, 50))
            .await
            .unwrap();
    }
    c.produce_block(ADMIN_TOKEN).await.unwrap();
    let list = c.memberships().await.unwrap();
    let head = c.head().await.unwrap();
    assert_eq!(
        (list.height, list.timestamp_ms),
        (head.height, head.timestamp_ms)
    );
    let ids: Vec<_> = list.members.iter().map(|m| m.id_commitment).collect();
    assert_eq!(ids, [a, b], "by leaf index");
    for member in &list.members {
        let view = c.membership(&member.id_commitment).await.unwrap();
        assert_eq!(view.as_ref(), Some(&member.membership));
    }
    assert_eq!(list.members[1].membership.info.holder, addr(&bob()));
}

#[tokio::test]
async fn the_ticker_produces_blocks_on_its_own() {
    let n = ticking_node(20).await;
    let hash = n
        .client
        .send(&alice(), Call::WithdrawRewards)
        .await
        .unwrap();
    let receipt = n
        .client
        .wait_for_receipt(&hash, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(receipt.block >= 1);
    assert!(n.client.height().await.unwrap() >= receipt.block);
}

#[tokio::test]
async fn a_real_root_proof_settles_over_rpc_with_a_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("final.key");
    crate::settlement::final_key().write(&key_file).unwrap();
    let key = sheaf_circuits::FinalKey::read(&key_file).unwrap();
    let proof = std::fs::read(crate::settlement::golden("golden_root.proof")).unwrap();
    let meta: crate::settlement::GoldenMeta = serde_json::from_slice(
        &std::fs::read(crate::settlement::golden("golden_root.json")).unwrap(),
    )
    .unwrap();

    let chain = Arc::new(Chain::open(config(Some(dir.path())), Box::new(key)).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let c = ChainClient::new(format!("http://{}", listener.local_addr().unwrap())).unwrap();
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(sheaf_chain::serve(chain, listener, async move {
        let _ = stopped.await;
    }));

    c.send(
        &coordinator(),
        register_sequence_zero(meta.header.statement),
    )
    .await
    .unwrap();
    c.send(&alice(), stake_minimum()).await.unwrap();
    c.send(&alice(), commit_zero(&proof, &alice()))
        .await
        .unwrap();
    let f = c.produce_block(ADMIN_TOKEN).await.unwrap().number;
    let reveal = reveal_when_the_proof_phase_opens(&c, f, proof).await;
    let block = c.produce_block(ADMIN_TOKEN).await.unwrap();
    assert_eq!(block.receipts[0].tx_hash, reveal);
    assert!(block.receipts[0].is_ok(), "{:?}", block.receipts[0].error);
    let finalized = c.finalized(SequenceId(0)).await.unwrap().unwrap();
    assert_eq!(finalized.commitment, meta.header.commitment);
    assert_eq!(finalized.stats, meta.header.stats);
}

#[tokio::test]
async fn an_unreachable_node_is_named_with_its_cause() {
    // A port nobody listens on: the connection is refused, and the error says so.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = ChainClient::new(format!("http://127.0.0.1:{port}")).unwrap();
    let error = client.height().await.unwrap_err();
    assert!(matches!(error, ClientError::Transport(_)), "{error:?}");
    assert!(
        error
            .to_string()
            .to_lowercase()
            .contains("connection refused"),
        "{error}"
    );
}
