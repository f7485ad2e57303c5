#!/usr/bin/env bash
# The soak: runs the release server under moderate mixed load for a bounded
# time, records RSS, open fds, connections, recent p99 delivery latency and
# events delivered every interval to a CSV, and fails if any of RSS, fds or
# p99 keeps growing (see tests/soak.rs for the load and the thresholds, and
# docs/reliability.md for the last result).
#
#   scripts/soak.sh [--duration 10m] [--interval 10s] [--out soak.csv]
#
# `cargo test -- --ignored` (the long-test step of .ci/run) runs the same
# soak for 60 s; this script is the long run.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=10m
interval=10s
out=soak.csv

usage() {
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --duration) duration="${2:?--duration needs a value like 10m}"; shift 2 ;;
        --duration=*) duration="${1#*=}"; shift ;;
        --interval) interval="${2:?--interval needs a value like 10s}"; shift 2 ;;
        --interval=*) interval="${1#*=}"; shift ;;
        --out) out="${2:?--out needs a file name}"; shift 2 ;;
        --out=*) out="${1#*=}"; shift ;;
        -h|--help) usage 0 ;;
        *) echo "soak.sh: unknown argument $1" >&2; usage 2 ;;
    esac
done

case "${out}" in
    /*) ;;
    *) out="$(pwd)/${out}" ;;
esac

echo "soak: ${duration}, a sample every ${interval}, CSV in ${out}"
TICKFEED_SOAK_DURATION="${duration}" \
TICKFEED_SOAK_INTERVAL="${interval}" \
TICKFEED_SOAK_CSV="${out}" \
    cargo test --release --test soak -- --ignored --nocapture --test-threads=1
