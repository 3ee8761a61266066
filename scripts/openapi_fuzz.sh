#!/usr/bin/env bash
# A schemathesis pass over docs/openapi.yaml against a live `sheaf coordinator` on loopback:
# generated requests (unsigned: the signed operations answer 401, which is documented), every
# answer checked against the document. An extra to the conformance test in
# crates/coordinator/tests/it/openapi.rs, not part of CI.
#
#   pip install schemathesis   # 4.x
#   scripts/openapi_fuzz.sh [path/to/sheaf] [max examples per operation, default 50]
set -euo pipefail
cd "$(dirname "$0")/.."
sheaf="${1:-target/debug/sheaf}"
examples="${2:-50}"
port="${SHEAF_FUZZ_PORT:-17878}"
dir="$(mktemp -d)"
SHEAF_LOG=warn "$sheaf" coordinator --listen "127.0.0.1:$port" --db "sqlite://$dir/s.db" \
    --leaf-rows-log2 5 --cache-dir "${SHEAF_CACHE_DIR:-$dir/cache}" >"$dir/coordinator.log" 2>&1 &
coordinator=$!
trap 'kill "$coordinator" 2>/dev/null; wait "$coordinator" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
    kill -0 "$coordinator" 2>/dev/null || { cat "$dir/coordinator.log"; exit 1; }
    sleep 1
done
schemathesis run docs/openapi.yaml --url "http://127.0.0.1:$port" --checks all \
    --max-examples "$examples" --seed 1
