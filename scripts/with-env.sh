#!/usr/bin/env bash
# Runs a command in the project's environment: .env (variables already set win), then the service
# URLs that `scripts/services.sh ensure` settled on (a private instance when the configured one was
# down). Every Makefile command goes through this.
#   scripts/with-env.sh npm run migrate
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
(($#)) || die "usage: $0 COMMAND [ARG...]"
load_dotenv
load_services_env
cd "$ROOT"
exec "$@"
