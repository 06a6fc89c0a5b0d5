# pgbackup: the tool, Node.js LTS, the PostgreSQL clients of every supported server major
# (14-18, from the PostgreSQL project's apt repository) and age. Build from the repository root:
#   docker build -t pgbackup .
# test/integration/package.test.ts runs this build stage's npm commands in CI.

# ---- build: compile TypeScript, then keep only the runtime dependencies
FROM node:24-trixie-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY scripts ./scripts
COPY src ./src
COPY bin ./bin
RUN npm run build
RUN npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# ---- runtime
FROM node:24-trixie-slim
ARG PG_MAJORS="14 15 16 17 18"
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates curl age; \
    install -d /usr/share/postgresql-common/pgdg; \
    curl -fsSL -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc https://www.postgresql.org/media/keys/ACCC4CF8.asc; \
    . /etc/os-release; \
    echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt ${VERSION_CODENAME}-pgdg main" \
      > /etc/apt/sources.list.d/pgdg.list; \
    apt-get update; \
    apt-get install -y --no-install-recommends $(for v in $PG_MAJORS; do echo "postgresql-client-$v"; done); \
    apt-get purge -y --auto-remove curl; \
    rm -rf /var/lib/apt/lists/*
# pgbackup picks /usr/lib/postgresql/MAJOR/bin by the server's major version (PGBACKUP_PG_BINDIR overrides).
COPY --from=build /src/package.json /opt/pgbackup/package.json
COPY --from=build /src/bin /opt/pgbackup/bin
COPY --from=build /src/dist /opt/pgbackup/dist
COPY --from=build /src/node_modules /opt/pgbackup/node_modules
COPY README.md /opt/pgbackup/README.md
COPY docs /opt/pgbackup/docs
RUN ln -s /opt/pgbackup/bin/pgbackup /usr/local/bin/pgbackup \
 && mkdir -p /usr/local/share/man/man1 && ln -s /opt/pgbackup/dist/pgbackup.1 /usr/local/share/man/man1/pgbackup.1 \
 && groupadd --system --gid 10001 pgbackup \
 && useradd --system --uid 10001 --gid pgbackup --create-home --home-dir /home/pgbackup --shell /usr/sbin/nologin pgbackup
USER 10001:10001
WORKDIR /home/pgbackup
# A folder target without --to / PGBACKUP_TARGET is ./backups, i.e. /home/pgbackup/backups: mount a
# volume there (or set PGBACKUP_TARGET=s3://...). Secrets (DATABASE_URL, AWS credentials, the age
# identity for restores) come from the environment or mounted files at run time, never the image.
ENTRYPOINT ["pgbackup"]
CMD ["--help"]
