#!/usr/bin/env bash
# buf breaking (FILE level) of the working tree's protos against main's.
# main's tree is exported to .build/breaking-main with the same third_party/proto beside it,
# because google/api and google/rpc are generated there by `make proto`, not committed.
set -euo pipefail
cd "$(dirname "$0")/.."
ref=main
if git rev-parse --verify --quiet origin/main >/dev/null; then ref=origin/main; fi
if ! git rev-parse --verify --quiet "$ref" >/dev/null; then
  echo "buf breaking: no '$ref' to compare against; skipped"; exit 0
fi
if ! git ls-tree -d --name-only "$ref" proto | grep -q proto; then
  echo "buf breaking: $ref has no proto/ yet; skipped"; exit 0
fi
against=.build/breaking-main
rm -rf "$against"; mkdir -p "$against"
git archive "$ref" proto buf.yaml | tar -x -C "$against"
mkdir -p "$against/third_party"
cp -r third_party/proto "$against/third_party/proto"
.venv/bin/buf breaking --against "$against"
echo "buf breaking: no breaking change against $ref"
