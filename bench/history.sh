#!/usr/bin/env bash
# History at scale: reports, daemon memory and restarts after long histories, on a
# release build.
#   bench/history.sh [--real 10000,100000] [--generated 1000000] [--repeat 5] [--keep]
# BATON_BENCH_WORK=DIR keeps the workspaces there (with --keep) instead of a temp dir.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
work=${BATON_BENCH_WORK:-}
if [ -z "$work" ]; then
    work=$(mktemp -d "${TMPDIR:-/tmp}/baton-history.XXXXXX")
    trap 'rm -rf "$work"' EXIT
fi
python3 "$here/history.py" --baton "$repo/target/release/baton" --work "$work" "$@"
