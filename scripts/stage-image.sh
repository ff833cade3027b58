#!/usr/bin/env bash
# The Dockerfile's build step, as a script: the services' runtime environment in VENV.
#   scripts/stage-image.sh VENV [--example]
# Run from a tree holding what the Dockerfile copies (pyproject.toml, uv.lock, proto/, libs/,
# services/, examples/, these scripts); it generates libs/proto/src there. Installs, from
# uv.lock: the five services and the `tpf` CLI, non-editable and byte-compiled, without the
# dev group or any extra (so no embedded Postgres); --example adds the restaurant-approval
# example (the image's `trial` target, for deploy/k8s/overlays/dev). UV names the uv binary
# (default: uv on PATH). tests/integration/test_image.py runs this without Docker.
set -euo pipefail

venv=$1
example=${2:-}
uv=${UV:-uv}
packages=(tpf-registry tpf-coordinator tpf-dispatcher tpf-gateway tpf-sqs-bridge tpf-cli)
if [[ $example == --example ]]; then
    packages+=(tpf-example-restaurant-approval)
elif [[ -n $example ]]; then
    echo "usage: $0 VENV [--example]" >&2
    exit 2
fi

# Code generation needs grpcio-tools: a throwaway environment with the codegen group alone.
codegen=$(mktemp -d)
trap 'rm -rf "$codegen"' EXIT
UV_PROJECT_ENVIRONMENT=$codegen "$uv" sync --frozen --only-group codegen
scripts/gen-proto.sh "$codegen/bin/python"

package_args=()
for package in "${packages[@]}"; do
    package_args+=(--package "$package")
done
UV_PROJECT_ENVIRONMENT=$venv "$uv" sync --frozen --no-dev --no-editable --compile-bytecode \
    "${package_args[@]}"
