#!/usr/bin/env bash
# Builds the mixed benchmark data set once per size, in a cache outside the checkout:
# text, an initialised PostgreSQL data dir with pgbench data, binaries, random bytes.
# Usage: bench/make-dataset.sh GIB   (prints the folder; its subfolders are the volumes)
set -euo pipefail
gib=${1:-1}
# /var/tmp, not ~/.cache: PostgreSQL runs as its own user and must reach the data folder.
root=${STRACKT_BENCH_DATA:-/var/tmp/strackt-bench}/mixed-${gib}g
if [ -f "$root/.complete" ]; then echo "$root"; exit 0; fi
rm -rf "$root"
mkdir -p "$root"/{text,pgdata,binaries,random}
chmod 755 "$root" "$(dirname "$root")"
# Fractions too: 0.1 is enough to see that a benchmark's code paths run (its figures then mean little).
total=$(awk -v g="$gib" 'BEGIN { printf "%d", g * 1073741824 }')
echo "building a ${gib} GiB mixed data set in $root (once)..." >&2

# About 20% random bytes: incompressible, like media and already-compressed uploads.
head -c $((total / 5)) /dev/urandom | split -b 64M - "$root/random/blob."

# About 20% binaries, copied from the system's own (in rounds if there are too few).
need=$((total / 5)) have=0 round=0
while [ "$have" -lt "$need" ]; do
  mkdir -p "$root/binaries/r$round"
  while IFS= read -r -d '' f; do
    [ "$have" -ge "$need" ] && break
    cp "$f" "$root/binaries/r$round/" 2>/dev/null && have=$((have + $(stat -c %s "$f")))
  done < <(find /usr/lib/x86_64-linux-gnu /usr/bin -maxdepth 1 -type f -size +64k -print0)
  round=$((round + 1))
done

# About 30% PostgreSQL: a real cluster with pgbench tables, then stopped cleanly.
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
chown postgres: "$root/pgdata" && chmod 700 "$root/pgdata"
runuser -u postgres -- "$bin/initdb" -D "$root/pgdata" -U postgres --auth=trust >/dev/null
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
runuser -u postgres -- "$bin/pg_ctl" -D "$root/pgdata" -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=''" -w -l /dev/null start >/dev/null
# One pgbench scale unit is about 24 MB on disk once indexes and WAL are counted.
scale=$(( (total * 3 / 10) / (24 * 1024 * 1024) ))
[ "$scale" -ge 1 ] || scale=1
"$bin/pgbench" -h 127.0.0.1 -p "$port" -U postgres -i -q -s "$scale" postgres >/dev/null 2>&1
runuser -u postgres -- "$bin/pg_ctl" -D "$root/pgdata" -m fast -w stop >/dev/null

# The rest text: words in random order, compressible like logs and source.
have=$(du -sb "$root" | cut -f1)
left=$((total - have))
[ "$left" -gt 0 ] && node -e '
  const fs = require("fs"); const words = fs.readFileSync("/usr/share/common-licenses/GPL-3", "utf8").split(/\s+/).filter(Boolean);
  let left = Number(process.argv[1]); let n = 0;
  while (left > 0) {
    const lines = []; let size = 0;
    while (size < 8 << 20) { const l = Array.from({ length: 12 }, () => words[(Math.random() * words.length) | 0]).join(" ") + "\n"; lines.push(l); size += l.length; }
    const chunk = lines.join("").slice(0, Math.min(left, 8 << 20));
    fs.writeFileSync(`${process.argv[2]}/text/part-${n++}.txt`, chunk); left -= chunk.length;
  }' "$left" "$root"
touch "$root/.complete"
echo "$root"
