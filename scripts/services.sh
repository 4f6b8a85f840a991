#!/usr/bin/env bash
# Postgres and Redis for development and tests.
#
#   scripts/services.sh ensure   use the ones at DATABASE_URL / REDIS_URL (from the environment or
#                                .env); for each one that does not answer, start a private instance:
#                                from local binaries under .data/ if there are any, else with
#                                `docker compose up -d` if a Docker engine works; else say what to
#                                install and exit 1. Records the URLs to use in .data/services.env.
#   scripts/services.sh status   what is running and which URLs the other scripts will use
#   scripts/services.sh stop     stop the private instances (never anything this script did not start)
#
# Private instances: Postgres on 127.0.0.1:$SLUICE_PG_PORT (54329), trust auth, data in .data/pg;
# Redis on 127.0.0.1:$SLUICE_REDIS_PORT (63799), AOF on, maxmemory-policy noeviction, data in
# .data/redis. Both listen on loopback only. Safe to run any number of times.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

PG_DIR="$DATA_DIR/pg"
PG_DATA="$PG_DIR/data"
REDIS_DIR="$DATA_DIR/redis"
REDIS_PIDFILE="$REDIS_DIR/redis.pid"
DOCKER_MARK="$DATA_DIR/docker-services"
# The Compose services require their passwords (no published default); `make env-file` writes them.
COMPOSE_PASSWORD=${POSTGRES_PASSWORD:-}
COMPOSE_REDIS_PASSWORD=${REDIS_PASSWORD:-}

PROBLEMS=()

# --- Postgres -----------------------------------------------------------------------------------

# Postgres refuses to run as root: as root, the private server runs as the `postgres` system user
# (or `nobody` where there is none) and owns .data/pg.
pg_os_user() {
  if ((EUID != 0)); then id -un; elif id postgres >/dev/null 2>&1; then echo postgres; else echo nobody; fi
}

as_pg_user() {
  if ((EUID != 0)); then
    "$@"
  elif command -v runuser >/dev/null 2>&1; then
    runuser -u "$(pg_os_user)" -- "$@"
  else
    su -s /bin/sh "$(pg_os_user)" -c "$(printf '%q ' "$@")"
  fi
}

private_pg_running() {
  local bin
  bin=$(find_pg_bin) || return 1
  [[ -f $PG_DATA/postmaster.pid ]] && as_pg_user "$bin/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

start_private_pg() {
  local bin=$1 user version
  user=$(pg_os_user)
  mkdir -p "$PG_DIR"
  if ((EUID == 0)); then chown "$user" "$PG_DIR"; fi
  chmod 700 "$PG_DIR"
  as_pg_user test -w "$PG_DIR" ||
    die "user $user cannot write $PG_DIR: a parent folder is not open to it (chmod o+x on the parents, or run as another user)"

  version=$("$bin/pg_ctl" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)*.*/\1/')
  if [[ -f $PG_DATA/PG_VERSION ]] && [[ $(<"$PG_DATA/PG_VERSION") != "$version" ]]; then
    die "$PG_DATA was made by PostgreSQL $(<"$PG_DATA/PG_VERSION") but the binaries found are $version ($bin); run \`make clean-data\` (drops the private data) or set PG_BIN"
  fi

  if private_pg_running; then
    say "postgres: private server already running on 127.0.0.1:$PRIVATE_PG_PORT (.data/pg)"
    return 0
  fi
  if tcp_open 127.0.0.1 "$PRIVATE_PG_PORT"; then
    die "port $PRIVATE_PG_PORT is taken by a process this project did not start; set SLUICE_PG_PORT to a free port"
  fi

  if [[ ! -f $PG_DATA/PG_VERSION ]]; then
    say "postgres: initdb .data/pg/data (PostgreSQL $version from $bin, user postgres, trust auth)"
    as_pg_user "$bin/initdb" -D "$PG_DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C \
      >"$PG_DIR/initdb.log" 2>&1 || {
      tail -n 20 "$PG_DIR/initdb.log" >&2
      die "initdb failed (log: .data/pg/initdb.log)"
    }
    # TCP on loopback only, no Unix socket (its path length and folder rights vary by machine).
    # fsync off: a throwaway development server, rebuilt by `make clean-data` if a crash breaks it.
    cat >>"$PG_DATA/postgresql.conf" <<EOF

# --- Sluice private development server (scripts/services.sh) ---
listen_addresses = '127.0.0.1'
port = $PRIVATE_PG_PORT
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
  fi
  say "postgres: starting private server on 127.0.0.1:$PRIVATE_PG_PORT (log: .data/pg/server.log)"
  as_pg_user "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_DIR/server.log" -o "-p $PRIVATE_PG_PORT" -w -t 60 -s start || {
    tail -n 20 "$PG_DIR/server.log" >&2 || true
    die "the private Postgres did not start (log: .data/pg/server.log)"
  }
}

# Sets EFFECTIVE_DATABASE_URL.
ensure_postgres() {
  local want=$1 bin db
  if postgres_ready "$want"; then
    say "postgres: reachable at $(mask_url "$want")"
    EFFECTIVE_DATABASE_URL=$want
    return 0
  fi
  parse_url "$want" 5432
  db=${URL_PATH:-sluice}
  say "postgres: nothing answers at $(mask_url "$want")"
  if bin=$(find_pg_bin); then
    start_private_pg "$bin"
    EFFECTIVE_DATABASE_URL="postgres://postgres@127.0.0.1:$PRIVATE_PG_PORT/$db"
  elif docker_works; then
    start_with_docker postgres
    EFFECTIVE_DATABASE_URL="postgres://postgres:$COMPOSE_PASSWORD@127.0.0.1:$PRIVATE_PG_PORT/$db"
  else
    PROBLEMS+=("$(
      cat <<EOF
Postgres: nothing answers at $(mask_url "$want"), and there is no way here to start a private one:
  - no PostgreSQL server binaries (initdb, pg_ctl) on PATH, in \$PG_BIN or in /usr/lib/postgresql/*/bin
  - no working Docker engine (\`docker info\` fails or docker is not installed)
  Fix one of:
  - Debian/Ubuntu: sudo apt-get install postgresql     (make dev then runs its own server in .data/pg)
  - macOS:         brew install postgresql@16
  - start Docker (make dev then runs \`docker compose up -d postgres\`)
  - or set DATABASE_URL in .env to a running Postgres 14 or newer
EOF
    )")
  fi
}

# --- Redis --------------------------------------------------------------------------------------

private_redis_pid() {
  local pid
  [[ -f $REDIS_PIDFILE ]] || return 1
  pid=$(<"$REDIS_PIDFILE")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  # The pid file may be stale and the number reused: only a redis-server on our port is ours.
  ps -p "$pid" -o args= 2>/dev/null | grep -q "redis-server.*:$PRIVATE_REDIS_PORT" || return 1
  printf '%s' "$pid"
}

start_private_redis() {
  local server=$1 url="redis://127.0.0.1:$PRIVATE_REDIS_PORT/0"
  if private_redis_pid >/dev/null; then
    say "redis: private server already running on 127.0.0.1:$PRIVATE_REDIS_PORT (.data/redis)"
    return 0
  fi
  if tcp_open 127.0.0.1 "$PRIVATE_REDIS_PORT"; then
    die "port $PRIVATE_REDIS_PORT is taken by a process this project did not start; set SLUICE_REDIS_PORT to a free port"
  fi
  mkdir -p "$REDIS_DIR"
  say "redis: starting private server on 127.0.0.1:$PRIVATE_REDIS_PORT (AOF, noeviction; log: .data/redis/redis.log)"
  "$server" --daemonize yes --bind 127.0.0.1 --port "$PRIVATE_REDIS_PORT" --dir "$REDIS_DIR" \
    --appendonly yes --appendfsync everysec --save '' --maxmemory-policy noeviction \
    --pidfile "$REDIS_PIDFILE" --logfile "$REDIS_DIR/redis.log" >/dev/null
  for _ in $(seq 1 40); do
    redis_ready "$url" && return 0
    sleep 0.25
  done
  tail -n 20 "$REDIS_DIR/redis.log" >&2 || true
  die "the private Redis did not answer (log: .data/redis/redis.log)"
}

# Sets EFFECTIVE_REDIS_URL.
ensure_redis() {
  local want=$1 server db
  if redis_ready "$want"; then
    say "redis: reachable at $(mask_url "$want")"
    EFFECTIVE_REDIS_URL=$want
    return 0
  fi
  parse_url "$want" 6379
  db=${URL_PATH:-0}
  say "redis: nothing answers at $(mask_url "$want")"
  if server=$(command -v redis-server 2>/dev/null); then
    start_private_redis "$server"
    EFFECTIVE_REDIS_URL="redis://127.0.0.1:$PRIVATE_REDIS_PORT/$db"
  elif docker_works; then
    start_with_docker redis
    EFFECTIVE_REDIS_URL="redis://:$COMPOSE_REDIS_PASSWORD@127.0.0.1:$PRIVATE_REDIS_PORT/$db"
  else
    PROBLEMS+=("$(
      cat <<EOF
Redis: nothing answers at $(mask_url "$want"), and there is no way here to start a private one:
  - no redis-server on PATH
  - no working Docker engine (\`docker info\` fails or docker is not installed)
  Fix one of:
  - Debian/Ubuntu: sudo apt-get install redis-server   (make dev then runs its own server in .data/redis)
  - macOS:         brew install redis
  - start Docker (make dev then runs \`docker compose up -d redis\`)
  - or set REDIS_URL in .env to a running Redis 6.2 or newer
EOF
    )")
  fi
}

# --- Docker -------------------------------------------------------------------------------------

start_with_docker() {
  local service=$1
  say "$service: starting it with \`docker compose up -d --wait $service\` (published on 127.0.0.1)"
  mkdir -p "$DATA_DIR"
  [[ -n $COMPOSE_PASSWORD && -n $COMPOSE_REDIS_PASSWORD ]] ||
    die "POSTGRES_PASSWORD and REDIS_PASSWORD must be set (in .env: \`make env-file\` writes a new .env with both; add them to an older one by hand, e.g. openssl rand -hex 24)"
  # Compose checks the whole file, and the app services require ENCRYPTION_KEYS; postgres and
  # redis do not use it, so a placeholder is enough when there is no .env yet.
  ENCRYPTION_KEYS=${ENCRYPTION_KEYS:-unused} SLUICE_PG_PORT=$PRIVATE_PG_PORT SLUICE_REDIS_PORT=$PRIVATE_REDIS_PORT \
    docker compose -f "$ROOT/docker-compose.yml" up -d --wait "$service"
  grep -qx "$service" "$DOCKER_MARK" 2>/dev/null || echo "$service" >>"$DOCKER_MARK"
}

# --- commands -----------------------------------------------------------------------------------

write_services_env() {
  local admin_url test_redis_url
  admin_url=${TEST_ADMIN_DATABASE_URL:-$(url_with_path "$EFFECTIVE_DATABASE_URL" postgres)}
  test_redis_url=${TEST_REDIS_URL:-$EFFECTIVE_REDIS_URL}
  mkdir -p "$DATA_DIR"
  {
    echo "# Written by scripts/services.sh ensure: the service URLs to use. Do not edit; it is rewritten."
    printf 'SLUICE_REQUESTED_DATABASE_URL=%q\n' "$(requested_database_url)"
    printf 'SLUICE_REQUESTED_REDIS_URL=%q\n' "$(requested_redis_url)"
    printf 'export DATABASE_URL=%q\n' "$EFFECTIVE_DATABASE_URL"
    printf 'export REDIS_URL=%q\n' "$EFFECTIVE_REDIS_URL"
    printf 'export TEST_ADMIN_DATABASE_URL=%q\n' "$admin_url"
    printf 'export TEST_REDIS_URL=%q\n' "$test_redis_url"
    # bench/ reads its own pair, defaulting to the same servers as the tests.
    printf 'export BENCH_ADMIN_DATABASE_URL=%q\n' "${BENCH_ADMIN_DATABASE_URL:-$admin_url}"
    printf 'export BENCH_REDIS_URL=%q\n' "${BENCH_REDIS_URL:-$test_redis_url}"
  } >"$SERVICES_ENV.tmp"
  mv "$SERVICES_ENV.tmp" "$SERVICES_ENV"
  say "using DATABASE_URL=$(mask_url "$EFFECTIVE_DATABASE_URL") REDIS_URL=$(mask_url "$EFFECTIVE_REDIS_URL")"
  say "tests use TEST_ADMIN_DATABASE_URL=$(mask_url "$admin_url") TEST_REDIS_URL=$(mask_url "$test_redis_url")"
}

cmd_ensure() {
  load_dotenv
  EFFECTIVE_DATABASE_URL='' EFFECTIVE_REDIS_URL=''
  ensure_postgres "$(requested_database_url)"
  ensure_redis "$(requested_redis_url)"
  if ((${#PROBLEMS[@]})); then
    printf '\n' >&2
    printf '%s\n\n' "${PROBLEMS[@]}" >&2
    die "Postgres and Redis are needed; install what is missing above and run the command again."
  fi
  write_services_env
}

cmd_stop() {
  local bin pid service
  if [[ -f $PG_DATA/PG_VERSION ]] && bin=$(find_pg_bin) && private_pg_running; then
    say "postgres: stopping the private server (.data/pg)"
    as_pg_user "$bin/pg_ctl" -D "$PG_DATA" -m fast -w -s stop
  fi
  if pid=$(private_redis_pid); then
    say "redis: stopping the private server (pid $pid, .data/redis)"
    kill -TERM "$pid"
    for _ in $(seq 1 40); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
  fi
  if [[ -f $DOCKER_MARK ]]; then
    while IFS= read -r service; do
      [[ -n $service ]] || continue
      say "$service: docker compose stop $service"
      docker compose -f "$ROOT/docker-compose.yml" stop "$service" || warn "could not stop $service"
    done <"$DOCKER_MARK"
    rm -f "$DOCKER_MARK"
  fi
  rm -f "$SERVICES_ENV"
}

cmd_status() {
  local pid
  load_dotenv
  if private_pg_running; then
    say "postgres: private server running on 127.0.0.1:$PRIVATE_PG_PORT"
  else
    say "postgres: no private server running"
  fi
  if pid=$(private_redis_pid); then
    say "redis: private server running on 127.0.0.1:$PRIVATE_REDIS_PORT (pid $pid)"
  else
    say "redis: no private server running"
  fi
  if [[ -f $DOCKER_MARK ]]; then
    say "docker compose services started here: $(paste -sd' ' "$DOCKER_MARK")"
  fi
  load_services_env
  say "DATABASE_URL=$(mask_url "$DATABASE_URL") REDIS_URL=$(mask_url "$REDIS_URL")"
}

case ${1:-ensure} in
  ensure) cmd_ensure ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) die "usage: $0 [ensure|status|stop]" ;;
esac
