#!/usr/bin/env bash
# Installs or upgrades the strackt agent from this unpacked package, then (re)starts it.
#
#   sudo ./install.sh --api-url https://strackt.example.com --token sta_...
#   sudo ./install.sh --api-url https://strackt.example.com --token - < token   (the token from stdin)
#   sudo ./install.sh                    an upgrade: the configuration already there is kept
#   sudo /opt/strackt-agent/install.sh --token -       a new token (after POST /servers/:id/agent-token)
#
# Files: /opt/strackt-agent (this package), /etc/strackt-agent/env (mode 600: the API URL, the token
# and any other STRACKT_ variable added there), /etc/systemd/system/strackt-agent.service.
# DESTDIR=/some/root puts them under that root instead and leaves this system's systemd alone.
set -euo pipefail

die() {
  echo "install.sh: $*" >&2
  exit 1
}

api_url=
token=
while [ $# -gt 0 ]; do
  case $1 in
  --api-url | --token)
    [ $# -ge 2 ] || die "$1 needs a value (see --help)"
    if [ "$1" = --api-url ]; then api_url=$2; else token=$2; fi
    shift 2
    ;;
  -h | --help)
    sed -n '2,11s/^# \{0,1\}//p' "$0"
    exit 0
    ;;
  *) die "unknown argument: $1 (see --help)" ;;
  esac
done

dest=${DESTDIR:-}
prefix=/opt/strackt-agent
etc=/etc/strackt-agent
units=/etc/systemd/system
here=$(cd "$(dirname "$0")" && pwd)
[ -n "$dest" ] || [ "$(id -u)" = 0 ] || die "run it as root (sudo): the agent starts services as their users"

if [ "$token" = - ]; then
  if [ -t 0 ]; then
    read -rsp 'agent token (sta_...): ' token || true
    echo
  else
    IFS= read -r token || true
  fi
  [ -n "$token" ] || die "--token -: no token on stdin"
fi

# What is not given is kept from the configuration already there.
env_file=$dest$etc/env
current() { if [ -f "$env_file" ]; then sed -n "s/^$1=//p" "$env_file" | tail -n 1; fi; }
api_url=${api_url:-$(current STRACKT_API_URL)}
token=${token:-$(current STRACKT_AGENT_TOKEN)}
[ -n "$api_url" ] || die "no API URL: pass --api-url https://... (the address of the strackt API)"
[ -n "$token" ] || die "no agent token: pass --token sta_... or --token - (POST /servers shows it once)"
# Checked here as the agent checks them, and to characters that mean nothing to systemd or to a
# shell that sources the env file: it holds one value per line and nothing else.
url_pattern='^https?://[][A-Za-z0-9._~:/@%+-]+$'
[[ $api_url =~ $url_pattern ]] || die "--api-url must be an http(s) URL, not: $api_url"
[[ $token =~ ^sta_[A-Za-z0-9_-]+$ ]] || die "--token must be an agent token (sta_...)"

# The package must run here (architecture, C library: its zstd addon needs the glibc of the machine
# that built it) before it replaces anything: without its configuration, the agent loads all its
# code and stops at the first missing variable.
check=$(env -i PATH=/usr/bin:/bin "$here/strackt-agent" 2>&1 || true)
[[ $check == *'STRACKT_API_URL is required'* ]] || die "this package cannot run on this server: $check"

mkdir -p "$dest$etc"
(
  umask 077
  {
    grep -vE '^(STRACKT_API_URL|STRACKT_AGENT_TOKEN)=' "$env_file" 2>/dev/null || true
    echo "STRACKT_API_URL=$api_url"
    echo "STRACKT_AGENT_TOKEN=$token"
  } >"$env_file.new"
)
chmod 600 "$env_file.new"
mv "$env_file.new" "$env_file"

# Run from the installed copy (a new token), there is nothing to copy. Otherwise the new files are
# put beside the old ones and swapped in by renames: the running agent keeps its open files, and an
# install cut short leaves the old version whole. Owned by root whoever unpacked the tarball, since
# root runs them.
if ! [ "$here" -ef "$dest$prefix" ]; then
  rm -rf "$dest$prefix.new" "$dest$prefix.old"
  mkdir -p "$(dirname "$dest$prefix")"
  cp -R --preserve=mode,timestamps "$here" "$dest$prefix.new"
  chmod -R go-w "$dest$prefix.new"
  if [ -e "$dest$prefix" ]; then mv "$dest$prefix" "$dest$prefix.old"; fi
  mv "$dest$prefix.new" "$dest$prefix"
  rm -rf "$dest$prefix.old"
fi
mkdir -p "$dest$units"
cp "$dest$prefix/strackt-agent.service" "$dest$units/strackt-agent.service"
chmod 644 "$dest$units/strackt-agent.service"
echo "installed strackt agent $(cat "$dest$prefix/VERSION")"

if [ -n "$dest" ] || ! [ -d /run/systemd/system ]; then
  if [ -n "$dest" ]; then echo "installed under $dest: nothing was started."; else
    echo "systemd is not running here: nothing was started."
  fi
  echo "To run the agent, under systemd: systemctl daemon-reload && systemctl enable --now strackt-agent"
  echo "or by hand, as root: set -a && . $etc/env && set +a && exec $prefix/strackt-agent"
  exit 0
fi
systemctl daemon-reload
systemctl enable --quiet strackt-agent.service
systemctl restart strackt-agent.service
# A refused token or an unreachable API stops the agent within seconds of its start.
sleep 5
if ! systemctl is-active --quiet strackt-agent.service; then
  journalctl -u strackt-agent.service -n 20 --no-pager >&2 || true
  die "the agent did not stay up: its log is above (journalctl -u strackt-agent)"
fi
echo "strackt-agent is running; its log: journalctl -u strackt-agent -f"
