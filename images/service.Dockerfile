# One image per Go deployable (the four services, the aggregator, the mail
# sink, the sandbox processor, SeaweedFS's weed): the static binary on an
# empty base with only the CA certificates, the time zone data and a
# non-root user. scripts/images.sh builds it, once per binary:
#
#   docker build -f images/service.Dockerfile --build-arg NAME=auth -t mylittleshopping/auth:<hash> <context with auth>
#
# No HEALTHCHECK: Nomad's Consul checks say whether an instance is healthy.
# Nomad runs it read-only (readonly_rootfs) on the host's network.

# The files a static Go binary may need from a distribution, taken from
# Debian's packages (debian:bookworm-slim is built from them locally when
# no registry is reachable: scripts/images.sh).
FROM debian:bookworm-slim AS base
RUN apt-get update -qq \
	&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates tzdata >/dev/null \
	&& mkdir -p /rootfs/etc/ssl/certs /rootfs/usr/share /rootfs/tmp \
	&& cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
	&& cp -r /usr/share/zoneinfo /rootfs/usr/share/ \
	&& echo 'app:x:65532:65532:app:/nonexistent:/sbin/nologin' >/rootfs/etc/passwd \
	&& echo 'app:x:65532:' >/rootfs/etc/group \
	&& chmod 1777 /rootfs/tmp

FROM scratch
COPY --from=base /rootfs/ /
ARG NAME
ARG REVISION=unknown
ARG VERSION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="mylittleshopping-${NAME}" \
	org.opencontainers.image.description="Mylittleshopping: ${NAME}" \
	org.opencontainers.image.source="https://github.com/mylittleshopping/mylittleshopping" \
	org.opencontainers.image.revision="${REVISION}" \
	org.opencontainers.image.version="${VERSION}" \
	org.opencontainers.image.created="${CREATED}" \
	org.opencontainers.image.vendor="Mylittleshopping"
# The context holds only the binary, as `app` (mode 0555).
COPY app /app
USER 65532:65532
ENTRYPOINT ["/app"]
