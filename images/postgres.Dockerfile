# PostgreSQL 15 with pgBackRest and the backup command (bin/backup): the
# image of the four databases (nomad/postgres.nomad.hcl) and of their backup
# jobs (nomad/backup.nomad.hcl), which drive pgBackRest, pg_dump and a
# scratch server and so need the same binaries. scripts/images.sh builds it.
#
# The postgres user has the fixed uid/gid 999, which the host volumes are
# owned by (scripts/devcluster.sh, the hosts' install.sh).
FROM debian:bookworm-slim
RUN groupadd --system --gid 999 postgres \
	&& useradd --system --uid 999 --gid 999 --home-dir /var/lib/postgresql --shell /bin/sh postgres \
	&& mkdir -p /etc/postgresql-common \
	&& echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.conf \
	&& apt-get update -qq \
	&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		postgresql-15 pgbackrest ca-certificates tzdata >/dev/null \
	&& rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ARG REVISION=unknown
ARG VERSION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="mylittleshopping-postgres" \
	org.opencontainers.image.description="Mylittleshopping: PostgreSQL 15, pgBackRest and the backup command" \
	org.opencontainers.image.source="https://github.com/mylittleshopping/mylittleshopping" \
	org.opencontainers.image.revision="${REVISION}" \
	org.opencontainers.image.version="${VERSION}" \
	org.opencontainers.image.created="${CREATED}" \
	org.opencontainers.image.vendor="Mylittleshopping"
# The context holds only the backup command, as `backup` (mode 0555).
COPY backup /usr/local/bin/backup
USER postgres
