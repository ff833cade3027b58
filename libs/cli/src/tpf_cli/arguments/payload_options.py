"""The payload a command sends (an input, a response): its options and the source they name."""

from __future__ import annotations

import argparse

from tpf_cli.payloads import STDIN, PayloadSource


def add_payload_options(
    parser: argparse.ArgumentParser,
    what: str,
    flag: str,
    *,
    required: bool = True,
    envelope_flag: str = "envelope-file",
) -> None:
    """`--<flag> JSON | --<flag>-file PATH | --<envelope_flag> PATH`, and `--type TYPE_ID`."""
    source = parser.add_mutually_exclusive_group(required=required)
    source.add_argument(
        f"--{flag}",
        dest="payload_json",
        metavar="JSON",
        help=f"the {what} as plain JSON; sent as a java.util.Map (or List, scalar) envelope, "
        "or as the --type envelope",
    )
    source.add_argument(
        f"--{flag}-file",
        dest="payload_file",
        metavar="PATH",
        help=f"read the {what} as plain JSON from a file ({STDIN} for stdin)",
    )
    source.add_argument(
        f"--{envelope_flag}",
        dest="envelope_file",
        metavar="PATH",
        help=f"send a ready TPF envelope (payloadTypeId, payloadEncoding, payload) from a file "
        f"({STDIN} for stdin) as it is",
    )
    parser.add_argument(
        "--type",
        dest="type_id",
        metavar="TYPE_ID",
        help="send the plain JSON as this application type's envelope (payload = compact JSON), "
        "e.g. org.pipelineframework.restaurantapproval.common.dto."
        "PlaceRestaurantOrderRequestDto",
    )


def optional_payload_source(args: argparse.Namespace, what: str) -> PayloadSource | None:
    if args.payload_json is None and args.payload_file is None and args.envelope_file is None:
        if args.type_id is not None:
            args.command_parser.error(f"--type needs a {what}")
        return None
    return payload_source(args, what)


def payload_source(args: argparse.Namespace, what: str) -> PayloadSource:
    if args.type_id is not None and args.envelope_file is not None:
        args.command_parser.error("--type cannot be used with --envelope-file")
    return PayloadSource(
        what=what,
        json_text=args.payload_json,
        json_file=args.payload_file,
        envelope_file=args.envelope_file,
        type_id=args.type_id,
    )
