#!/usr/bin/env bash
# Builds the Go-based services once per machine into a cache outside the checkout, keyed by
# tool and version, so every clone (CI clones afresh) reuses them. Prints nothing on a hit.
# `tools.sh temporal-server` also builds the Temporal server and its schema tool, which only the tests need.
set -euo pipefail

TEMPORAL_CLI_VERSION=1.5.1
# The server the CLI's start-dev embeds, built alone because start-dev cannot serve TLS.
TEMPORAL_SERVER_VERSION=1.29.1
VERSITYGW_VERSION=1.7.0
TOOLS_CACHE="${STRACKT_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/strackt/tools}"

need_go() {
  if ! command -v go >/dev/null 2>&1; then
    [ -x /usr/local/go/bin/go ] && export PATH="/usr/local/go/bin:$PATH"
  fi
  command -v go >/dev/null 2>&1 || { echo "deploy/tools.sh: Go is required to build the Temporal CLI and server and versitygw (apt-get install golang-go, or Go >= 1.25 in /usr/local/go)" >&2; exit 1; }
}

# build NAME VERSION MODULE_PATH [LDFLAGS]
build() {
  local name=$1 version=$2 module=$3 ldflags=${4:-}
  local dir="$TOOLS_CACHE/$name-$version"
  [ -x "$dir/$name" ] && return 0
  need_go
  echo "building $name $version (once per machine; minutes on 2 cores)..." >&2
  local tmp; tmp=$(mktemp -d "$TOOLS_CACHE/.build-$name.XXXXXX")
  local start=$SECONDS
  CGO_ENABLED=0 GOBIN="$tmp" GOFLAGS=-mod=mod go install -ldflags="-s -w $ldflags" "$module@v$version"
  mv "$tmp/${module##*/}" "$tmp/$name.tmp" && mkdir -p "$dir" && mv "$tmp/$name.tmp" "$dir/$name" && rmdir "$tmp"
  echo "built $name $version in $((SECONDS - start)) s -> $dir/$name" >&2
}

mkdir -p "$TOOLS_CACHE"
build temporal "$TEMPORAL_CLI_VERSION" github.com/temporalio/cli/cmd/temporal \
  "-X github.com/temporalio/cli/temporalcli.Version=$TEMPORAL_CLI_VERSION" &
t=$!
build versitygw "$VERSITYGW_VERSION" github.com/versity/versitygw/cmd/versitygw &
v=$!
if [ "${1:-}" = temporal-server ]; then
  # One after the other: the schema tool shares most of its packages with the server, so it then
  # compiles from Go's build cache in seconds instead of competing for the same two cores.
  { build temporal-server "$TEMPORAL_SERVER_VERSION" go.temporal.io/server/cmd/server &&
    build temporal-sql-tool "$TEMPORAL_SERVER_VERSION" go.temporal.io/server/cmd/tools/sql; } &
  s=$!
fi
wait $t; wait $v; [ -z "${s:-}" ] || wait $s

# Other scripts source this file's output for the paths.
echo "TEMPORAL_BIN=$TOOLS_CACHE/temporal-$TEMPORAL_CLI_VERSION/temporal"
echo "TEMPORAL_SERVER_BIN=$TOOLS_CACHE/temporal-server-$TEMPORAL_SERVER_VERSION/temporal-server"
echo "TEMPORAL_SQL_TOOL_BIN=$TOOLS_CACHE/temporal-sql-tool-$TEMPORAL_SERVER_VERSION/temporal-sql-tool"
echo "VERSITYGW_BIN=$TOOLS_CACHE/versitygw-$VERSITYGW_VERSION/versitygw"
