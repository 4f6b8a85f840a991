#!/usr/bin/env bash
# Writes .env from .env.example with a fresh ENCRYPTION_KEYS, unless .env exists (never overwritten:
# it may hold the only key that decrypts stored secrets).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

if [[ -f .env ]]; then
  say ".env: exists, left as it is"
  exit 0
fi
key=$(node -e 'process.stdout.write(require("node:crypto").randomBytes(32).toString("base64"))')
umask 077
# Base64 has no "|", so it is a safe sed delimiter.
# The Compose services' passwords: random, hex so that they fit in a URL as they are.
pg_password=$(node -e 'process.stdout.write(require("node:crypto").randomBytes(24).toString("hex"))')
redis_password=$(node -e 'process.stdout.write(require("node:crypto").randomBytes(24).toString("hex"))')
sed -E -e "s|^ENCRYPTION_KEYS=.*$|ENCRYPTION_KEYS=dev:$key|" \
  -e "s|^POSTGRES_PASSWORD=.*$|POSTGRES_PASSWORD=$pg_password|" \
  -e "s|^REDIS_PASSWORD=.*$|REDIS_PASSWORD=$redis_password|" .env.example >.env.tmp
grep -q "^ENCRYPTION_KEYS=dev:$key\$" .env.tmp || die ".env.example has no ENCRYPTION_KEYS= line to fill in"
mv .env.tmp .env
say ".env: written from .env.example with a new ENCRYPTION_KEYS (key id \"dev\") and Compose passwords; keep it, it decrypts your stored secrets"
