#!/usr/bin/env bash
# Makes sure a Chromium is there for the browser tests (they read CHROMIUM_PATH, default
# /usr/bin/chromium). As root with apt-get, installs Debian's chromium quietly (log in .data/logs).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
load_dotenv

path=${CHROMIUM_PATH:-/usr/bin/chromium}
if [[ -x $path ]]; then
  say "chromium: $path"
  exit 0
fi
if [[ $path != /usr/bin/chromium ]]; then
  die "CHROMIUM_PATH=$path is not an executable file; point it at a Chromium or Chrome binary"
fi
if ((EUID == 0)) && command -v apt-get >/dev/null 2>&1; then
  mkdir -p "$DATA_DIR/logs"
  log="$DATA_DIR/logs/apt-chromium.log"
  say "chromium: installing Debian's chromium (apt-get; log: .data/logs/apt-chromium.log)"
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq >>"$log" 2>&1 && apt-get install -y -qq chromium >>"$log" 2>&1 && [[ -x $path ]]; then
    say "chromium: installed $path"
    exit 0
  fi
  tail -n 20 "$log" >&2 || true
  die "chromium could not be installed (log: .data/logs/apt-chromium.log). The browser test of /docs needs it: install Debian's chromium package, or set CHROMIUM_PATH to a Chromium or Chrome binary."
fi
if command -v apt-get >/dev/null 2>&1; then
  die "chromium is missing (the browser test of /docs needs it): run \`sudo apt-get install chromium\`, or set CHROMIUM_PATH to a Chromium or Chrome binary."
fi
die "chromium is missing (the browser test of /docs needs it): install Chromium or Google Chrome and set CHROMIUM_PATH to its binary."
