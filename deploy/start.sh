#!/usr/bin/env bash
# Starts strackt on one machine with embedded defaults: Temporal (persistent SQLite + Web UI), object
# storage, PostgreSQL, the API, the control-plane worker and one local agent. Ctrl-C stops it all.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DATA=${STRACKT_DATA_DIR:-$ROOT/.data}
API_PORT=${API_PORT:-8080}
TEMPORAL_PORT=${STRACKT_TEMPORAL_PORT:-7233}
TEMPORAL_UI_PORT=${STRACKT_TEMPORAL_UI_PORT:-8233}
S3_PORT=${STRACKT_S3_PORT:-7070}
LOG_DIR=$DATA/logs
mkdir -p "$DATA" "$LOG_DIR"

for p in "$API_PORT" "$TEMPORAL_PORT" "$TEMPORAL_UI_PORT" "$S3_PORT"; do
  tcp_open 127.0.0.1 "$p" && die "port $p is already in use (is strackt already running?)"
done

ensure_node
ensure_npm_deps
ensure_tools
# The agent archives with GNU tar; the restore guide (and its test) use the zstd CLI.
ensure_debian_packages tar zstd
trap stop_all EXIT
trap 'echo; say "stopping..."; exit 0' INT TERM

say "starting Temporal (127.0.0.1:$TEMPORAL_PORT, state in $DATA/temporal.db)..."
start_temporal "$TEMPORAL_PORT" "$TEMPORAL_UI_PORT" "$DATA/temporal.db"

# The local stand-in for a customer's bucket; its credentials are made once and kept in the data folder.
if [ ! -f "$DATA/s3.env" ]; then
  (umask 077 && printf 'S3_ACCESS_KEY=%s\nS3_SECRET_KEY=%s\n' "local$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')" \
    "$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')" >"$DATA/s3.env")
fi
source "$DATA/s3.env"
say "starting object storage (versitygw, http://127.0.0.1:$S3_PORT)..."
start_versitygw "$S3_PORT" "$DATA/objects" "$S3_ACCESS_KEY" "$S3_SECRET_KEY"

# The vault's master key seals every team key strackt stores: made once, kept beside the data, never
# replaced here, since a new one would leave every sealed secret unreadable. An operator's own wins.
if [ -z "${VAULT_MASTER_KEY:-}" ] && [ -z "${VAULT_MASTER_KEY_FILE:-}" ]; then
  if [ ! -f "$DATA/vault-master.key" ]; then
    (umask 077 && head -c 32 /dev/urandom | base64 >"$DATA/vault-master.key.tmp" &&
      mv "$DATA/vault-master.key.tmp" "$DATA/vault-master.key")
    say "created the vault master key $DATA/vault-master.key: back it up apart from the database"
  fi
  export VAULT_MASTER_KEY_FILE=$DATA/vault-master.key
fi

ensure_postgres "$DATA"
export DATABASE_URL=${DATABASE_URL:-$PG_BASE_URL/strackt}
# Teams' addresses on private networks are refused, but for the local bucket stand-in (add your own).
export STRACKT_OUTBOUND_ALLOW=${STRACKT_OUTBOUND_ALLOW:-127.0.0.1:$S3_PORT}
export TEMPORAL_ADDRESS=127.0.0.1:$TEMPORAL_PORT TEMPORAL_NAMESPACE=strackt API_PORT STRACKT_DATA_DIR=$DATA
# The backups page links each operation to its workflow in the Temporal UI.
export STRACKT_TEMPORAL_UI_URL=${STRACKT_TEMPORAL_UI_URL:-http://127.0.0.1:$TEMPORAL_UI_PORT}
node --import tsx "$ROOT/db/migrate.main.ts"
node --import tsx "$ROOT/db/bootstrap.main.ts"

say "starting the API, the control-plane worker and the local agent (logs in $LOG_DIR)..."
run_bg api node --import tsx "$ROOT/api/main.ts"
wait_tcp api 127.0.0.1 "$API_PORT" 60 "$LAST_PID"
run_bg worker node --import tsx "$ROOT/worker/control-plane.main.ts"
# The agent runs as on a customer's server: built by deploy/build-agent.mjs.
node "$ROOT/deploy/build-agent.mjs"
STRACKT_API_URL=http://127.0.0.1:$API_PORT STRACKT_AGENT_TOKEN_FILE=$DATA/local-agent.token \
  STRACKT_DATA_ROOT=$DATA/agent-local run_bg agent "$ROOT/.build/agent/strackt-agent"

cat <<EOT

  strackt is running.
    API           http://127.0.0.1:$API_PORT   (OpenAPI: http://127.0.0.1:$API_PORT/openapi.json)
    Backups page  http://127.0.0.1:$API_PORT/app   (sign in with the admin token below)
    Temporal UI   http://127.0.0.1:$TEMPORAL_UI_PORT   (namespace strackt)
    Temporal      127.0.0.1:$TEMPORAL_PORT   e.g. $TEMPORAL_BIN workflow list --address 127.0.0.1:$TEMPORAL_PORT -n strackt
    Object store  http://127.0.0.1:$S3_PORT   (credentials in $DATA/s3.env)
    PostgreSQL    ${DATABASE_URL%%\?*}
    Admin token   $(cat "$DATA/admin.token")   (team "default"; also in $DATA/admin.token)
    Vault key     ${VAULT_MASTER_KEY_FILE:-from VAULT_MASTER_KEY}   (back it up: without it stored team keys are unreadable)

  Try: curl -H "Authorization: Bearer \$(cat $DATA/admin.token)" http://127.0.0.1:$API_PORT/servers
  Ctrl-C stops everything.

EOT

# Any service dying takes the stack down with a pointer to its log, rather than leaving half of it up.
while :; do
  for i in "${!STARTED_PIDS[@]}"; do
    if ! kill -0 "${STARTED_PIDS[$i]}" 2>/dev/null; then
      die "${STARTED_NAMES[$i]} exited; see $LOG_DIR/${STARTED_NAMES[$i]}.log"
    fi
  done
  sleep 1
done
