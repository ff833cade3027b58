#!/usr/bin/env bash
# Python code (and mypy stubs) generated from proto/ into libs/proto/src, and the google/api and
# google/rpc protos copied into third_party/proto (buf's second, lint-exempt module).
#   scripts/gen-proto.sh PYTHON
# Run from the repository root. PYTHON is an interpreter with the `codegen` dependency group
# (grpcio-tools, mypy-protobuf, googleapis-common-protos): `make proto` passes .venv's, the
# Dockerfile's build stage one with that group alone.
set -euo pipefail

python=$1
bin=$(dirname "$python")
gen=libs/proto/src
third_party=third_party/proto
google_protos=(
    google/api/annotations.proto google/api/http.proto google/api/field_behavior.proto
    google/rpc/status.proto google/rpc/error_details.proto google/rpc/code.proto
)
mapfile -t proto_files < <(find proto -name '*.proto' | sort)
site=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
grpc_include=$("$python" -c \
    'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')

rm -rf "$third_party" "$gen/tpf" "$gen/org"
mkdir -p "$third_party"
root=$PWD
(cd "$site" && cp --parents "${google_protos[@]}" "$root/$third_party/")
"$python" -m grpc_tools.protoc -Iproto -I"$third_party" -I"$grpc_include" \
    --python_out="$gen" --grpc_python_out="$gen" \
    --plugin=protoc-gen-mypy="$bin/protoc-gen-mypy" --mypy_out="$gen" \
    --plugin=protoc-gen-mypy_grpc="$bin/protoc-gen-mypy_grpc" --mypy_grpc_out="$gen" \
    "${proto_files[@]}"
find "$gen" -mindepth 1 -type d ! -name __pycache__ -exec touch {}/__init__.py \;
