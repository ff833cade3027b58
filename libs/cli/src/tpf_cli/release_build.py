"""`tpf release build`: package a Python pipeline as a TPF release, on this machine only.

It imports the pipeline (`--pipeline package.module:ATTRIBUTE`), writes the jar, the
`pipeline-release.json` descriptor and the `release-policy.json` policy into `--out`, and prints
where they are with the ids a worker and `tpf releases register` need. No service is called.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TypeAlias

from tpf_worker.release import BuiltRelease, PipelineLoadError, build_release, load_pipeline

SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_release_build(areas: SubParsers) -> None:
    """Add the `release build` command to the top-level parser's areas."""
    area = areas.add_parser("release", help="build a release of a Python pipeline (local only)")
    commands = area.add_subparsers(dest="command", metavar="COMMAND", required=True)
    help_text = "build a release jar and descriptor from a tpf_worker Pipeline"
    sub = commands.add_parser("build", help=help_text, description=help_text)
    sub.add_argument(
        "--pipeline",
        required=True,
        metavar="MODULE:ATTR",
        help="the Pipeline object, e.g. restaurant_approval.pipeline:PIPELINE",
    )
    sub.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="directory to write into"
    )
    sub.add_argument(
        "--release-version",
        default=None,
        metavar="V",
        help="release version (default: the jar's digest, sha256:<hex>)",
    )
    sub.add_argument(
        "--artifact-id", default=None, metavar="ID", help="artifact id (default: the pipeline's)"
    )
    sub.add_argument("--json", action="store_true", help="print the result as one JSON object")
    sub.set_defaults(local_run=run, command_parser=sub)


def run(args: argparse.Namespace) -> int:
    """Build the release; print it; 0 on success, 1 when the pipeline cannot be loaded."""
    try:
        pipeline = load_pipeline(args.pipeline)
    except PipelineLoadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    built = build_release(
        pipeline, args.out, release_version=args.release_version, artifact_id=args.artifact_id
    )
    print(render(built, as_json=args.json), flush=True)
    return 0


def render(built: BuiltRelease, *, as_json: bool) -> str:
    fields = {
        "artifactPath": str(built.jar_path),
        "descriptorPath": str(built.descriptor_path),
        "policyPath": str(built.policy_path),
        "pipelineId": built.identity.pipeline_id,
        "contractVersion": built.contract_version,
        "releaseVersion": built.release_version,
        "artifactId": built.artifact_id,
        "digest": built.digest,
    }
    if as_json:
        return json.dumps(fields, indent=2)
    width = max(len(key) for key in fields) + 1
    return "\n".join(f"{key + ':':<{width}} {value}" for key, value in fields.items())
