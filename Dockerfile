# Sluice image for the API and the worker (docker-compose.yml runs both from it): the TypeScript is
# compiled to JavaScript (`npm run build`, dist/) in a build stage, and node runs it without tsx.

FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app

# Dependencies first, so this layer is rebuilt only when the lockfile changes. Dev tools (tsx,
# TypeScript, vitest, eslint, pino-pretty) stay out of the image: logs are JSON.
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# The compiled tree (dist/src, dist/workers, dist/scripts, dist/migrations) only: no TypeScript
# sources. Owned by root and read-only for the process user.
COPY --from=build /app/dist ./dist

USER node
ENV HOST=0.0.0.0 PORT=3000
EXPOSE 3000

# Compose overrides this: migrate then the API, or the worker. Straight to node (not npm), so that
# SIGTERM reaches Sluice and its graceful shutdown.
# --max-semi-space-size=1: the API's young generation stays at 1 MiB instead of the 16 MiB V8 grows it
# to while modules load (idle RSS 131 -> 99 MiB, same CPU per request: docs/RESULTS.md).
CMD ["node", "--max-semi-space-size=1", "dist/src/main.js", "api"]
