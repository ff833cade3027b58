"""The payload type ids TPF's codec knows by name (TPF_WIRE §2), and what each kind of id means.

Generic ids (`null`, Map, List, Set) carry structure only; JDK scalar ids name one of the
eighteen JDK classes TPF always accepts; the input snapshot is TPF's internal step-0 wrapper.
Every other id names an application class and is accepted only under an allowed prefix.
"""

import re

NULL = "null"
MAP = "java.util.Map"
LIST = "java.util.List"
SET = "java.util.Set"
INPUT_SNAPSHOT = "org.pipelineframework.orchestrator.ExecutionInputSnapshot"

STRING = "java.lang.String"
LONG = "java.lang.Long"
INTEGER = "java.lang.Integer"
SHORT = "java.lang.Short"
BYTE = "java.lang.Byte"
DOUBLE = "java.lang.Double"
FLOAT = "java.lang.Float"
BOOLEAN = "java.lang.Boolean"
CHARACTER = "java.lang.Character"
BIG_DECIMAL = "java.math.BigDecimal"
BIG_INTEGER = "java.math.BigInteger"
INSTANT = "java.time.Instant"
LOCAL_DATE = "java.time.LocalDate"
LOCAL_DATE_TIME = "java.time.LocalDateTime"
OFFSET_DATE_TIME = "java.time.OffsetDateTime"
ZONED_DATE_TIME = "java.time.ZonedDateTime"
PATH = "java.nio.file.Path"
UUID = "java.util.UUID"

# TPF's SAFE_JDK_PAYLOAD_TYPES: accepted whatever the allowed prefixes are.
JDK_SCALAR_TYPE_IDS: frozenset[str] = frozenset(
    {
        STRING,
        LONG,
        INTEGER,
        SHORT,
        BYTE,
        DOUBLE,
        FLOAT,
        BOOLEAN,
        CHARACTER,
        BIG_DECIMAL,
        BIG_INTEGER,
        INSTANT,
        LOCAL_DATE,
        LOCAL_DATE_TIME,
        OFFSET_DATE_TIME,
        ZONED_DATE_TIME,
        PATH,
        UUID,
    }
)

# Ids whose decoded value TPF converts to the first step's input class at submission (UNI).
GENERIC_TYPE_IDS: frozenset[str] = frozenset({NULL, MAP, LIST, SET})

COLLECTION_TYPE_IDS: frozenset[str] = frozenset({LIST, SET})

_BUILTIN_TYPE_IDS = GENERIC_TYPE_IDS | JDK_SCALAR_TYPE_IDS | {INPUT_SNAPSHOT}

DEFAULT_ALLOWED_PREFIXES: tuple[str, ...] = ("org.pipelineframework.",)

# A Java binary class name: dot-separated identifiers, `$` for nested classes.
_IDENTIFIER = r"(?:[^\W\d]|\$)[\w$]*"
_JAVA_BINARY_NAME = re.compile(rf"{_IDENTIFIER}(?:\.{_IDENTIFIER})*")


def is_builtin_type_id(type_id: str) -> bool:
    """True for the ids the codec decodes by itself: generic, JDK scalar, input snapshot."""
    return type_id in _BUILTIN_TYPE_IDS


def is_java_binary_name(type_id: str) -> bool:
    """True if `type_id` could name a Java class (`a.b.C`, `a.b.Outer$Inner`)."""
    return _JAVA_BINARY_NAME.fullmatch(type_id) is not None
