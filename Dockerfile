# One image for both roles: `memfleet proxy` and `memfleet node` (memcached from Debian).
#   docker build -t memfleet:0.1.0 .
#   kind load docker-image memfleet:0.1.0        # or: minikube image load memfleet:0.1.0
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/memfleet:TAG --push .
# The manifests under deploy/ reference it as memfleet:<version>; point them at another name
# with `memfleet render --image REGISTRY/memfleet:TAG` or the kustomization's `images:` entry
# (`kustomize edit set image memfleet=REGISTRY/memfleet:TAG`). The README's "Deploy to
# Kubernetes" has the whole path; .github/workflows/release.yml publishes it on a tag.

ARG DEBIAN=debian:bookworm-slim

FROM ${DEBIAN} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-dev gcc \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/memfleet
COPY pyproject.toml setup.py README.md /src/
COPY src /src/src
# The proxy's hot path is compiled with mypyc here (setup.py); MEMFLEET_COMPILE=1 makes a failed
# compile fail the build instead of shipping the slower pure-Python fallback. Only the build
# stage has a compiler; every dependency ships binary wheels for amd64 and arm64.
RUN MEMFLEET_COMPILE=1 /opt/memfleet/bin/pip install --no-cache-dir --no-compile /src \
    && /opt/memfleet/bin/python -m compileall -q /opt/memfleet

FROM ${DEBIAN}
LABEL org.opencontainers.image.title="memfleet" \
      org.opencontainers.image.description="memcached-protocol routing proxy and memcached node supervisor" \
      org.opencontainers.image.licenses="Apache-2.0"
# memcached from Debian (>= 1.6, with --memory-file and restartable mode). The package creates
# a system user `memcache` with a distribution-chosen UID; pin it to 11211 so that
# runAsUser/fsGroup in the manifests and the owner of files on persistent volumes stay the
# same across image versions.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 memcached \
    && rm -rf /var/lib/apt/lists/* \
    && old_uid="$(id -u memcache)" && old_gid="$(id -g memcache)" \
    && groupmod --gid 11211 memcache \
    && usermod --uid 11211 --gid 11211 memcache \
    && find / -xdev \( -uid "$old_uid" -o -gid "$old_gid" \) -exec chown -h memcache:memcache {} + \
    && memcached --version
COPY --from=build /opt/memfleet /opt/memfleet
ENV PATH=/opt/memfleet/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 11211:11211
WORKDIR /tmp
EXPOSE 11211
ENTRYPOINT ["memfleet"]
CMD ["--help"]
