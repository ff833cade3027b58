"""Per-task log fields (tenant, execution_id, version, trace_id) carried by a contextvar."""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

LogFieldValue = str | int

# A ContextVar is the one module-level object here: it holds no state itself, it indexes
# into each asyncio task's context, so concurrent RPCs never see each other's fields.
_fields: ContextVar[Mapping[str, LogFieldValue]] = ContextVar(
    "tpf_log_fields", default=MappingProxyType({})
)


@contextmanager
def log_context(**fields: LogFieldValue | None) -> Iterator[None]:
    """Add fields to every log line emitted inside the block (nested blocks merge).

    None values are skipped, so callers can pass optional ids without branching.
    """
    merged = dict(_fields.get())
    merged.update({name: value for name, value in fields.items() if value is not None})
    token = _fields.set(MappingProxyType(merged))
    try:
        yield
    finally:
        _fields.reset(token)


def current_log_fields() -> Mapping[str, LogFieldValue]:
    """The fields set by the enclosing `log_context` blocks (read-only)."""
    return _fields.get()
