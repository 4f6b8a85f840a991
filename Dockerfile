# Sluice image for the API and the worker (docker-compose.yml runs both from it).
# TypeScript runs through tsx, as in development: there is no build step.
FROM node:20-slim

ENV NODE_ENV=production
WORKDIR /app

# Dependencies first, so this layer is rebuilt only when the lockfile changes. tsx is a runtime
# dependency; dev tools (vitest, eslint, tsc) stay out of the image.
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# Sources stay owned by root and read-only for the process user.
COPY . .

USER node
ENV HOST=0.0.0.0 PORT=3000
EXPOSE 3000

# Compose overrides this: migrate then start:api, or start:worker.
CMD ["npm", "run", "start:api"]
