#!/usr/bin/env bash
# How long a backup holds the services still with each file-system snapshot method, beside freezing
# them for the whole read (bench/hold.bench.ts), on loop-device file systems. Needs root.
# Usage: bench/hold.sh [--size GIB[,GIB...]]   (default 1; `--size 1,10` needs ~13 GiB free in /tmp)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/lib.sh"
ensure_node
ensure_npm_deps
cd "$ROOT"
exec node --import tsx bench/hold.bench.ts "$@"
