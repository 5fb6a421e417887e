# One image for all four apps and the CLI; each service picks its app with its command
# (e.g. `node --import tsx apps/image-download-worker/src/main.ts`). TypeScript runs through
# tsx, as in development: no build step, the same code the tests ran. The one thing built is the
# catalogue page (apps/web), in its own stage.
# syntax=docker/dockerfile:1

# The workspace manifests (and the libraries and tools, which are workspaces too): what both installs read.
FROM node:24-bookworm-slim AS manifests
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY apps/ingest-api/package.json apps/ingest-api/
COPY apps/image-download-worker/package.json apps/image-download-worker/
COPY apps/image-processing-worker/package.json apps/image-processing-worker/
COPY apps/maintenance-worker/package.json apps/maintenance-worker/
COPY apps/cli/package.json apps/cli/
COPY apps/web/package.json apps/web/
COPY libs/ libs/
COPY tools/ tools/

FROM manifests AS deps
# Production dependencies only; install scripts stay off (sharp ships libvips in its packages).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# The catalogue page (apps/web) is built by dev dependencies (vite, preact), so in a stage of its own;
# the runtime image takes only its output, which the API serves at /ui.
FROM manifests AS web
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.base.json ./
COPY apps/web/ apps/web/
RUN npm run build -w @1688sync/web

FROM node:24-bookworm-slim AS runtime
# postgresql-client: pg_dump / pg_restore for backups (client major ≥ server major: 15 here).
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client-15 ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    TSX_TSCONFIG_PATH=/app/tsconfig.base.json \
    STORAGE_DIR=/data/images \
    BACKUP_DIR=/data/backups
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.base.json ./
COPY apps/ apps/
COPY libs/ libs/
COPY --from=web /app/apps/web/dist apps/web/dist
RUN mkdir -p /data/images /data/backups && chown -R node:node /data
USER node
EXPOSE 3000 9101 9102 9103
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "--import", "tsx", "apps/ingest-api/src/main.ts"]
