#!/usr/bin/env bash
# Code generated from proto/ by buf with buf.gen.yaml.
#   scripts/gen-proto.sh PYTHON          # Python only: libs/proto/src (git-ignored)
#   scripts/gen-proto.sh PYTHON --all    # every plugin of buf.gen.yaml: Python and TypeScript
# Run from the repository root. PYTHON is an interpreter with the `codegen` dependency group
# (buf-bin, grpcio-tools, mypy-protobuf, googleapis-common-protos, pyyaml): `make setup` passes
# .venv's, the Dockerfile's build stage one with that group alone (no Node.js there, so Python
# only). --all needs clients/typescript/node_modules (`npm ci` there; `make proto` does it).
set -euo pipefail

python=$1
scope=${2:-}
bin=$(dirname "$python")
gen=libs/proto/src
ts_gen=clients/typescript/src/gen

# buf runs the template's local plugins with these names; they live beside PYTHON.
export PATH="$bin:$PATH"
rm -rf "$gen/tpf" "$gen/org"
if [[ $scope == --all ]]; then
    rm -rf "$ts_gen"
    "$bin/buf" generate --template buf.gen.yaml
elif [[ -z $scope ]]; then
    # The template's plugins that write Python, passed to buf as JSON.
    template=$("$python" -c 'import json, sys, yaml
template = yaml.safe_load(open("buf.gen.yaml"))
template["plugins"] = [p for p in template["plugins"] if p["out"] == sys.argv[1]]
print(json.dumps(template))' "$gen")
    "$bin/buf" generate --template "$template"
else
    echo "usage: $0 PYTHON [--all]" >&2
    exit 2
fi
find "$gen" -mindepth 1 -type d ! -name __pycache__ -exec touch {}/__init__.py \;
