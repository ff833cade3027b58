# One image for every service: `docker build -t tpf-suite .`, then run `tpf-registry` (and,
# as they land, the other services' scripts).
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends make && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# `make setup` installs the dev tools too (grpcio-tools, mypy-protobuf) to generate code.
RUN make setup

FROM python:3.11-slim
WORKDIR /app
COPY --from=build /src /app
ENV PATH="/app/.venv/bin:${PATH}" PYTHONUNBUFFERED=1
RUN useradd --system --uid 10001 tpf && mkdir -p /var/lib/tpf && chown tpf /var/lib/tpf
USER tpf
CMD ["tpf-registry"]
