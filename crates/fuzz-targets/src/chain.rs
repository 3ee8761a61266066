//! The chain's JSON-RPC handler, called in process with the fuzzed request, and its
//! transaction decoding and signature check.

use std::sync::{Arc, OnceLock};

use ed25519_dalek::SigningKey;
use sheaf_chain::node::{
    Allocation, Chain, ChainConfig, Genesis, Verifier, DEFAULT_MAX_BODY_BYTES,
};
use sheaf_chain::settlement::{RootVerifier, SettlementParams};
use sheaf_chain::tx::{Call, SignedTx};
use sheaf_chain::{rpc_module, Address, Amount, SequenceId};
use sheaf_circuits::{Digest, Header, JobStats};

/// The fuzzed chain's id.
const CHAIN_ID: u64 = 0x5eaf;

/// Most JSON-RPC requests one input sends, one per line, to the same fresh chain (a
/// transaction, then a block, then queries about both).
const MAX_REQUESTS: usize = 8;

/// The fuzzed chain's coordinator key (it registers sequences).
fn coordinator() -> SigningKey {
    SigningKey::from_bytes(&[0xc0; 32])
}

/// A funded account's key.
fn alice() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}

fn address(key: &SigningKey) -> Address {
    Address(key.verifying_key().to_bytes())
}

/// Accepts `b"root" ‖ statement` as a root proof of that statement: the chain's own checks
/// around the verifier are fuzzed, not plonky2 (the receipt-check target does that).
struct StubVerifier;

impl RootVerifier for StubVerifier {
    fn verify(&self, proof: &[u8]) -> Result<Header, String> {
        let statement = proof
            .strip_prefix(b"root")
            .and_then(|rest| <&[u8; 32]>::try_from(rest).ok())
            .and_then(Digest::from_bytes)
            .ok_or("not a root proof")?;
        Ok(Header {
            commitment: Digest([9, 9, 9, 9]),
            worker_pk: Digest([1, 2, 3, 4]),
            stats: JobStats {
                leaf_jobs: 2,
                aggregation_jobs: 1,
                work_units: 10,
            },
            statement,
        })
    }
}

/// A chain in memory with manual blocks: the coordinator and Alice funded, short windows.
fn chain() -> Arc<Chain> {
    let genesis = Genesis {
        chain_id: CHAIN_ID,
        genesis_time_ms: 1_764_547_200_000,
        block_ms: 1_000,
        coordinator: address(&coordinator()),
        allocations: [coordinator(), alice()]
            .iter()
            .map(|k| Allocation {
                address: address(k),
                balance: Amount(1_000_000),
            })
            .collect(),
        settlement: SettlementParams {
            hash_window_blocks: 2,
            proof_window_blocks: 2,
            min_stake: Amount(1_000),
            ..SettlementParams::default()
        },
        ..Genesis::default()
    };
    let config = ChainConfig {
        genesis,
        manual_blocks: true,
        max_mempool_txs: 64,
        ..ChainConfig::default()
    };
    let verifier: Verifier = Box::new(StubVerifier);
    Arc::new(Chain::open(config, verifier).expect("an in-memory chain opens"))
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime starts")
    })
}

/// Up to `MAX_REQUESTS` (8) JSON-RPC requests, one per line, to the RPC module of a fresh chain
/// (as the server hands it a body within its limit): nothing panics, and every request that
/// parses is answered with one JSON-RPC response, a result or an error.
pub fn chain_rpc(data: &[u8]) {
    if data.len() > DEFAULT_MAX_BODY_BYTES {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let module = rpc_module(chain());
    runtime().block_on(async {
        for request in text.split('\n').take(MAX_REQUESTS) {
            let Ok((response, _subscriptions)) = module.raw_json_request(request, 1).await else {
                continue;
            };
            let response: serde_json::Value =
                serde_json::from_str(response.get()).expect("a response is JSON");
            assert_eq!(response["jsonrpc"], "2.0", "{response}");
            assert!(
                response.get("result").is_some() != response.get("error").is_some(),
                "{response}"
            );
        }
    });
}

fn rpc_request(method: &str, params: serde_json::Value) -> String {
    serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string()
}

/// A transfer and a stake deposit from Alice, the next sequence's registration, a block, then
/// every query.
pub fn rpc_seeds() -> Vec<Vec<u8>> {
    let transfer = SignedTx::sign(
        &alice(),
        CHAIN_ID,
        0,
        Call::Transfer {
            to: address(&coordinator()),
            amount: Amount(5),
        },
    );
    let stake = SignedTx::sign(
        &alice(),
        CHAIN_ID,
        1,
        Call::DepositStake {
            amount: Amount(1_000),
        },
    );
    let register = SignedTx::sign(
        &coordinator(),
        CHAIN_ID,
        0,
        Call::RegisterSequence {
            sequence: SequenceId(1),
            statement: Digest([2, 42, 0, 0]),
            jobs: Vec::new(),
        },
    );
    let alice_hex = hex::encode(address(&alice()).0);
    let sends = [transfer, stake, register]
        .iter()
        .map(|tx| rpc_request("chain_sendTransaction", serde_json::json!([tx])))
        .collect::<Vec<_>>()
        .join("\n");
    let block = rpc_request("chain_produceBlock", serde_json::json!([]));
    let queries = [
        rpc_request("chain_getAccount", serde_json::json!([alice_hex])),
        rpc_request("settlement_getSequence", serde_json::json!([1])),
        rpc_request(
            "settlement_nullifiersSpent",
            serde_json::json!([[Digest([1, 2, 3, 4])]]),
        ),
        rpc_request("membership_proof", serde_json::json!([0])),
        rpc_request("chain_getReceipt", serde_json::json!(["00".repeat(32)])),
        rpc_request("chain_head", serde_json::json!([])),
        rpc_request("membership_list", serde_json::json!([])),
        rpc_request("settlement_status", serde_json::json!([])),
    ];
    vec![
        format!("{sends}\n{block}\n{}", queries[..3].join("\n")).into_bytes(),
        queries.join("\n").into_bytes(),
    ]
}

/// A transaction as `chain_sendTransaction` decodes it, and its signature check and hash:
/// nothing panics, a decoded transaction re-encodes to itself, and a valid signature binds the
/// chain id.
pub fn chain_tx(data: &[u8]) {
    if data.len() > DEFAULT_MAX_BODY_BYTES {
        return;
    }
    let Ok(tx) = serde_json::from_slice::<SignedTx>(data) else {
        return;
    };
    let json = serde_json::to_vec(&tx).expect("a transaction encodes");
    let again: SignedTx = serde_json::from_slice(&json).expect("an encoded transaction decodes");
    assert_eq!(again, tx);
    assert_eq!(again.hash(CHAIN_ID), tx.hash(CHAIN_ID));
    if tx.verify(CHAIN_ID) {
        assert!(!tx.verify(CHAIN_ID + 1), "a signature binds its chain");
    }
}

/// Transactions of every shape Alice sends.
pub fn tx_seeds() -> Vec<Vec<u8>> {
    let calls = [
        Call::Transfer {
            to: address(&coordinator()),
            amount: Amount(1 << 70),
        },
        Call::SubmitProofHash {
            sequence: SequenceId(1),
            hash: [7; 32],
        },
        Call::SubmitProof {
            sequence: SequenceId(1),
            proof: b"root".to_vec(),
        },
        Call::Register {
            id_commitment: Digest([1, 2, 3, 4]),
            rate_limit: 10,
            erase_list: vec![Digest([5, 6, 7, 8])],
            possession: b"not a proof".to_vec(),
        },
        Call::Erase {
            ids: vec![Digest::ZERO],
            cleanup: true,
        },
        Call::WithdrawRewards,
    ];
    calls
        .into_iter()
        .enumerate()
        .map(|(nonce, call)| {
            let tx = SignedTx::sign(&alice(), CHAIN_ID, nonce as u64, call);
            serde_json::to_vec(&tx).expect("a transaction encodes")
        })
        .collect()
}
