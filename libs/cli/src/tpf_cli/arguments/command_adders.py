"""How a command joins the parser: with the connection options of the service it calls."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeAlias

from tpf_cli.connection import (
    COORDINATOR,
    REGISTRY,
    Coordinator,
    Registry,
    Service,
    add_connection_options,
)
from tpf_cli.output import Report

RegistryCommand = Callable[[Registry, argparse.Namespace], Awaitable[Report]]
CoordinatorCommand = Callable[[Coordinator, argparse.Namespace], Awaitable[Report]]
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _common_options(service: Service) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    add_connection_options(common, service=service)
    common.add_argument("--json", action="store_true", help="print the response as protobuf JSON")
    return common


@dataclass(frozen=True)
class CommandAdders:
    """Adds registry and coordinator commands; each kind shares one parent parser of options."""

    registry_options: argparse.ArgumentParser
    coordinator_options: argparse.ArgumentParser

    @classmethod
    def create(cls) -> CommandAdders:
        return cls(_common_options(REGISTRY), _common_options(COORDINATOR))

    def registry(
        self, group: SubParsers, name: str, help_text: str, run: RegistryCommand
    ) -> argparse.ArgumentParser:
        """A command calling the registry; every registry command needs a pipeline."""
        sub = group.add_parser(
            name, help=help_text, description=help_text, parents=[self.registry_options]
        )
        sub.set_defaults(run=run, command_parser=sub, service=REGISTRY, needs_pipeline=True)
        return sub

    def coordinator(
        self,
        group: SubParsers,
        name: str,
        help_text: str,
        run: CoordinatorCommand,
        *,
        needs_pipeline: bool = False,
    ) -> argparse.ArgumentParser:
        """A command calling the coordinator; without `needs_pipeline` the pipeline is a filter."""
        sub = group.add_parser(
            name, help=help_text, description=help_text, parents=[self.coordinator_options]
        )
        sub.set_defaults(
            run=run, command_parser=sub, service=COORDINATOR, needs_pipeline=needs_pipeline
        )
        return sub
