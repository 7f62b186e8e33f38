#!/usr/bin/env bash
# The agent's idle RSS and task latency on the real stack, started here on free ports like the tests,
# beside the same figures of the last agent that was a Temporal worker, from a copy of that commit.
# Usage: bench/agent.sh [--tasks N] [--idle-seconds S]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/lib.sh"

# The last commit whose agent was a Temporal worker polling agent-<serverId>; its tree runs unchanged,
# control plane and agent both, against the same services (the stack's variables have not changed).
OLD_DESIGN=08358a8

ensure_node
ensure_npm_deps
ensure_tools
cd "$ROOT"

bench_run_dir

old_args=()
old=$RUN_DIR/old-design
mkdir -p "$old"
# git archive, not a worktree: nothing is left registered in the repository when the run ends.
if git -C "$ROOT" archive "$OLD_DESIGN" 2>/dev/null | tar -x -C "$old"; then
  ln -s "$ROOT/node_modules" "$old/node_modules"
  old_args=(--old-tree "$old" --old-commit "$OLD_DESIGN")
else
  say "commit $OLD_DESIGN is not in this checkout's history: only this agent is measured"
fi

start_test_stack "$RUN_DIR"
node --import tsx bench/agent.bench.ts "${old_args[@]}" "$@"
