"""Payload envelopes from the command line (TPF_WIRE §2): plain JSON in, TPF envelopes out.

A submission's input and an interaction's response are given as plain JSON (`--input`,
`--input-file`, `--response`, `--response-file`) or as a ready envelope (`--envelope-file`).
Plain JSON becomes an envelope in one of two ways:

- with `--type TYPE_ID`, the envelope of that application type (or JDK scalar type), whose
  `payload` is the compact JSON text, numbers written exactly as given (`27.50` stays `27.50`);
- without `--type`, TPF's generic envelope built by `tpf_envelope.encode`: objects become
  `java.util.Map` envelopes of nested envelopes, arrays `java.util.List`, and scalars map as
  TPF's demo client maps them (string → `java.lang.String`, integer → `java.lang.Long`, other
  number → `java.lang.Double`, boolean → `java.lang.Boolean`, null → `null`).

Results are read back with `tpf_envelope.decode` and shown with `tpf_envelope.plain`.
"""

from __future__ import annotations

import json
import string
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import tpf_envelope
from tpf.common.v1 import payload_pb2
from tpf_cli.errors import CliError
from tpf_errors import TpfError

STDIN = "-"
# The CLI only reads results the coordinator already admitted, so it accepts every application
# type id, not only the coordinator's allowed prefixes (ids are Java names: a letter, `_` or `$`
# first). Results may be as large as the coordinator's largest message.
_ANY_APPLICATION_TYPE = (*string.ascii_letters, "_", "$")
_MAX_RESULT_BYTES = 64 * 1024 * 1024
# Type ids whose payload is not the plain JSON of the value: `--type` cannot name them.
_STRUCTURED_TYPE_IDS = tpf_envelope.GENERIC_TYPE_IDS | {tpf_envelope.INPUT_SNAPSHOT}


@dataclass(frozen=True, slots=True)
class PayloadSource:
    """Where a payload comes from: exactly one of inline JSON, a JSON file, an envelope file."""

    what: str
    json_text: str | None = None
    json_file: str | None = None
    envelope_file: str | None = None
    type_id: str | None = None


def envelope_of(source: PayloadSource) -> payload_pb2.PayloadEnvelope:
    """The envelope to send for `source`; raises `CliError` for unreadable or invalid input."""
    if source.envelope_file is not None:
        envelope = _ready_envelope(source.envelope_file)
    else:
        if source.json_text is not None:
            text, origin = source.json_text, source.what
        elif source.json_file is not None:
            text, origin = _read_text(source.json_file), f"{source.what} file {source.json_file}"
        else:
            raise CliError(f"no {source.what} given")
        if source.type_id:
            envelope = _typed_envelope(text, source.type_id, origin)
        else:
            envelope = _generic_envelope(text, origin)
    return payload_pb2.PayloadEnvelope(
        payload_type_id=envelope.payload_type_id,
        payload_encoding=envelope.payload_encoding,
        payload=envelope.payload,
    )


def _read_text(path: str) -> str:
    if path == STDIN:
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise CliError(f"{path} is not UTF-8 text: {error}") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _parse(text: str, origin: str, *, exact: bool) -> Any:
    """Strict JSON (no NaN, no trailing text); with `exact`, non-integer numbers as Decimal."""
    try:
        if exact:
            return json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise CliError(f"{origin} is nested too deeply to read") from None
    except ValueError as error:
        raise CliError(f"{origin} is not valid JSON: {error}") from None


def _typed_envelope(text: str, type_id: str, origin: str) -> tpf_envelope.Envelope:
    type_id = type_id.strip()
    if type_id in _STRUCTURED_TYPE_IDS:
        raise CliError(
            f"--type {type_id} has a structured payload; leave --type out to send a map, a list "
            "or null as TPF's generic envelope, or give --envelope-file"
        )
    value = _parse(text, origin, exact=True)
    try:
        payload = tpf_envelope.compact_json_text(value)
    except ValueError as error:
        raise CliError(f"{origin} cannot be sent: {error}") from None
    return tpf_envelope.Envelope(type_id, tpf_envelope.TRANSITION_ENCODING, payload)


def _generic_envelope(text: str, origin: str) -> tpf_envelope.Envelope:
    value = _parse(text, origin, exact=False)
    try:
        return tpf_envelope.encode(value)
    except TpfError as error:
        raise CliError(f"{origin} cannot be sent as a TPF envelope: {error.message}") from None
    except RecursionError:
        raise CliError(f"{origin} is nested too deeply to send") from None


def _ready_envelope(path: str) -> tpf_envelope.Envelope:
    origin = f"envelope file {path}"
    document = _parse(_read_text(path), origin, exact=False)
    try:
        return tpf_envelope.from_json_dict(document)
    except TpfError as error:
        raise CliError(f"{origin} is not a payload envelope: {error.message}") from None


def envelope_json(envelope: payload_pb2.PayloadEnvelope) -> str:
    """The envelope as TPF writes it: a JSON object of the three camelCase string fields."""
    value = tpf_envelope.to_json_dict(
        tpf_envelope.Envelope(envelope.payload_type_id, envelope.payload_encoding, envelope.payload)
    )
    return json.dumps(value, indent=2, ensure_ascii=False)


def plain_json(envelope: payload_pb2.PayloadEnvelope) -> str:
    """The decoded value of `envelope` as indented plain JSON (`tpf_envelope.plain`)."""
    try:
        decoded = tpf_envelope.decode(
            tpf_envelope.Envelope(
                envelope.payload_type_id, envelope.payload_encoding, envelope.payload
            ),
            allowed_prefixes=_ANY_APPLICATION_TYPE,
            max_depth=tpf_envelope.MAX_SUPPORTED_DEPTH,
            max_size_bytes=_MAX_RESULT_BYTES,
        )
        value = tpf_envelope.plain(decoded.value)
    except TpfError as error:
        raise CliError(
            f"the result does not decode: {error.message} (--envelope shows it as sent)"
        ) from None
    return json.dumps(value, indent=2, ensure_ascii=False)
