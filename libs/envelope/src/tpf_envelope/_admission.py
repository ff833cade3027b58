"""Submission input admission (TPF_WIRE §3.1) and the step-0 input snapshot (§9.1).

TPF decodes the input, then converts generic payloads (`null`, Map, List, Set) to the first
step's input class. We cannot load Java classes, so conversion is left to the worker; what we can
check by name, we check: a MULTI input must be a List, Set or null, and a concrete application
type must be the first step's input type. JDK scalars pass, as TPF keeps concrete types as sent.
"""

from collections.abc import Sequence

from tpf_envelope import _type_ids
from tpf_envelope._decode import collection_item_envelopes, decode
from tpf_envelope._envelope import TRANSITION_ENCODING, Envelope, envelope_json_text
from tpf_envelope._limits import DEFAULT_MAX_DEPTH, DEFAULT_MAX_PAYLOAD_BYTES
from tpf_envelope._path import ROOT, index_path
from tpf_envelope._values import Decoded, InputShape
from tpf_errors import InvalidArgument, field_invalid

_MULTI_TYPE_IDS = frozenset({_type_ids.LIST, _type_ids.SET, _type_ids.NULL})


def check_submission_input(
    envelope: Envelope,
    *,
    input_shape: InputShape | str,
    first_step_input_type_id: str | None,
    allowed_prefixes: Sequence[str] = _type_ids.DEFAULT_ALLOWED_PREFIXES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_size_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
) -> Decoded:
    """Decode a submission's input and check it fits `input_shape` and the first step.

    Raises `decode`'s errors; `InvalidArgument` FIELD_INVALID for an unknown `input_shape`;
    PAYLOAD_UNDECODABLE "Invalid request payload: ..." for a MULTI input that is not a List, Set
    or null, and for a UNI input (or MULTI item) of an application type other than
    `first_step_input_type_id`. RAW is not checked beyond decoding. A None
    `first_step_input_type_id` skips the type check and keeps every concrete type, as TPF does.
    """
    shape = parse_input_shape(input_shape)
    decoded = decode(
        envelope,
        allowed_prefixes=allowed_prefixes,
        max_depth=max_depth,
        max_size_bytes=max_size_bytes,
    )
    if shape is InputShape.MULTI:
        if decoded.type_id not in _MULTI_TYPE_IDS:
            raise InvalidArgument(
                "PAYLOAD_UNDECODABLE",
                "Invalid request payload: a MULTI input must be a java.util.List, java.util.Set "
                f"or null payload, not {decoded.type_id}.",
                inputShape=shape.value,
                payloadTypeId=decoded.type_id,
            )
        if decoded.type_id != _type_ids.NULL:
            for index, item in enumerate(collection_item_envelopes(envelope)):
                _check_concrete_type(
                    item.payload_type_id, first_step_input_type_id, index_path(ROOT, index)
                )
    elif shape is InputShape.UNI:
        _check_concrete_type(decoded.type_id, first_step_input_type_id, ROOT)
    return decoded


def input_snapshot(shape: InputShape | str, decoded: Decoded) -> Envelope:
    """The `ExecutionInputSnapshot` envelope a step-0 command carries for this input.

    Embeds the submitted envelopes unchanged (UNI/RAW: the input in `payload`; MULTI: each item
    of the List/Set in `items`, none for null), so nested type ids survive. `decoded` must come
    from `check_submission_input` with the same shape; otherwise raises `ValueError`.
    """
    shape = parse_input_shape(shape)
    if shape is not InputShape.MULTI:
        text = (
            f'{{"shape":"{shape.value}","payload":{envelope_json_text(decoded.envelope)},'
            '"items":[]}'
        )
        return Envelope(_type_ids.INPUT_SNAPSHOT, TRANSITION_ENCODING, text)
    if decoded.type_id == _type_ids.NULL:
        items: list[Envelope] = []
    elif decoded.type_id in _type_ids.COLLECTION_TYPE_IDS:
        items = collection_item_envelopes(decoded.envelope)
    else:
        raise ValueError(
            f"a MULTI input snapshot needs a List, Set or null input, not {decoded.type_id}"
        )
    item_texts = ",".join(envelope_json_text(item) for item in items)
    text = '{"shape":"MULTI","payload":null,"items":[' + item_texts + "]}"
    return Envelope(_type_ids.INPUT_SNAPSHOT, TRANSITION_ENCODING, text)


def parse_input_shape(value: InputShape | str) -> InputShape:
    """`UNI`, `MULTI` or `RAW`; anything else is FIELD_INVALID on `inputShape`."""
    try:
        return InputShape(value)
    except ValueError:
        raise field_invalid("inputShape", f"must be UNI, MULTI or RAW, not {value!r}") from None


def _check_concrete_type(type_id: str, first_step_input_type_id: str | None, path: str) -> None:
    if (
        first_step_input_type_id is None
        or type_id in _type_ids.GENERIC_TYPE_IDS
        or type_id in _type_ids.JDK_SCALAR_TYPE_IDS
        or type_id == first_step_input_type_id
    ):
        return
    raise InvalidArgument(
        "PAYLOAD_UNDECODABLE",
        f"Invalid request payload: the input at {path} is a {type_id}, but the pipeline's first "
        f"step takes {first_step_input_type_id}; send that type or a java.util.Map.",
        path=path,
        payloadTypeId=type_id,
        expectedTypeId=first_step_input_type_id,
    )
