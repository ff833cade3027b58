"""The command line every service shares: `--help` lists its settings, `--version` its version.

A service is configured by `TPF_*` variables, not flags, so `--help` prints each variable with
its default and the comment written above the field in the settings class; nothing starts, no
database or port is touched, and the exit code is 0. Commands (`serve`, and `migrate` where a
service owns a schema) are positional.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import inspect
import re
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from pydantic_settings import BaseSettings

from tpf_config._settings import env_var_name

COMMAND_HELP = {
    "serve": "run the service (the default)",
    "migrate": "apply the pending database migrations and exit (once per rollout)",
}
_FIELD = re.compile(r"^\s{4}(\w+)\s*:")
_COMMENT = re.compile(r"^\s{4}#\s?(.*)$")


def parse_service_args(
    prog: str,
    settings_cls: type[BaseSettings],
    argv: Sequence[str] | None = None,
    *,
    commands: Sequence[str] = ("serve",),
    distribution: str | None = None,
) -> str:
    """The command named on the command line (`serve` by default).

    `--help` prints the commands and every setting and exits 0; `--version` prints
    `<prog> <version>` and exits 0; anything else unknown is a usage error (exit 2).
    """
    parser = argparse.ArgumentParser(
        prog=prog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=f"{prog} is configured by environment variables; see its settings below.",
        epilog=settings_help(settings_cls),
    )
    parser.add_argument(
        "--version", action="version", version=f"{prog} {version_of(distribution or prog)}"
    )
    if len(commands) > 1:
        parser.add_argument(
            "command",
            nargs="?",
            default=commands[0],
            choices=list(commands),
            help="; ".join(f"{c}: {COMMAND_HELP.get(c, c)}" for c in commands),
        )
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    return str(getattr(args, "command", commands[0]))


def version_of(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def settings_help(settings_cls: type[BaseSettings]) -> str:
    """One entry per setting: variable, default, and the comment above its field."""
    comments = _field_comments(settings_cls)
    lines = ["settings (environment variables):"]
    for name, field in sorted(settings_cls.model_fields.items()):
        if field.repr is False or field.default is None:
            default = "unset"
        elif isinstance(field.default, Path | str) and not str(field.default):
            default = '""'
        elif isinstance(field.default, bool):
            default = str(field.default).lower()
        else:
            default = str(field.default)
        lines.append(f"  {env_var_name(settings_cls, name)} (default: {default})")
        text = comments.get(name, "")
        if text:
            lines.extend(
                textwrap.wrap(text, width=92, initial_indent=" " * 6, subsequent_indent=" " * 6)
            )
    return "\n".join(lines)


def _field_comments(settings_cls: type[BaseSettings]) -> dict[str, str]:
    """The `#` comment block right above each field, from the class and its bases' source."""
    found: dict[str, str] = {}
    for klass in reversed(settings_cls.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, BaseSettings)):
            continue
        try:
            source = inspect.getsource(klass).splitlines()
        except (OSError, TypeError):
            continue
        block: list[str] = []
        for line in source:
            comment = _COMMENT.match(line)
            if comment:
                block.append(comment.group(1).strip())
                continue
            field = _FIELD.match(line)
            if field and block:
                found[field.group(1)] = " ".join(block)
            block = []
    return found
