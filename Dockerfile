# riskd: the daemon in a slim image, as uid 10001, fit for a read-only root filesystem.
#
#   docker build -t riskd .
#   docker run --read-only --tmpfs /tmp -v riskd-state:/var/lib/riskd \
#       -v "$PWD/config:/etc/riskd:ro" -e API2TRADE_API_KEY -p 127.0.0.1:9108:9108 riskd
#
# config/ holds riskd.yaml (with http.listen: 0.0.0.0:9108) and the rule files it names; see
# deploy/kubernetes/README.md, "Docker".
#
# The base is pinned by tag (both stages must share it: the venv below links to its
# interpreter). For reproducible builds pin the digest too, resolved where the image is built:
#   --build-arg PYTHON_IMAGE=python:3.11.14-slim-trixie@sha256:<digest>
ARG PYTHON_IMAGE=python:3.11.14-slim-trixie

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
# A venv without pip, filled by the base image's pip: the runtime stage copies it whole and
# never runs an installer. pip compiles the .pyc files here, so the read-only runtime never
# needs to write them.
RUN python -m venv --without-pip /opt/riskd
WORKDIR /src
COPY pyproject.toml README.md ./
COPY riskd ./riskd
RUN pip --python /opt/riskd/bin/python install --no-cache-dir .

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="riskd" \
      org.opencontainers.image.description="Risk guard for MT4/MT5 accounts behind the API2Trade bridge" \
      org.opencontainers.image.licenses="MIT"
# Nothing may be written outside /var/lib/riskd (the state volume) and /tmp (a tmpfs or
# emptyDir: SQLite's temporary files): no bytecode, HOME on the tmpfs. The state path is set
# here because the volume is the only writable place in the container; -e overrides it.
# Likewise /metrics and the probes must be reachable from outside the container, on the port
# the HEALTHCHECK uses (the config's loopback default would answer nobody).
ENV PATH=/opt/riskd/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    RISKD_STATE__PATH=/var/lib/riskd/state.sqlite \
    RISKD_HTTP__LISTEN=0.0.0.0:9108
RUN groupadd --system --gid 10001 riskd \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin riskd \
    && mkdir -p /var/lib/riskd /etc/riskd \
    && chown 10001:10001 /var/lib/riskd \
    && chmod 0750 /var/lib/riskd
COPY --from=build /opt/riskd /opt/riskd
# The rule presets, for configs to reference as /usr/share/riskd/rules/<preset>.yaml.
COPY rules /usr/share/riskd/rules
# A new named volume takes this directory's owner (10001), so riskd can create its database.
VOLUME ["/var/lib/riskd"]
USER 10001:10001
WORKDIR /var/lib/riskd
# /metrics /livez /readyz /status (RISKD_HTTP__LISTEN above).
EXPOSE 9108
# Standard library only (slim has no curl). /livez is answered by the event loop itself, so a
# hung loop fails this by the timeout; urlopen raises on any non-2xx answer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/opt/riskd/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9108/livez', timeout=3)"]
ENTRYPOINT ["riskd"]
CMD ["run", "--config", "/etc/riskd/riskd.yaml"]
