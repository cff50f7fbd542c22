#!/usr/bin/env bash
# `baton ui` on a release build, in headless Chromium (the distribution's, driven by
# playwright-core as the tests drive it):
#   - journal append → the entry in the page's EventSource, p50/p99 (target ≤ 50 ms p99),
#     over briefs dropped with a daemon running;
#   - first paint of the page (now and the feed drawn with data) at 100,000 tasks of
#     history, generated as bench/history.py generates it (target ≤ 300 ms).
#   bench/ui.sh [APPENDS] [TASKS]     (defaults 200, 100000)
# Needs node, /usr/bin/chromium and playwright-core (BATON_TEST_BROWSER, or it is
# installed into target/ci-node as .ci/run does).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
appends=${1:-200}
tasks=${2:-100000}

cargo build --release --quiet --manifest-path "$repo/Cargo.toml" --bin baton
if [ -z "${BATON_TEST_BROWSER:-}" ]; then
    mkdir -p "$repo/target/ci-node"
    cp "$repo/tests/ui/package.json" "$repo/target/ci-node/"
    (cd "$repo/target/ci-node" && npm install --silent --no-audit --no-fund >/dev/null)
    export BATON_TEST_BROWSER="$repo/target/ci-node/node_modules"
fi
exec python3 "$here/ui.py" --baton "$repo/target/release/baton" --appends "$appends" --tasks "$tasks"
