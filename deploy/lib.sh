# Shared by deploy/start.sh, deploy/test.sh and the bench/ scripts: install what is missing, start
# and stop the services.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STARTED_PIDS=()
STARTED_NAMES=()
PRIVATE_PG_DIR=""

say() { echo "[strackt] $*" >&2; }
die() {
  echo "[strackt] error: $*" >&2
  exit 1
}

# ensure_node: a Node.js of the major pinned in deploy/node-version (or newer) first on PATH: the
# machine's own if it is one, else the pinned release, installed once per machine by deploy/node.sh.
# Everything after it (npm and npx included, whose scripts run on the node on PATH) runs on that one.
ensure_node() {
  local want have dir
  want=$(sed -n 's/^version //p' "$ROOT/deploy/node-version")
  have=$(node -p process.versions.node 2>/dev/null || true)
  if [ -n "$have" ] && [ "${have%%.*}" -ge "${want%%.*}" ]; then return 0; fi
  dir=$(bash "$ROOT/deploy/node.sh") || die "could not install Node.js $want (see above)"
  export PATH="$dir/bin:$PATH"
  # node-gyp (npm ci builds zstd-napi) then compiles against this release's headers, not those of
  # the machine's Node.js (an npmrc's nodedir) nor a download from nodejs.org.
  export npm_config_nodedir=$dir
  say "Node.js $want from $dir (this machine's is ${have:-missing})"
}

ensure_npm_deps() {
  cd "$ROOT"
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    # A checkout sharing another's packages (a linked node_modules, as in a second worktree) must not
    # reinstall them: npm ci empties the folder first, under every checkout that uses it.
    [ -L node_modules ] && die "node_modules is a link to $(readlink -f node_modules) and does not match package-lock.json: install there"
    say "installing npm dependencies (npm ci)..."
    npm ci --no-audit --no-fund --loglevel=error >&2
  fi
}

# ensure_tools [temporal-server]
ensure_tools() {
  local paths
  paths=$(bash "$ROOT/deploy/tools.sh" "$@") || die "building the Temporal CLI, the Temporal server or versitygw failed (see above)"
  eval "$paths"
  export TEMPORAL_BIN TEMPORAL_SERVER_BIN TEMPORAL_SQL_TOOL_BIN VERSITYGW_BIN
}

# ensure_debian_packages PKG...: installs the Debian packages that are missing (apt-get update once first).
ensure_debian_packages() {
  local pkg missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then return 0; fi
  say "installing Debian packages: ${missing[*]}..."
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 ||
    die "could not install Debian packages (apt-get install ${missing[*]})"
}

tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# free_ports N: N distinct free loopback ports, one per line (all held open until all are chosen).
free_ports() {
  node -e 'const net=require("net");Promise.all(Array.from({length:+process.argv[1]},()=>new Promise(r=>{const s=net.createServer().listen(0,"127.0.0.1",()=>r(s))}))).then(ss=>{console.log(ss.map(s=>s.address().port).join("\n"));ss.forEach(s=>s.close())})' "$1"
}

# wait_tcp NAME HOST PORT SECONDS PID
wait_tcp() {
  local deadline=$((SECONDS + $4))
  until tcp_open "$2" "$3"; do
    kill -0 "$5" 2>/dev/null || die "$1 exited during start-up (its log: $LOG_DIR/$1.log)"
    [ $SECONDS -lt "$deadline" ] || die "$1 did not listen on $2:$3 within $4 s (its log: $LOG_DIR/$1.log)"
    sleep 0.2
  done
  # Listening, but perhaps another program on that port while this one failed to bind it.
  sleep 0.2
  kill -0 "$5" 2>/dev/null || die "$1 exited during start-up (its log: $LOG_DIR/$1.log)"
}

# run_bg NAME COMMAND...: starts a service in the background, its output in $LOG_DIR/NAME.log.
run_bg() {
  local name=$1
  shift
  "$@" >>"$LOG_DIR/$name.log" 2>&1 &
  STARTED_PIDS+=($!)
  STARTED_NAMES+=("$name")
  LAST_PID=$!
}

# start_temporal PORT UI_PORT DB_FILE(empty = in memory) [extra flags...]: with strackt's search
# attributes and dynamic configuration (deploy/temporal-dynamic-config.txt, which says why).
start_temporal() {
  local port=$1 ui_port=$2 db_file=$3
  shift 3
  local args=(server start-dev --ip 127.0.0.1 --port "$port" --namespace strackt --log-level error)
  while IFS= read -r value; do
    if [[ -n "$value" && "$value" != \#* ]]; then args+=(--dynamic-config-value "$value"); fi
  done <"$ROOT/deploy/temporal-dynamic-config.txt"
  while IFS= read -r attr; do [ -n "$attr" ] && args+=(--search-attribute "$attr"); done <"$ROOT/deploy/search-attributes.txt"
  if [ -n "$db_file" ]; then args+=(--db-filename "$db_file"); fi
  if [ "$ui_port" = none ]; then args+=(--headless); else args+=(--ui-port "$ui_port"); fi
  run_bg temporal "$TEMPORAL_BIN" "${args[@]}" "$@"
  wait_tcp temporal 127.0.0.1 "$port" 60 "$LAST_PID"
  # The frontend listens before the namespace is registered; wait until it answers for ours.
  local deadline=$((SECONDS + 60))
  until "$TEMPORAL_BIN" operator namespace describe strackt --address "127.0.0.1:$port" >/dev/null 2>&1; do
    [ $SECONDS -lt "$deadline" ] || die "Temporal at 127.0.0.1:$port did not serve namespace strackt within 60 s"
    sleep 0.5
  done
}

# start_versitygw PORT DATA_DIR ACCESS_KEY SECRET_KEY
start_versitygw() {
  local port=$1 dir=$2
  mkdir -p "$dir/buckets" "$dir/sidecar"
  # Credentials go through the environment, not argv, so they do not show in ps.
  ROOT_ACCESS_KEY_ID=$3 ROOT_SECRET_ACCESS_KEY=$4 run_bg versitygw "$VERSITYGW_BIN" --port "127.0.0.1:$port" --quiet \
    posix --sidecar "$dir/sidecar" "$dir/buckets"
  wait_tcp versitygw 127.0.0.1 "$port" 30 "$LAST_PID"
}

# ensure_postgres DATA_DIR: sets PG_BASE_URL (no database path). Uses the server on 127.0.0.1:5432 when
# one answers (unless STRACKT_PRIVATE_PG=1), else a private cluster under DATA_DIR with the machine's
# PostgreSQL binaries, installing Debian's postgresql if there are none.
ensure_postgres() {
  if [ -n "${STRACKT_PG_BASE_URL:-}" ]; then
    PG_BASE_URL=$STRACKT_PG_BASE_URL
    return
  fi
  if [ -z "${STRACKT_PRIVATE_PG:-}" ] && tcp_open 127.0.0.1 5432; then
    PG_BASE_URL="postgres://postgres@127.0.0.1:5432"
    return
  fi
  local bindir
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$bindir" ]; then
    say "no PostgreSQL on 127.0.0.1:5432 and no binaries: installing Debian's postgresql..."
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2 ||
      die "could not install PostgreSQL (apt-get install postgresql)"
    bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  local dir=$1/postgres port=${STRACKT_PRIVATE_PG_PORT:-55432}
  PG_BASE_URL="postgres://postgres@127.0.0.1:$port"
  tcp_open 127.0.0.1 "$port" && return
  # PostgreSQL refuses to run as root: run the private cluster as the postgres user.
  local as=()
  if [ "$(id -u)" = 0 ]; then as=(runuser -u postgres --); fi
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$dir"
    runuser -u postgres -- test -x "$dir" ||
      die "the postgres user cannot reach $dir: make its parent folders traversable (chmod o+x) or set STRACKT_DATA_DIR"
  fi
  if [ ! -f "$dir/PG_VERSION" ]; then
    "${as[@]}" "$bindir/initdb" -D "$dir" -U postgres --auth=trust >"$LOG_DIR/initdb.log" 2>&1 ||
      die "initdb failed (see $LOG_DIR/initdb.log)"
  fi
  "${as[@]}" "$bindir/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >&2 || die "PostgreSQL did not start (see $dir/server.log)"
  PRIVATE_PG_DIR=$dir
  PG_CTL=("${as[@]}" "$bindir/pg_ctl")
}

stop_all() {
  local i
  for ((i = ${#STARTED_PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${STARTED_PIDS[$i]}" 2>/dev/null || true
  done
  for ((i = ${#STARTED_PIDS[@]} - 1; i >= 0; i--)); do
    wait "${STARTED_PIDS[$i]}" 2>/dev/null || true
  done
  if [ -n "$PRIVATE_PG_DIR" ]; then "${PG_CTL[@]}" -D "$PRIVATE_PG_DIR" -m fast stop >/dev/null 2>&1 || true; fi
  STARTED_PIDS=()
}

# start_temporal_postgres DIR KEY=JSON...: the Temporal server binary on PostgreSQL ($PG_BASE_URL, two
# fresh databases), as tests/helpers/pg-temporal.ts starts it; sets TEMPORAL_PG_ADDRESS. Its process
# drops the databases when stop_all stops it.
start_temporal_postgres() {
  local dir=$1
  shift
  # The benchmarks' ensure_tools builds neither the server nor its schema tool.
  [ -x "${TEMPORAL_SQL_TOOL_BIN:-}" ] && [ -x "${TEMPORAL_SERVER_BIN:-}" ] || ensure_tools temporal-server
  mkdir -p "$dir"
  run_bg temporal env STRACKT_TEST_PG_BASE_URL="$PG_BASE_URL" STRACKT_TEST_TEMPORAL_BIN="$TEMPORAL_BIN" \
    STRACKT_TEST_TEMPORAL_SERVER_BIN="$TEMPORAL_SERVER_BIN" STRACKT_TEST_TEMPORAL_SQL_TOOL_BIN="$TEMPORAL_SQL_TOOL_BIN" \
    node --import tsx "$ROOT/tests/helpers/pg-temporal.main.ts" "$dir" "$@"
  local deadline=$((SECONDS + 180))
  until [ -s "$dir/address" ]; do
    kill -0 "$LAST_PID" 2>/dev/null || die "Temporal on PostgreSQL exited during start-up (its log: $LOG_DIR/temporal.log)"
    [ $SECONDS -lt "$deadline" ] || die "Temporal on PostgreSQL did not serve namespace strackt within 180 s (its log: $LOG_DIR/temporal.log)"
    sleep 0.5
  done
  TEMPORAL_PG_ADDRESS=$(cat "$dir/address")
}

# start_test_stack RUN_DIR: Temporal and versitygw on free ports with fresh credentials, PostgreSQL,
# and the STRACKT_TEST_* variables that tests and benchmarks read. stop_all stops them. Temporal is
# the dev server in memory, or with STRACKT_TEST_TEMPORAL=postgres the server binary on PostgreSQL
# (`npm run test:cluster`), as production runs it.
start_test_stack() {
  local run_dir=$1 temporal_address temporal_port s3_port s3_access_key s3_secret_key
  { read -r temporal_port && read -r s3_port; } < <(free_ports 2)
  s3_access_key=test$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
  s3_secret_key=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
  ensure_postgres "$run_dir"
  # versitygw first: Temporal's dev server binds more ports than the one it is given, chosen free when
  # it starts, and once took the one chosen for versitygw, whose start then found Temporal listening.
  start_versitygw "$s3_port" "$run_dir/objects" "$s3_access_key" "$s3_secret_key"
  # A 10 s long poll lets the agent-liveness test see a killed agent go stale in seconds, not minutes.
  case "${STRACKT_TEST_TEMPORAL:-dev}" in
    dev)
      temporal_address=127.0.0.1:$temporal_port
      say "versitygw on 127.0.0.1:$s3_port; starting Temporal (dev server in memory, $temporal_address)..."
      start_temporal "$temporal_port" none "" --dynamic-config-value 'matching.longPollExpirationInterval="10s"'
      ;;
    postgres)
      say "versitygw on 127.0.0.1:$s3_port; starting Temporal (server on PostgreSQL at $PG_BASE_URL)..."
      start_temporal_postgres "$run_dir/temporal" 'matching.longPollExpirationInterval="10s"'
      temporal_address=$TEMPORAL_PG_ADDRESS
      say "Temporal on PostgreSQL at $temporal_address"
      ;;
    *) die "STRACKT_TEST_TEMPORAL is dev or postgres, not $STRACKT_TEST_TEMPORAL" ;;
  esac
  export STRACKT_TEST_TEMPORAL_ADDRESS=$temporal_address
  export STRACKT_TEST_PG_BASE_URL=$PG_BASE_URL
  export STRACKT_TEST_S3_ENDPOINT=http://127.0.0.1:$s3_port STRACKT_TEST_S3_ACCESS_KEY=$s3_access_key STRACKT_TEST_S3_SECRET_KEY=$s3_secret_key
  export STRACKT_TEST_AGENT_STALE_AFTER_SECONDS=20
  export STRACKT_TEST_TEMPORAL_BIN=$TEMPORAL_BIN STRACKT_TEST_TEMPORAL_SERVER_BIN=$TEMPORAL_SERVER_BIN
  export STRACKT_TEST_TEMPORAL_SQL_TOOL_BIN=$TEMPORAL_SQL_TOOL_BIN
  export STRACKT_TEST_VERSITYGW_BIN=$VERSITYGW_BIN STRACKT_TEST_RUN_DIR=$run_dir
}

# bench_run_dir: a throw-away RUN_DIR (and LOG_DIR) for a benchmark, removed with its services at exit.
# In /var/tmp, like the data set: PostgreSQL-owned files must stay reachable, and /tmp may be small.
bench_run_dir() {
  RUN_DIR=$(mktemp -d /var/tmp/strackt-bench-run.XXXXXX)
  chmod 755 "$RUN_DIR"
  LOG_DIR=$RUN_DIR/logs
  mkdir -p "$LOG_DIR"
  trap 'stop_all; rm -rf "$RUN_DIR"' EXIT
}
