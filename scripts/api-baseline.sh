#!/usr/bin/env bash
# Replace api/baseline.binpb, the image of the released API that `make breaking` compares every
# later change with. Run it only when a release makes the current protos the new contract (or
# when a breaking change was agreed), and say why in the commit that carries the new image.
#
# Usage: scripts/api-baseline.sh [ROOT] [REF]   ROOT defaults to this repository. With REF (for
# example HEAD) the image is built from that commit's protos, not from the working tree, so
# uncommitted edits stay out of it. BUF overrides the buf binary.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "${1:-$here}" && pwd)"
ref="${2:-}"
buf="${BUF:-$here/.venv/bin/buf}"
cd "$root"
mkdir -p api
source=.
if [[ -n $ref ]]; then
  source=.build/api-baseline-source
  rm -rf "$source"
  mkdir -p "$source"
  git archive "$ref" proto buf.yaml $(git ls-tree --name-only "$ref" third_party) |
    tar -x -C "$source"
  # Commits older than the vendored third_party/proto generated it at build time.
  if [[ ! -d $source/third_party/proto ]]; then
    mkdir -p "$source/third_party"
    cp -r third_party/proto "$source/third_party/proto"
  fi
fi
# Source info (comments, spans) is left out: breaking rules read only names, numbers and types,
# and the image then changes only when the contract does.
"$buf" build "$source/proto" --exclude-source-info -o api/baseline.binpb
echo "api/baseline.binpb: built from ${ref:-the working tree}; commit it saying why"
