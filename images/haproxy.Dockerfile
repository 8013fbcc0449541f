# HAProxy from Debian's packages (2.6, with Lua): the edge (nomad/edge.nomad.hcl).
# scripts/images.sh builds it.
FROM debian:bookworm-slim
# A fixed uid, which the job's mesh certificate file is given to.
RUN groupadd --system --gid 998 haproxy \
	&& useradd --system --uid 998 --gid 998 --home-dir /var/lib/haproxy --shell /usr/sbin/nologin haproxy \
	&& apt-get update -qq \
	&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy ca-certificates >/dev/null \
	&& rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
ARG REVISION=unknown
ARG VERSION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="mylittleshopping-haproxy" \
	org.opencontainers.image.description="Mylittleshopping: the edge, HAProxy" \
	org.opencontainers.image.source="https://github.com/mylittleshopping/mylittleshopping" \
	org.opencontainers.image.revision="${REVISION}" \
	org.opencontainers.image.version="${VERSION}" \
	org.opencontainers.image.created="${CREATED}" \
	org.opencontainers.image.vendor="Mylittleshopping"
USER haproxy
ENTRYPOINT ["/usr/sbin/haproxy"]
