#!/usr/bin/env bash
# The snapshot format's throughput and memory against the plain shell pipeline (bench/format.bench.ts),
# on the Node.js the other scripts run on. Usage: bench/format.sh [--size GIB] [--runs N]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/lib.sh"
ensure_node
ensure_npm_deps
cd "$ROOT"
exec node --import tsx bench/format.bench.ts "$@"
