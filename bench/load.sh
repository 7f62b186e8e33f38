#!/usr/bin/env bash
# What one control plane carries: N environments on 15-minute schedules for a while, on the real
# stack started here on free ports like the tests (bench/load.bench.ts says what it measures).
# Usage: bench/load.sh [--environments N] [--per-agent K] [--minutes M] [--spread S] [--pages P]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/lib.sh"

ensure_node
ensure_npm_deps
ensure_tools
cd "$ROOT"

bench_run_dir
start_test_stack "$RUN_DIR"
node --import tsx bench/load.bench.ts "$@"
