#!/usr/bin/env bash
# The README's "Running a network", run literally on loopback: a chain, one fresh PostgreSQL
# database, two coordinator replicas sharing it and the sender key, two provers registered as
# members (one funded at genesis, one by a transfer), settlement of every sequence on chain,
# and `sheaf jobs list`. It checks the outcome, prints what it did, and cleans up on exit.
#
#   scripts/walkthrough.sh                 # the README's figures: 4 sequences of 16 leaves
#   SEQUENCES=1 LEAVES=2 scripts/walkthrough.sh
#
# Environment: SHEAF_BIN (default: target/release/sheaf, else target/debug/sheaf, else `sheaf`
# on PATH), SHEAF_POSTGRES (default postgres://postgres@127.0.0.1:5432; a database
# sheaf_walkthrough_<pid> is created and dropped), SEQUENCES, LEAVES, SHEAF_CHAIN_LISTEN and
# COORDINATOR_1, COORDINATOR_2 (listen addresses), WALKTHROUGH_TIMEOUT_S (default 900), and
# every `sheaf` knob (e.g. SHEAF_BLOCK_MS, SHEAF_LEAF_ROWS_LOG2, SHEAF_CACHE_DIR). The bin/sheaf
# test `walkthrough` runs it with tiny sequences and checks that its `sheaf` lines are the
# README's.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z "${SHEAF_BIN:-}" ]]; then
    for candidate in "$here/target/release/sheaf" "$here/target/debug/sheaf"; do
        if [[ -x "$candidate" ]]; then SHEAF_BIN=$candidate; break; fi
    done
fi
SHEAF_BIN=${SHEAF_BIN:-$(command -v sheaf)}
sheaf() { "$SHEAF_BIN" "$@"; }

SEQUENCES=${SEQUENCES:-4}
LEAVES=${LEAVES:-16}
export SHEAF_CHAIN_LISTEN=${SHEAF_CHAIN_LISTEN:-127.0.0.1:8545}
COORDINATOR_1=${COORDINATOR_1:-127.0.0.1:7878}
COORDINATOR_2=${COORDINATOR_2:-127.0.0.1:7879}
POSTGRES=${SHEAF_POSTGRES:-postgres://postgres@127.0.0.1:5432}
database=sheaf_walkthrough_$$
timeout_s=${WALKTHROUGH_TIMEOUT_S:-900}

CHAIN=http://$SHEAF_CHAIN_LISTEN
DB=$POSTGRES/$database

work=$(mktemp -d)
pids=()
cleanup() {
    local status=$?
    # A background `sheaf …` is the function above in a subshell: stop the process in it too.
    for pid in "${pids[@]}"; do pkill -TERM -P "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    psql -q "$POSTGRES/postgres" -c "DROP DATABASE IF EXISTS $database" >/dev/null 2>&1 || true
    if [[ $status -ne 0 ]]; then
        for log in "$work"/*.log; do echo "==== $log"; tail -n 40 "$log"; done
        echo "walkthrough: FAILED (exit $status)"
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'echo "walkthrough: command failed (exit $?): $BASH_COMMAND" >&2' ERR
step() { echo "walkthrough: $*"; }
fail() { echo "walkthrough: $*" >&2; exit 1; }

# Wait until `probe` succeeds, failing after the deadline or when a background process died.
wait_for() {
    local what=$1; shift
    local start=$SECONDS
    until "$@" >/dev/null 2>&1; do
        for pid in "${pids[@]}"; do
            kill -0 "$pid" 2>/dev/null || fail "a background process ($pid) exited while waiting for $what"
        done
        (( SECONDS - start < timeout_s )) || fail "timed out waiting for $what"
        sleep 0.5
    done
}
rpc() {
    curl -sf -X POST -H 'content-type: application/json' \
        -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$1\",\"params\":[]}" "$CHAIN"
}
finalized_all() { rpc settlement_status | grep -q "\"next_to_finalize\":$((SEQUENCES + 1))[,}]"; }
role_held() { curl -sf "http://$1/metrics" | grep -E '^sheaf_sender_role_held ' | awk '{print $2}'; }

cd "$work"
step "binary $SHEAF_BIN, directory $work, database $DB, chain $CHAIN"
psql -q "$POSTGRES/postgres" -c "CREATE DATABASE $database" >/dev/null

# ---- the README's commands, in its order ----
sheaf export-key --out final.key
sheaf keygen --out coordinator.key
sheaf keygen --out alice.key
sheaf keygen --out bob.key
sheaf genesis --coordinator coordinator.key --fund coordinator.key=50100 --fund alice.key=100 --out genesis.json
sheaf chain --key final.key --genesis genesis.json --data sheaf-chain > chain.log 2>&1 &
pids+=($!)
wait_for "the chain" rpc chain_height
sheaf stake deposit 50000 --chain $CHAIN --key coordinator.key
sheaf member register --chain $CHAIN --key alice.key --rate-limit 600
sheaf transfer --chain $CHAIN --key coordinator.key --to bob.key --amount 50
sheaf member register --chain $CHAIN --key bob.key --rate-limit 600

sheaf coordinator --db $DB --listen $COORDINATOR_1 --chain $CHAIN --sender-key coordinator.key --sequences $SEQUENCES --leaves $LEAVES > coordinator-1.log 2>&1 &
pids+=($!)
wait_for "coordinator 1" curl -sf "http://$COORDINATOR_1/metrics"
sheaf coordinator --db $DB --listen $COORDINATOR_2 --chain $CHAIN --sender-key coordinator.key > coordinator-2.log 2>&1 &
pids+=($!)
wait_for "coordinator 2" curl -sf "http://$COORDINATOR_2/metrics"
sheaf prover --coordinator http://$COORDINATOR_1 --key alice.key > alice.log 2>&1 &
pids+=($!)
sheaf prover --coordinator http://$COORDINATOR_2 --key bob.key > bob.log 2>&1 &
pids+=($!)

step "waiting for $SEQUENCES sequences of $LEAVES leaves to be proved and finalized on chain"
wait_for "every sequence finalized on chain" finalized_all
sheaf jobs list --db $DB
sheaf status --db $DB --chain $CHAIN | tee status.txt
sheaf provers list --db $DB --chain $CHAIN | tee provers.txt
sheaf proof export --db $DB --sequence 1 --out root-1.proof
sheaf verify --key final.key --proof root-1.proof
sheaf claim --chain $CHAIN --coordinator http://$COORDINATOR_1 --key alice.key --to alice.key
# Once more, as JSON: everything alice proved is paid already, so a rerun claims nothing.
sheaf claim --chain $CHAIN --coordinator http://$COORDINATOR_1 --key alice.key --to alice.key --json | tee claim-again.json
# Bob's claim stopped by Ctrl-C a second in, then run again: a batch is one transaction,
# so nothing is half sent, and the rerun claims exactly what the first run did not.
# (the binary itself, not the `sheaf` function, so that $! is the process the signal goes to)
"$SHEAF_BIN" claim --chain $CHAIN --coordinator http://$COORDINATOR_2 --key bob.key --to bob.key --json > claim-bob-1.json 2> claim-bob-1.log &
bob_claim=$!
sleep 1
kill -INT $bob_claim 2>/dev/null || true   # it may be done already
bob_code=0
wait $bob_claim || bob_code=$?
[[ $bob_code -eq 130 || $bob_code -eq 0 ]] || fail "sheaf claim stopped by SIGINT exited $bob_code"
step "bob's first claim stopped by SIGINT (exit $bob_code)"
sheaf claim --chain $CHAIN --coordinator http://$COORDINATOR_2 --key bob.key --to bob.key --json | tee claim-bob-2.json
curl -s http://$COORDINATOR_1/metrics | grep -E '^sheaf_(sender_role_held|settlement)'
curl -s http://$COORDINATOR_2/metrics | grep -E '^sheaf_(sender_role_held|settlement)'
curl -sf http://$COORDINATOR_2/readyz
echo
curl -sf http://$SHEAF_CHAIN_LISTEN/readyz
echo

# ---- the outcome ----
roles="$(role_held "$COORDINATOR_1") $(role_held "$COORDINATOR_2")"
[[ $roles == "1 0" || $roles == "0 1" ]] ||
    fail "sheaf_sender_role_held of the replicas is '$roles', not one sender and one standby"
grep -q "finalized in block" status.txt || fail "sheaf status does not show sequence 1 finalized"
[[ $(grep -c "active" provers.txt) -ge 2 ]] || fail "sheaf provers list does not show both provers as active members"
not_proved=$(sheaf jobs list --db $DB --json | grep -o '"status":"[a-z]*"' | grep -vc '"proved"' || true)
[[ $not_proved -eq 0 ]] || fail "$not_proved jobs are not proved"
field() { grep -o "\"$1\":[0-9]*" "$2" | head -1 | cut -d: -f2; }
[[ $(field claimed claim-again.json) -eq 0 ]] || fail "a second sheaf claim claimed again"
[[ $(field already_claimed claim-again.json) -eq $(field jobs claim-again.json) ]] ||
    fail "sheaf claim left some of alice's jobs unpaid: $(cat claim-again.json)"
(( $(field claimed claim-bob-2.json) + $(field already_claimed claim-bob-2.json) == $(field jobs claim-bob-2.json) )) ||
    fail "bob's rerun did not account for every job of his: $(cat claim-bob-2.json)"
# Alice and Bob proved every job: the chain owes nothing more for any sequence.
for sequence in $(seq 1 "$SEQUENCES"); do
    rewards=$(curl -sf -X POST -H 'content-type: application/json' \
        -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"settlement_proverRewards\",\"params\":[$sequence]}" "$CHAIN")
    grep -q '"remaining":0[,}]' <<<"$rewards" || fail "sequence $sequence still owes its provers: $rewards"
    grep -Eq '"owed":[1-9]' <<<"$rewards" || fail "sequence $sequence owed its provers nothing: $rewards"
done
step "OK: $SEQUENCES sequences of $LEAVES leaves proved (provers alice and bob, members of the chain) through two coordinator replicas and finalized on chain; one replica sent (sheaf_sender_role_held $roles); alice and bob claimed every job's reward, bob's across a SIGINT"
