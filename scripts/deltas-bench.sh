#!/usr/bin/env bash
# Bytes per delivered event with and without field deltas, in JSON and
# MessagePack, on the default simulated feed and on a LOBSTER replay
# (docs/benchmarks.md, "Field deltas"). Runs the server as its own process
# on 127.0.0.1:18090 and `tickfeed bench --url` against it; each run is
# bounded (10 s + 2 s warm-up) and prints one line.
#
#   TICKFEED_LOBSTER=/path/to/AAPL_..._message_50.csv scripts/deltas-bench.sh [BINARY]
set -euo pipefail
BIN=${1:-target/release/tickfeed}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
run() { # name serve-args... -- bench-args...
  local name=$1; shift
  local serve=(); while [ "$1" != "--" ]; do serve+=("$1"); shift; done; shift
  "$BIN" serve --listen 127.0.0.1:18090 "${serve[@]}" > "$OUT/serve-$name.log" 2>&1 &
  local pid=$!
  for _ in $(seq 50); do curl -sf 127.0.0.1:18090/healthz > /dev/null && break; sleep 0.1; done
  for enc in json msgpack; do
    for deltas in "" "--deltas"; do
      local report="$OUT/$name-$enc${deltas}.json"
      "$BIN" bench --url ws://127.0.0.1:18090/ws --server-pid "$pid" --encoding "$enc" $deltas \
        --duration 10s --warmup 2s --json "$report" "$@" > /dev/null 2>> "$OUT/bench.log"
      python3 - "$name" "$enc" "${deltas:-full}" "$report" <<'PY'
import json, sys
name, enc, mode, path = sys.argv[1:]
report = json.load(open(path))
point = report["points"][0] if "points" in report else report
d, lat = point["delivery"], point.get("latency_fast") or {}
print(f"{name:8} {enc:8} {mode:8} bytes/event {d['bytes_per_event']:6.1f}  events/s {d['events_per_s']:9.0f}  p99 {lat.get('p99_ms', float('nan')):.1f} ms")
PY
    done
  done
  kill "$pid"; wait "$pid" 2> /dev/null || true
}
run simulated -- --clients 200 --symbols 345 --symbols-per-client 10
if [ -n "${TICKFEED_LOBSTER:-}" ]; then
  run lobster --replay "$TICKFEED_LOBSTER" --speed 1 --loop -- --clients 200 --symbols 1 --symbols-per-client 1
else
  echo "lobster: set TICKFEED_LOBSTER to a LOBSTER message file to measure the replay" >&2
fi
