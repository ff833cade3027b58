"""Typed accessors for protobuf field descriptors, shared by binding, JSON and OpenAPI code."""

from __future__ import annotations

from typing import cast

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

WELL_KNOWN_PREFIX = "google.protobuf."


def descriptor_of(message: Message) -> Descriptor:
    """`message.DESCRIPTOR`, typed: the stubs also allow the upb class, which is the same API."""
    return cast(Descriptor, message.DESCRIPTOR)


def message_type(field: FieldDescriptor) -> Descriptor:
    """The message type of a message field; TypeError for any other field (a caller's bug)."""
    descriptor = field.message_type
    if descriptor is None:
        raise TypeError(f"{field.full_name} is not a message field")
    return descriptor


def enum_type(field: FieldDescriptor) -> EnumDescriptor:
    """The enum type of an enum field; TypeError for any other field (a caller's bug)."""
    descriptor = field.enum_type
    if descriptor is None:
        raise TypeError(f"{field.full_name} is not an enum field")
    return descriptor


def is_message(field: FieldDescriptor) -> bool:
    return field.type == FieldDescriptor.TYPE_MESSAGE


def is_map(field: FieldDescriptor) -> bool:
    return is_message(field) and field.is_repeated and message_type(field).GetOptions().map_entry


def is_well_known(descriptor: Descriptor) -> bool:
    """A google.protobuf type, whose JSON form json_format defines (Struct, Timestamp, ...)."""
    return descriptor.full_name.startswith(WELL_KNOWN_PREFIX)


def is_object_message(field: FieldDescriptor) -> bool:
    """A field holding one of our messages (a JSON object with our fields)."""
    return is_message(field) and not is_well_known(message_type(field))
