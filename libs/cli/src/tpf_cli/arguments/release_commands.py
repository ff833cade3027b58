"""`tpf releases ...`: register, activate and read releases (registry), and their drift
(coordinator)."""

from __future__ import annotations

from pathlib import Path

from tpf_cli import release_drift, releases
from tpf_cli.arguments.command_adders import CommandAdders, SubParsers
from tpf_cli.arguments.common_options import absolute_path, add_page_size


def add_release_commands(areas: SubParsers, adders: CommandAdders) -> None:
    rel = areas.add_parser("releases", help="register, activate and read releases")
    rel_commands = rel.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub = adders.registry(
        rel_commands,
        "register",
        "register a release from its pipeline-release.json",
        lambda r, a: releases.register(r, a.descriptor, upload=a.upload, policy=a.policy),
    )
    sub.add_argument(
        "--policy",
        metavar="PATH",
        type=Path,
        help="release policy as protobuf JSON (dispatch mode, retries), e.g. the "
        "release-policy.json that `tpf release build` writes",
    )
    sub.add_argument(
        "--descriptor", required=True, metavar="PATH", type=absolute_path, help="descriptor file"
    )
    sub.add_argument(
        "--upload",
        action="store_true",
        help="send the descriptor and local artifact files with the request "
        "(for a registry that cannot read this machine's files)",
    )
    sub = adders.registry(
        rel_commands,
        "activate",
        "make a release the active one of its pipeline",
        lambda r, a: releases.activate(r, a.version, reason=a.reason),
    )
    sub.add_argument("version", help="release version")
    sub.add_argument("--reason", default="", help="why, kept in the activation history")
    add_page_size(
        adders.registry(
            rel_commands,
            "list",
            "list the releases of the pipeline, oldest first",
            lambda r, a: releases.list_releases(r, page_size=a.page_size),
        )
    )
    sub = adders.registry(
        rel_commands, "get", "show one release", lambda r, a: releases.get(r, a.version)
    )
    sub.add_argument("version", help="release version")
    adders.registry(
        rel_commands, "active", "show the active release", lambda r, a: releases.active(r)
    )
    add_page_size(
        adders.registry(
            rel_commands,
            "activations",
            "list the activation history, newest first",
            lambda r, a: releases.activations(r, page_size=a.page_size),
        )
    )
    sub = adders.coordinator(
        rel_commands,
        "drift",
        "what runs where: the active release, every worker and whether it serves it, the "
        "executions still pinned to each release, and whether each release can be retired "
        "(asks the coordinator)",
        lambda c, a: release_drift.drift(c, release_version=a.release),
        needs_pipeline=True,
    )
    sub.add_argument(
        "--release",
        default="",
        metavar="VERSION",
        help="also report on this release, and exit 1 unless it is safe to retire",
    )
