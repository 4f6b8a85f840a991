#!/usr/bin/env bash
# Makes sure a PgBouncer is there for test/integration/pgbouncer.test.ts (it reads PGBOUNCER_PATH,
# default /usr/sbin/pgbouncer, and starts a private one per test). As root with apt-get, installs
# Debian's pgbouncer quietly (log in .data/logs); the package's own service is not started.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
load_dotenv

path=${PGBOUNCER_PATH:-/usr/sbin/pgbouncer}
if [[ -x $path ]]; then
  say "pgbouncer: $path ($("$path" --version | head -n 1))"
  exit 0
fi
if [[ $path != /usr/sbin/pgbouncer ]]; then
  die "PGBOUNCER_PATH=$path is not an executable file; point it at a pgbouncer binary"
fi
if ((EUID == 0)) && command -v apt-get >/dev/null 2>&1; then
  mkdir -p "$DATA_DIR/logs"
  log="$DATA_DIR/logs/apt-pgbouncer.log"
  say "pgbouncer: installing Debian's pgbouncer (apt-get; log: .data/logs/apt-pgbouncer.log)"
  export DEBIAN_FRONTEND=noninteractive
  if { apt-get install -y -qq pgbouncer >>"$log" 2>&1 ||
    { apt-get update -qq >>"$log" 2>&1 && apt-get install -y -qq pgbouncer >>"$log" 2>&1; }; } && [[ -x $path ]]; then
    say "pgbouncer: installed $path"
    exit 0
  fi
  tail -n 20 "$log" >&2 || true
  die "pgbouncer could not be installed (log: .data/logs/apt-pgbouncer.log). The PgBouncer test needs it: install Debian's pgbouncer package, or set PGBOUNCER_PATH to a pgbouncer binary."
fi
if command -v apt-get >/dev/null 2>&1; then
  die "pgbouncer is missing (the PgBouncer test needs it): run \`sudo apt-get install pgbouncer\`, or set PGBOUNCER_PATH to a pgbouncer binary."
fi
die "pgbouncer is missing (the PgBouncer test needs it): install PgBouncer and set PGBOUNCER_PATH to its binary."
