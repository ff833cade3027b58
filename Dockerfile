# One image for every service: `docker build -t tpf-suite .`, then run a console script:
# tpf-registry (the default), tpf-coordinator, tpf-dispatcher, tpf-gateway, tpf-sqs-bridge,
# tpf-worker, tpf. deploy/k8s names the script of each Deployment in its `args`.
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends make && rm -rf /var/lib/apt/lists/*
# Build where the app will run: uv installs the workspace packages editable (.pth files and
# script shebangs hold absolute paths), so the tree must not move between the stages.
WORKDIR /app
# Everything but .dockerignore: libs/, services/ and examples/ (the example worker and a
# dispatcher's TPF_LOCAL_PIPELINES import restaurant_approval from there).
COPY . .
# `make setup` installs the dev tools too (grpcio-tools, mypy-protobuf) to generate code.
RUN make setup \
    && .venv/bin/python -c "import restaurant_approval.pipeline, tpf_worker, tpf_gateway" \
    && .venv/bin/python -m compileall -q libs services examples

FROM python:3.11-slim
WORKDIR /app
COPY --from=build /app /app
ENV PATH="/app/.venv/bin:${PATH}" PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# uid/gid 10001: the securityContext of the Kubernetes manifests runs as this user.
RUN groupadd --system --gid 10001 tpf \
    && useradd --system --uid 10001 --gid tpf tpf \
    && mkdir -p /var/lib/tpf && chown tpf:tpf /var/lib/tpf
USER 10001:10001
CMD ["tpf-registry"]
