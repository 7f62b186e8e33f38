#!/usr/bin/env bash
# Shows that the point-in-time proof (tests/integration/backup.test.ts: a live PostgreSQL under a
# stream of money transfers, backed up, restored, audited) can fail once consistency is switched off:
# runs it N times with the environment's backup strategy `none` and counts the failures.
# Usage: bench/consistency-off.sh [N]   (npm run demo:consistency-off)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/lib.sh"
runs=${1:-5}
ensure_node
ensure_npm_deps
ensure_tools
cd "$ROOT"
RUN_DIR=$(mktemp -d /var/tmp/strackt-demo.XXXXXX)
chmod 755 "$RUN_DIR"
LOG_DIR=$RUN_DIR/logs
mkdir -p "$LOG_DIR"
trap 'stop_all; rm -rf "$RUN_DIR"' EXIT
start_test_stack "$RUN_DIR"
failed=0
for i in $(seq "$runs"); do
  if STRACKT_PROOF_STRATEGY=none node --import tsx --test --test-name-pattern 'point-in-time snapshot' \
    tests/integration/backup.test.ts >"$RUN_DIR/run-$i.log" 2>&1; then
    say "run $i: consistent by luck"
  else
    failed=$((failed + 1))
    say "run $i: INCONSISTENT: $(grep -m1 -oE "the ledger service agrees with the bank \([^)]*\)|the money adds up|the transfer log agrees with every balance|timed out after [0-9]+ ms waiting for the restored PostgreSQL[^']*|expected [^']*" "$RUN_DIR/run-$i.log" || echo 'see the test output')"
  fi
done
echo "with backupStrategy none, $failed of $runs restored snapshots failed the audit (freeze: 0, see npm test)"
