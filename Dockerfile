# syntax=docker/dockerfile:1
#
# sessionizer: the streaming worker, the HTTP collector, the dashboard and the command line in one image.
#
#   docker build -t sessionizer .
#   docker run --init --env-file worker.env -p 9464:9464 sessionizer            # sessionizer worker
#   docker run --init --env-file collect.env -p 8080:8080 sessionizer collect   # the HTTP collector
#   docker run --init --env-file dashboard.env -v $PWD/dashboard.yaml:/config/dashboard.yaml:ro \
#     -p 8090:8090 sessionizer dashboard                                        # the dashboard and Stats API
#   docker run --init --env-file worker.env sessionizer migrate                 # any other command
#
# Three stages: `build` compiles TypeScript with the dev dependencies; `deps` installs the
# production dependencies alone (`npm ci --omit=dev`: no TypeScript, no test tools, no chdb);
# the runtime stage holds those, the compiled dist/ (with the Lua scripts in
# dist/state/scripts, the browser script in dist/collect/browser, the dashboard's CSS and script
# in dist/dashboard/assets; uPlot, which draws its charts, is a production dependency served from
# node_modules) and schemas/ (migrations read schemas/clickhouse), and runs as the
# unprivileged `node` user. Configuration comes from the environment only (README,
# docs/operations.md); secrets preferably as mounted files through the *_FILE variables.
#
# Node 24 is the current LTS line (Node 20 reached its end of life in April 2026). The
# dependencies are pure JavaScript, so install scripts are skipped (--ignore-scripts).

ARG NODE_IMAGE=node:24.21.0-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
    && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="sessionizer" \
      org.opencontainers.image.description="Kafka to Redis to ClickHouse worker that turns product events into analytics sessions" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY schemas ./schemas
USER node
# /metrics, /healthz and /readyz (HTTP_PORT, default 9464 for the worker, 9465 for the collector,
# 9466 for the dashboard); the collector's API (COLLECT_PORT, default 8080); the dashboard's pages
# and Stats API (DASHBOARD_PORT, default 8090).
EXPOSE 9464 9465 9466 8080 8090
# Liveness of the worker, the collector or the dashboard: GET /healthz on HTTP_PORT (the slim image has no curl:
# node itself). A container running a one-shot command (migrate, report, recompute...) has no
# endpoint and is not unhealthy: the check passes unless a `cli.js worker` or `cli.js collect`
# process runs, or `cli.js dashboard` (src/healthcheck.ts).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["node", "dist/healthcheck.js"]
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["worker"]
