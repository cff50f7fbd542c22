#!/usr/bin/env bash
# `baton mcp` tool-call round trips over stdio, on a release build, from rmcp's client
# (bench/mcp_rtt.rs), beside a bare rmcp server answering a constant (bench/bare_mcp.rs)
# from the same client:
#   read_file of a small file, list_files over 10,000 files (one page of 200),
#   search_files over the real corpus (../shared/corpus), with and without a daemon,
#   and write_file → the subscribed resource's update notification.
#   bench/mcp.sh [CALLS]            (default 1000)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
corpus="$repo/../shared/corpus/docs-corpus.tar.gz"
[ -f "$corpus" ] || { echo "missing $corpus" >&2; exit 2; }
calls=${1:-1000}

cargo build --release --quiet --manifest-path "$repo/Cargo.toml" --bin baton --example bare_mcp --example mcp_rtt
baton="$repo/target/release/baton"
rtt="$repo/target/release/examples/mcp_rtt"
bare="$repo/target/release/examples/bare_mcp"
work=$(mktemp -d)
trap '"$baton" -w "$work/corpus" stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

workspace() {
    mkdir -p "$1"
    printf '[workspace]\nstages = ["briefs", "drafts"]\n' > "$1/baton.toml"
    mkdir -p "$1/briefs" "$1/drafts"
}
workspace "$work/files"
echo "a small file, for read_file" > "$work/files/drafts/small.md"
mkdir -p "$work/files/drafts/many"
for d in $(seq 0 99); do
    mkdir -p "$work/files/drafts/many/$d"
    for f in $(seq 0 99); do echo "file $d/$f" > "$work/files/drafts/many/$d/$f.md"; done
done
"$baton" -w "$work/files" index >/dev/null 2>&1
workspace "$work/corpus"
tar -xzf "$corpus" -C "$work/corpus/drafts"
"$baton" -w "$work/corpus" index >/dev/null 2>&1

row() { printf '%-52s %9s %9s  %s\n' "$1" "$2" "$3" "$4"; }
measure() { # label target calls tool args server…
    local label=$1 target=$2 n=$3 tool=$4 args=$5
    shift 5
    read -r p50 p99 < <("$rtt" "$n" "$tool" "$args" -- "$@")
    row "$label" "$p50" "$p99" "$target"
}

echo "baton mcp round trips, $calls calls each (first tenth more as warm-up), $(date -u +%F)"
row "tool call" "p50 ms" "p99 ms" "target"
measure "bare rmcp server, constant" "" "$calls" constant '{}' "$bare"
measure "read_file, small file" "p50 ≤ 1 ms, ≤ 2× bare" "$calls" read_file '{"path":"drafts/small.md"}' "$baton" -w "$work/files" mcp
measure "list_files, 10,000 files (a page of 200)" "" "$((calls / 10))" list_files '{}' "$baton" -w "$work/files" mcp
measure "search_files, corpus, no daemon (catches up first)" "" "$((calls / 5))" search_files '{"query":"ownership"}' "$baton" -w "$work/corpus" mcp
"$baton" -w "$work/corpus" run >"$work/daemon.log" 2>&1 &
for _ in $(seq 100); do grep -q "daemon started" "$work/daemon.log" 2>/dev/null && break; sleep 0.1; done
measure "search_files, corpus, daemon running" "p50 ≤ 10 ms" "$calls" search_files '{"query":"ownership"}' "$baton" -w "$work/corpus" mcp
measure "search_files, corpus, phrase, daemon running" "p50 ≤ 10 ms" "$calls" search_files '{"query":"\"mutable reference\""}' "$baton" -w "$work/corpus" mcp
read -r p50 p99 < <("$rtt" --notify "$((calls / 5))" drafts/watched.md -- "$baton" -w "$work/files" mcp)
row "write_file → its resources/updated notification" "$p50" "$p99" "≤ 100 ms"
