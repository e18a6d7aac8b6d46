#!/bin/sh
# parity-live.sh - regenerate one reference config with a fresh random seed (tools/make_reference.py,
# torchaudio) and run the parity test on it, so the committed fixtures cannot go stale.
#
# Usage: scripts/parity-live.sh [BUILD_DIR] [CONFIG] [SEED]
#   BUILD_DIR  where test-parity was built (default: build); the binary is BUILD_DIR/tests/test-parity
#   CONFIG     base_like|large_like|odd|utf8|hubert|fp16|bf16 (default: picked from the seed)
#   SEED       default: random; printed, so a failure can be reproduced
# Exit status: 0 on parity, non-zero on any mismatch or error.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
seed=${3:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
configs="base_like large_like odd utf8 hubert fp16 bf16"
if [ -n "${2:-}" ]; then
    config=$2
else
    n=$(echo $configs | wc -w)
    config=$(echo $configs | cut -d' ' -f$((seed % n + 1)))
fi

bin=$build/tests/test-parity
[ -x "$bin" ] || { echo "parity-live: $bin not found (build the test-parity target first)" >&2; exit 2; }
py=/usr/bin/python3   # Debian's python3-torch/torchaudio; pyenv's python3 cannot see them

tmp=$(mktemp -d "${TMPDIR:-/tmp}/parity-live.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

echo "parity-live: config $config seed $seed"
nice "$py" "$root/tools/make_reference.py" --out "$tmp" --seed "$seed" --configs "$config"
"$bin" --dir "$tmp/$config"
