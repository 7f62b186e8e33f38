#!/usr/bin/env bash
# Installs the Node.js release pinned in deploy/node-version once per machine, into a cache outside
# the checkout keyed by version, and prints its folder (bin/node, include/node, LICENSE). Prints
# nothing else on a hit. deploy/lib.sh's ensure_node puts it first on PATH when the machine's Node.js
# is older; deploy/package-agent.mjs ships its bin/node.
set -euo pipefail

pins=$(dirname "${BASH_SOURCE[0]}")/node-version
die() {
  echo "deploy/node.sh: $*" >&2
  exit 1
}
case $(uname -m) in
x86_64) arch=x64 ;;
aarch64 | arm64) arch=arm64 ;;
*) die "no Node.js build pinned for $(uname -s) $(uname -m) (deploy/node-version: linux x64 and arm64)" ;;
esac
[ "$(uname -s)" = Linux ] || die "no Node.js build pinned for $(uname -s) (deploy/node-version: linux x64 and arm64)"
version=$(sed -n 's/^version //p' "$pins")
integrity=$(sed -n "s/^$arch //p" "$pins")
[ -n "$version" ] && [ -n "$integrity" ] || die "$pins has no version or no digest for $arch"

cache=${STRACKT_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/strackt/node}
dir=$cache/node-$version-linux-$arch
if [ ! -x "$dir/bin/node" ]; then
  echo "installing Node.js $version (node-linux-$arch from the npm registry, about 55 MiB) into $dir..." >&2
  mkdir -p "$cache"
  # Unpacked beside its final place and renamed once whole and checked: an interrupted install is
  # never taken for a finished one.
  tmp=$(mktemp -d "$cache/.install-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  # npm pack, not a URL: it goes through npm's own registry, proxy and certificate settings.
  # Its stdout is the file's name; the download is the only file in $tmp.
  (cd "$tmp" && npm pack --loglevel=error "node-linux-$arch@$version" >/dev/null) ||
    die "could not download node-linux-$arch@$version from the npm registry"
  tarball=$(echo "$tmp"/*.tgz)
  [ -f "$tarball" ] || die "npm pack left no tarball in $tmp"
  want=$(printf '%s' "${integrity#sha512-}" | base64 -d | od -An -v -tx1 | tr -d ' \n')
  got=$(sha512sum "$tarball" | cut -d' ' -f1)
  [ "$got" = "$want" ] || die "node-linux-$arch@$version from the registry is not the one pinned in $pins (sha512 $got)"
  mkdir "$tmp/node"
  tar -xzf "$tarball" -C "$tmp/node" --strip-components=1
  [ "$("$tmp/node/bin/node" --version)" = "v$version" ] || die "node-linux-$arch@$version does not run here"
  # Another install may have finished first: either copy is the same.
  mv -T "$tmp/node" "$dir" 2>/dev/null || [ -x "$dir/bin/node" ] || die "could not move Node.js into $dir"
  echo "installed Node.js $version -> $dir" >&2
fi
echo "$dir"
