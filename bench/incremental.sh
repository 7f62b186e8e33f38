#!/usr/bin/env bash
# Format 2's incremental backups beside restic on the real stack, started here on free ports like the
# tests (bench/incremental.bench.ts says what it measures).
# Usage: bench/incremental.sh [--size GIB] [--rounds N] [--change FRACTION]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/lib.sh"

ensure_node
ensure_npm_deps
ensure_tools
# The baselines: restic and the plain pipeline (zstd, the AWS CLI); PostgreSQL's pgbench changes the data.
ensure_debian_packages restic zstd awscli
cd "$ROOT"

bench_run_dir
start_test_stack "$RUN_DIR"
node --import tsx bench/incremental.bench.ts "$@"
