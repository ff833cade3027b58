"""The whole `tpf` parser: every command group under one top-level parser."""

from __future__ import annotations

import argparse
import importlib.metadata

from tpf_cli.arguments.command_adders import CommandAdders
from tpf_cli.arguments.dead_letter_commands import add_dead_letter_commands
from tpf_cli.arguments.execution_commands import add_execution_commands
from tpf_cli.arguments.interaction_commands import add_interaction_commands
from tpf_cli.arguments.release_commands import add_release_commands
from tpf_cli.arguments.worker_commands import add_worker_commands
from tpf_cli.release_build import add_release_build


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tpf", description="Command line of the TPF coordinator suite."
    )
    parser.add_argument(
        "--version", action="version", version=f"tpf {importlib.metadata.version('tpf-cli')}"
    )
    areas = parser.add_subparsers(dest="area", metavar="COMMAND", required=True)
    adders = CommandAdders.create()
    # The order here is the order `tpf --help` lists the commands in.
    add_release_commands(areas, adders)
    add_worker_commands(areas, adders)
    add_execution_commands(areas, adders)
    add_interaction_commands(areas, adders)
    add_dead_letter_commands(areas, adders)
    add_release_build(areas)
    return parser
