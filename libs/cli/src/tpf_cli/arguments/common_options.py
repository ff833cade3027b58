"""Argument types and options that several command groups share."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_page_size(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--page-size",
        type=int,
        default=0,
        metavar="N",
        help="items per request (server default when 0); every page is fetched",
    )


def absolute_path(text: str) -> Path:
    # The registry reads a descriptor path from its own disk, where our working directory
    # means nothing.
    return Path(os.path.abspath(text))


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0: {text!r}")
    return value


def version(text: str) -> int:
    """An execution version, as `--expected-version` takes it."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a version number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value
