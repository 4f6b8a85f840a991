# Developer commands for Sluice; `make help` lists them. Newcomers: `make dev`, `make test`.
#
# Every command runs through scripts/with-env.sh: .env is loaded (variables already set in the
# environment win) and the Postgres/Redis URLs that scripts/services.sh settled on are applied.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

RUN := bash scripts/with-env.sh
# What `make dev` starts once everything is ready: the API and a worker in one process, what
# `npm start` runs. Run directly, not through npm: npm answers Ctrl-C with exit 130 even when Sluice
# closed cleanly. Override to run something else: make dev START='npm run start:api'
START ?= node --import tsx src/main.ts all

.PHONY: help dev test test-unit cluster-test build generate generate-check migrate rewrap bench bench-scale chaos load lint typecheck vitest clean-data \
	deps env-file services database data-dir chromium pgbouncer pgbouncer-test services-status services-stop

help: ## list the targets
	@echo 'Sluice. First time here: `make dev` (runs it), `make test` (checks it).'
	@echo
	@awk 'BEGIN { FS = ":.*## " } /^[a-z][a-z-]*:.*## / { printf "  make %-16s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

dev: deps env-file services database migrate data-dir ## set up everything (deps, .env, Postgres, Redis, database, migrations, data/), then start Sluice
	@echo '==> starting: $(START)'
	@# Ctrl-C (SIGINT) is how one stops it: a clean close after it is a success, not an error.
	@$(RUN) $(START) || { status=$$?; ((status == 130)) || exit $$status; }

test: deps services chromium pgbouncer generate-check lint typecheck vitest ## set up deps and services, then generated-files check, lint, type-check, tests with coverage

test-unit: deps ## only the tests that need no Postgres, Redis or browser (src/**/*.test.ts), in well under a minute
	$(RUN) env NODE_ENV=test npm run test:unit

build: deps ## compile to JavaScript in dist/ (what production runs: npm run start:prod)
	$(RUN) npm run build

generate: deps ## regenerate code, migrations and contract tests from specs/entities.json
	$(RUN) npm run generate

generate-check: deps ## fail when generated files are stale (run `make generate`)
	$(RUN) npm run generate:check

migrate: deps services database ## apply pending migrations to DATABASE_URL
	$(RUN) npm run migrate

rewrap: deps services ## re-encrypt stored secrets with the first key of ENCRYPTION_KEYS (key rotation)
	$(RUN) npm run rewrap

bench: deps services ## run the benchmarks (bench/run.ts)
	$(RUN) npm run bench

bench-scale: deps services ## syncs/s with 1, 2, 4, 8 worker processes (no-op and 50 ms I/O connector), scaling efficiency and what saturates (bench/worker-scaling.bench.ts, ~7 min)
	$(RUN) npm run bench worker-scaling

chaos: deps services ## fault-injection suite with real processes (test/chaos/*.chaos.ts), prints a pass/fail table; CASES='2 5' runs some
	$(RUN) npm run chaos -- $(CASES)

load: deps services ## load suite: API + 2 workers, 10k sources, 200 connections for 60 s (bench/load/run-load.ts), prints the load table
	$(RUN) npm run load

lint: deps ## eslint and prettier --check
	$(RUN) npm run lint

typecheck: deps ## tsc --noEmit over the whole project
	$(RUN) npm run typecheck

vitest: deps services chromium pgbouncer ## only the tests (vitest with coverage), after deps and services
	$(RUN) env NODE_ENV=test npm test

cluster-test: deps services ## only Sluice on a private 6-node Redis Cluster, ports 7101-7106, with a master failover (test/integration/redis-cluster.test.ts)
	$(RUN) env NODE_ENV=test npx vitest run test/integration/redis-cluster.test.ts

pgbouncer-test: deps services pgbouncer ## only Sluice through a private PgBouncer in transaction mode (test/integration/pgbouncer.test.ts)
	$(RUN) env NODE_ENV=test npx vitest run test/integration/pgbouncer.test.ts

clean-data: ## stop the private Postgres/Redis this project started and delete .data/
	bash scripts/services.sh stop
	rm -rf .data

# --- set-up steps, also usable alone ---

deps: ## npm ci when node_modules is missing or older than package-lock.json
	@bash scripts/deps.sh

env-file: ## write .env from .env.example with a new ENCRYPTION_KEYS (never overwrites .env)
	@bash scripts/env-file.sh

services: ## make sure Postgres and Redis answer; start private ones under .data/ if not
	@bash scripts/services.sh ensure

services-status: ## show private instances and the URLs in use
	@bash scripts/services.sh status

services-stop: ## stop the private Postgres/Redis (keeps .data/)
	@bash scripts/services.sh stop

database: ## create the database DATABASE_URL names if it is missing
	@bash scripts/create-database.sh

data-dir: ## create data/, where file sources may read in development (the default FILE_ROOTS)
	@mkdir -p data

chromium: ## make sure Chromium is there for the browser tests (installs Debian's as root)
	@bash scripts/chromium.sh

pgbouncer: ## make sure PgBouncer is there for the PgBouncer test (installs Debian's as root)
	@bash scripts/pgbouncer.sh
