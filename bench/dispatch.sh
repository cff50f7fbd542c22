#!/usr/bin/env bash
# Dispatch latency and burst throughput of the daemon, on a release build.
#   bench/dispatch.sh [--drops N] [--burst M] [--repeat R] [--sandbox on|off|both]
#   (medians of R runs, default 5; agents sandboxed by default, `both` compares)
# Needs python3 and a C compiler; installs inotify-tools for the baseline when it can.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
if ! command -v inotifywait >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -qq inotify-tools >/dev/null 2>&1 || echo "could not install inotify-tools; the baseline is skipped" >&2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -static -o "$work/stamp" "$here/stamp.c" 2>/dev/null \
    || cc -O2 -o "$work/stamp" "$here/stamp.c"
python3 "$here/dispatch.py" --baton "$repo/target/release/baton" --stamp "$work/stamp" --work "$work" "$@"
