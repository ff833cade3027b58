# TPF coordinator suite. `make dev` runs the suite on its embedded default; `make test` runs
# every check and test. Both install what they need: a pinned uv in .tools/, the locked
# environment in .venv/, and Python code generated from proto/.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
GEN := libs/proto/src
TS := clients/typescript
# Inputs of the generated code: our protos, the vendored google/api and google/rpc ones, the
# template and its plugin.
PROTO_INPUTS = $(shell find proto third_party/proto -name '*.proto' | sort) buf.yaml buf.gen.yaml \
	scripts/gen-proto.sh scripts/protoc-gen-grpc-tools.py

export UV_SYSTEM_CERTS := 1
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: help setup proto lint format breaking api-baseline test test-fast dev chaos bench clean system-deps

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) uv.lock pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml examples/*/pyproject.toml)
	$(UV) sync --frozen --all-packages --python $(PYTHON)
	touch $@

# The same script generates the image's code (Dockerfile, scripts/stage-image.sh): Python only.
$(GEN)/.generated: $(VENV)/.synced $(PROTO_INPUTS)
	scripts/gen-proto.sh $(BIN)/python
	touch $@

# protoc-gen-es and the TypeScript package's dependencies, as its package-lock.json pins them.
$(TS)/node_modules/.installed: $(TS)/package.json $(TS)/package-lock.json $(TS)/.npmrc
	cd $(TS) && npm ci --no-audit --no-fund
	touch $@

# Debian package for each command the tests run; installed when the command is missing, or fail.
SYSTEM_DEPS := redis-server:redis-server node:nodejs npm:npm kubectl:kubectl chromium:chromium

system-deps: ## install Debian packages the tests need (redis-server, node, npm, kubectl, chromium) when missing
	@missing=""; for pair in $(SYSTEM_DEPS); do \
		command -v "$${pair%%:*}" >/dev/null || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && apt-get install -y -qq $$missing; fi

setup: $(GEN)/.generated ## create .venv from uv.lock and generate code from proto/

proto: $(VENV)/.synced system-deps $(TS)/node_modules/.installed ## regenerate Python and TypeScript code (buf.gen.yaml)
	rm -f $(GEN)/.generated
	scripts/gen-proto.sh $(BIN)/python --all
	touch $(GEN)/.generated

lint: setup ## buf lint + buf format check + ruff + mypy + hadolint
	$(BIN)/buf lint
	$(BIN)/buf format proto --diff --exit-code
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy libs services tests bench
	$(BIN)/hadolint Dockerfile

format: setup ## apply buf format and ruff format
	$(BIN)/buf format proto -w
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

breaking: setup ## buf breaking (FILE) against api/baseline.binpb and before the last proto change
	scripts/buf-breaking.sh

api-baseline: setup ## replace api/baseline.binpb with proto/ as it is (commit both, saying why)
	scripts/api-baseline.sh

# Two pytest workers (pytest-xdist), one test file each at a time: most e2e time is spent waiting
# on real processes, so two files overlap well on two cores. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2

test: setup system-deps lint breaking ## lint, breaking check and the whole test suite
	TPF_FAIL_ON_SKIP=1 $(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --durations=25

test-fast: setup ## tests only, no lint
	$(BIN)/python -m pytest -q -x

dev: setup ## run the suite on embedded Postgres, restarting what exits (Ctrl-C stops it)
	$(BIN)/python -m tpf_devserver

# `make test` runs the same campaign with 70 orders (tests/chaos/test_campaign.py).
CHAOS_EXECUTIONS ?= 300

chaos: setup ## crash campaign: orders over REST, gRPC and SQS on make dev's suite while each process type is killed; checks the database (CHAOS_EXECUTIONS=300)
	$(BIN)/python -m tests.chaos.campaign --executions $(CHAOS_EXECUTIONS)

# `make bench`: our benchmarks and the peers' (PgQueuer, Procrastinate, DBOS) in one sitting on
# one Postgres server, then the ratio table in bench/results/ (bench/README.md). PEERS_DIR holds
# the peers' drivers and setup.sh; DATABASE_URL is a role that may create databases, passed to
# both. BENCH_QUICK=1: small N and one repetition (checks that it works; not for figures).
DATABASE_URL ?= postgresql://bench@127.0.0.1:5432/postgres
PEERS_DIR ?= ../shared/bench-peers
BENCH_QUICK ?=
REPS ?=
BENCH_RUNS ?=
BENCH_PEERS ?=
BENCH_SCALE ?= 1
BENCH_ARGS ?=

bench: setup ## our runs and the peers' against DATABASE_URL, ratio table in bench/results (BENCH_QUICK=1, REPS, BENCH_RUNS, BENCH_PEERS, BENCH_SCALE=0, BENCH_ARGS)
	$(BIN)/python -m bench.compare --database-url '$(DATABASE_URL)' --peers-dir '$(PEERS_DIR)' \
		$(if $(BENCH_QUICK),--quick) $(if $(REPS),--reps $(REPS)) \
		$(if $(BENCH_RUNS),--runs $(BENCH_RUNS)) $(if $(BENCH_PEERS),--peer-runs $(BENCH_PEERS)) \
		$(if $(filter 0,$(BENCH_SCALE)),--no-scale) $(BENCH_ARGS)

clean: ## remove generated code and environments (keeps .tpf/ data)
	rm -rf $(VENV) $(TOOLS) $(GEN)/tpf $(GEN)/org $(GEN)/.generated .build $(TS)/node_modules $(TS)/dist
