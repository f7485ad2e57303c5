#!/usr/bin/env bash
# The conflation benchmarks of docs/benchmarks.md ("Keep-up and freshness"):
# one scenario per call, the server as its own process on loopback, the
# bench's JSON report kept, one summary line printed. Every run is bounded
# (the server is killed when the bench ends; the bench stops by itself).
#
#   scripts/hostile-bench.sh SCENARIO [SERVER_BINARY] [OUT_DIR]
#
# SCENARIO: w1 | w2 | w1-frame500 | w1-frame500-16k | w1-frame50 |
#           w1-frame50-16k | w1-event50 | w1-burst100 | hot5k | hot20k
# SERVER_BINARY defaults to target/release/tickfeed (so an older build can
# be measured with the same bench); the bench is always
# target/release/tickfeed. DURATION (default 20s) sets the measured window,
# HOT_DURATION (default 600s) that of the hot-symbol runs.
set -euo pipefail
cd "$(dirname "$0")/.."

scenario=${1:?scenario}
server_bin=${2:-target/release/tickfeed}
out=${3:-target/hostile-bench}
bench=target/release/tickfeed
duration=${DURATION:-20s}
hot_duration=${HOT_DURATION:-600s}
port=${PORT:-28080}
mkdir -p "$out"
stamp=$(date +%H%M%S)
json="$out/$scenario-$(basename "$server_bin")-$stamp.json"
url="ws://127.0.0.1:$port/ws"

serve() {
    "$server_bin" serve --listen "127.0.0.1:$port" "$@" >"$out/server-$stamp.log" 2>&1 &
    server_pid=$!
    # The next scenario reuses the port: wait until this server is gone.
    trap 'kill $server_pid 2>/dev/null || true; wait $server_pid 2>/dev/null || true' EXIT
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "server did not start" >&2
    exit 1
}

w1=(--clients 1000 --symbols 1000 --symbols-per-client 10)
slow_w1() { # mode delay [recv buffer]
    serve --rate 20k --symbols 1000 --skew 0 --seed 1
    local extra=()
    [ -n "${3:-}" ] && extra=(--slow-recv-buffer "$3")
    "$bench" bench --url "$url" --server-pid "$server_pid" "${w1[@]}" \
        --slow-fraction 0.01 --slow-mode "$1" --slow-delay "$2" "${extra[@]}" \
        --duration 40s --warmup 0s --json "$json" >/dev/null
}

case "$scenario" in
    w1)
        serve --rate 20k --symbols 1000 --skew 0 --seed 1
        "$bench" bench --url "$url" --server-pid "$server_pid" "${w1[@]}" \
            --duration "$duration" --warmup 5s --json "$json" >/dev/null ;;
    w2)
        serve --rate 20k --symbols 500 --skew 0 --seed 1
        "$bench" bench --url "$url" --server-pid "$server_pid" \
            --clients 5000 --symbols 500 --symbols-per-client 5 \
            --duration "$duration" --warmup 5s --json "$json" >/dev/null ;;
    w1-frame500) slow_w1 frame 500ms ;;
    w1-frame500-16k) slow_w1 frame 500ms 16KiB ;;
    w1-frame50) slow_w1 frame 50ms ;;
    w1-frame50-16k) slow_w1 frame 50ms 16KiB ;;
    w1-event50) slow_w1 event 50ms ;;
    w1-burst100) slow_w1 burst 100ms ;;
    hot5k | hot20k)
        # Readers on the 3 busiest symbols (default skew) beside 200-symbol
        # readers and slow ones, as the issue describes.
        rate=${scenario#hot}
        serve --rate "$rate" --symbols 200 --seed 1
        "$bench" bench --url "$url" --clients 1 --symbols 200 --symbols-per-client 200 \
            --duration "$hot_duration" --warmup 2s --json "$out/$scenario-wide-$stamp.json" >/dev/null &
        wide=$!
        "$bench" bench --url "$url" --server-pid "$server_pid" --clients 20 --symbols 200 \
            --hot-symbols 3 --slow-fraction 0.1 --slow-mode frame --slow-delay 500ms \
            --duration "$hot_duration" --warmup 2s --json "$json" >/dev/null
        wait $wide ;;
    *) echo "unknown scenario $scenario" >&2; exit 2 ;;
esac

jq -r --arg s "$scenario" --arg b "$server_bin" '.points[0] |
  [$s, $b,
   "delivered=\(.delivery.events_per_s|floor)/s",
   "p50=\(.latency_fast.p50_ms)ms", "p99=\(.latency_fast.p99_ms)ms", "max=\(.latency_fast.max_ms)ms",
   "fast_merged=\(.conflation.fast.updates_merged)", "slow_merged=\(.conflation.slow.updates_merged)",
   "slow_after_5s_p99=\(.slow_after_5s.p99_ms // "-")ms", "slow_after_5s_max=\(.slow_after_5s.max_ms // "-")ms",
   "server_cpu=\(.resources.server_cpu_cores // "-")", "server_rss_mib=\((.resources.server_rss_bytes // 0)/1048576|floor)",
   "ev_per_frame=\(.delivery.events_per_frame)", "violations=\(.violations.total)"] | join(" ")' "$json"
