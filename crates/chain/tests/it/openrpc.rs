//! `docs/openrpc.json` against a live node over loopback: every documented method is called
//! (a sequence registered, committed, revealed and finalized, and a membership registered, so
//! the results are not only `null`s), each result validates against the method's result schema with the document's
//! components resolved, each error is a JSON-RPC error object whose code the document lists for
//! the method (or for every method); and the methods the node serves are exactly the documented
//! ones: every documented name is served, every name the RPC sources declare that the node
//! serves is documented, and an undocumented name answers method-not-found.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use sheaf_chain::node::ChainConfig;
use sheaf_chain::rpc::{codes, MAX_NULLIFIERS_PER_QUERY};
use sheaf_chain::tx::{Call, SignedTx};
use sheaf_chain::SequenceId;
use sheaf_circuits::Digest;

use crate::node::{
    addr, alice, bob, commit_zero, config, coordinator, member_id, register_membership,
    register_sequence_zero, reveal_zero, root_proof, sign, stake_minimum, statement, transfer,
    ADMIN_TOKEN, CHAIN_ID, T1, T2,
};
use crate::rpc::{manual_node, node, Node};

/// Where the document is registered for its schemas' references.
const DOCUMENT_URI: &str = "urn:sheaf:openrpc";

/// The document, with what the test has seen each method answer.
struct Doc {
    doc: Value,
    /// The document as a schema resource, so `$ref`s into its components resolve.
    registry: jsonschema::Registry<'static>,
    /// Method → "result" and the error codes seen.
    seen: BTreeMap<String, BTreeSet<String>>,
    http: reqwest::Client,
    url: String,
}

impl Doc {
    fn load(node: &Node) -> Doc {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openrpc.json");
        let text = std::fs::read_to_string(path).expect("docs/openrpc.json");
        let doc: Value = serde_json::from_str(&text).expect("openrpc.json parses");
        let registry = jsonschema::Registry::new()
            .draft(jsonschema::Draft::Draft202012)
            .add(DOCUMENT_URI, doc.clone())
            .and_then(|builder| builder.prepare())
            .expect("the document registers as a schema resource");
        Doc {
            doc,
            registry,
            seen: BTreeMap::new(),
            http: reqwest::Client::new(),
            url: node.url.clone(),
        }
    }

    fn methods(&self) -> Vec<String> {
        self.doc["methods"]
            .as_array()
            .expect("methods")
            .iter()
            .map(|m| m["name"].as_str().expect("a name").to_owned())
            .collect()
    }

    fn method_index(&self, name: &str) -> Option<usize> {
        self.methods().iter().position(|m| m == name)
    }

    /// The codes of a list of error references.
    fn codes(&self, list: &Value) -> BTreeSet<i64> {
        list.as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                let reference = e["$ref"].as_str().expect("errors are references");
                let pointer = reference.trim_start_matches('#');
                self.doc
                    .pointer(pointer)
                    .and_then(|e| e["code"].as_i64())
                    .unwrap_or_else(|| panic!("{reference} has a code"))
            })
            .collect()
    }

    /// A validator of the schema at `pointer`, the document's components resolved.
    fn validator(&self, pointer: &str) -> jsonschema::Validator {
        let schema = json!({"$ref": format!("{DOCUMENT_URI}#{pointer}")});
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .with_registry(&self.registry)
            .build(&schema)
            .unwrap_or_else(|e| panic!("the schema at {pointer} compiles: {e}"))
    }

    /// The raw answer to `method(params)`.
    async fn raw(&self, method: &str, params: Value) -> Value {
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response = self
            .http
            .post(&self.url)
            .json(&request)
            .send()
            .await
            .expect("an answer");
        assert_eq!(
            response.status(),
            200,
            "{method}: a call's answer is HTTP 200"
        );
        response.json().await.expect("a JSON answer")
    }

    /// Call a documented method and check its answer against the document; the answer's result
    /// (`Ok`) or error code (`Err`).
    async fn call(&mut self, method: &str, params: Value) -> Result<Value, i64> {
        let index = self
            .method_index(method)
            .unwrap_or_else(|| panic!("{method} is documented"));
        let answer = self.raw(method, params.clone()).await;
        assert_eq!(answer["jsonrpc"], "2.0", "{method}: {answer}");
        assert_eq!(answer["id"], 1, "{method}: {answer}");
        let seen = self.seen.entry(method.to_owned()).or_default();
        if let Some(result) = answer.get("result") {
            seen.insert("result".into());
            let validator = self.validator(&format!("/methods/{index}/result/schema"));
            let errors: Vec<String> = validator
                .iter_errors(result)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "{method}{params}: the result does not match its schema: {errors:?}\n{result:#}"
            );
            return Ok(result.clone());
        }
        let error = &answer["error"];
        let code = error["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("{method}: {answer}"));
        assert!(error["message"].is_string(), "{method}: {answer}");
        seen.insert(code.to_string());
        let mut documented = self.codes(&self.doc["methods"][index]["errors"]);
        documented.extend(self.codes(&self.doc["x-errors-any-method"]));
        assert!(
            documented.contains(&code),
            "{method}{params}: error {code} is not documented for it: {answer}"
        );
        Err(code)
    }

    async fn send(&mut self, tx: &SignedTx) -> Result<Value, i64> {
        self.call("chain_sendTransaction", json!([tx])).await
    }

    async fn produce_block(&mut self) -> Value {
        self.call("chain_produceBlock", json!([ADMIN_TOKEN]))
            .await
            .expect("a block")
    }
}

/// Every documented method of a live node, with a sequence settled through it.
#[tokio::test]
async fn every_answer_of_a_live_node_matches_the_openrpc_document() {
    let node = manual_node().await;
    let mut d = Doc::load(&node);
    let none = json!([]);
    assert_eq!(
        d.call("chain_chainId", none.clone()).await,
        Ok(json!(CHAIN_ID))
    );
    d.call("chain_height", none.clone()).await.unwrap();
    d.call("chain_head", none.clone()).await.unwrap();
    d.call("settlement_status", none.clone()).await.unwrap();
    d.call("membership_root", none.clone()).await.unwrap();
    d.call("membership_list", none.clone()).await.unwrap();
    d.call("membership_proof", json!([0])).await.unwrap();
    assert_eq!(
        d.call("membership_proof", json!([u64::MAX])).await,
        Err(codes::INVALID_PARAMS.into())
    );
    assert_eq!(
        d.call("membership_get", json!([Digest([1, 2, 3, 4])]))
            .await,
        Ok(Value::Null)
    );
    assert_eq!(
        d.call("chain_getAccount", json!(["not hex"])).await,
        Err(codes::INVALID_PARAMS.into())
    );
    assert_eq!(
        d.call("chain_produceBlock", json!(["not-the-token"])).await,
        Err(codes::UNAUTHORIZED.into())
    );

    // Transactions: a sequence registered, a stake, a commitment, and the refusals.
    let register = sign(&coordinator(), 0, register_sequence_zero(statement(0)));
    let register_hash = d.send(&register).await.unwrap();
    assert_eq!(d.send(&register).await, Err(codes::NONCE_TOO_LOW.into()));
    d.send(&sign(&alice(), 0, stake_minimum())).await.unwrap();
    let proof = root_proof(0);
    d.send(&sign(&alice(), 1, commit_zero(&proof, &alice())))
        .await
        .unwrap();
    assert_eq!(
        d.send(&sign(&bob(), 5, transfer(1))).await,
        Err(codes::NONCE_TOO_HIGH.into())
    );
    let mut forged = sign(&bob(), 0, transfer(1));
    forged.signature[0] ^= 1;
    assert_eq!(d.send(&forged).await, Err(codes::BAD_SIGNATURE.into()));
    let pauper = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    assert_eq!(
        d.send(&SignedTx::sign(&pauper, CHAIN_ID, 0, Call::WithdrawRewards))
            .await,
        Err(codes::UNFUNDED_SENDER.into())
    );
    let join = sign(&bob(), 0, register_membership(&bob(), 1, 100));
    let join_hash = d.send(&join).await.unwrap();
    assert_eq!(
        d.call("chain_getReceipt", json!([register_hash])).await,
        Ok(Value::Null),
        "pending"
    );
    let opened = d.produce_block().await;
    let receipt = d
        .call("chain_getReceipt", json!([register_hash]))
        .await
        .unwrap();
    assert_eq!(receipt["error"], Value::Null, "{receipt}");
    let joined = d
        .call("chain_getReceipt", json!([join_hash]))
        .await
        .unwrap();
    assert_eq!(joined["error"], Value::Null, "{joined}");
    let member = d
        .call("membership_get", json!([member_id(1)]))
        .await
        .unwrap();
    assert_eq!(member["info"]["holder"], json!(addr(&bob())), "{member}");
    let list = d.call("membership_list", json!([])).await.unwrap();
    assert_eq!(list["members"].as_array().map(Vec::len), Some(1), "{list}");
    d.call("chain_getAccount", json!([addr(&alice())]))
        .await
        .unwrap();
    let open = d.call("settlement_getSequence", json!([0])).await.unwrap();
    assert_eq!(open["phase"], "hash", "{open}");
    assert_eq!(
        d.call("settlement_getSequence", json!([99])).await,
        Ok(Value::Null)
    );
    d.call("settlement_proverRewards", json!([0]))
        .await
        .unwrap();
    assert_eq!(
        d.call("settlement_proverRewards", json!([99])).await,
        Ok(Value::Null)
    );
    assert_eq!(
        d.call("settlement_finalized", json!([0])).await,
        Ok(Value::Null)
    );

    // The reveal in the proof phase, and the window closed: finalized.
    let f = opened["number"].as_u64().unwrap();
    while d.call("chain_height", json!([])).await.unwrap() != json!(f + T1 - 1) {
        d.produce_block().await;
    }
    d.send(&sign(&alice(), 2, reveal_zero(proof)))
        .await
        .unwrap();
    for _ in 0..=T2 {
        d.produce_block().await;
    }
    let finalized = d.call("settlement_finalized", json!([0])).await.unwrap();
    assert_eq!(finalized["sender"], json!(addr(&alice())), "{finalized}");
    let settled = d
        .call("settlement_getSequence", json!([SequenceId(0)]))
        .await;
    assert!(settled.unwrap()["finalized"].is_object());

    let spent = d
        .call(
            "settlement_nullifiersSpent",
            json!([[Digest([5, 6, 7, 8])]]),
        )
        .await;
    assert_eq!(spent, Ok(json!([false])));
    let too_many = vec![Digest([5, 6, 7, 8]); MAX_NULLIFIERS_PER_QUERY + 1];
    assert_eq!(
        d.call("settlement_nullifiersSpent", json!([too_many]))
            .await,
        Err(codes::INVALID_PARAMS.into())
    );

    // Every documented method answered a result at least once.
    let without_result: Vec<String> = d
        .methods()
        .into_iter()
        .filter(|m| !d.seen.get(m).is_some_and(|s| s.contains("result")))
        .collect();
    assert!(
        without_result.is_empty(),
        "never answered a result: {without_result:?}"
    );
}

/// The names the node serves, from its answers: a method it does not serve answers
/// method-not-found, whatever its parameters.
#[tokio::test]
async fn the_documented_methods_are_the_methods_the_node_serves() {
    let node = manual_node().await;
    let d = Doc::load(&node);
    let served = |answer: &Value| answer["error"]["code"] != json!(codes::METHOD_NOT_FOUND);
    let documented = d.methods();
    for method in &documented {
        let answer = d.raw(method, json!([])).await;
        assert!(
            served(&answer),
            "{method} is documented, not served: {answer}"
        );
    }
    // Candidates: every method the RPC sources declare, as namespace_name.
    let source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/rpc/mod.rs")).unwrap();
    let mut namespace = "";
    let mut declared = BTreeSet::new();
    for line in source.lines() {
        if let Some(rest) = line.split("namespace = \"").nth(1) {
            namespace = rest.split('"').next().unwrap();
        }
        if let Some(rest) = line.split("#[method(name = \"").nth(1) {
            declared.insert(format!("{namespace}_{}", rest.split('"').next().unwrap()));
        }
    }
    assert!(declared.len() >= documented.len(), "{declared:?}");
    for method in &declared {
        let answer = d.raw(method, json!([])).await;
        if served(&answer) {
            assert!(
                documented.contains(method),
                "{method} is served, not documented"
            );
        }
    }
    for control in [
        "chain_mine",
        "chain_getBlock",
        "eth_chainId",
        "rpc.discover",
        "settlement",
    ] {
        let answer = d.raw(control, json!([])).await;
        assert!(!served(&answer), "{control} is not a method: {answer}");
    }
}

/// Refusals of the request itself (not of a call): each keeps its HTTP status and answers an
/// error object whose code the document lists for every method.
#[tokio::test]
async fn refused_requests_answer_documented_codes() {
    let node = node(ChainConfig {
        max_body_bytes: 1024,
        ..config(None)
    })
    .await;
    let d = Doc::load(&node);
    let any = d.codes(&d.doc["x-errors-any-method"]);
    let http = reqwest::Client::new();
    let cases = [
        (
            reqwest::Method::POST,
            "{\"jsonrpc\":".to_owned(),
            200,
            codes::PARSE_ERROR,
        ),
        (
            reqwest::Method::POST,
            r#"{"jsonrpc":"1.0","method":"chain_height","id":3}"#.to_owned(),
            200,
            codes::INVALID_REQUEST,
        ),
        (
            reqwest::Method::GET,
            String::new(),
            405,
            codes::INVALID_REQUEST,
        ),
        (
            reqwest::Method::POST,
            " ".repeat(4096),
            413,
            codes::REQUEST_TOO_LARGE,
        ),
    ];
    for (method, body, status, code) in cases {
        let response = http
            .request(method.clone(), &node.url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{method}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["code"], code, "{method}: {answer}");
        assert!(answer["error"]["message"].is_string(), "{answer}");
        assert!(any.contains(&code.into()), "{code} is documented");
    }
}
