#!/usr/bin/env bash
# Search benchmarks on a release build: the real corpus in ../shared/corpus and a
# generated tree (default 100,000 files, about 340 MB).
#   bench/search.sh [--files N] [--incremental N]
# Needs python3; installs ripgrep for the comparison when it can; drops the page cache
# for the cold figure when run as root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
corpus="$repo/../shared/corpus/docs-corpus.tar.gz"
[ -f "$corpus" ] || { echo "missing $corpus" >&2; exit 2; }

cargo build --release --quiet --manifest-path "$repo/Cargo.toml" --bin baton --example bare_tantivy
if ! command -v rg >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -qq ripgrep >/dev/null 2>&1 || echo "could not install ripgrep" >&2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 "$here/search.py" --baton "$repo/target/release/baton" \
    --bare "$repo/target/release/examples/bare_tantivy" --corpus "$corpus" --work "$work" "$@"
