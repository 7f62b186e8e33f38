#!/usr/bin/env bash
# End-to-end backup or restore benchmark on the real stack, started here on free ports like the tests.
# Usage: bench/e2e.sh backup|restore|receiver [--size GIB] [--runs N]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/lib.sh"
mode=${1:?usage: bench/e2e.sh backup|restore|receiver [--size GIB] [--runs N]}
shift

ensure_node
ensure_npm_deps
ensure_tools
# The baselines: restic, zstd, the AWS CLI for the plain pipeline's upload, curl for its download.
ensure_debian_packages restic zstd awscli curl
# The receiver's baseline: restic over SFTP, to a private OpenSSH server on loopback; GNU time for its RSS.
[ "$mode" != receiver ] || ensure_debian_packages openssh-server openssh-client time
cd "$ROOT"

bench_run_dir
start_test_stack "$RUN_DIR"
node --import tsx bench/e2e.bench.ts --mode "$mode" "$@"
