#!/usr/bin/env bash
# Runs every test against real services started here on free ports and throw-away data folders
# (a running `start` is left alone), then stops them. Exits non-zero on any failure.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_node
ensure_npm_deps
# The Temporal server too: the TLS test runs one with certificates (start-dev cannot).
ensure_tools temporal-server
# The restore kit's tests run its Python and C tools, as a customer would, against these; the
# receiver makes its self-signed certificate with openssl; the backups page is tested in Debian's chromium;
# file-system snapshots are tested on Btrfs and XFS made on loop devices.
ensure_debian_packages python3-nacl libsodium-dev zstd awscli openssl iproute2 chromium btrfs-progs xfsprogs
cd "$ROOT"

# `npm test -- FILE...` runs just those test files, without the lint (a developer's loop).
if [ $# -eq 0 ]; then
  say "lint: eslint, prettier, tsc..."
  # One command per line: under set -e a failure inside an && list would not stop the script.
  npx eslint --max-warnings 0 .
  npx prettier --check --log-level warn .
  npx tsc --noEmit
  # The page has its own project: DOM types for the browser's code only.
  npx tsc --noEmit -p web
fi

RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/strackt-test.XXXXXX")
# Services in tests run as other users (PostgreSQL as postgres): they must be able to reach their volumes.
chmod 755 "$RUN_DIR"
LOG_DIR=$RUN_DIR/logs
mkdir -p "$LOG_DIR"
cleanup() {
  local rc=$?
  stop_all
  if [ $rc -ne 0 ]; then say "service logs kept in $LOG_DIR"; else rm -rf "$RUN_DIR"; fi
}
trap cleanup EXIT

start_test_stack "$RUN_DIR"

if [ $# -gt 0 ]; then files=("$@"); else mapfile -t files < <(find tests -name '*.test.ts' | sort); fi
say "running ${#files[@]} test files..."
set +e
node --import tsx --test --test-concurrency=1 --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$RUN_DIR/results.tap" "${files[@]}"
rc=$?
set -e
passed=$(sed -n 's/^# pass //p' "$RUN_DIR/results.tap")
failed=$(sed -n 's/^# fail //p' "$RUN_DIR/results.tap")
echo "${passed:-0} passed, ${failed:-0} failed"
exit $rc
