# One image for every service, each run by its console script (the Deployments name it in
# `args`): tpf-registry, tpf-coordinator (both also take `migrate`), tpf-dispatcher,
# tpf-gateway, tpf-sqs-bridge, and the `tpf` CLI.
#   docker build -t tpf-suite:<tag> .                     the services (deploy/k8s/overlays/production)
#   docker build --target trial -t tpf-suite:trial .      plus the restaurant-approval example
#                                                         (deploy/k8s/overlays/dev)
# The runtime holds only /app/.venv, installed from uv.lock without dev dependencies or the
# embedded Postgres: no sources, tests, .git or tools. It runs as uid 10001 on a read-only root
# filesystem; services write only to TPF_DATA_DIR (/var/lib/tpf) and /tmp, which Kubernetes
# mounts as volumes. scripts/stage-image.sh is the build step; tests/integration/test_image.py
# runs it without Docker and measures the result (docs/operations.md, "The image").
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The uv release the Makefile pins.
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY buf.yaml buf.gen.yaml ./
COPY proto proto
COPY third_party/proto third_party/proto
COPY libs libs
COPY services services
COPY examples examples
COPY scripts/gen-proto.sh scripts/protoc-gen-grpc-tools.py scripts/stage-image.sh scripts/

FROM build AS trial-build
# Same path as in the runtime: console scripts name their interpreter by absolute path.
RUN scripts/stage-image.sh /app/.venv --example

FROM build AS runtime-build
RUN scripts/stage-image.sh /app/.venv

FROM ${PYTHON_IMAGE} AS base
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TPF_DATA_DIR=/var/lib/tpf
# uid/gid 10001: the securityContext of the Kubernetes manifests runs as this user.
RUN groupadd --system --gid 10001 tpf \
    && useradd --system --uid 10001 --gid tpf --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin tpf \
    && mkdir -p /var/lib/tpf \
    && chown tpf:tpf /var/lib/tpf
WORKDIR /var/lib/tpf
USER 10001:10001
CMD ["tpf-registry"]

FROM base AS trial
COPY --from=trial-build /app/.venv /app/.venv

# Last, so that a plain `docker build` builds it.
FROM base AS runtime
COPY --from=runtime-build /app/.venv /app/.venv
