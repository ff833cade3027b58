#!/usr/bin/env bash
# buf breaking (FILE rules, buf.yaml) of the working tree's protos against two references:
#
#   1. api/baseline.binpb, a `buf build` image of the released API. It is replaced only by
#      `make api-baseline`, in a commit that says why; every change since then must be additive.
#   2. The protos as they were before the last commit that changed proto/ (that commit's parent).
#      In CI's clean clone of the submitted main, origin/main is the commit under test, so a check
#      against it could never fail; the parent of the latest proto change can. When that same
#      commit also replaced the baseline, the break was agreed there (its message says why) and
#      only the baseline check applies.
#
# Usage: scripts/buf-breaking.sh [ROOT]   ROOT defaults to the repository holding this script; a
# test passes a temporary copy (a git repository of its own). BUF overrides the buf binary.
# Exits with buf's status (100) on a breaking change, after printing buf's findings.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "${1:-$here}" && pwd)"
buf="${BUF:-$here/.venv/bin/buf}"
baseline=api/baseline.binpb
cd "$root"

failed=0

if [[ ! -f $baseline ]]; then
  echo "buf breaking: $baseline is missing; create it with \`make api-baseline\`" >&2
  exit 1
fi
rc=0
"$buf" breaking proto --against "$baseline" || rc=$?
if ((rc == 0)); then
  echo "buf breaking: no breaking change against $baseline"
else
  echo "buf breaking: breaking change against the released API ($baseline)" >&2
  failed=$rc
fi

if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "buf breaking: $root is not a git work tree; the previous proto commit is unknown" >&2
  exit 1
fi
last=$(git log -1 --format=%H -- proto)
if [[ -z $last ]]; then
  echo "buf breaking: no commit has changed proto/ yet; nothing earlier to compare against"
elif ! git rev-parse --verify --quiet "$last^" >/dev/null; then
  if [[ $(git rev-parse --is-shallow-repository) == true ]]; then
    echo "buf breaking: shallow clone, the parent of $last is missing; fetch more history" >&2
    exit 1
  fi
  echo "buf breaking: $last added proto/; nothing earlier to compare against"
elif ! git ls-tree -d --name-only "$last^" proto | grep -qx proto; then
  echo "buf breaking: $last added proto/; nothing earlier to compare against"
elif [[ $(git log -1 --format=%H -- "$baseline") == "$last" ]]; then
  echo "buf breaking: $(git rev-parse --short "$last") changed proto/ and replaced $baseline" \
    "(an agreed break: $(git log -1 --format=%s "$last")); checked against the baseline only"
else
  against=.build/breaking-previous
  rm -rf "$against"
  mkdir -p "$against"
  git archive "$last^" proto buf.yaml $(git ls-tree --name-only "$last^" third_party) |
    tar -x -C "$against"
  # Commits older than the vendored third_party/proto generated it at build time.
  if [[ ! -d $against/third_party/proto ]]; then
    mkdir -p "$against/third_party"
    cp -r third_party/proto "$against/third_party/proto"
  fi
  short=$(git rev-parse --short "$last^")
  rc=0
  "$buf" breaking proto --against "$against/proto" || rc=$?
  if ((rc == 0)); then
    echo "buf breaking: no breaking change against $short (before the last proto change)"
  else
    echo "buf breaking: breaking change against $short (before the last proto change $last)" >&2
    failed=$rc
  fi
fi
exit "$failed"
