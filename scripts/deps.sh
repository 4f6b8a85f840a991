#!/usr/bin/env bash
# Node.js check, then `npm ci` when node_modules is missing or older than package-lock.json.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  die "Node.js 20.19+ with npm is needed: https://nodejs.org (or: nvm install 20; Debian: apt-get install nodejs npm)"
fi
# shellcheck disable=SC2016 # JavaScript, not shell
node -e '
  const [major, minor] = process.versions.node.split(".").map(Number);
  if (!(major === 20 ? minor >= 19 : major >= 22)) {
    console.error(`Node.js ${process.versions.node} is too old: Sluice needs 20.19+ or 22+`);
    process.exit(1);
  }' || exit 1

# npm writes node_modules/.package-lock.json on every install, so its age is the install's age.
stamp=node_modules/.package-lock.json
if [[ ! -f $stamp ]]; then
  say "npm ci (node_modules is missing)"
elif [[ package-lock.json -nt $stamp ]]; then
  say "npm ci (node_modules is older than package-lock.json)"
else
  say "dependencies: node_modules is up to date"
  exit 0
fi
npm ci --no-audit --no-fund
