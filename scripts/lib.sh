# shellcheck shell=bash
# Shared helpers for the developer scripts. Sourced, never run; loading it only sets variables
# and functions.
# Variables here are used by the scripts that source this file:
# shellcheck disable=SC2034

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA_DIR="$ROOT/.data"
SERVICES_ENV="$DATA_DIR/services.env"

DEFAULT_DATABASE_URL='postgres://postgres@127.0.0.1:5432/sluice'
DEFAULT_REDIS_URL='redis://127.0.0.1:6379/0'
# Private instances live on ports no system service uses, so they never clash with a real one.
PRIVATE_PG_PORT=${SLUICE_PG_PORT:-54329}
PRIVATE_REDIS_PORT=${SLUICE_REDIS_PORT:-63799}

say() { printf '==> %s\n' "$*"; }
warn() { printf '!!! %s\n' "$*" >&2; }
die() {
  warn "$@"
  exit 1
}

# Loads .env like dotenv does: KEY=VALUE lines, optional quotes, no expansion. A variable already
# in the environment wins, so `DATABASE_URL=... make dev` overrides the file.
load_dotenv() {
  local file=$ROOT/.env line key value
  [[ -f $file ]] || return 0
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%$'\r'}
    [[ $line =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
    key=${BASH_REMATCH[2]}
    value=${BASH_REMATCH[3]}
    if [[ $value =~ ^\"(.*)\"[[:space:]]*$ || $value =~ ^\'(.*)\'[[:space:]]*$ ]]; then
      value=${BASH_REMATCH[1]}
    else
      value=${value%%[[:space:]]#*}
      value=${value%"${value##*[![:space:]]}"}
    fi
    [[ -v $key ]] || export "$key=$value"
  done <"$file"
}

requested_database_url() { printf '%s' "${DATABASE_URL:-$DEFAULT_DATABASE_URL}"; }
requested_redis_url() { printf '%s' "${REDIS_URL:-$DEFAULT_REDIS_URL}"; }

# Applies the URLs that `services.sh ensure` settled on (a private instance when the configured
# one was down), but only while the configuration they were settled for is still the one asked for.
load_services_env() {
  local want_db want_redis
  want_db=$(requested_database_url)
  want_redis=$(requested_redis_url)
  if [[ -f $SERVICES_ENV ]] && (
    # shellcheck source=/dev/null
    source "$SERVICES_ENV"
    [[ ${SLUICE_REQUESTED_DATABASE_URL:-} == "$want_db" && ${SLUICE_REQUESTED_REDIS_URL:-} == "$want_redis" ]]
  ); then
    # shellcheck source=/dev/null
    source "$SERVICES_ENV"
  fi
  export DATABASE_URL=${DATABASE_URL:-$want_db} REDIS_URL=${REDIS_URL:-$want_redis}
}

# URL pieces. Sets URL_SCHEME, URL_USERINFO (with the trailing @, or empty), URL_HOST, URL_PORT
# (the default when absent), URL_PORT_PART (":port" as written, or empty), URL_PATH (without the
# leading /) and URL_QUERY (with the leading ?, or empty).
parse_url() {
  local url=$1 default_port=$2
  [[ $url =~ ^[a-z][a-z0-9+.-]*://([^@/]*@)?(\[[^]/]*\]|[^:/?]*)(:([0-9]*))?(/[^?]*)?(\?.*)?$ ]] ||
    die "not a URL: $(mask_url "$url")"
  URL_SCHEME=${url%%://*}
  URL_USERINFO=${BASH_REMATCH[1]}
  URL_HOST=${BASH_REMATCH[2]:-localhost}
  URL_PORT_PART=${BASH_REMATCH[3]}
  URL_PORT=${BASH_REMATCH[4]:-$default_port}
  URL_PATH=${BASH_REMATCH[5]#/}
  URL_QUERY=${BASH_REMATCH[6]}
}

# A URL with its password replaced, for printing.
mask_url() { sed -E 's#(://[^:/@]*):[^@/]*@#\1:****@#' <<<"$1"; }

# Same server and credentials, another database (or Redis db number).
url_with_path() {
  local url=$1 path=$2
  parse_url "$url" 0
  printf '%s://%s%s%s/%s%s' "$URL_SCHEME" "$URL_USERINFO" "$URL_HOST" "$URL_PORT_PART" "$path" "$URL_QUERY"
}

tcp_open() {
  local host=${1#[} port=$2
  host=${host%]}
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null
}

# Directory holding initdb and pg_ctl: $PG_BIN, then PATH, then the places distributions use
# (Debian keeps them in /usr/lib/postgresql/<version>/bin, off PATH). Newest version first.
find_pg_bin() {
  local dir candidates=()
  if [[ -n ${PG_BIN:-} ]]; then
    candidates+=("$PG_BIN")
  fi
  if command -v pg_ctl >/dev/null 2>&1; then
    # Resolve links (some machines link pg_ctl into /usr/local/bin) to reach the real bin folder.
    candidates+=("$(dirname "$(readlink -f "$(command -v pg_ctl)" 2>/dev/null || command -v pg_ctl)")")
  fi
  local globbed
  globbed=$(
    shopt -s nullglob
    printf '%s\n' /usr/lib/postgresql/*/bin /usr/pgsql-*/bin /opt/homebrew/opt/postgresql*/bin \
      /usr/local/opt/postgresql*/bin | sort -V -r
  )
  while IFS= read -r dir; do [[ -n $dir ]] && candidates+=("$dir"); done <<<"$globbed"
  for dir in "${candidates[@]}"; do
    if [[ -x $dir/initdb && -x $dir/pg_ctl ]]; then
      printf '%s' "$dir"
      return 0
    fi
  done
  return 1
}

# pg_isready from PATH or the server binaries, else a plain TCP check.
postgres_ready() {
  local url=$1 isready bin
  isready=$(command -v pg_isready 2>/dev/null || true)
  if [[ -z $isready ]] && bin=$(find_pg_bin); then isready=$bin/pg_isready; fi
  if [[ -n $isready && -x $isready ]]; then
    "$isready" -q -t 3 -d "$url" >/dev/null 2>&1
  else
    parse_url "$url" 5432
    tcp_open "$URL_HOST" "$URL_PORT"
  fi
}

# A Redis that answers PING (or asks for a password, which the URL may carry).
redis_ready() {
  local url=$1 reply
  if command -v redis-cli >/dev/null 2>&1; then
    reply=$(timeout 3 redis-cli --no-auth-warning -u "$url" ping 2>/dev/null || true)
    [[ $reply == PONG ]]
    return
  fi
  parse_url "$url" 6379
  # shellcheck disable=SC2016 # expanded by the inner bash
  reply=$(
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2" && printf "PING\r\n" >&3 && IFS= read -r line <&3 && printf "%s" "$line"' \
      _ "${URL_HOST//[\[\]]/}" "$URL_PORT" 2>/dev/null || true
  )
  [[ $reply == +PONG* || $reply == -NOAUTH* ]]
}

docker_works() {
  command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 && docker compose version >/dev/null 2>&1
}
