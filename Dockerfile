# syntax=docker/dockerfile:1
# flag-sidecar: a feature-flag evaluation sidecar (gRPC on 50051, /healthz /readyz /metrics on 8014).
# Build: docker build -t flag-sidecar:0.1.0 .   (docs/deployment.md walks through running it)

# The base image, pinned to a patch release so that a rebuild does not change Python under us.
# To refresh: pick the newest python:3.11.X-slim-bookworm tag, and to pin it fully append its
# digest, as printed by `docker buildx imagetools inspect python:3.11.X-slim-bookworm`
# ("Digest: sha256:..."), e.g. python:3.11.13-slim-bookworm@sha256:<digest>.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# ---- build: the project wheel and the wheels of its dependencies (no compiler needed: all of
# them ship manylinux wheels for CPython 3.11).
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY sidecar ./sidecar
COPY flagsidecar ./flagsidecar
COPY flagd ./flagd
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# ---- runtime: the wheels installed into a clean image, run as an unprivileged user and group.
# The wheels are bind-mounted from the build stage for the install only, so no layer keeps them.
FROM ${PYTHON_IMAGE}
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels flag-sidecar \
    && groupadd --system --gid 10001 flag-sidecar \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin flag-sidecar

# Byte-code is not written (the root file system may be read-only); logs are not buffered.
# In a container the listeners bind every interface, so that a published port or another
# container can reach them; in a Kubernetes pod the manifests keep gRPC on 127.0.0.1.
# Set the management address through FLAG_SIDECAR_MANAGEMENT_LISTEN (or the --config file):
# the HEALTHCHECK reads it as `serve` does, so it follows a changed port.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FLAG_SIDECAR_LISTEN=0.0.0.0:50051 \
    FLAG_SIDECAR_MANAGEMENT_LISTEN=0.0.0.0:8014 \
    FLAG_SIDECAR_FLAGS=/etc/flag-sidecar/flags/flags.yaml

USER 10001:10001
EXPOSE 50051 8014

# Healthy = flags loaded and applied, gRPC accepting calls (/readyz), asked on the management
# port the configuration names (sidecar/healthcheck.py). Python's urllib, because the slim image
# has no curl and a gRPC health probe binary is not a pip dependency.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-m", "sidecar.healthcheck"]

# The process handles SIGTERM itself (drain, flush, exit 0), so it can be PID 1 without an init.
STOPSIGNAL SIGTERM
ENTRYPOINT ["flag-sidecar"]
CMD ["serve"]
